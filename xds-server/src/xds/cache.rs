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

use tokio::sync::{OnceCell, watch};

use super::verdicts::Verdicts;
use crate::{
    translate::{Delivery, NodeInfo, Resources, Selection, Source, select, translate},
    watch::Published,
};

#[derive(Debug)]
pub struct Cache {
    mesh: watch::Receiver<Arc<Published>>,
    groups: Mutex<HashMap<Selection, Group>>,
    translations: AtomicU64,
    verdicts: Verdicts,
}

/// One group at one revision. The map lock is held only to find or make the slot; the
/// translation runs in the slot on a blocking thread, so groups translate in parallel, lookups
/// of finished groups never wait behind another group's translation, and the streams of a group
/// waiting for its translation wait as tasks, not as blocked tokio workers.
#[derive(Debug)]
struct Group {
    revision: i64,
    slot: Arc<OnceCell<Weak<Resources>>>,
}

impl Group {
    /// Still useful: being translated right now, or held by some stream.
    fn live(&self) -> bool {
        self.slot.get().is_none_or(|w| w.strong_count() > 0)
    }
}

impl Cache {
    pub fn new(mesh: watch::Receiver<Arc<Published>>) -> Arc<Self> {
        Arc::new(Self {
            mesh,
            groups: Mutex::new(HashMap::new()),
            translations: AtomicU64::new(0),
            verdicts: Verdicts::default(),
        })
    }

    /// A receiver of mesh snapshots; streams wake on it.
    pub fn mesh(&self) -> watch::Receiver<Arc<Published>> {
        self.mesh.clone()
    }

    /// What each group accepted and rejected (last-known-good).
    pub fn verdicts(&self) -> &Verdicts {
        &self.verdicts
    }

    /// The resources for `node` in `published`, translated at most once per group and
    /// revision, with what its group rejected held back.
    pub async fn resources(
        &self,
        published: &Arc<Published>,
        node: &NodeInfo,
        delivery: &Delivery,
    ) -> Arc<Resources> {
        let translation = self.translation(published, node, delivery).await;
        self.verdicts.apply(translation)
    }

    async fn translation(
        &self,
        published: &Arc<Published>,
        node: &NodeInfo,
        delivery: &Delivery,
    ) -> Arc<Resources> {
        let mut selection = Selection {
            delivery: delivery.clone(),
            ..select(&published.mesh, node)
        };
        selection.access_logs =
            published
                .taps
                .access_logs(&published.mesh, node, &selection.listeners);
        selection.secrets = published.identities.select(node);
        let revision = published.mesh.revision;
        let slot = {
            let mut groups = self.groups.lock().unwrap();
            match groups.get(&selection) {
                Some(g) if g.revision == revision && g.live() => Some(g.slot.clone()),
                // A stream still catching up on an older revision must not evict the newer
                // entry: it gets a translation of its own, uncached.
                Some(g) if g.revision > revision && g.live() => None,
                _ => {
                    if groups.len() >= 64 && groups.len().is_power_of_two() {
                        groups.retain(|_, g| g.live());
                        self.verdicts
                            .retain(|d| groups.keys().any(|s| s.delivery == *d));
                    }
                    let slot = Arc::new(OnceCell::new());
                    let group = Group {
                        revision,
                        slot: slot.clone(),
                    };
                    groups.insert(selection.clone(), group);
                    Some(slot)
                }
            }
        };
        let Some(slot) = slot else {
            return self.translate(published, &selection).await;
        };
        let mut made = None;
        let weak = slot
            .get_or_init(|| async {
                let resources = self.translate(published, &selection).await;
                let weak = Arc::downgrade(&resources);
                made = Some(resources);
                weak
            })
            .await;
        // Whoever translated holds the only strong reference until it returns; the others
        // share it, unless every holder already let go (then translate again, uncached).
        match made.or_else(|| weak.upgrade()) {
            Some(resources) => resources,
            None => self.translate(published, &selection).await,
        }
    }

