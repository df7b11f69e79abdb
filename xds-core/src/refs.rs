//! What a cluster or listener makes a proxy fetch next, as Envoy reads it: the assignment an
//! EDS cluster waits for, and the route configurations a listener's HTTP connection managers
//! name. The harness's ADS client and the load generator subscribe to these, as Envoy does.

use envoy_types::pb::envoy::{
    config::{
        cluster::v3::{
            Cluster,
            cluster::{ClusterDiscoveryType, DiscoveryType},
        },
        listener::v3::{Listener, filter::ConfigType},
    },
    extensions::filters::network::http_connection_manager::v3::{
        HttpConnectionManager, http_connection_manager::RouteSpecifier,
    },
};
use prost::Message;

/// The assignment an EDS cluster waits for (`eds_cluster_config.service_name`, or the
/// cluster's name); `None` for a cluster of another type.
pub fn eds_service(cluster: &Cluster) -> Option<String> {
    let eds = Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32));
    if cluster.cluster_discovery_type != eds {
        return None;
    }
    let service = cluster
        .eds_cluster_config
        .as_ref()
        .map(|e| e.service_name.clone());
    Some(
        service
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| cluster.name.clone()),
    )
}

/// The route configurations `listener`'s HTTP connection managers fetch over RDS, in filter
/// chain order.
pub fn rds_names(listener: &Listener) -> Vec<String> {
    let chains = listener
        .filter_chains
        .iter()
        .chain(listener.default_filter_chain.as_ref());
    let mut names = Vec::new();
    for filter in chains.flat_map(|chain| &chain.filters) {
        let Some(ConfigType::TypedConfig(config)) = &filter.config_type else {
            continue;
        };
        if !config.type_url.ends_with(".HttpConnectionManager") {
            continue;
        }
        if let Ok(HttpConnectionManager {
            route_specifier: Some(RouteSpecifier::Rds(rds)),
            ..
        }) = HttpConnectionManager::decode(config.value.as_slice())
        {
            names.push(rds.route_config_name);
        }
    }
    names
}
