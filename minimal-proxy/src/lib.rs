//! minimal-proxy: a small, fast data plane that takes Envoy's bootstrap, speaks Envoy's xDS
//! (ADS, SotW and Delta) to xds-server, and serves HTTP/1.1, HTTP/2, gRPC and TCP traffic with
//! the same observable behaviour as Envoy for the features it implements. Whatever it does not
//! implement it refuses by name: at start for the bootstrap, with a NACK for xDS resources.
//!
//! # Layout
//!
//! One request's way: `listener` (accept loop, drain) → `http` (codec, route table, router
//! with retries and timeouts) or `tcp` → `upstream` (load balancing, health, circuit
//! breakers, pools) → the upstream host.
//!
//! - [`bootstrap`]: the Envoy bootstrap file, parsed and checked field by field.
//! - [`config`]: the proxy's runtime configuration, plain Rust types; Envoy resources are
//!   converted into them (and refused by field) there.
//! - [`xds`]: the xDS client: ADS SotW and Delta, one handler per type returning what it
//!   rejected, warming, ACK after apply, reconnect with backoff.
//! - [`runtime`]: the immutable snapshot of routes and warmed clusters, swapped atomically.
//! - [`listener`]: listeners added, changed and removed at runtime; old connections drain.
//! - [`http`]: the HTTP connection manager and router.
//! - [`tcp`]: the TCP proxy.
//! - [`rbac`]: RBAC filters compiled and checked per request (HTTP) or connection (TCP).
//! - [`upstream`]: clusters, load balancers, health checks, outlier detection, pools.
//! - [`access_log`]: JSON-lines access logs (and the records gRPC access logs send).
//! - [`telemetry`]: the metrics service stats sink and the gRPC access logger.
//! - [`tls`]: TLS contexts from SDS secrets, the SPIFFE verifier, the peer's certificate.
//! - [`stats`]: counters, gauges and histograms with Envoy's names.
//! - [`admin`]: `/ready`, `/config_dump`, `/clusters`, `/stats`, `/stats/prometheus`.
//! - [`app`]: wires everything for `main.rs`.

#![forbid(unsafe_code)]

pub mod access_log;
pub mod admin;
pub mod app;
pub mod bootstrap;
pub mod config;
pub mod http;
pub mod listener;
pub mod rbac;
pub mod runtime;
pub mod stats;
pub mod tcp;
pub mod telemetry;
pub mod tls;
pub mod upstream;
pub mod xds;
