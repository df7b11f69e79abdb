//! What the proxy runs: one immutable [`Snapshot`] of active route configurations and warmed
//! clusters, swapped whole (arc-swap) by the xDS client. A request loads the snapshot once and
//! keeps it to the end, so it never sees half of an update.

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwap;

use crate::{config::RouteConfig, stats, tls, upstream::Cluster};

/// Everything a request may look up, at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Active route configurations (RDS), by name.
    pub routes: HashMap<String, Arc<RouteConfig>>,
    /// Active (warmed) clusters, by name.
    pub clusters: HashMap<String, Arc<Cluster>>,
}

/// The shared handle every part of the proxy holds: the current snapshot and the stats.
#[derive(Debug, Clone)]
pub struct Runtime {
    snapshot: Arc<ArcSwap<Snapshot>>,
    pub stats: Arc<stats::Registry>,
    /// The SDS secrets in use: TLS handshakes read them, so they change without a new
    /// snapshot of clusters or listeners.
    pub secrets: tls::Secrets,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime {
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            stats: Arc::new(stats::Registry::default()),
            secrets: tls::Secrets::default(),
        }
    }

    /// The current snapshot; hold it for the whole request.
    pub fn load(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Publishes a new snapshot; requests already running keep the one they loaded.
    pub fn publish(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }
}
