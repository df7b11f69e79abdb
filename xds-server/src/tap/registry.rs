//! The open taps: opened by the SSE handler, fed by the access-log receiver, closed when
//! their [`Tap`] handle drops (the client went away). Every open and close publishes a new
//! [`Plan`] at once, which the mesh forwarder (`attach`) hands to the xDS streams.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Instant,
};

use tokio::sync::{mpsc, watch};

use super::{Filter, Plan, TapConfig, TapEvent, TapMetrics, credential::TapKey, limiter::Limiter};
use crate::watch::Published;

/// Events queued for one tap's client; beyond, events are dropped (and counted).
const QUEUE: usize = 256;

/// The registry of open taps; a cheap `Clone` handle.
#[derive(Debug, Clone)]
pub struct Taps {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: TapConfig,
    state: Mutex<State>,
    /// How many taps are open, read without the lock: with none, entries are not even decoded.
    open: AtomicUsize,
    plan: watch::Sender<Arc<Plan>>,
    metrics: TapMetrics,
    /// With proxy tokens required: what tapped proxies' access-log credentials are made with.
    key: Option<TapKey>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    taps: BTreeMap<u64, Entry>,
    /// Set at shutdown: every tap ended, none opens.
    closed: bool,
}

/// One open tap, as the receiver feeds it.
#[derive(Debug)]
struct Entry {
    filter: Filter,
    limiter: Limiter,
    events: mpsc::Sender<TapEvent>,
    dropped: Arc<AtomicU64>,
}

/// Why a tap did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{max} taps are already open (--tap-max-open): close one (end its stream) and try again"
    )]
    Full { max: usize },
    #[error("the server is shutting down: no new taps")]
    Closed,
}

/// An open tap: its events, and what was dropped. Dropping it closes the tap.
#[derive(Debug)]
pub struct Tap {
    id: u64,
    filter: Filter,
    events: mpsc::Receiver<TapEvent>,
    dropped: Arc<AtomicU64>,
    shared: Arc<Shared>,
}

impl Taps {
    pub fn new(config: TapConfig) -> Self {
        Self::with_metrics(config, TapMetrics::default())
    }

