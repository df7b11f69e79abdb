//! The pure parts of telemetry: a flush as Envoy makes it (used stats only, counter deltas,
//! interval histograms in Envoy's buckets, names with or without tag extraction) and an
//! access log record as Envoy's `HTTPAccessLogEntry`.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use envoy_types::pb::{
    envoy::config::core::v3::{RequestMethod, address, socket_address},
    io::prometheus::client::{MetricFamily, MetricType},
};
use http::HeaderValue;

use super::{
    entry::{EntryFields, http_entry},
    flush::{Flusher, quantile},
};
use crate::{
    access_log::{Record, ResponseFlags},
    bootstrap::{HistogramEmitMode, MetricsSink, Target},
    stats::{BUCKETS_MS, Registry},
};

fn sink(deltas: bool, labels: bool, histograms: HistogramEmitMode) -> MetricsSink {
    MetricsSink {
        cluster: "xds_cluster".into(),
        target: Target {
            host: "127.0.0.1".into(),
            port: 1,
            connect_timeout: Duration::from_secs(1),
            tls: None,
        },
        counters_as_deltas: deltas,
        tags_as_labels: labels,
        histograms,
        interval: Duration::from_secs(1),
        initial_metadata: vec![],
    }
}

fn find<'a>(families: &'a [MetricFamily], name: &str, kind: MetricType) -> &'a MetricFamily {
    families
        .iter()
        .find(|f| f.name() == name && f.r#type() == kind)
        .unwrap_or_else(|| panic!("no {kind:?} {name}"))
}

fn counter(families: &[MetricFamily], name: &str) -> f64 {
    find(families, name, MetricType::Counter).metric[0]
        .counter
        .as_ref()
        .and_then(|c| c.value)
        .unwrap()
}

#[test]
fn counters_go_as_deltas_when_asked_and_unused_stats_stay_out() {
    let registry = Registry::default();
    let web = registry.cluster("web");
    let mut flusher = Flusher::new(&sink(true, false, HistogramEmitMode::Histogram));
    web.charge_upstream_code(200);
    web.charge_upstream_code(200);
    let first = flusher.flush(registry.samples(), 7);
    assert_eq!(counter(&first, "cluster.web.upstream_rq_completed"), 2.0);
    assert_eq!(counter(&first, "cluster.web.upstream_rq_2xx"), 2.0);
    assert_eq!(first[0].metric[0].timestamp_ms, Some(7));
    // Never used: not sent, as Envoy sends only used stats.
    assert!(
        !first
            .iter()
            .any(|f| f.name() == "cluster.web.upstream_rq_5xx"
                || f.name() == "cluster.web.upstream_rq_retry")
    );
    web.charge_upstream_code(503);
    let second = flusher.flush(registry.samples(), 8);
    assert_eq!(counter(&second, "cluster.web.upstream_rq_completed"), 1.0);
    assert_eq!(counter(&second, "cluster.web.upstream_rq_5xx"), 1.0);
    // Used once: sent with a zero delta from then on.
    assert_eq!(counter(&second, "cluster.web.upstream_rq_2xx"), 0.0);

    let mut totals = Flusher::new(&sink(false, false, HistogramEmitMode::Histogram));
    let all = totals.flush(registry.samples(), 9);
    assert_eq!(counter(&all, "cluster.web.upstream_rq_completed"), 3.0);
    assert_eq!(counter(&all, "cluster.web.upstream_rq_completed"), 3.0);
}

#[test]
fn gauges_are_sent_once_set_even_back_at_zero() {
    let registry = Registry::default();
    let web = registry.cluster("web");
    let mut flusher = Flusher::new(&sink(true, false, HistogramEmitMode::Histogram));
    let gauge = |f: &[MetricFamily]| {
        f.iter()
            .find(|f| f.name() == "cluster.web.upstream_rq_active")
            .map(|f| f.metric[0].gauge.unwrap().value.unwrap())
    };
    assert_eq!(gauge(&flusher.flush(registry.samples(), 1)), None);
    web.upstream_rq_active.inc();
    assert_eq!(gauge(&flusher.flush(registry.samples(), 2)), Some(1.0));
    web.upstream_rq_active.dec();
    assert_eq!(gauge(&flusher.flush(registry.samples(), 3)), Some(0.0));
}