    /// Translates on a blocking thread: a large mesh takes milliseconds, which a tokio worker
    /// serving thousands of streams must not spend.
    async fn translate(&self, published: &Arc<Published>, selection: &Selection) -> Arc<Resources> {
        let (published, selection) = (published.clone(), selection.clone());
        let run = move || {
            let mut resources = translate(&published.mesh, &selection);
            resources.group = selection;
            resources.source = Source(Some(published.mesh.clone()));
            for w in &resources.warnings {
                tracing::warn!(revision = published.mesh.revision, warning = %w, "translation");
            }
            Arc::new(resources)
        };
        self.translations.fetch_add(1, Ordering::Relaxed);
        match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::spawn_blocking(run)
                .await
                .expect("translation does not panic"),
            Err(_) => run(),
        }
    }

    /// How many translations ran: for tests and benchmarks proving sharing.
    pub fn translations(&self) -> u64 {
        self.translations.load(Ordering::Relaxed)
    }

    /// Groups currently alive.
    pub fn groups(&self) -> usize {
        let mut groups = self.groups.lock().unwrap();
        groups.retain(|_, g| g.live());
        groups.len()
    }
}

#[cfg(test)]
mod tests {
    //! Sharing per group: equal selections share one translation, a selector that picks one
    //! node makes its own group, groups end with their last holder, and each new revision is
    //! translated once per live group.

    use std::{collections::BTreeMap, time::Instant};

    use serde_json::json;
    use xds_core::type_url;

    use super::*;
    use crate::model::Mesh;

    // === helpers ===

