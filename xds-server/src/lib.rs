//! xds-server: an Envoy control plane.
//!
//! # Layout
//!
//! Data flows one way: `api` → `model` → `store` (→ `watch` → `translate` → `xds` → `status`,
//! arriving with the xDS work).
//!
//! - [`config`]: command-line flags and environment variables.
//! - [`app`]: wires the store, the admin API and shutdown together.
//! - [`api`]: the REST admin API (axum): handlers, the JSON error shape, auth, OpenAPI.
//! - [`model`]: the validated mesh model: services, endpoints, routes, listeners, raw Envoy
//!   resources.
//! - [`store`]: one `Store` trait; SQLite (embedded default) and Postgres backends.

#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod config;
pub mod metrics;
pub mod model;
pub mod status;
pub mod store;
pub mod translate;
pub mod watch;
pub mod xds;
