//! `stats_sinks`: the bootstrap xds-server renders is taken; every other sink, setting or
//! bad value is refused with its path.

use std::time::Duration;

use serde_json::{Value, json};

use crate::bootstrap::{HistogramEmitMode, Overrides, from_document};

/// A bootstrap with a static `xds_cluster` and `sink` as its one stats sink.
fn with_sink(sink: Value) -> Value {
    json!({
        "node": { "id": "n1", "cluster": "c1" },
        "stats_sinks": [sink],
        "static_resources": { "clusters": [{ "name": "xds_cluster", "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": { "cluster_name": "xds_cluster", "endpoints": [{ "lb_endpoints": [{
                "endpoint": { "address": { "socket_address": {
                    "address": "127.0.0.1", "port_value": 18000 } } } }] }] } }] },
    })
}

/// The sink of the metrics contract (what xds-server's bootstrap endpoint renders).
fn server_sink() -> Value {
    json!({
        "name": "envoy.stat_sinks.metrics_service",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig",
            "transport_api_version": "V3",
            "report_counters_as_deltas": true,
            "histogram_emit_mode": "HISTOGRAM",
            "grpc_service": { "envoy_grpc": { "cluster_name": "xds_cluster" } }
        }
    })
}

fn refused(doc: Value) -> String {
    match from_document(doc, &Overrides::default()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_servers_sink_is_taken_with_its_settings_and_interval() {
    let mut doc = with_sink(server_sink());
    doc["stats_flush_interval"] = json!("1s");
    let b = from_document(doc, &Overrides::default()).unwrap();
    let sink = b.metrics_sink.expect("a sink");
    assert_eq!(sink.cluster, "xds_cluster");
    assert_eq!(sink.target.port, 18000);
    assert!(sink.counters_as_deltas);
    assert!(!sink.tags_as_labels);
    assert_eq!(sink.histograms, HistogramEmitMode::Histogram);
    assert_eq!(sink.interval, Duration::from_secs(1));
    assert!(b.grpc_targets.contains_key("xds_cluster"));
}

/// What `GET /api/v1/bootstrap` renders today (testdata taken from the real server).
#[test]
fn the_bootstrap_xds_server_renders_streams_to_its_xds_cluster() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/bootstrap/testdata/ads-grpc-telemetry.json");
    let b = crate::bootstrap::load(&path, &Overrides::default()).unwrap();
    let sink = b.metrics_sink.expect("a sink");
    assert_eq!(
        (sink.cluster.as_str(), sink.target.port),
        ("xds_cluster", 18000)
    );
    assert!(sink.counters_as_deltas && !sink.tags_as_labels);
    assert_eq!(sink.histograms, HistogramEmitMode::Histogram);
    assert_eq!(sink.interval, Duration::from_secs(1));
}

#[test]
fn envoys_defaults_apply_when_unset() {
    let mut sink = server_sink();
    let config = sink["typed_config"].as_object_mut().unwrap();
    config.remove("report_counters_as_deltas");
    config.remove("histogram_emit_mode");
    config.remove("transport_api_version");
    let b = from_document(with_sink(sink), &Overrides::default()).unwrap();
    let sink = b.metrics_sink.unwrap();
    assert!(!sink.counters_as_deltas);
    assert_eq!(sink.histograms, HistogramEmitMode::SummaryAndHistogram);
    assert_eq!(sink.interval, Duration::from_secs(5));
}

/// A change to the sink's JSON.
type Change = Box<dyn Fn(&mut Value)>;

#[test]
fn other_sinks_settings_and_bad_values_are_refused_by_path() {
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|s| s["name"] = json!("envoy.stat_sinks.statsd")),
            "stats_sinks[0].name: sink 'envoy.stat_sinks.statsd' is not supported",
        ),
        (
            Box::new(|s| {
                s["typed_config"]["@type"] =
                    json!("type.googleapis.com/envoy.config.metrics.v3.StatsdSink")
            }),
            "stats_sinks[0].typed_config.@type: 'type.googleapis.com/envoy.config.metrics.v3.StatsdSink' is not supported",
        ),
        (
            Box::new(|s| s["typed_config"]["transport_api_version"] = json!("V2")),
            "stats_sinks[0].typed_config.transport_api_version: V2 is not supported",
        ),
        (
            Box::new(|s| s["typed_config"]["histogram_emit_mode"] = json!("BUCKETS")),
            "stats_sinks[0].typed_config.histogram_emit_mode: 'BUCKETS' is not a mode",
        ),
        (
            Box::new(|s| {
                s["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] = json!("nope")
            }),
            "stats_sinks[0].typed_config.grpc_service.envoy_grpc.cluster_name: 'nope' is not a static cluster",
        ),
        (
            Box::new(|s| s["typed_config"]["grpc_service"]["timeout"] = json!("1s")),
            "stats_sinks[0].typed_config.grpc_service.timeout: not supported by minimal-proxy",
        ),
        (
            Box::new(|s| {
                s["typed_config"]["grpc_service"] =
                    json!({ "google_grpc": { "target_uri": "x", "stat_prefix": "y" } })
            }),
            "stats_sinks[0].typed_config.grpc_service.google_grpc: not supported by minimal-proxy",
        ),
    ];
    for (change, expected) in cases {
        let mut sink = server_sink();
        change(&mut sink);
        let message = refused(with_sink(sink));
        assert!(
            message.starts_with(expected),
            "got: {message}\nwanted: {expected}…"
        );
    }
}

#[test]
fn a_second_sink_or_a_bad_interval_is_refused() {
    let mut doc = with_sink(server_sink());
    doc["stats_sinks"] = json!([server_sink(), server_sink()]);
    assert!(refused(doc).starts_with("stats_sinks: minimal-proxy supports one sink"));
    for bad in ["0s", "301s"] {
        let mut doc = with_sink(server_sink());
        doc["stats_flush_interval"] = json!(bad);
        assert!(refused(doc).starts_with("stats_flush_interval: must be between 1ms and 300s"));
    }
    let mut doc = with_sink(server_sink());
    doc["stats_flush_interval"] = json!("soon");
    assert!(refused(doc).contains("'soon' is not a duration"));
}
