//! The whole mesh at one store revision, as typed model values: the input of translation.
//! (The watch layer builds it from the store's records; the model does not know the store.)

use std::collections::BTreeMap;

use super::{Endpoints, EnvoyResource, Listener, MeshSecurity, Route, Service, TrafficPermission};

/// Every resource at `revision`, parsed. Immutable once built; shared behind an `Arc`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mesh {
    pub revision: i64,
    pub services: BTreeMap<String, Service>,
    /// Keyed by service name.
    pub endpoints: BTreeMap<String, Endpoints>,
    pub routes: BTreeMap<String, Route>,
    pub listeners: BTreeMap<String, Listener>,
    pub envoy_resources: BTreeMap<String, EnvoyResource>,
    pub traffic_permissions: BTreeMap<String, TrafficPermission>,
    /// The mesh-wide security settings (the server's flags, not stored).
    pub security: MeshSecurity,
}
