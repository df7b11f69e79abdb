//! xds-core: the Envoy/xDS vocabulary that xds-server, minimal-proxy and the test harness
//! share, so none of them copies it.
//!
//! # Layout
//!
//! - [`type_url`]: the xDS resource types as one enum, with ADS order, wildcard and warming
//!   properties.
//! - [`descriptors`]: Envoy's descriptor pool (from the `envoy-types` crate), decoded lazily:
//!   only what renders or validates proto3 JSON pays for it.
//! - [`kind`]: the kinds of mesh object the REST API stores (service, route, …), their
//!   names, REST paths and dependency order, for the server and meshctl.
//! - [`json`]: proto3 JSON rendering of encoded Envoy messages (config dumps, status APIs).
//! - [`node`]: protobuf `Struct` <-> JSON, for node metadata.
//! - [`refs`]: what a cluster or listener makes a proxy fetch next (EDS and RDS names).
//! - [`drain`]: one drain signal from the top of a binary to every server and accept loop:
//!   graceful up to a deadline, then forced.
//! - `testing` (feature `testing`): an Envoy-like ADS client for tests and benchmarks.

#![forbid(unsafe_code)]

pub mod descriptors;
pub mod drain;
pub mod json;
pub mod kind;
pub mod node;
pub mod refs;
#[cfg(feature = "testing")]
pub mod testing;
pub mod type_url;

pub use kind::Kind;
pub use type_url::TypeUrl;
