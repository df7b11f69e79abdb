//! The proxy's statistics, kept in plain atomics on the objects that count them (no lookup on
//! the request path) and registered by name so they outlive config changes, as Envoy's do.
//! Rendered by the admin API as Prometheus text with Envoy's metric names and labels
//! (`envoy_cluster_upstream_rq_total{envoy_cluster_name="web"}`), and as Envoy's
//! `/stats?format=json`.

mod rbac;
mod render;
mod sample;
#[cfg(test)]
mod tests;

pub use rbac::{RbacScope, RbacStats};
pub use sample::{Sample, SampleValue};

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

/// The gauge's top bit: it has been set, increased or decreased at least once (Envoy's
/// "used", which decides whether a stats sink sends it).
const USED: u64 = 1 << 63;

impl Gauge {
    pub fn inc(&self) {
        // The bit is set once; later increments pay nothing more.
        if self.0.fetch_add(1, Ordering::Relaxed) & USED == 0 {
            self.0.fetch_or(USED, Ordering::Relaxed);
        }
    }
    pub fn dec(&self) {
        // Saturating: a gauge never wraps below zero.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(((v & !USED).saturating_sub(1)) | USED)
            });
    }
    pub fn set(&self, v: u64) {
        self.0.store((v & !USED) | USED, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed) & !USED
    }
    /// Whether the gauge has ever been changed.
    pub fn used(&self) -> bool {
        self.0.load(Ordering::Relaxed) != 0
    }
}

/// Envoy's histogram buckets (milliseconds), so `histogram_quantile` dashboards built for
/// Envoy read ours the same way.
pub const BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// A latency histogram in milliseconds with [`BUCKETS_MS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// One count per bucket (not cumulative), then the overflow bucket.
    buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    /// Sum of observations in microseconds.
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: std::time::Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        let i = BUCKETS_MS.partition_point(|b| *b < ms);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
    /// Cumulative counts per bucket bound, the sum in milliseconds, and the count.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut acc = 0;
        let cumulative = BUCKETS_MS
            .iter()
            .enumerate()
            .map(|(i, b)| {
                acc += self.buckets[i].load(Ordering::Relaxed);
                (*b, acc)
            })
            .collect();
        let sum_ms = self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0;
        (cumulative, sum_ms, self.count.load(Ordering::Relaxed))
    }
}

/// Per-status-code counters for 100..=599 in plain atomics (no lock per response).
#[derive(Debug)]
pub struct CodeCounters(Box<[AtomicU64]>);

impl Default for CodeCounters {
    fn default() -> Self {
        CodeCounters((100..600).map(|_| AtomicU64::new(0)).collect())
    }
}

