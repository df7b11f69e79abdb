//! Resources per proxy group: proxies whose selections are equal share one translation per
//! mesh revision, encoded once. Groups live as long as a stream holds their resources, so
//! churn does not grow memory.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::watch;

use crate::{
    translate::{NodeInfo, Resources, Selection, select, translate},
    watch::Published,
};

#[derive(Debug)]
pub struct Cache {
    mesh: watch::Receiver<Arc<Published>>,
    groups: Mutex<HashMap<Selection, Group>>,
    translations: AtomicU64,
}

#[derive(Debug)]
struct Group {
    revision: i64,
    resources: Weak<Resources>,
}

impl Cache {
    pub fn new(mesh: watch::Receiver<Arc<Published>>) -> Arc<Self> {
        Arc::new(Self {
            mesh,
            groups: Mutex::new(HashMap::new()),
            translations: AtomicU64::new(0),
        })
    }

    /// A receiver of mesh snapshots; streams wake on it.
    pub fn mesh(&self) -> watch::Receiver<Arc<Published>> {
        self.mesh.clone()
    }

    /// The resources for `node` in `published`, translated at most once per group and revision.
    pub fn resources(&self, published: &Published, node: &NodeInfo) -> Arc<Resources> {
        let selection = select(&published.mesh, node);
        let revision = published.mesh.revision;
        let mut groups = self.groups.lock().unwrap();
        if let Some(r) = groups
            .get(&selection)
            .filter(|g| g.revision == revision)
            .and_then(|g| g.resources.upgrade())
        {
            return r;
        }
        let resources = Arc::new(translate(&published.mesh, &selection));
        self.translations.fetch_add(1, Ordering::Relaxed);
        for w in &resources.warnings {
            tracing::warn!(revision, warning = %w, "translation");
        }
        groups.retain(|_, g| g.resources.strong_count() > 0);
        groups.insert(
            selection,
            Group {
                revision,
                resources: Arc::downgrade(&resources),
            },
        );
        resources
    }

    /// How many translations ran: for tests and benchmarks proving sharing.
    pub fn translations(&self) -> u64 {
        self.translations.load(Ordering::Relaxed)
    }

    /// Groups currently alive.
    pub fn groups(&self) -> usize {
        let mut groups = self.groups.lock().unwrap();
        groups.retain(|_, g| g.resources.strong_count() > 0);
        groups.len()
    }
}
