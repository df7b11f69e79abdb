//! RDS `RouteConfiguration` → [`RouteConfig`].

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;

use super::{Rejection, RouteConfig};

/// Converts a route configuration, refusing unsupported matches, actions and policies.
pub fn route_configuration_from_proto(rc: &RouteConfiguration) -> Result<RouteConfig, Rejection> {
    Err(Rejection {
        resource: format!("route configuration '{}'", rc.name),
        field: String::new(),
        reason: "not implemented yet".into(),
    })
}
