//! Telemetry towards the control plane, as Envoy sends it: the metrics service stats sink
//! (`stats_sinks`: the stats every `stats_flush_interval`) and the gRPC HTTP access logger
//! (`envoy.access_loggers.http_grpc` in a connection manager's `access_log`: one entry per
//! request, batched). Both stream to a static cluster of the bootstrap and never hold up a
//! request: the sink reads atomics on its own task, the logger takes records through a
//! bounded queue that drops (and counts) when full.
//!
//! - `flush`: one flush of the stats as Envoy's `MetricsFlusher` makes it (pure).
//! - `metrics`: the sink's task.
//! - `entry`: an access log record as Envoy's `HTTPAccessLogEntry` (pure).
//! - `grpc_log`: the loggers, one task per log name and cluster.
//! - `uplink`: a client-streaming call kept up with backoff, the identifier on each new stream.

mod entry;
pub mod flush;
pub mod grpc_log;
pub mod metrics;
#[cfg(test)]
mod tests;
mod uplink;

pub use entry::{EntryFields, http_entry};
pub use grpc_log::{Error, GrpcLoggers, LogQueue};
