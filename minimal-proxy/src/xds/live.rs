//! The runtime side of the store: a cluster object per active cluster, kept across updates
//! while its config is unchanged (its hosts' health, outlier state and pools survive), its
//! endpoints replaced in place when only the assignment changed; published as one snapshot.

use std::{collections::HashMap, sync::Arc};

use super::store::Store;
use crate::{
    config::{ClusterConfig, LoadAssignment},
    runtime::{Runtime, Snapshot},
    upstream::Cluster,
};

/// A cluster running in the runtime, with what it was built from.
#[derive(Debug)]
struct LiveCluster {
    config: Arc<ClusterConfig>,
    cluster: Arc<Cluster>,
    assignment: Option<Arc<LoadAssignment>>,
}

/// The cluster objects currently published.
#[derive(Debug, Default)]
pub struct Live {
    clusters: HashMap<String, LiveCluster>,
}

impl Live {
    /// Rebuilds the runtime snapshot from the store's active clusters and routes; a cluster
    /// gone from the store is dropped here (which stops its health checks).
    pub fn publish(&mut self, store: &Store, runtime: &Runtime) {
        let mut live = HashMap::new();
        let mut clusters = HashMap::new();
        for (config, assignment) in store.active_clusters() {
            let mut entry = match self.clusters.remove(&config.name) {
                Some(l) if Arc::ptr_eq(&l.config, config) => l,
                _ => LiveCluster {
                    config: config.clone(),
                    cluster: Cluster::new(config.clone(), runtime.stats.cluster(&config.name)),
                    assignment: None,
                },
            };
            let same = match (&entry.assignment, assignment) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same && let Some(a) = assignment {
                entry.cluster.set_assignment(a);
                entry.assignment = Some(a.clone());
            }
            clusters.insert(config.name.clone(), entry.cluster.clone());
            live.insert(config.name.clone(), entry);
        }
        let routes = store
            .routes
            .iter()
            .map(|(name, e)| (name.clone(), e.config.clone()))
            .collect();
        self.clusters = live;
        runtime.publish(Snapshot { routes, clusters });
    }
}
