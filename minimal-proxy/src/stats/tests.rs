//! Rendering: Envoy's Prometheus names and labels, and its JSON shape.

use std::time::Duration;

use super::Registry;

fn registry() -> Registry {
    let r = Registry::default();
    let web = r.cluster("web");
    for _ in 0..3 {
        web.upstream_rq_total.inc();
        web.charge_upstream_code(200);
    }
    web.charge_upstream_code(503);
    web.upstream_cx_active.set(2);
    web.upstream_rq_time.observe(Duration::from_millis(3));
    let http = r.http("ingress");
    http.downstream_rq_total.inc();
    http.downstream_rq_xx[2].inc();
    http.downstream_rq_idle_timeout.inc();
    web.upstream_rq_retry_limit_exceeded.add(2);
    r.listener("127.0.0.1_10000").downstream_cx_total.inc();
    r.tcp("db").downstream_cx_total.add(4);
    r.xds("CDS").update_success.inc();
    r.xds("LDS").connected_state.set(1);
    r
}

#[test]
fn prometheus_uses_envoys_names_labels_and_types() {
    let text = registry().render_prometheus();
    for line in [
        "# TYPE envoy_cluster_upstream_rq_total counter",
        "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"web\"} 3",
        "# TYPE envoy_cluster_upstream_rq counter",
        "envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"web\"} 3",
        "envoy_cluster_upstream_rq{envoy_response_code=\"503\",envoy_cluster_name=\"web\"} 1",
        "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"web\"} 3",
        "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"5\",envoy_cluster_name=\"web\"} 1",
        "envoy_cluster_upstream_rq_completed{envoy_cluster_name=\"web\"} 4",
        "# TYPE envoy_cluster_upstream_cx_active gauge",
        "envoy_cluster_upstream_cx_active{envoy_cluster_name=\"web\"} 2",
        "envoy_cluster_circuit_breakers_default_rq_open{envoy_cluster_name=\"web\"} 0",
        "envoy_cluster_outlier_detection_ejections_active{envoy_cluster_name=\"web\"} 0",
        "envoy_cluster_health_check_attempt{envoy_cluster_name=\"web\"} 0",
        "# TYPE envoy_cluster_upstream_rq_time histogram",
        "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"web\",le=\"0.5\"} 0",
        "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"web\",le=\"5\"} 1",
        "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"web\",le=\"3600000\"} 1",
        "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"web\",le=\"+Inf\"} 1",
        "envoy_cluster_upstream_rq_time_sum{envoy_cluster_name=\"web\"} 3",
        "envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"web\"} 1",
        "envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"ingress\"} 1",
        "envoy_http_downstream_rq_idle_timeout{envoy_http_conn_manager_prefix=\"ingress\"} 1",
        "envoy_cluster_upstream_rq_retry_limit_exceeded{envoy_cluster_name=\"web\"} 2",
        "envoy_http_downstream_rq_xx{envoy_response_code_class=\"1\",envoy_http_conn_manager_prefix=\"ingress\"} 0",
        "envoy_http_downstream_rq_xx{envoy_response_code_class=\"2\",envoy_http_conn_manager_prefix=\"ingress\"} 1",
        "envoy_listener_downstream_cx_total{envoy_listener_address=\"127.0.0.1_10000\"} 1",
        "envoy_tcp_downstream_cx_total{envoy_tcp_prefix=\"db\"} 4",
        "envoy_cluster_manager_cds_update_success{} 1",
        "# TYPE envoy_control_plane_connected_state gauge",
        "envoy_control_plane_connected_state{} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Classes never seen are not printed for clusters (Envoy creates them on first use).
    assert!(!text.contains("envoy_response_code_class=\"3\",envoy_cluster_name"));
    // One TYPE line per family, before its samples; counters, then gauges, then histograms.
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
    let mut unique = types.clone();
    unique.dedup();
    assert_eq!(types, unique);
    let kinds: Vec<&str> = types
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert!(kinds.is_sorted_by_key(|k| {
        ["counter", "gauge", "histogram"]
            .iter()
            .position(|x| x == k)
    }));
}

#[test]
fn json_lists_stats_by_envoys_dotted_names_then_histograms() {
    let json = registry().render_json();
    let stats = json["stats"].as_array().unwrap();
    let value = |name: &str| {
        stats
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))["value"]
            .clone()
    };
    assert_eq!(value("cluster.web.upstream_rq_total"), 3);
    assert_eq!(value("cluster.web.upstream_rq_200"), 3);
    assert_eq!(value("cluster.web.upstream_rq_5xx"), 1);
    assert_eq!(value("cluster.web.circuit_breakers.default.cx_open"), 0);
    assert_eq!(value("http.ingress.downstream_rq_2xx"), 1);
    assert_eq!(value("http.ingress.downstream_rq_idle_timeout"), 1);
    assert_eq!(value("cluster.web.upstream_rq_retry_limit_exceeded"), 2);
    assert_eq!(value("listener.127.0.0.1_10000.downstream_cx_total"), 1);
    assert_eq!(value("tcp.db.downstream_cx_total"), 4);
    assert_eq!(value("cluster_manager.cds.update_success"), 1);
    assert_eq!(value("control_plane.connected_state"), 1);
    let names: Vec<&str> = stats.iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(names.is_sorted());

    let histograms = &stats.last().unwrap()["histograms"];
    assert_eq!(
        histograms["supported_quantiles"].as_array().unwrap().len(),
        10
    );
    let computed = histograms["computed_quantiles"].as_array().unwrap();
    let rq_time = computed
        .iter()
        .find(|h| h["name"] == "cluster.web.upstream_rq_time")
        .unwrap();
    let p50 = rq_time["values"][2]["cumulative"].as_f64().unwrap();
    assert!((1.0..=5.0).contains(&p50), "{p50}");
    let empty = computed
        .iter()
        .find(|h| h["name"] == "http.ingress.downstream_rq_time")
        .unwrap();
    assert!(empty["values"][0]["cumulative"].is_null());
}