    /// A mesh at `revision`: a service and route, the listener `shared` (every node, on
    /// `shared_port`) and the listener `edge` (only the node `edge-1`).
    fn published(revision: i64, shared_port: u16) -> Arc<Published> {
        fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
            serde_json::from_value(v).unwrap()
        }
        let listener = |port: u16, selector: serde_json::Value| {
            parse(
                json!({ "address": "127.0.0.1", "port": port, "protocol": "http",
                          "routes": ["web"], "selector": selector }),
            )
        };
        let mesh = Mesh {
            revision,
            services: BTreeMap::from([("web".into(), parse(json!({ "protocol": "http" })))]),
            routes: BTreeMap::from([(
                "web".into(),
                parse(json!({ "hosts": ["*"],
                              "rules": [{ "destinations": [{ "service": "web" }] }] })),
            )]),
            listeners: BTreeMap::from([
                ("shared".into(), listener(shared_port, json!({}))),
                (
                    "edge".into(),
                    listener(10001, json!({ "node_id": "edge-1" })),
                ),
            ]),
            ..Mesh::default()
        };
        Arc::new(Published {
            mesh: Arc::new(mesh),
            at: Instant::now(),
            taps: Arc::default(),
            identities: Arc::default(),
        })
    }

    fn node(id: &str, cluster: &str) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            cluster: cluster.into(),
            metadata: BTreeMap::new(),
        }
    }

    /// A cache whose mesh watch starts at `first` (the sender is dropped: tests hand each
    /// snapshot to `resources` themselves).
    fn cache(first: &Arc<Published>) -> Arc<Cache> {
        let (_tx, rx) = watch::channel(first.clone());
        Cache::new(rx)
    }

    fn listeners(r: &Resources) -> Vec<&str> {
        r.of_type(type_url::LISTENER)
            .map(|l| l.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    // === sharing ===

    #[tokio::test]
    async fn equal_selections_share_one_translation() {
        let rev1 = published(1, 10000);
        let cache = cache(&rev1);
        let a = cache
            .resources(&rev1, &node("a", "mesh"), &Delivery::Ads)
            .await;
        let b = cache
            .resources(&rev1, &node("b", "other-cluster"), &Delivery::Ads)
            .await;
        assert!(Arc::ptr_eq(&a, &b), "same selection, same computed set");
        assert_eq!(cache.translations(), 1);
        assert_eq!(cache.groups(), 1);
        assert_eq!(listeners(&a), ["shared"]);
        // Asking again (a reconnect) translates nothing.
        let again = cache
            .resources(&rev1, &node("a", "mesh"), &Delivery::Ads)
            .await;
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(cache.translations(), 1);
    }

    #[tokio::test]
    async fn a_node_id_selector_makes_its_own_group() {
        let rev1 = published(1, 10000);
        let cache = cache(&rev1);
        let plain = cache
            .resources(&rev1, &node("a", "mesh"), &Delivery::Ads)
            .await;
        let edge = cache
            .resources(&rev1, &node("edge-1", "mesh"), &Delivery::Ads)
            .await;
        assert!(!Arc::ptr_eq(&plain, &edge));
        assert_eq!(listeners(&edge), ["edge", "shared"]);
        assert_eq!(cache.translations(), 2);
        assert_eq!(cache.groups(), 2);
        // A second proxy with the same node id joins that group.
        let edge_again = cache
            .resources(&rev1, &node("edge-1", "elsewhere"), &Delivery::Ads)
            .await;
        assert!(Arc::ptr_eq(&edge, &edge_again));
        assert_eq!(cache.translations(), 2);
    }

    // === lifetime ===

    #[tokio::test]
    async fn groups_end_when_their_last_holder_drops() {
        let rev1 = published(1, 10000);
        let cache = cache(&rev1);
        let a = cache
            .resources(&rev1, &node("a", "mesh"), &Delivery::Ads)
            .await;
        let b = cache
            .resources(&rev1, &node("b", "mesh"), &Delivery::Ads)
            .await;
        let edge = cache
            .resources(&rev1, &node("edge-1", "mesh"), &Delivery::Ads)
            .await;
        assert_eq!(cache.groups(), 2);
        drop(a);
        assert_eq!(cache.groups(), 2, "b still holds the shared group");
        drop(b);
        assert_eq!(cache.groups(), 1);
        drop(edge);
        assert_eq!(cache.groups(), 0);
        // A proxy arriving later gets a fresh translation, not a dangling one.
        let c = cache
            .resources(&rev1, &node("c", "mesh"), &Delivery::Ads)
            .await;
        assert_eq!(listeners(&c), ["shared"]);
        assert_eq!(cache.translations(), 3);
        assert_eq!(cache.groups(), 1);
    }

    // === revisions ===

    #[tokio::test]
    async fn a_new_revision_is_translated_once_per_live_group() {
        let rev1 = published(1, 10000);
        let cache = cache(&rev1);
        let nodes = [node("a", "mesh"), node("b", "mesh"), node("edge-1", "mesh")];
        let mut old = Vec::new();
        for n in &nodes {
            old.push(cache.resources(&rev1, n, &Delivery::Ads).await);
        }
        assert_eq!(cache.translations(), 2);

        let rev2 = published(2, 10002);
        let mut new = Vec::new();
        for n in &nodes {
            new.push(cache.resources(&rev2, n, &Delivery::Ads).await);
        }
        assert_eq!(cache.translations(), 4, "one re-translation per live group");
        assert!(Arc::ptr_eq(&new[0], &new[1]));
        assert!(!Arc::ptr_eq(&new[0], &new[2]));
        assert!(!Arc::ptr_eq(&old[0], &new[0]), "a new revision, a new set");
        assert_ne!(
            old[0].of_type(type_url::LISTENER).unwrap()["shared"].version,
            new[0].of_type(type_url::LISTENER).unwrap()["shared"].version,
            "the new set holds the changed listener"
        );
        // Streams still holding the old set keep it intact; the groups are the new ones.
        drop(old);
        assert_eq!(cache.groups(), 2);
        // Every stream of a group already moved: asking again translates nothing.
        for n in &nodes {
            cache.resources(&rev2, n, &Delivery::Ads).await;
        }
        assert_eq!(cache.translations(), 4);
    }

    /// A stream that read the mesh just before a newer revision was published asks for the
    /// older one after another stream of its group translated the newer one (the window
    /// between `borrow_and_update` and `resources` in `stream::serve`). The group must keep
    /// the newer set: otherwise that revision is translated twice for one group and its
    /// proxies hold two copies.
    #[tokio::test]
    async fn a_late_request_for_an_older_revision_keeps_the_newer_group() {
        let rev1 = published(1, 10000);
        let rev2 = published(2, 10002);
        let cache = cache(&rev2);
        let a = cache
            .resources(&rev2, &node("a", "mesh"), &Delivery::Ads)
            .await;
        let late = cache
            .resources(&rev1, &node("b", "mesh"), &Delivery::Ads)
            .await;
        assert_eq!(listeners(&late), ["shared"]);
        let b = cache
            .resources(&rev2, &node("b", "mesh"), &Delivery::Ads)
            .await;
        assert!(Arc::ptr_eq(&a, &b), "one set per group and revision");
        assert_eq!(cache.translations(), 2, "revision 2 translated once");
    }
}
