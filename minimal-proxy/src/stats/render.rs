//! Rendering the registry as Envoy's admin does: `/stats/prometheus` (families sorted,
//! counters then gauges then histograms, Envoy's tag names as labels in Envoy's order) and
//! `/stats?format=json` (`{"stats":[{"name","value"}...,{"histograms":{...}}]}`).

mod cluster;
mod rbac;
mod route;

use std::fmt::Write;

use serde_json::{Value, json};

use super::{BUCKETS_MS, Histogram, Registry};

/// Envoy's `supported_quantiles` in the JSON histograms.
const QUANTILES: [f64; 10] = [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0];

/// One statistic, named both ways.
struct Metric<'a> {
    /// Envoy's dotted name (`cluster.web.upstream_rq_200`).
    name: String,
    /// The Prometheus family (`envoy_cluster_upstream_rq`).
    family: String,
    /// Envoy's tag-extracted name (`cluster.upstream_rq`).
    extracted: String,
    /// Envoy's tags, in Envoy's order (the specific tag first, the scope's last).
    labels: Vec<(&'static str, String)>,
    value: Sample<'a>,
    /// Whether the stat has been used (see [`super::Sample::used`]).
    used: bool,
}

enum Sample<'a> {
    Counter(u64),
    Gauge(u64),
    Histogram(&'a Histogram),
}

impl Sample<'_> {
    /// Envoy prints counters, then gauges, then histograms.
    fn rank(&self) -> u8 {
        match self {
            Sample::Counter(_) => 0,
            Sample::Gauge(_) => 1,
            Sample::Histogram(_) => 2,
        }
    }
}

