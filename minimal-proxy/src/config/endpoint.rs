//! EDS `ClusterLoadAssignment` → [`LoadAssignment`].

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

use super::{LoadAssignment, Rejection};

/// Converts an assignment, refusing what is not implemented (e.g. priorities above 0).
pub fn load_assignment_from_proto(
    cla: &ClusterLoadAssignment,
) -> Result<LoadAssignment, Rejection> {
    Err(Rejection {
        resource: format!("cluster load assignment '{}'", cla.cluster_name),
        field: String::new(),
        reason: "not implemented yet".into(),
    })
}
