//! Prometheus metrics for `/metrics`: what the xDS streams count as they go (pushes, ACKs,
//! NACKs, push latency, snapshot rebuilds) plus gauges computed at scrape time from the proxy
//! status [`Registry`] and the store revision.
//!
//! [`Metrics`] is cheap to clone (one `Arc`); every method takes `&self` and is lock-free but
//! for the label lookup. Type URL labels are bounded: anything that is not an Envoy resource
//! type this server can serve is counted as `other`, so a client cannot grow the label set.

mod store;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, LazyLock},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, prometheus_text},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry as PromRegistry, Unit},
};

use xds_core::TypeUrl;

use crate::{
    model::envoy_type_urls,
    status::{Registry, Variant},
};

pub use store::StoreMetrics;

/// The `Content-Type` of [`Metrics::render`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Push latency buckets, in seconds: 0.5 ms to 5 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Snapshot rebuild buckets, in seconds: 0.1 ms to 10 s.
/// Up to the 5 s warming limit and beyond: an ACK can wait for clusters to warm.
const CONVERGENCE_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

const REBUILD_BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// Every type URL that may appear as a label; others become `other`.
/// The type URLs that get their own label value (a fixed set, made once: labels are then
/// `&'static str`, so counting an event allocates nothing).
static KNOWN_TYPES: LazyLock<BTreeSet<&'static str>> = LazyLock::new(|| {
    TypeUrl::ADS_ORDER
        .iter()
        .map(|t| t.to_string())
        .chain(envoy_type_urls())
        .map(|t| &*Box::leak(t.into_boxed_str()))
        .collect()
});

#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct TypeLabels {
    type_url: &'static str,
    variant: &'static str,
}

impl TypeLabels {
    fn new(type_url: &str, variant: Variant) -> Self {
        let type_url = KNOWN_TYPES.get(type_url).copied().unwrap_or("other");
        Self {
            type_url,
            variant: variant_label(variant),
        }
    }
}

/// SotW or Delta, for series that are not per type.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VariantLabels {
    variant: &'static str,
}

/// Which limit refused something (`crate::xds::limits`); a fixed set of names.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

/// Why a golden-metrics stream was ended (`crate::telemetry::receiver`); a fixed set.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The reasons of [`ReasonLabels`].
const TELEMETRY_REFUSALS: [&str; 4] = ["no_node", "too_large", "too_many", "too_many_proxies"];

fn variant_label(variant: Variant) -> &'static str {
    match variant {
        Variant::Sotw => "sotw",
        Variant::Delta => "delta",
    }
}

/// The server's metrics. Clone it into every stream; all clones count into the same series.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Inner {
    /// Holds the series below (the registry keeps clones sharing the same values).
    registry: PromRegistry,
    pushes: Family<TypeLabels, Counter>,
    acks: Family<TypeLabels, Counter>,
    nacks: Family<TypeLabels, Counter>,
    push_latency: Histogram,
    convergence: Histogram,
    rebuilds: Counter,
    rebuild_duration: Histogram,
    limit_refusals: Family<LimitLabels, Counter>,
    held_back: Gauge,
    telemetry: TelemetryMetrics,
    tap: crate::tap::TapMetrics,
    store: StoreMetrics,
}

/// The golden-metrics receiver's own figures.
#[derive(Default)]
struct TelemetryMetrics {
    streams: Gauge,
    messages: Counter,
    malformed: Counter,
    refusals: Family<ReasonLabels, Counter>,
}