    /// Taps counting into `metrics` (the server's `xds_tap_*` series).
    pub fn with_metrics(config: TapConfig, metrics: TapMetrics) -> Self {
        let (plan, _) = watch::channel(Arc::new(Plan::default()));
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::default(),
                open: AtomicUsize::new(0),
                plan,
                metrics,
                key: None,
            }),
        }
    }

    /// Taps whose proxies authenticate their access-log streams (the xDS port requires proxy
    /// tokens): each tapped proxy is pushed a credential for its node (see `credential.rs`).
    #[must_use]
    pub fn requiring_credentials(mut self) -> Self {
        let shared = Arc::get_mut(&mut self.shared).expect("called before the taps are shared");
        shared.key = Some(TapKey::generate());
        self
    }

    /// Whether `credential` authenticates an access-log stream of `node_id` in `cluster`.
    pub fn verify(&self, credential: &str, node_id: &str, cluster: &str) -> bool {
        self.shared
            .key
            .as_ref()
            .is_some_and(|k| k.verify(credential, node_id, cluster))
    }

    /// The series the access-log receiver counts its streams in.
    pub fn metrics(&self) -> &TapMetrics {
        &self.shared.metrics
    }

    pub fn config(&self) -> &TapConfig {
        &self.shared.config
    }

    /// Opens a tap with `filter`; refused beyond `--tap-max-open`.
    pub fn open(&self, filter: Filter) -> Result<Tap, OpenError> {
        let mut state = self.shared.state.lock().unwrap();
        if state.closed {
            return Err(OpenError::Closed);
        }
        let max = self.shared.config.tap_max_open;
        if state.taps.len() >= max {
            self.shared.metrics.refused.inc();
            return Err(OpenError::Full { max });
        }
        state.next_id += 1;
        let id = state.next_id;
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        state.taps.insert(
            id,
            Entry {
                filter: filter.clone(),
                limiter: Limiter::new(self.shared.config.tap_max_rate, Instant::now()),
                events: tx,
                dropped: dropped.clone(),
            },
        );
        self.shared.publish(&state);
        tracing::info!(tap = id, ?filter, open = state.taps.len(), "tap opened");
        Ok(Tap {
            id,
            filter,
            events: rx,
            dropped,
            shared: self.shared.clone(),
        })
    }

    /// Whether any tap is open (else access-log entries are dropped without being
    /// converted or matched).
    pub fn watched(&self) -> bool {
        self.shared.open.load(Ordering::Relaxed) > 0
    }

    /// How many taps are open.
    pub fn open_count(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Hands each event to every open tap it matches, within each tap's rate; what a tap's
    /// rate or queue refuses is counted as dropped.
    pub fn deliver(&self, events: impl IntoIterator<Item = TapEvent>) {
        let now = Instant::now();
        let mut state = self.shared.state.lock().unwrap();
        for event in events {
            for tap in state.taps.values_mut() {
                if !tap.filter.matches(&event) {
                    continue;
                }
                if tap.limiter.take(now) && tap.events.try_send(event.clone()).is_ok() {
                    self.shared.metrics.events.inc();
                } else {
                    tap.dropped.fetch_add(1, Ordering::Relaxed);
                    self.shared.metrics.dropped.inc();
                }
            }
        }
    }

    /// The current plan, and every next one.
    pub fn plan(&self) -> watch::Receiver<Arc<Plan>> {
        self.shared.plan.subscribe()
    }

    /// Ends every tap (their streams end) and refuses new ones: for shutdown, so open SSE
    /// streams do not hold the admin server open.
    pub fn close_all(&self) {
        let mut state = self.shared.state.lock().unwrap();
        state.closed = true;
        state.taps.clear();
        self.shared.publish(&state);
    }

    /// Mesh snapshots with the current plan in them: a new snapshot whenever either moves.
    /// Ends (and with it every xDS stream) when `mesh` ends.
    pub fn attach(
        &self,
        mut mesh: watch::Receiver<Arc<Published>>,
    ) -> watch::Receiver<Arc<Published>> {
        let mut plan = self.plan();
        let first = Published {
            taps: plan.borrow_and_update().clone(),
            ..(**mesh.borrow_and_update()).clone()
        };
        let (tx, rx) = watch::channel(Arc::new(first));
        // Holds the registry, so the plan's sender lives as long as the forwarder.
        let taps = self.clone();
        tokio::spawn(async move {
            let _taps = taps;
            loop {
                tokio::select! {
                    changed = mesh.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let next = mesh.borrow_and_update().clone();
                        let taps = plan.borrow().clone();
                        tx.send_replace(Arc::new(Published { taps, ..(*next).clone() }));
                    }
                    Ok(()) = plan.changed() => {
                        let taps = plan.borrow_and_update().clone();
                        let mesh = tx.borrow().mesh.clone();
                        tx.send_replace(Arc::new(Published { mesh, at: Instant::now(), taps, identities: Arc::default() }));
                    }
                    () = tx.closed() => return,
                }
            }
        });
        rx
    }
}

impl Shared {
    /// Publishes the plan of `state` (called under its lock, so plans go out in order).
    fn publish(&self, state: &State) {
        let filters = state.taps.values().map(|t| t.filter.clone()).collect();
        self.open.store(state.taps.len(), Ordering::Relaxed);
        self.metrics
            .open
            .set(i64::try_from(state.taps.len()).unwrap_or(i64::MAX));
        self.plan
            .send_replace(Arc::new(Plan::with_key(filters, self.key.clone())));
    }
}

impl Tap {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The next event; `None` once the tap was ended by the server (shutdown).
    pub async fn next(&mut self) -> Option<TapEvent> {
        self.events.recv().await
    }

