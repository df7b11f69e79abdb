//! The live tap: `GET /api/v1/tap` streams the requests proxies serve, on demand.
//!
//! While a tap is open, the proxies it selects log each matching request to this server's
//! `AccessLogService` (Envoy's `http_grpc` access logger, filtered on the proxy by path prefix
//! and status). Nothing is logged when no one watches: the access log is part of a proxy's
//! translation only while a tap selects it.
//!
//! - `filter.rs`: the query, and what a filter matches (events, proxies, listeners).
//! - `plan.rs`: the open taps as translation sees them (published with the mesh snapshots).
//! - `registry.rs`: open taps, the cap, delivery with a rate limit per tap (`limiter.rs`).
//! - `event.rs`: an access-log entry → the event a client sees.
//! - `receiver.rs`: the gRPC `AccessLogService`.
//! - `credential.rs`: what a tapped proxy authenticates its access-log stream with when
//!   proxy tokens are required.
//! - `metrics.rs`: the `xds_tap_*` Prometheus series.
//!
//! The SSE endpoint itself is `api/tap.rs`.

pub mod credential;
mod event;
mod filter;
mod limiter;
mod metrics;
mod plan;
pub mod receiver;
mod registry;

pub use event::TapEvent;
pub use filter::{Filter, FilterError};
pub use metrics::TapMetrics;
pub use plan::Plan;
pub use registry::{OpenError, Tap, Taps};

/// Bounds on taps (command-line flags).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct TapConfig {
    /// Live taps open at once; more are answered 429.
    #[arg(long, env = "XDS_SERVER_TAP_MAX_OPEN", default_value_t = 8)]
    pub tap_max_open: usize,

    /// Events per second one tap passes (bursts up to one second's worth); more are dropped
    /// and counted in the tap's `dropped` events.
    #[arg(long, env = "XDS_SERVER_TAP_MAX_RATE", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub tap_max_rate: u32,
}

impl Default for TapConfig {
    fn default() -> Self {
        Self {
            tap_max_open: 8,
            tap_max_rate: 100,
        }
    }
}

impl Default for Taps {
    fn default() -> Self {
        Self::new(TapConfig::default())
    }
}