impl TelemetryMetrics {
    fn register(&self, registry: &mut PromRegistry) {
        registry.register(
            "xds_metrics_streams",
            "Open golden-metrics streams (envoy.service.metrics.v3.MetricsService) from proxies",
            self.streams.clone(),
        );
        registry.register(
            "xds_metrics_messages",
            "Stats messages received from proxies (one per proxy per flush interval)",
            self.messages.clone(),
        );
        registry.register(
            "xds_metrics_malformed",
            "Consumed stats dropped because their value was not a count or a histogram",
            self.malformed.clone(),
        );
        for reason in TELEMETRY_REFUSALS {
            let _ = self.refusals.get_or_create(&ReasonLabels { reason });
        }
        registry.register(
            "xds_metrics_streams_refused",
            "Golden-metrics streams ended by the server: no_node (first message without a node id), too_large (a message over 4 MiB), too_many (over 100,000 metrics in a message), too_many_proxies (--xds-max-streams proxies remembered already)",
            self.refusals.clone(),
        );
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = PromRegistry::default();
        let pushes = Family::<TypeLabels, Counter>::default();
        let acks = Family::<TypeLabels, Counter>::default();
        let nacks = Family::<TypeLabels, Counter>::default();
        let push_latency = Histogram::new(LATENCY_BUCKETS);
        let convergence = Histogram::new(CONVERGENCE_BUCKETS);
        let rebuilds = Counter::default();
        let rebuild_duration = Histogram::new(REBUILD_BUCKETS);
        let limit_refusals = Family::<LimitLabels, Counter>::default();
        let held_back = Gauge::default();
        let telemetry = TelemetryMetrics::default();
        telemetry.register(&mut registry);
        let tap = crate::tap::TapMetrics::default();
        tap.register(&mut registry);
        let store = StoreMetrics::new();
        store.register(&mut registry);
        registry.register(
            "xds_held_back_resources",
            "Resource versions a proxy rejected, which its group is not sent (it keeps the last version a proxy of the group accepted); see held_back in GET /api/v1/proxies",
            held_back.clone(),
        );
        for limit in crate::xds::limits::LABELS {
            let _ = limit_refusals.get_or_create(&LimitLabels { limit });
        }
        registry.register(
            "xds_limit_refusals",
            "xDS streams or requests refused by a limit (see --xds-max-*); error_detail_bytes counts NACK messages cut short",
            limit_refusals.clone(),
        );
        // Names are given without `_total` / unit: the encoder appends them.
        registry.register(
            "xds_pushes",
            "xDS responses sent to proxies",
            pushes.clone(),
        );
        registry.register("xds_acks", "xDS responses proxies accepted", acks.clone());
        registry.register("xds_nacks", "xDS responses proxies rejected", nacks.clone());
        registry.register_with_unit(
            "xds_push_latency",
            "Time from publishing a mesh snapshot to a stream sending the response it caused",
            Unit::Seconds,
            push_latency.clone(),
        );
        registry.register_with_unit(
            "xds_convergence",
            "Time from publishing a mesh snapshot to a proxy acknowledging a response it caused, per proxy and type (listener and route updates held while new clusters warm count from the change too)",
            Unit::Seconds,
            convergence.clone(),
        );
        registry.register(
            "xds_snapshot_rebuilds",
            "Mesh snapshots loaded from the store after a change (translation then runs once per proxy group)",
            rebuilds.clone(),
        );
        registry.register_with_unit(
            "xds_snapshot_rebuild_duration",
            "How long loading one mesh snapshot from the store took",
            Unit::Seconds,
            rebuild_duration.clone(),
        );
        // Every served type starts at zero, so the series exist (and `rate()` works) before
        // the first event.
        for t in &TypeUrl::ADS_ORDER {
            for v in [Variant::Sotw, Variant::Delta] {
                let labels = TypeLabels::new(t.as_str(), v);
                for family in [&pushes, &acks, &nacks] {
                    let _ = family.get_or_create(&labels);
                }
            }
        }
        Self {
            inner: Arc::new(Inner {
                registry,
                pushes,
                acks,
                nacks,
                push_latency,
                convergence,
                rebuilds,
                rebuild_duration,
                limit_refusals,
                held_back,
                telemetry,
                tap,
                store,
            }),
        }
    }

    /// The live tap's series, for `crate::tap::Taps`.
    pub fn tap(&self) -> crate::tap::TapMetrics {
        self.inner.tap.clone()
    }

    /// The store's series, for `crate::store::Measured`.
    pub fn store(&self) -> StoreMetrics {
        self.inner.store.clone()
    }

