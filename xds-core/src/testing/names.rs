//! What the test client reads inside resources, as Envoy does: each resource's name (SotW
//! responses carry bare `Any`s), and the names clusters and listeners refer to (the EDS
//! assignments and RDS route configurations Envoy subscribes to next).

use std::collections::BTreeSet;

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::Cluster, endpoint::v3::ClusterLoadAssignment, listener::v3::Listener,
            route::v3::RouteConfiguration,
        },
        extensions::transport_sockets::tls::v3::Secret,
    },
    google::protobuf::Any,
};
use prost::Message;
use prost_reflect::{DynamicMessage, Value};

use crate::{TypeUrl, descriptors, refs};

/// The resource's name; an error (what Envoy would NACK with) when it does not decode as the
/// message its type URL names.
pub(crate) fn resource_name(any: &Any) -> Result<String, String> {
    let bytes = any.value.as_slice();
    let bad = |e: prost::DecodeError| format!("{} does not decode: {e}", any.type_url);
    match TypeUrl::from(any.type_url.as_str()) {
        TypeUrl::Cluster => Cluster::decode(bytes).map(|m| m.name).map_err(bad),
        TypeUrl::Endpoint => ClusterLoadAssignment::decode(bytes)
            .map(|m| m.cluster_name)
            .map_err(bad),
        TypeUrl::Listener => Listener::decode(bytes).map(|m| m.name).map_err(bad),
        TypeUrl::Route => RouteConfiguration::decode(bytes)
            .map(|m| m.name)
            .map_err(bad),
        TypeUrl::Secret => Secret::decode(bytes).map(|m| m.name).map_err(bad),
        TypeUrl::Other(url) => {
            let desc = descriptors::message(&url).ok_or_else(|| format!("unknown type {url}"))?;
            let message = DynamicMessage::decode(desc, bytes).map_err(bad)?;
            match message.get_field_by_name("name").as_deref() {
                Some(Value::String(name)) => Ok(name.clone()),
                _ => Err(format!("{url} has no name field")),
            }
        }
    }
}

/// The assignments EDS clusters wait for: `eds_cluster_config.service_name`, or the cluster's
/// own name. Clusters of other discovery types need none.
pub(crate) fn eds_names<'a>(clusters: impl Iterator<Item = &'a Any>) -> BTreeSet<String> {
    clusters
        .filter_map(|any| Cluster::decode(any.value.as_slice()).ok())
        .filter_map(|c| refs::eds_service(&c))
        .collect()
}

/// The route configurations listeners' HTTP connection managers fetch over RDS.
pub(crate) fn rds_names<'a>(listeners: impl Iterator<Item = &'a Any>) -> BTreeSet<String> {
    listeners
        .filter_map(|any| Listener::decode(any.value.as_slice()).ok())
        .flat_map(|l| refs::rds_names(&l))
        .collect()
}
