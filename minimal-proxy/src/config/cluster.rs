//! CDS `Cluster` → [`ClusterConfig`].

use envoy_types::pb::envoy::config::cluster::v3::Cluster;

use super::{ClusterConfig, Rejection};

/// Converts a cluster, refusing any field that would change behaviour and is not implemented.
pub fn cluster_from_proto(cluster: &Cluster) -> Result<ClusterConfig, Rejection> {
    Err(Rejection {
        resource: format!("cluster '{}'", cluster.name),
        field: String::new(),
        reason: "not implemented yet".into(),
    })
}
