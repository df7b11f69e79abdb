//! The runtime side of the store: a cluster object per active cluster, kept across updates
//! while its config is unchanged (its hosts' health, outlier state and pools survive), its
//! endpoints replaced in place when only the assignment changed; published as one snapshot.
//! Secrets are published beside it, to the handshakes that read them.

use std::{collections::HashMap, sync::Arc};

use super::store::Store;
use crate::{
    config::{ClusterConfig, LoadAssignment, SecretConfig},
    runtime::{Runtime, Snapshot},
    tls::Material,
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
    /// The secrets published, with the version each was prepared from.
    secrets: HashMap<String, (Arc<SecretConfig>, Arc<Material>)>,
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
                    cluster: Cluster::with_secrets(
                        config.clone(),
                        runtime.stats.cluster(&config.name),
                        &runtime.secrets,
                    ),
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
        // Secrets first: a cluster or listener that just warmed on them finds them.
        self.publish_secrets(store, runtime);
        runtime.publish(Snapshot { routes, clusters });
    }
}

impl Live {
    /// Makes the store's secrets current for handshakes, each version prepared once (an
    /// unchanged one keeps its material).
    fn publish_secrets(&mut self, store: &Store, runtime: &Runtime) {
        let mut kept = HashMap::new();
        for (name, entry) in &store.secrets {
            let material = match self.secrets.remove(name) {
                Some((source, m)) if Arc::ptr_eq(&source, &entry.config) => m,
                _ => match Material::new(&entry.config) {
                    Ok(m) => Arc::new(m),
                    Err(e) => {
                        tracing::warn!(secret = %name, error = %e, "secret cannot be used");
                        continue;
                    }
                },
            };
            kept.insert(name.clone(), (entry.config.clone(), material));
        }
        let current = kept.iter().map(|(n, (_, m))| (n.clone(), m.clone()));
        runtime.secrets.publish(current.collect());
        self.secrets = kept;
    }
}
