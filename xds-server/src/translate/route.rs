//! Routes → the `RouteConfiguration` of a listener: one virtual host per route.

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;

use crate::model::Route;

pub(super) fn route_configuration(
    name: &str,
    _routes: &[(&str, &Route)],
    _warnings: &mut Vec<String>,
) -> RouteConfiguration {
    RouteConfiguration {
        name: name.to_string(),
        ..RouteConfiguration::default()
    }
}
