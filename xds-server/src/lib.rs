//! xds-server: an Envoy control plane.
//!
//! # Layout
//!
//! Data flows one way: `api` → `model` → `store` → `watch` → `translate` → `xds` → `status`.
//!
//! - [`config`]: command-line flags and environment variables.
//! - [`app`]: wires the store, the mesh watch, the xDS server, the admin API and shutdown.
//! - [`api`]: the REST admin API (axum): handlers, the JSON error shape, auth, OpenAPI, proxy
//!   status, bootstrap, metrics.
//! - [`model`]: the validated mesh model: services, endpoints, routes, listeners, raw Envoy
//!   resources; [`model::Mesh`] is all of them at one revision.
//! - [`store`]: one `Store` trait; SQLite (embedded default) and Postgres backends.
//! - [`watch`]: store revisions → coalesced, immutable mesh snapshots (stored records are
//!   parsed into the model here, so the model does not know the store).
//! - [`translate`]: pure: a mesh and a proxy's selection → encoded Envoy resources, each with
//!   the mesh objects it came from.
//! - [`xds`]: the SotW and delta state machines, the per-group cache, the tonic services.
//! - [`status`]: what every connected proxy was sent and accepted, and from that what each
//!   mesh object's read-only `status` says.
//! - [`tap`]: the live tap: open taps, the access logs they switch on, the gRPC
//!   `AccessLogService` that feeds them.
//! - [`metrics`]: Prometheus counters and histograms for the xDS server.
//! - [`telemetry`]: golden metrics (requests/s, success rate, latency) per service, route and
//!   proxy, from the stats every proxy streams to the server's MetricsService.
//! - [`ca`]: service identities: the mesh CA, SPIFFE workload certificates, served over SDS.
//! - [`proxy_auth`]: proxy tokens on the xDS port (`--xds-auth`): who may open a stream as
//!   which node.
//! - [`ui`]: the web console at `/ui`, static files embedded in the binary.

#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod ca;
pub mod config;
pub mod metrics;
pub mod model;
pub mod proxy_auth;
pub mod status;
pub mod store;
pub mod tap;
pub mod telemetry;
pub mod translate;
pub mod ui;
pub mod watch;
pub mod xds;

/// Entry points for the fuzz targets in `fuzz/` (not an API): what they cannot reach otherwise.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::{api::ApiError, model::Spec};

    /// A PUT body parsed exactly as the REST API parses it: the spec, and the envelope's
    /// `name` and `version` when given.
    pub fn parse_body<S: Spec>(bytes: &[u8]) -> Result<(S, Option<String>, Option<i64>), ApiError> {
        let envelope = crate::api::body::parse::<S>(bytes)?;
        Ok((envelope.spec, envelope.name, envelope.version))
    }
}
