//! Endpoints → `ClusterLoadAssignment`s.

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

use crate::model::Endpoints;

pub(super) fn load_assignment(
    service: &str,
    _endpoints: Option<&Endpoints>,
) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: service.to_string(),
        ..ClusterLoadAssignment::default()
    }
}
