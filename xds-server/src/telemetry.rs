//! Golden metrics: what every proxy's traffic looked like over the last minute and the last
//! 10 s (requests/s, success rate, latency percentiles) per destination service, per mesh
//! route and per calling proxy, from the stats the proxies push to the server's
//! `envoy.service.metrics.v3.MetricsService` (Envoy's metrics-service stats sink, which
//! `GET /api/v1/bootstrap` configures; minimal-proxy sends the same).
//!
//! - [`index`]: which stat names are consumed, for the current mesh (exact lookup; everything
//!   else is dropped on arrival).
//! - [`histogram`], [`ring`]: latency buckets on Envoy's default bounds; a minute of samples,
//!   one slot per second with traffic.
//! - [`aggregator`]: the pure state machine: reports in, figures out.
//! - [`view`]: the figures as the REST API serves them.
//! - [`receiver`]: the gRPC service (the only I/O), with its limits.
//!
//! [`Telemetry`] is the cheap handle the gRPC service and the REST API share.

pub mod aggregator;
pub mod histogram;
pub mod index;
pub mod receiver;
pub mod ring;
pub mod view;

#[cfg(test)]
mod tests;

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use tokio::sync::watch;

use crate::{metrics::Metrics, model::Mesh, watch::Published};

use aggregator::{Aggregator, Reading, Report};
use index::Index;
use view::{AllStats, ServiceStats, Window};

pub use receiver::Receiver;

/// The shared golden-metrics state. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

struct Inner {
    /// The mesh: which services and routes exist. `None`: none do (a server without a mesh
    /// watch, in tests).
    mesh: Option<watch::Receiver<Arc<Published>>>,
    /// Seconds count from here (monotonic).
    start: Instant,
    metrics: Metrics,
    /// The most proxies remembered at once (`--xds-max-streams`): a client inventing node ids
    /// cannot grow the state past it.
    max_proxies: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The index and the mesh it was built from (rebuilt when another is published).
    index: Arc<Index>,
    indexed: Option<Arc<Mesh>>,
    aggregator: Aggregator,
    /// The second `expire` last ran in.
    expired_at: u64,
}

impl Telemetry {
    /// Figures about the services and routes of the meshes `mesh` publishes, from at most
    /// `max_proxies` proxies at once.
    pub fn new(
        mesh: watch::Receiver<Arc<Published>>,
        metrics: Metrics,
        max_proxies: usize,
    ) -> Telemetry {
        Self::with(Some(mesh), metrics, max_proxies)
    }

    /// Knows no service: every report is dropped (for an API without a mesh watch).
    pub fn detached() -> Telemetry {
        Self::with(None, Metrics::new(), 0)
    }

    fn with(
        mesh: Option<watch::Receiver<Arc<Published>>>,
        metrics: Metrics,
        max_proxies: usize,
    ) -> Telemetry {
        Telemetry {
            inner: Arc::new(Inner {
                mesh,
                start: Instant::now(),
                metrics,
                max_proxies,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Whole seconds since this handle was made.
    fn now(&self) -> u64 {
        self.inner.start.elapsed().as_secs()
    }

    /// The mesh watch, for streams to end with it (`None`: never ends).
    fn mesh(&self) -> Option<watch::Receiver<Arc<Published>>> {
        self.inner.mesh.clone()
    }

    /// The index of the current mesh, rebuilt when a new mesh was published.
    fn index(&self) -> Arc<Index> {
        let mesh = self.inner.mesh.as_ref().map(|m| m.borrow().mesh.clone());
        let mut state = self.inner.state.lock().unwrap();
        let current = match (&mesh, &state.indexed) {
            (Some(new), Some(old)) => Arc::ptr_eq(new, old),
            (None, _) => true,
            (Some(_), None) => false,
        };
        if !current && let Some(mesh) = mesh {
            state.index = Arc::new(Index::new(&mesh));
            state.indexed = Some(mesh);
        }
        state.index.clone()
    }

    /// A metrics stream of `node` opened; it counts as open until the guard drops. `None`
    /// when the most proxies are remembered already (see [`Telemetry::new`]).
    pub fn open(&self, node: &str) -> Option<StreamGuard> {
        let index = self.index();
        let now = self.now();
        let mut state = self.inner.state.lock().unwrap();
        state.aggregator.expire(&index, now);
        if !state.aggregator.open(node, now, self.inner.max_proxies) {
            return None;
        }
        drop(state);
        self.inner.metrics.telemetry_stream(1);
        Some(StreamGuard {
            telemetry: self.clone(),
            node: node.to_string(),
        })
    }

    /// The most proxies remembered at once.
    pub fn max_proxies(&self) -> usize {
        self.inner.max_proxies
    }

    /// One message's readings from `node`: read without the lock, then added in one short
    /// write.
    pub fn record<'a>(&self, node: &str, readings: impl IntoIterator<Item = Reading<'a>>) {
        let index = self.index();
        let report = Report::read(&index, readings);
        self.inner.metrics.telemetry_message(report.malformed);
        let now = self.now();
        let mut state = self.inner.state.lock().unwrap();
        state.aggregator.record(node, &report, &index, now);
        if state.expired_at != now {
            state.expired_at = now;
            state.aggregator.expire(&index, now);
        }
    }

    /// `service`'s figures over `window`; `None` when the mesh has no such service.
    pub fn service(&self, service: &str, window: Window) -> Option<ServiceStats> {
        let index = self.index();
        let now = self.now();
        let mut state = self.inner.state.lock().unwrap();
        state.aggregator.expire(&index, now);
        state.aggregator.service(&index, service, window, now)
    }

    /// Every service's figures over `window`, in name order.
    pub fn all(&self, window: Window) -> AllStats {
        let index = self.index();
        let now = self.now();
        let mut state = self.inner.state.lock().unwrap();
        state.aggregator.expire(&index, now);
        let items = index
            .services()
            .filter_map(|s| state.aggregator.service(&index, s, window, now))
            .collect();
        AllStats {
            window: window.as_str(),
            window_seconds: window.seconds(),
            items,
        }
    }

    /// Whether the current mesh has `service`.
    pub fn has_service(&self, service: &str) -> bool {
        self.index().has_service(service)
    }
}

/// Closes a stream in the aggregator when dropped.
pub struct StreamGuard {
    telemetry: Telemetry,
    node: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let now = self.telemetry.now();
        let inner = &self.telemetry.inner;
        inner
            .state
            .lock()
            .unwrap()
            .aggregator
            .close(&self.node, now);
        inner.metrics.telemetry_stream(-1);
    }
}