    /// How many resource versions are held back by last-known-good now.
    pub fn set_held_back(&self, n: usize) {
        self.inner
            .held_back
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One response of `type_url` sent on a stream of `variant`.
    pub fn push(&self, type_url: &str, variant: Variant) {
        self.inner
            .pushes
            .get_or_create(&TypeLabels::new(type_url, variant))
            .inc();
    }

    /// The proxy accepted a response of `type_url`.
    pub fn ack(&self, type_url: &str, variant: Variant) {
        self.inner
            .acks
            .get_or_create(&TypeLabels::new(type_url, variant))
            .inc();
    }

    /// The proxy rejected a response of `type_url`.
    pub fn nack(&self, type_url: &str, variant: Variant) {
        self.inner
            .nacks
            .get_or_create(&TypeLabels::new(type_url, variant))
            .inc();
    }

    /// Something was refused by `limit` (a label of `crate::xds::limits::LABELS`).
    pub fn limit_refused(&self, limit: &'static str) {
        self.inner
            .limit_refusals
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// Times `limit` refused something so far.
    pub fn limit_refusals(&self, limit: &'static str) -> u64 {
        self.inner
            .limit_refusals
            .get_or_create(&LimitLabels { limit })
            .get()
    }

    /// A golden-metrics stream opened (`1`) or ended (`-1`).
    pub fn telemetry_stream(&self, delta: i64) {
        self.inner.telemetry.streams.inc_by(delta);
    }

    /// A stats message received, with `malformed` consumed stats dropped from it.
    pub fn telemetry_message(&self, malformed: u64) {
        self.inner.telemetry.messages.inc();
        self.inner.telemetry.malformed.inc_by(malformed);
    }

    /// A golden-metrics stream ended for `reason` (one of `TELEMETRY_REFUSALS`).
    pub fn telemetry_refused(&self, reason: &'static str) {
        self.inner
            .telemetry
            .refusals
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Seconds from the store change to the response being sent.
    pub fn observe_push_latency(&self, seconds: f64) {
        self.inner.push_latency.observe(seconds);
    }

    /// Seconds from a snapshot's publication to a proxy's ACK of a response it caused.
    pub fn observe_convergence(&self, seconds: f64) {
        self.inner.convergence.observe(seconds);
    }

    /// One snapshot rebuild that took `duration_seconds`.
    pub fn rebuild(&self, duration_seconds: f64) {
        self.inner.rebuilds.inc();
        self.inner.rebuild_duration.observe(duration_seconds);
    }

    /// The text exposition: the counters and histograms above, plus
    /// `xds_connected_proxies{type_url,variant}` (streams subscribed to each type, counted now
    /// from `registry`) and `xds_store_revision`.
    pub fn render(&self, registry: &Registry, store_revision: i64) -> String {
        // Scrape-time gauges live in a registry of their own, built per scrape, so concurrent
        // scrapes never see each other's half-filled values.
        let mut now = PromRegistry::default();
        let connected = Family::<TypeLabels, Gauge>::default();
        let mut counts: BTreeMap<TypeLabels, i64> = BTreeMap::new();
        for t in &TypeUrl::ADS_ORDER {
            for v in [Variant::Sotw, Variant::Delta] {
                counts.insert(TypeLabels::new(t.as_str(), v), 0);
            }
        }
        let mut streams = [0i64; 2];
        for stream in registry.list() {
            streams[usize::from(stream.variant == Variant::Delta)] += 1;
            for t in stream.types.keys() {
                *counts
                    .entry(TypeLabels::new(t, stream.variant))
                    .or_default() += 1;
            }
        }
        for (labels, n) in &counts {
            connected.get_or_create(labels).set(*n);
        }
        now.register(
            "xds_connected_proxies",
            "Open xDS streams subscribed to each resource type",
            connected,
        );
        let open = Family::<VariantLabels, Gauge>::default();
        for (variant, n) in [Variant::Sotw, Variant::Delta].into_iter().zip(streams) {
            let variant = variant_label(variant);
            open.get_or_create(&VariantLabels { variant }).set(n);
        }
        now.register(
            "xds_streams",
            "Open xDS streams, whether or not they subscribed to anything yet (a proxy on ADS has one; one on the per-type services has one per type)",
            open,
        );
        let refused = Counter::<u64>::default();
        refused.inc_by(crate::ca::refused_requests());
        now.register(
            "xds_sds_refused_requests",
            "Requests for a workload certificate other than the requesting proxy's own identity (the proxy gets nothing for that name; see crate::ca)",
            refused,
        );
        let handshakes = Family::<ReasonLabels, Counter>::default();
        for (reason, n) in crate::xds::tls::handshake_failures() {
            handshakes.get_or_create(&ReasonLabels { reason }).inc_by(n);
        }
        now.register(
            "xds_tls_handshake_failures",
            "TLS handshakes refused on the xDS port (--xds-tls), by reason: not_tls (a plaintext client), rejected_by_client (it does not trust this server's certificate), client_certificate, timeout, other",
            handshakes,
        );
        let revision = Gauge::<i64>::default();
        revision.set(store_revision);
        now.register(
            "xds_store_revision",
            "The newest mesh revision this replica knows of",
            revision,
        );
        // Live tokio tasks (one per xDS stream, plus connections): a leak shows here first.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let tasks = Gauge::<i64>::default();
            tasks.set(handle.metrics().num_alive_tasks() as i64);
            now.register(
                "xds_server_tokio_alive_tasks",
                "Tasks alive in the server's tokio runtime now",
                tasks,
            );
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.inner.registry);
        let _ = prometheus_text::encode(&mut out, &now);
        out
    }
}

#[cfg(test)]
mod tests {
    use xds_core::type_url;

    use super::*;

    #[test]
    fn counts_and_bounds_labels() {
        let m = Metrics::new();
        m.push(type_url::CLUSTER, Variant::Sotw);
        m.push(type_url::CLUSTER, Variant::Sotw);
        m.nack("type.googleapis.com/made.up.Thing", Variant::Delta);
        m.observe_push_latency(0.002);
        m.rebuild(0.01);
        let text = m.render(&Registry::default(), 7);
        assert!(
            text.contains(&format!(
                "xds_pushes_total{{type_url=\"{}\",variant=\"sotw\"}} 2",
                type_url::CLUSTER
            )),
            "{text}"
        );
        assert!(
            text.contains("xds_nacks_total{type_url=\"other\",variant=\"delta\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("xds_push_latency_seconds_bucket{le=\"0.0025\"} 1"),
            "{text}"
        );
        assert!(text.contains("xds_snapshot_rebuilds_total 1"), "{text}");
        assert!(text.contains("xds_store_revision 7"), "{text}");
        assert!(
            text.contains(&format!(
                "xds_connected_proxies{{type_url=\"{}\",variant=\"delta\"}} 0",
                type_url::ROUTE
            )),
            "{text}"
        );
    }
}
