//! Store latency for `/metrics`: how long each store operation took and how many failed in the
//! database, per operation and backend. `crate::store::Measured` records them around
//! whichever backend the server runs on, so SQLite and Postgres are measured the same way.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::{Registry as PromRegistry, Unit},
};

/// 0.1 ms (a SQLite read from the page cache) to 10 s (a Postgres pool waiting out its
/// acquire timeout during an outage).
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// Both label values come from fixed sets (the store's operations and backends).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    operation: &'static str,
    backend: &'static str,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The store's series. Cheap to clone; all clones count into the same series.
#[derive(Clone)]
pub struct StoreMetrics {
    latency: Family<StoreLabels, Histogram, fn() -> Histogram>,
    errors: Family<StoreLabels, Counter>,
}

impl StoreMetrics {
    pub(super) fn new() -> Self {
        Self {
            latency: Family::new_with_constructor(histogram),
            errors: Family::default(),
        }
    }

    pub(super) fn register(&self, registry: &mut PromRegistry) {
        registry.register_with_unit(
            "xds_store_operation_duration",
            "How long each store operation took, failed ones included: get, list, put, delete, snapshot (every resource in one transaction: what a mesh rebuild loads), revision",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register(
            "xds_store_errors",
            "Store operations that failed in the database (unreachable, busy, unreadable rows); refusals such as version conflicts or missing references are not counted",
            self.errors.clone(),
        );
    }

    /// Creates every series of `backend` at zero, so they exist (and `rate()` works) before
    /// the first operation.
    pub fn start(&self, backend: &'static str, operations: &[&'static str]) {
        for &operation in operations {
            let labels = StoreLabels { operation, backend };
            let _ = self.latency.get_or_create(&labels);
            let _ = self.errors.get_or_create(&labels);
        }
    }

    /// One `operation` on `backend` took `seconds`; `failed` when the database failed it.
    pub fn observe(
        &self,
        operation: &'static str,
        backend: &'static str,
        seconds: f64,
        failed: bool,
    ) {
        let labels = StoreLabels { operation, backend };
        self.latency.get_or_create(&labels).observe(seconds);
        if failed {
            self.errors.get_or_create(&labels).inc();
        }
    }
}
