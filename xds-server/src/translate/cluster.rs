//! Services → EDS `Cluster`s.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;

use crate::model::Service;

pub(super) fn cluster(
    name: &str,
    _service: &Service,
    _subset_keys: &BTreeSet<Vec<String>>,
) -> Cluster {
    Cluster {
        name: name.to_string(),
        ..Cluster::default()
    }
}