/// The statistics of one scope: `cluster.web.` / `envoy_cluster_` / `envoy_cluster_name=web`.
struct Scope<'m, 'a> {
    out: &'m mut Vec<Metric<'a>>,
    dotted: String,
    family: &'static str,
    tags: Vec<(&'static str, String)>,
}

impl<'a> Scope<'_, 'a> {
    fn push(
        &mut self,
        stat: &str,
        extra: Option<(&'static str, String)>,
        family: &str,
        value: Sample<'a>,
    ) {
        let used = match &value {
            Sample::Counter(v) => *v > 0,
            Sample::Gauge(v) => *v > 0,
            Sample::Histogram(h) => h.snapshot().2 > 0,
        };
        self.push_used(stat, extra, family, value, used);
    }

    fn push_used(
        &mut self,
        stat: &str,
        extra: Option<(&'static str, String)>,
        family: &str,
        value: Sample<'a>,
        used: bool,
    ) {
        let labels = extra.into_iter().chain(self.tags.iter().cloned()).collect();
        // `cluster.web.` → `cluster.`: the scope's name without its tag values.
        let scope = self.tags.iter().fold(self.dotted.clone(), |d, (_, v)| {
            d.replacen(&format!(".{v}."), ".", 1)
        });
        self.out.push(Metric {
            name: format!("{}{stat}", self.dotted),
            family: format!("{}{}", self.family, family.replace('.', "_")),
            extracted: format!("{scope}{family}"),
            labels,
            value,
            used,
        });
    }
    fn counter(&mut self, stat: &str, v: u64) {
        self.push(stat, None, stat, Sample::Counter(v));
    }
    fn gauge(&mut self, stat: &str, g: &super::Gauge) {
        self.push_used(stat, None, stat, Sample::Gauge(g.get()), g.used());
    }
    fn histogram(&mut self, stat: &str, h: &'a Histogram) {
        self.push(stat, None, stat, Sample::Histogram(h));
    }
    /// `upstream_rq_<code>` (created on first use, as Envoy does) and `upstream_rq_<n>xx`.
    fn upstream_codes(&mut self, codes: &super::CodeCounters, classes: &[super::Counter; 6]) {
        for (code, n) in codes.snapshot() {
            let tag = ("envoy_response_code", code.to_string());
            self.push(
                &format!("upstream_rq_{code}"),
                Some(tag),
                "upstream_rq",
                Sample::Counter(n),
            );
        }
        self.classes("upstream_rq", classes, false);
    }
    /// `<stat>_<n>xx` as `<stat>_xx{envoy_response_code_class="<n>"}`.
    fn classes(&mut self, stat: &str, counts: &[super::Counter; 6], all: bool) {
        for (class, c) in counts.iter().enumerate().skip(1) {
            if all || c.get() > 0 {
                let tag = ("envoy_response_code_class", class.to_string());
                let family = format!("{stat}_xx");
                self.push(
                    &format!("{stat}_{class}xx"),
                    Some(tag),
                    &family,
                    Sample::Counter(c.get()),
                );
            }
        }
    }
}

fn scope<'m, 'a>(
    out: &'m mut Vec<Metric<'a>>,
    dotted: String,
    family: &'static str,
    tag: Option<(&'static str, &str)>,
) -> Scope<'m, 'a> {
    Scope {
        out,
        dotted,
        family,
        tags: tag.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
    }
}

/// Every statistic of the registry; the `Arc`s are kept in `held` so samples can borrow them.
fn collect<'a>(held: &'a Held) -> Vec<Metric<'a>> {
    let mut out = Vec::new();
    for (name, c) in &held.clusters {
        let mut s = scope(
            &mut out,
            format!("cluster.{name}."),
            "envoy_cluster_",
            Some(("envoy_cluster_name", name)),
        );
        cluster::render(&mut s, c);
    }
    for (prefix, h) in &held.http {
        let tag = Some(("envoy_http_conn_manager_prefix", prefix.as_str()));
        let mut s = scope(&mut out, format!("http.{prefix}."), "envoy_http_", tag);
        for (stat, v) in [
            ("downstream_cx_total", h.downstream_cx_total.get()),
            (
                "downstream_cx_http1_total",
                h.downstream_cx_http1_total.get(),
            ),
            (
                "downstream_cx_http2_total",
                h.downstream_cx_http2_total.get(),
            ),
            ("downstream_cx_destroy", h.downstream_cx_destroy.get()),
            ("downstream_rq_total", h.downstream_rq_total.get()),
            ("downstream_rq_timeout", h.downstream_rq_timeout.get()),
            (
                "downstream_rq_idle_timeout",
                h.downstream_rq_idle_timeout.get(),
            ),
            ("no_route", h.no_route.get()),
            ("no_cluster", h.no_cluster.get()),
            ("rq_direct_response", h.rq_direct_response.get()),
        ] {
            s.counter(stat, v);
        }
        s.classes("downstream_rq", &h.downstream_rq_xx, true);
        s.gauge("downstream_cx_active", &h.downstream_cx_active);
        s.gauge("downstream_rq_active", &h.downstream_rq_active);
        s.histogram("downstream_rq_time", &h.downstream_rq_time);
    }
    for ((vhost, prefix), r) in &held.routes {
        let mut s = scope(
            &mut out,
            format!("vhost.{vhost}.route.{prefix}."),
            "envoy_vhost_route_",
            Some(("envoy_virtual_host", vhost)),
        );
        s.tags.push(("envoy_route", prefix.clone()));
        route::render(&mut s, r);
    }
    for (address, l) in &held.listeners {
        let tag = Some(("envoy_listener_address", address.as_str()));
        let mut s = scope(
            &mut out,
            format!("listener.{address}."),
            "envoy_listener_",
            tag,
        );
        s.counter("downstream_cx_total", l.downstream_cx_total.get());
        s.counter("downstream_cx_destroy", l.downstream_cx_destroy.get());
        s.gauge("downstream_cx_active", &l.downstream_cx_active);
        for (name, counter) in l.ssl.counters().into_iter().filter(|_| l.ssl.used()) {
            s.counter(name, counter.get());
        }
    }
    for (prefix, t) in &held.tcp {
        let tag = Some(("envoy_tcp_prefix", prefix.as_str()));
        let mut s = scope(&mut out, format!("tcp.{prefix}."), "envoy_tcp_", tag);
        s.counter("downstream_cx_total", t.downstream_cx_total.get());
        s.counter("downstream_cx_no_route", t.downstream_cx_no_route.get());
        s.counter(
            "downstream_cx_tx_bytes_total",
            t.downstream_cx_tx_bytes_total.get(),
        );
        s.counter(
            "downstream_cx_rx_bytes_total",
            t.downstream_cx_rx_bytes_total.get(),
        );
        s.counter("idle_timeout", t.idle_timeout.get());
        s.gauge("upstream_flush_active", &t.upstream_flush_active);
    }
    for (rbac_scope, r) in &held.rbac {
        rbac::render(&mut out, rbac_scope, r);
    }
    let logs = &held.grpc_logs;
    let mut s = scope(
        &mut out,
        "access_logs.grpc_access_log.".into(),
        "envoy_access_logs_grpc_access_log_",
        None,
    );
    s.counter("logs_written", logs.logs_written.get());
    s.counter("logs_dropped", logs.logs_dropped.get());
    let connected = held.xds.iter().map(|(_, x)| x.connected_state.get()).max();
    let mut s = scope(
        &mut out,
        "control_plane.".into(),
        "envoy_control_plane_",
        None,
    );
    // Envoy sets it at start: always used.
    let connected = connected.unwrap_or(0);
    s.push_used(
        "connected_state",
        None,
        "connected_state",
        Sample::Gauge(connected),
        true,
    );
    for (short, x) in &held.xds {
        // Envoy's per-type families; EDS and RDS are per cluster / per route configuration
        // in Envoy and have no aggregate to print.
        let (dotted, family) = match short.as_str() {
            "CDS" => ("cluster_manager.cds.", "envoy_cluster_manager_cds_"),
            "LDS" => ("listener_manager.lds.", "envoy_listener_manager_lds_"),
            _ => continue,
        };
        let mut s = scope(&mut out, dotted.into(), family, None);
        s.counter("update_attempt", x.update_attempt.get());
        s.counter("update_success", x.update_success.get());
        s.counter("update_rejected", x.update_rejected.get());
    }
    out
}

/// The registry's objects, taken out of its locks.
struct Held {
    clusters: Vec<(String, std::sync::Arc<super::ClusterStats>)>,
    http: Vec<(String, std::sync::Arc<super::HttpStats>)>,
    routes: Vec<((String, String), std::sync::Arc<super::RouteStats>)>,
    listeners: Vec<(String, std::sync::Arc<super::ListenerStats>)>,
    tcp: Vec<(String, std::sync::Arc<super::TcpStats>)>,
    xds: Vec<(String, std::sync::Arc<super::XdsStats>)>,
    grpc_logs: std::sync::Arc<super::GrpcLogStats>,
    rbac: Vec<(super::RbacScope, std::sync::Arc<super::RbacStats>)>,
}

fn hold(registry: &Registry) -> Held {
    fn take<K: Clone, T>(
        m: &std::sync::Mutex<std::collections::BTreeMap<K, std::sync::Arc<T>>>,
    ) -> Vec<(K, std::sync::Arc<T>)> {
        let m = m.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
    Held {
        clusters: take(&registry.clusters),
        http: take(&registry.http),
        routes: take(&registry.routes),
        listeners: take(&registry.listeners),
        tcp: take(&registry.tcp),
        xds: take(&registry.xds),
        grpc_logs: registry.grpc_logs.clone(),
        rbac: take(&registry.rbac),
    }
}

fn label_set(labels: &[(&'static str, String)], extra: Option<(&str, &str)>) -> String {
    let mut s = String::from("{");
    let all = labels.iter().map(|(k, v)| (*k, v.as_str())).chain(extra);
    for (i, (k, v)) in all.enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s.push('}');
    s
}

/// A bound or sum as Envoy prints it (`0.5`, `1`, `3600000`).
fn number(v: f64) -> String {
    format!("{v}")
}

pub(super) fn prometheus(registry: &Registry) -> String {
    let held = hold(registry);
    let mut metrics = collect(&held);
    metrics.sort_by(|a, b| (a.value.rank(), &a.family).cmp(&(b.value.rank(), &b.family)));
    let mut out = String::new();
    let mut last_family: Option<&str> = None;
    for m in &metrics {
        if last_family != Some(m.family.as_str()) {
            let kind = ["counter", "gauge", "histogram"][usize::from(m.value.rank())];
            let _ = writeln!(out, "# TYPE {} {kind}", m.family);
            last_family = Some(&m.family);
        }
        match &m.value {
            Sample::Counter(v) | Sample::Gauge(v) => {
                let _ = writeln!(out, "{}{} {v}", m.family, label_set(&m.labels, None));
            }
            Sample::Histogram(h) => {
                let (buckets, sum, count) = h.snapshot();
                for (bound, n) in buckets {
                    let le = number(bound);
                    let labels = label_set(&m.labels, Some(("le", &le)));
                    let _ = writeln!(out, "{}_bucket{labels} {n}", m.family);
                }
                let labels = label_set(&m.labels, Some(("le", "+Inf")));
                let _ = writeln!(out, "{}_bucket{labels} {count}", m.family);
                let labels = label_set(&m.labels, None);
                let _ = writeln!(out, "{}_sum{labels} {}", m.family, number(sum));
                let _ = writeln!(out, "{}_count{labels} {count}", m.family);
            }
        }
    }
    out
}

pub(super) fn json(registry: &Registry) -> Value {
    let held = hold(registry);
    let mut metrics = collect(&held);
    metrics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut stats: Vec<Value> = Vec::with_capacity(metrics.len() + 1);
    let mut histograms = Vec::new();
    for m in &metrics {
        match &m.value {
            Sample::Counter(v) | Sample::Gauge(v) => {
                stats.push(json!({"name": m.name, "value": v}))
            }
            Sample::Histogram(h) => {
                let values: Vec<Value> = quantiles(h)
                    .into_iter()
                    .map(|q| json!({"cumulative": q, "interval": Value::Null}))
                    .collect();
                histograms.push(json!({"name": m.name, "values": values}));
            }
        }
    }
    stats.push(json!({"histograms": {
        "supported_quantiles": QUANTILES,
        "computed_quantiles": histograms,
    }}));
    json!({ "stats": stats })
}

/// Each supported quantile, interpolated within its bucket; `None` with no observation.
fn quantiles(h: &Histogram) -> Vec<Option<f64>> {
    let (buckets, _, count) = h.snapshot();
    QUANTILES
        .iter()
        .map(|q| {
            if count == 0 {
                return None;
            }
            let target = q / 100.0 * count as f64;
            let mut below = 0u64;
            let mut lower = 0.0;
            for (bound, cumulative) in &buckets {
                if *cumulative as f64 >= target && *cumulative > below {
                    let inside = (cumulative - below) as f64;
                    let fraction = ((target - below as f64) / inside).clamp(0.0, 1.0);
                    return Some(lower + (bound - lower) * fraction);
                }
                below = *cumulative;
                lower = *bound;
            }
            // Past the last bound: the largest bound is all that is known.
            Some(BUCKETS_MS[BUCKETS_MS.len() - 1])
        })
        .collect()
}

pub(super) fn samples(registry: &Registry) -> Vec<super::Sample> {
    let held = hold(registry);
    collect(&held)
        .into_iter()
        .map(|m| super::Sample {
            name: m.name,
            extracted: m.extracted,
            // Envoy's tag names are dotted (`envoy.cluster_name`); Prometheus has `_`.
            tags: m
                .labels
                .into_iter()
                .map(|(k, v)| (k.replacen("envoy_", "envoy.", 1), v))
                .collect(),
            used: m.used,
            value: match m.value {
                Sample::Counter(v) => super::SampleValue::Counter(v),
                Sample::Gauge(v) => super::SampleValue::Gauge(v),
                Sample::Histogram(h) => {
                    let (buckets, sum_ms) = h.raw();
                    super::SampleValue::Histogram { buckets, sum_ms }
                }
            },
        })
        .collect()
}