#[test]
fn histograms_carry_the_interval_in_envoys_buckets() {
    let registry = Registry::default();
    let web = registry.cluster("web");
    let mut flusher = Flusher::new(&sink(true, false, HistogramEmitMode::Histogram));
    web.upstream_rq_time.observe(Duration::from_millis(3));
    web.upstream_rq_time.observe(Duration::from_millis(40));
    web.upstream_rq_time.observe(Duration::from_secs(5000));
    let first = flusher.flush(registry.samples(), 1);
    let h = find(
        &first,
        "cluster.web.upstream_rq_time",
        MetricType::Histogram,
    )
    .metric[0]
        .histogram
        .clone()
        .unwrap();
    assert_eq!(h.sample_count, Some(3));
    assert!((h.sample_sum.unwrap() - 5_000_043.0).abs() < 0.01);
    let bounds: Vec<f64> = h.bucket.iter().map(|b| b.upper_bound.unwrap()).collect();
    assert_eq!(bounds, BUCKETS_MS.to_vec(), "Envoy's bounds, no +Inf");
    let at = |bound: f64| {
        h.bucket
            .iter()
            .find(|b| b.upper_bound == Some(bound))
            .unwrap()
            .cumulative_count
            .unwrap()
    };
    assert_eq!((at(1.0), at(5.0), at(50.0), at(3600000.0)), (0, 1, 2, 2));
    assert!(
        !first.iter().any(|f| f.r#type() == MetricType::Summary),
        "HISTOGRAM mode sends no summary"
    );

    // The next flush has only what came since.
    web.upstream_rq_time.observe(Duration::from_millis(7));
    let second = flusher.flush(registry.samples(), 2);
    let h = find(
        &second,
        "cluster.web.upstream_rq_time",
        MetricType::Histogram,
    )
    .metric[0]
        .histogram
        .clone()
        .unwrap();
    assert_eq!(h.sample_count, Some(1));
    assert!((h.sample_sum.unwrap() - 7.0).abs() < 0.01);
    assert_eq!(h.bucket[2].cumulative_count, Some(0), "le 5");
    assert_eq!(h.bucket[3].cumulative_count, Some(1), "le 10");
    // And nothing new: a histogram of zero, still sent (it has been used).
    let third = flusher.flush(registry.samples(), 3);
    let h = find(
        &third,
        "cluster.web.upstream_rq_time",
        MetricType::Histogram,
    )
    .metric[0]
        .histogram
        .clone()
        .unwrap();
    assert_eq!(h.sample_count, Some(0));
    assert!(h.bucket.iter().all(|b| b.cumulative_count == Some(0)));
}

#[test]
fn summaries_are_envoys_quantiles_and_the_mode_picks_what_goes() {
    let registry = Registry::default();
    let web = registry.cluster("web");
    for ms in [2, 3, 4, 30] {
        web.upstream_rq_time.observe(Duration::from_millis(ms));
    }
    let both = Flusher::new(&sink(true, false, HistogramEmitMode::SummaryAndHistogram))
        .flush(registry.samples(), 1);
    find(&both, "cluster.web.upstream_rq_time", MetricType::Histogram);
    let s = find(&both, "cluster.web.upstream_rq_time", MetricType::Summary).metric[0]
        .summary
        .clone()
        .unwrap();
    let qs: Vec<f64> = s.quantile.iter().map(|q| q.quantile.unwrap()).collect();
    assert_eq!(
        qs,
        [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0]
    );
    let p50 = s.quantile[2].value.unwrap();
    assert!((1.0..=5.0).contains(&p50), "{p50}");
    let summary_only =
        Flusher::new(&sink(true, false, HistogramEmitMode::Summary)).flush(registry.samples(), 1);
    assert!(
        !summary_only
            .iter()
            .any(|f| f.r#type() == MetricType::Histogram)
    );
    // No sample: NaN, as Envoy sends.
    assert!(quantile(&[0; 20], 0, 0.5).is_nan());
    // Interpolated within the bucket: 4 samples in (1, 5], the median is at 3.
    let mut counts = [0u64; 20];
    counts[2] = 4;
    assert_eq!(quantile(&counts, 4, 0.5), 3.0);
    counts[19] = 4;
    assert_eq!(
        quantile(&counts, 8, 1.0),
        3_600_000.0,
        "overflow: the last bound"
    );
}

#[test]
fn tags_as_labels_send_envoys_extracted_names_and_tag_names() {
    let registry = Registry::default();
    registry.cluster("web").charge_upstream_code(503);
    let route = registry.route("main", "main");
    route.charge_upstream_code(200);
    route.upstream_rq_time.observe(Duration::from_millis(1));
    registry.http("ingress").downstream_rq_xx[2].inc();
    let families =
        Flusher::new(&sink(false, true, HistogramEmitMode::Histogram)).flush(registry.samples(), 1);
    let labels = |f: &MetricFamily| -> Vec<(String, String)> {
        f.metric[0]
            .label
            .iter()
            .map(|l| (l.name().to_string(), l.value().to_string()))
            .collect()
    };
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    let codes = families
        .iter()
        .find(|f| f.name() == "cluster.upstream_rq" && labels(f).len() == 2)
        .expect("cluster.upstream_rq");
    assert_eq!(
        labels(codes),
        [
            pair("envoy.response_code", "503"),
            pair("envoy.cluster_name", "web")
        ]
    );
    let class = families
        .iter()
        .find(|f| f.name() == "vhost.route.upstream_rq_xx")
        .expect("vhost.route.upstream_rq_xx");
    assert_eq!(
        labels(class),
        [
            pair("envoy.response_code_class", "2"),
            pair("envoy.virtual_host", "main"),
            pair("envoy.route", "main"),
        ]
    );
    find(
        &families,
        "vhost.route.upstream_rq_time",
        MetricType::Histogram,
    );
    find(&families, "http.downstream_rq_xx", MetricType::Counter);
}

#[test]
fn route_stats_have_envoys_names_in_every_rendering() {
    let registry = Registry::default();
    let route = registry.route("vh1", "web-route");
    route.upstream_rq_total.inc();
    route.charge_upstream_code(200);
    route.upstream_rq_time.observe(Duration::from_millis(2));
    let text = registry.render_prometheus();
    for line in [
        "envoy_vhost_route_upstream_rq{envoy_response_code=\"200\",envoy_virtual_host=\"vh1\",envoy_route=\"web-route\"} 1",
        "envoy_vhost_route_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_virtual_host=\"vh1\",envoy_route=\"web-route\"} 1",
        "envoy_vhost_route_upstream_rq_completed{envoy_virtual_host=\"vh1\",envoy_route=\"web-route\"} 1",
        "envoy_vhost_route_upstream_rq_total{envoy_virtual_host=\"vh1\",envoy_route=\"web-route\"} 1",
        "envoy_vhost_route_upstream_rq_retry{envoy_virtual_host=\"vh1\",envoy_route=\"web-route\"} 0",
        "envoy_vhost_route_upstream_rq_time_bucket{envoy_virtual_host=\"vh1\",envoy_route=\"web-route\",le=\"5\"} 1",
        "envoy_vhost_route_upstream_rq_time_count{envoy_virtual_host=\"vh1\",envoy_route=\"web-route\"} 1",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    let json = registry.render_json().to_string();
    assert!(json.contains("\"vhost.vh1.route.web-route.upstream_rq_200\""));
    assert!(json.contains("\"vhost.vh1.route.web-route.upstream_rq_time\""));
}

// === access log entries ===

fn record() -> (Record, EntryFields) {
    let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let mut r = Record::new(peer, Some("127.0.0.1:10000".parse().unwrap()));
    r.start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    r.protocol = Some("HTTP/1.1");
    r.response_code = Some(503);
    r.flags.insert(ResponseFlags::UPSTREAM_CONNECT_FAILURE);
    r.flags.insert(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
    r.duration = Duration::from_micros(1250);
    r.upstream_host = Some("127.0.0.1:8081".parse().unwrap());
    r.upstream_cluster = Some("web".into());
    r.route_name = Some(Arc::from("main"));
    r.bytes_sent = 19;
    let values = [
        "POST",
        "http",
        "web.local",
        "/api/items?id=3",
        "curl/8",
        "",
        "",
        "id-1",
    ];
    r.request_headers = values
        .iter()
        .map(|v| (!v.is_empty()).then(|| HeaderValue::from_static(v)))
        .collect();
    let fields = EntryFields {
        method: 0,
        scheme: 1,
        authority: 2,
        path: 3,
        user_agent: 4,
        referer: 5,
        forwarded_for: 6,
        request_id: 7,
    };
    (r, fields)
}

#[test]
fn an_entry_has_the_fields_envoy_fills() {
    let (r, fields) = record();
    let e = http_entry(&r, &fields);
    let c = e.common_properties.as_ref().unwrap();
    let start = c.start_time.as_ref().unwrap();
    assert_eq!((start.seconds, start.nanos), (1_700_000_000, 123_000_000));
    let last = c.time_to_last_downstream_tx_byte.as_ref().unwrap();
    assert_eq!((last.seconds, last.nanos), (0, 1_250_000));
    let Some(address::Address::SocketAddress(up)) = c
        .upstream_remote_address
        .as_ref()
        .and_then(|a| a.address.clone())
    else {
        panic!("no upstream address")
    };
    assert_eq!(up.address, "127.0.0.1");
    assert_eq!(
        up.port_specifier,
        Some(socket_address::PortSpecifier::PortValue(8081))
    );
    assert_eq!(c.upstream_cluster, "web");
    assert_eq!(c.route_name, "main");
    let flags = c.response_flags.as_ref().unwrap();
    assert!(flags.upstream_connection_failure && flags.upstream_retry_limit_exceeded);
    assert!(!flags.no_route_found);
    assert_eq!(c.stream_id, "id-1");
    let req = e.request.as_ref().unwrap();
    assert_eq!(req.request_method, RequestMethod::Post as i32);
    assert_eq!(
        (
            req.scheme.as_str(),
            req.authority.as_str(),
            req.path.as_str()
        ),
        ("http", "web.local", "/api/items?id=3")
    );
    assert_eq!(
        (req.user_agent.as_str(), req.request_id.as_str()),
        ("curl/8", "id-1")
    );
    assert_eq!(req.referer, "");
    let resp = e.response.as_ref().unwrap();
    assert_eq!(resp.response_code.as_ref().map(|c| c.value), Some(503));
    assert_eq!(resp.response_body_bytes, 19);
    assert_eq!(e.protocol_version, 2, "HTTP11");
}

#[test]
fn an_entry_without_response_or_upstream_leaves_them_out() {
    let (mut r, fields) = record();
    r.response_code = Some(0);
    r.upstream_host = None;
    r.upstream_cluster = None;
    r.route_name = None;
    r.flags = ResponseFlags::NO_ROUTE;
    let e = http_entry(&r, &fields);
    let c = e.common_properties.as_ref().unwrap();
    assert!(c.upstream_remote_address.is_none());
    assert_eq!(
        (c.upstream_cluster.as_str(), c.route_name.as_str()),
        ("", "")
    );
    assert!(c.response_flags.as_ref().unwrap().no_route_found);
    assert!(e.response.as_ref().unwrap().response_code.is_none());
}