impl CodeCounters {
    /// Counts one response with `code`; codes outside 100..=599 are not counted.
    pub fn inc(&self, code: u16) {
        if let Some(c) = code
            .checked_sub(100)
            .and_then(|i| self.0.get(usize::from(i)))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
    pub fn get(&self, code: u16) -> u64 {
        code.checked_sub(100)
            .and_then(|i| self.0.get(usize::from(i)))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
    /// The codes seen at least once, ascending (Envoy creates `upstream_rq_<code>` on first use).
    pub fn snapshot(&self) -> Vec<(u16, u64)> {
        (100u16..600)
            .zip(self.0.iter())
            .map(|(code, c)| (code, c.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// `cluster.<name>.*` in Envoy.
#[derive(Debug, Default)]
pub struct ClusterStats {
    pub upstream_rq_total: Counter,
    /// By status class: index 1..=5 for 1xx..5xx (index 0 unused).
    pub upstream_rq_xx: [Counter; 6],
    /// By exact status code (`upstream_rq_<code>`); charge through
    /// [`ClusterStats::charge_upstream_code`], which also counts the class and completion.
    pub upstream_rq_code: CodeCounters,
    /// Responses (or local replies standing for one: 503 on reset, 504 on timeout) charged.
    pub upstream_rq_completed: Counter,
    pub upstream_rq_time: Histogram,
    pub upstream_rq_active: Gauge,
    pub upstream_rq_pending_total: Counter,
    pub upstream_rq_pending_active: Gauge,
    pub upstream_rq_timeout: Counter,
    pub upstream_rq_per_try_timeout: Counter,
    pub upstream_rq_retry: Counter,
    pub upstream_rq_retry_success: Counter,
    pub upstream_rq_retry_overflow: Counter,
    /// Requests answered with their last attempt's outcome because the route's `num_retries`
    /// ran out while the retry condition still held.
    pub upstream_rq_retry_limit_exceeded: Counter,
    /// Requests refused by the `max_requests` or `max_pending_requests` breaker (Envoy counts
    /// both here).
    pub upstream_rq_pending_overflow: Counter,
    pub upstream_rq_rx_reset: Counter,
    pub upstream_cx_total: Counter,
    pub upstream_cx_active: Gauge,
    pub upstream_cx_http1_total: Counter,
    pub upstream_cx_http2_total: Counter,
    pub upstream_cx_destroy: Counter,
    pub upstream_cx_connect_fail: Counter,
    pub upstream_cx_connect_timeout: Counter,
    pub upstream_cx_overflow: Counter,
    pub upstream_cx_none_healthy: Counter,
    /// `cluster.<name>.ssl.*`.
    pub ssl: SslStats,
    /// `circuit_breakers.default.*_open`: 1 while that breaker is at its limit.
    pub circuit_breakers_cx_open: Gauge,
    pub circuit_breakers_rq_open: Gauge,
    pub circuit_breakers_rq_pending_open: Gauge,
    pub circuit_breakers_rq_retry_open: Gauge,
    /// Picks made from every host because too few were healthy (Envoy's panic mode).
    pub lb_healthy_panic: Counter,
    pub lb_subsets_active: Gauge,
    pub lb_subsets_created: Counter,
    pub lb_subsets_removed: Counter,
    pub lb_subsets_selected: Counter,
    pub lb_subsets_fallback: Counter,
    pub membership_change: Counter,
    pub membership_total: Gauge,
    pub membership_healthy: Gauge,
    pub membership_degraded: Gauge,
    pub membership_excluded: Gauge,
    pub outlier_detection_ejections_active: Gauge,
    pub outlier_detection_ejections_enforced_total: Counter,
    pub outlier_detection_ejections_enforced_consecutive_5xx: Counter,
    pub outlier_detection_ejections_detected_consecutive_5xx: Counter,
    /// Deprecated in Envoy but still printed: ejections decided (enforced or not).
    pub outlier_detection_ejections_total: Counter,
    /// Deprecated in Envoy but still printed: consecutive-5xx detections.
    pub outlier_detection_ejections_consecutive_5xx: Counter,
    pub outlier_detection_ejections_overflow: Counter,
    pub health_check_attempt: Counter,
    pub health_check_success: Counter,
    pub health_check_failure: Counter,
    pub health_check_network_failure: Counter,
    pub health_check_healthy: Gauge,
    /// EDS (or DNS) updates of this cluster's endpoints.
    pub update_attempt: Counter,
    pub update_success: Counter,
    pub update_rejected: Counter,
    pub update_failure: Counter,
    pub update_empty: Counter,
}

impl ClusterStats {
    /// Charges one upstream response code as Envoy's router does: `upstream_rq_<code>`,
    /// `upstream_rq_<class>xx` and `upstream_rq_completed`. Local replies that stand for an
    /// upstream failure are charged too (503 for a reset or connect failure, 504 for a timeout).
    pub fn charge_upstream_code(&self, code: u16) {
        charge_code(
            &self.upstream_rq_code,
            &self.upstream_rq_xx,
            &self.upstream_rq_completed,
            code,
        );
    }
}

/// `<stat>_<code>`, `<stat>_<class>xx` and `<stat>_completed` for one upstream response code,
/// shared by the cluster's and the route's statistics.
fn charge_code(codes: &CodeCounters, classes: &[Counter; 6], completed: &Counter, code: u16) {
    codes.inc(code);
    if let Some(class) = classes.get(usize::from(code / 100)) {
        class.inc();
    }
    completed.inc();
}

/// `http.<stat_prefix>.*` in Envoy: one HTTP connection manager's downstream side.
#[derive(Debug, Default)]
pub struct HttpStats {
    pub downstream_cx_total: Counter,
    pub downstream_cx_active: Gauge,
    pub downstream_cx_http1_total: Counter,
    pub downstream_cx_http2_total: Counter,
    pub downstream_cx_destroy: Counter,
    pub downstream_rq_total: Counter,
    pub downstream_rq_active: Gauge,
    /// By status class: index 1..=5 for 1xx..5xx.
    pub downstream_rq_xx: [Counter; 6],
    pub downstream_rq_time: Histogram,
    /// `http.<prefix>.no_route`: no virtual host or route matched (404).
    pub no_route: Counter,
    /// `http.<prefix>.no_cluster`: the route's cluster is not there (503).
    pub no_cluster: Counter,
    /// `http.<prefix>.rq_direct_response`.
    pub rq_direct_response: Counter,
    pub downstream_rq_timeout: Counter,
    /// Streams ended by the `stream_idle_timeout` (waiting for the upstream, or a stalled
    /// response body).
    pub downstream_rq_idle_timeout: Counter,
}

/// `vhost.<virtual host>.route.<stat_prefix>.*` in Envoy: the statistics of a route that has
/// a `stat_prefix`, charged by the router for every attempt as the cluster's are.
#[derive(Debug, Default)]
pub struct RouteStats {
    pub upstream_rq_total: Counter,
    pub upstream_rq_completed: Counter,
    /// By status class: index 1..=5 for 1xx..5xx.
    pub upstream_rq_xx: [Counter; 6],
    pub upstream_rq_code: CodeCounters,
    pub upstream_rq_time: Histogram,
    pub upstream_rq_timeout: Counter,
    pub upstream_rq_retry: Counter,
    pub upstream_rq_retry_success: Counter,
    pub upstream_rq_retry_overflow: Counter,
    pub upstream_rq_retry_limit_exceeded: Counter,
}

impl RouteStats {
    /// Charges one attempt's code: `upstream_rq_<code>`, `_<class>xx` and `_completed`.
    pub fn charge_upstream_code(&self, code: u16) {
        charge_code(
            &self.upstream_rq_code,
            &self.upstream_rq_xx,
            &self.upstream_rq_completed,
            code,
        );
    }
}

/// `access_logs.grpc_access_log.*` in Envoy: the gRPC access loggers' records.
#[derive(Debug, Default)]
pub struct GrpcLogStats {
    /// Records taken by a logger's queue.
    pub logs_written: Counter,
    /// Records dropped because a logger's queue was full.
    pub logs_dropped: Counter,
}

/// `listener.<address>.*` in Envoy.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub downstream_cx_total: Counter,
    pub downstream_cx_active: Gauge,
    pub downstream_cx_destroy: Counter,
    /// `listener.<address>.ssl.*`.
    pub ssl: SslStats,
}

/// Envoy's `ssl.*` of a listener or a cluster (the part minimal-proxy counts).
#[derive(Debug, Default)]
pub struct SslStats {
    /// Handshakes completed.
    pub handshake: Counter,
    /// Handshakes failed (any reason, the verification failures below included).
    pub connection_error: Counter,
    /// The peer's certificate did not verify (chain, validity or SAN).
    pub fail_verify_error: Counter,
    /// The peer presented no certificate where one is required.
    pub fail_verify_no_cert: Counter,
}

impl SslStats {
    /// Whether any TLS handshake was tried: Envoy shows `ssl.*` only for TLS listeners and
    /// clusters; these show once they have handshaken.
    pub fn used(&self) -> bool {
        self.handshake.get() > 0 || self.connection_error.get() > 0
    }

    /// `(name, counter)` pairs under `ssl.`, for the renderers.
    pub fn counters(&self) -> [(&'static str, &Counter); 4] {
        [
            ("ssl.handshake", &self.handshake),
            ("ssl.connection_error", &self.connection_error),
            ("ssl.fail_verify_error", &self.fail_verify_error),
            ("ssl.fail_verify_no_cert", &self.fail_verify_no_cert),
        ]
    }
}

/// `tcp.<stat_prefix>.*` in Envoy.
#[derive(Debug, Default)]
pub struct TcpStats {
    pub downstream_cx_total: Counter,
    pub downstream_cx_no_route: Counter,
    pub downstream_cx_tx_bytes_total: Counter,
    pub downstream_cx_rx_bytes_total: Counter,
    pub upstream_flush_active: Gauge,
    pub idle_timeout: Counter,
}

/// `control_plane.*` and the xDS counters per type (`cluster_manager.cds.*`, `listener_manager.lds.*`,
/// `http.rds.<name>.*` are folded into one family per type here).
#[derive(Debug, Default)]
pub struct XdsStats {
    /// 1 while the stream to the management server is up.
    pub connected_state: Gauge,
    pub update_attempt: Counter,
    pub update_success: Counter,
    pub update_rejected: Counter,
}

/// Every stats object by name; get-or-create takes a lock, so callers keep the `Arc`.
#[derive(Debug, Default)]
pub struct Registry {
    clusters: Mutex<BTreeMap<String, Arc<ClusterStats>>>,
    http: Mutex<BTreeMap<String, Arc<HttpStats>>>,
    /// By `(virtual host, route stat_prefix)`.
    routes: Mutex<BTreeMap<(String, String), Arc<RouteStats>>>,
    listeners: Mutex<BTreeMap<String, Arc<ListenerStats>>>,
    tcp: Mutex<BTreeMap<String, Arc<TcpStats>>>,
    /// By xDS short type name (`CDS`, `EDS`, `LDS`, `RDS`).
    xds: Mutex<BTreeMap<String, Arc<XdsStats>>>,
    pub grpc_logs: Arc<GrpcLogStats>,
    rbac: Mutex<BTreeMap<RbacScope, Arc<RbacStats>>>,
}

fn get_or_create<T: Default>(map: &Mutex<BTreeMap<String, Arc<T>>>, name: &str) -> Arc<T> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(name.to_string()).or_default().clone()
}

impl Histogram {
    /// Counts per bucket (not cumulative, the overflow last) and the sum in milliseconds.
    pub fn raw(&self) -> (Vec<u64>, f64) {
        let buckets = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        (buckets, self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0)
    }
}

impl Registry {
    pub fn cluster(&self, name: &str) -> Arc<ClusterStats> {
        get_or_create(&self.clusters, name)
    }
    pub fn http(&self, stat_prefix: &str) -> Arc<HttpStats> {
        get_or_create(&self.http, stat_prefix)
    }
    /// Keyed by the listener's address as Envoy prints it (`127.0.0.1_10000`).
    /// A route's stats (a route with a `stat_prefix` in virtual host `vhost`).
    pub fn route(&self, vhost: &str, stat_prefix: &str) -> Arc<RouteStats> {
        let mut map = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((vhost.to_string(), stat_prefix.to_string()))
            .or_default()
            .clone()
    }
    pub fn listener(&self, address: &str) -> Arc<ListenerStats> {
        get_or_create(&self.listeners, address)
    }
    pub fn tcp(&self, stat_prefix: &str) -> Arc<TcpStats> {
        get_or_create(&self.tcp, stat_prefix)
    }
    pub fn xds(&self, short_type: &str) -> Arc<XdsStats> {
        get_or_create(&self.xds, short_type)
    }
    /// An RBAC filter's counters; `shadow` says which pair the filter uses (both exist from
    /// then on, at 0 until counted, as in Envoy).
    pub fn rbac(&self, scope: RbacScope, shadow: bool) -> Arc<RbacStats> {
        let mut map = self.rbac.lock().unwrap_or_else(|e| e.into_inner());
        let stats = map.entry(scope).or_default().clone();
        stats.create(shadow);
        stats
    }

    /// Envoy's `/stats/prometheus`: `# TYPE` lines, Envoy's metric names and labels
    /// (`envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="web"} 3`),
    /// histograms with Envoy's buckets in milliseconds.
    pub fn render_prometheus(&self) -> String {
        render::prometheus(self)
    }

    /// Envoy's `/stats?format=json`: `{"stats":[{"name":"cluster.web.upstream_rq_total",
    /// "value":3},…,{"histograms":{"supported_quantiles":[…],"computed_quantiles":[…]}}]}`
    /// (quantiles interpolated within buckets; `interval` values are not kept, so null).
    pub fn render_json(&self) -> serde_json::Value {
        render::json(self)
    }

    /// Every statistic with its names and tags, for the metrics service sink (read from
    /// the atomics: nothing on the request path waits for it).
    pub fn samples(&self) -> Vec<Sample> {
        render::samples(self)
    }
}

/// Stats that count downstream connections (`downstream_cx_total`, `_active`, `_destroy`):
/// a listener's and an HTTP connection manager's.
pub trait DownstreamConnections {
    fn counters(&self) -> (&Counter, &Gauge, &Counter);
}

impl DownstreamConnections for HttpStats {
    fn counters(&self) -> (&Counter, &Gauge, &Counter) {
        (
            &self.downstream_cx_total,
            &self.downstream_cx_active,
            &self.downstream_cx_destroy,
        )
    }
}

impl DownstreamConnections for ListenerStats {
    fn counters(&self) -> (&Counter, &Gauge, &Counter) {
        (
            &self.downstream_cx_total,
            &self.downstream_cx_active,
            &self.downstream_cx_destroy,
        )
    }
}

/// Counts one downstream connection as active until dropped (also when a drain cuts it).
#[derive(Debug)]
pub struct ConnectionGuard<S: DownstreamConnections>(Arc<S>);

impl<S: DownstreamConnections> ConnectionGuard<S> {
    pub fn new(stats: Arc<S>) -> Self {
        let (total, active, _) = stats.counters();
        total.inc();
        active.inc();
        ConnectionGuard(stats)
    }
}

impl<S: DownstreamConnections> Drop for ConnectionGuard<S> {
    fn drop(&mut self) {
        let (_, active, destroy) = self.0.counters();
        active.dec();
        destroy.inc();
    }
}