    /// Events dropped since the tap opened (over its rate, or its client too slow).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock().unwrap();
        if state.taps.remove(&self.id).is_some() {
            self.shared.publish(&state);
            tracing::info!(tap = self.id, open = state.taps.len(), "tap closed");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Opening, the cap, closing by drop, delivery by filter and rate, and the forwarder.

    use std::time::Duration;

    use super::*;
    use crate::model::Mesh;

    fn taps(max_open: usize, rate: u32) -> Taps {
        Taps::new(TapConfig {
            tap_max_open: max_open,
            tap_max_rate: rate,
        })
    }

    fn filter(query: &[(&str, &str)]) -> Filter {
        Filter::parse(
            query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn event(path: &str) -> TapEvent {
        TapEvent {
            time: String::new(),
            node_id: "n".into(),
            method: "GET".into(),
            authority: String::new(),
            path: path.into(),
            status: Some(200),
            duration_ms: None,
            upstream_host: None,
            response_flags: Vec::new(),
            route: None,
            service: None,
        }
    }

    #[test]
    fn the_cap_refuses_clearly_and_a_dropped_tap_frees_its_slot() {
        let taps = taps(2, 10);
        let plan = taps.plan();
        let a = taps.open(filter(&[])).unwrap();
        let _b = taps.open(filter(&[("path_prefix", "/b")])).unwrap();
        assert_eq!(plan.borrow().filters().len(), 2);
        let e = taps.open(filter(&[])).unwrap_err();
        assert_eq!(e, OpenError::Full { max: 2 });
        assert!(e.to_string().contains("--tap-max-open"));
        drop(a);
        assert_eq!(taps.open_count(), 1);
        assert_eq!(plan.borrow().filters(), [filter(&[("path_prefix", "/b")])]);
        assert!(taps.open(filter(&[])).is_ok());
    }

    #[tokio::test]
    async fn events_reach_the_taps_they_match_within_the_rate() {
        let taps = taps(4, 3);
        assert!(!taps.watched());
        let mut api = taps.open(filter(&[("path_prefix", "/api")])).unwrap();
        let mut all = taps.open(filter(&[])).unwrap();
        assert!(taps.watched());
        taps.deliver((0..5).map(|i| event(&format!("/api/{i}"))));
        taps.deliver([event("/web")]);
        for i in 0..3 {
            assert_eq!(api.next().await.unwrap().path, format!("/api/{i}"));
            assert_eq!(all.next().await.unwrap().path, format!("/api/{i}"));
        }
        assert_eq!(api.dropped(), 2, "over the rate of 3/s");
        assert_eq!(all.dropped(), 3, "two over the rate, and /web too");
        assert!(api.events.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_slow_client_loses_events_counted_not_memory() {
        let taps = taps(1, 100_000);
        let mut tap = taps.open(filter(&[])).unwrap();
        taps.deliver((0..QUEUE + 10).map(|_| event("/")));
        assert_eq!(tap.dropped(), 10);
        assert!(tap.next().await.is_some());
    }

    #[tokio::test]
    async fn closing_all_ends_the_streams_and_refuses_new_taps() {
        let taps = taps(4, 10);
        let mut tap = taps.open(filter(&[])).unwrap();
        taps.close_all();
        assert!(tap.next().await.is_none());
        assert_eq!(taps.open(filter(&[])).unwrap_err(), OpenError::Closed);
        assert!(!taps.watched());
    }

    #[tokio::test]
    async fn the_forwarder_republishes_the_mesh_on_each_tap_change() {
        let taps = taps(4, 10);
        let mesh = Arc::new(Mesh {
            revision: 7,
            ..Mesh::default()
        });
        let (tx, rx) = watch::channel(Arc::new(Published {
            mesh: mesh.clone(),
            at: Instant::now(),
            taps: Arc::default(),
            identities: Arc::default(),
        }));
        let mut out = taps.attach(rx);
        assert!(out.borrow_and_update().taps.is_empty());
        let tap = taps.open(filter(&[])).unwrap();
        tokio::time::timeout(Duration::from_secs(5), out.changed())
            .await
            .unwrap()
            .unwrap();
        let published = out.borrow_and_update().clone();
        assert!(!published.taps.is_empty());
        assert!(
            Arc::ptr_eq(&published.mesh, &mesh),
            "same mesh, same revision"
        );
        drop(tap);
        tokio::time::timeout(Duration::from_secs(5), out.changed())
            .await
            .unwrap()
            .unwrap();
        assert!(out.borrow_and_update().taps.is_empty());
        // The mesh ending ends the forwarded watch (and with it the xDS streams).
        drop(tx);
        let ended = tokio::time::timeout(Duration::from_secs(5), out.changed()).await;
        assert!(ended.unwrap().is_err());
    }
}
