//! `GET /api/v1/bootstrap`: the document's content, where it points, refused parameters, and
//! the real Envoy accepting it (`--mode validate`, when `ENVOY_BIN` is set).

use std::net::SocketAddr;

use axum::http::{StatusCode, header};
use serde_json::Value;
use xds_server::api::{AppState, router};

use super::{get_text, state};

/// Fetches a bootstrap that must be served; returns it parsed (the YAML is JSON text).
async fn bootstrap(state: &AppState, query: &str, headers: &[(&str, &str)]) -> Value {
    let uri = format!("/api/v1/bootstrap?{query}");
    let (status, headers, text) = get_text(&router(state.clone()), &uri, headers).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {text}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/yaml");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri}: not JSON/YAML ({e}): {text}"))
}

fn xds_endpoint(b: &Value) -> (&Value, &Value, &Value) {
    let cluster = &b["static_resources"]["clusters"][0];
    let socket = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        ["socket_address"];
    (&cluster["type"], &socket["address"], &socket["port_value"])
}

#[tokio::test]
async fn bootstrap_names_the_node_and_points_at_the_xds_port() {
    let (state, _dir) = state().await;
    let b = bootstrap(&state, "node_id=edge-1", &[]).await;
    assert_eq!(b["node"]["id"], "edge-1");
    assert_eq!(b["node"]["cluster"], "default");
    // Where Prometheus finds its stats (see /api/v1/prometheus/targets): the admin address.
    assert_eq!(
        b["node"]["metadata"],
        serde_json::json!({ "stats_address": "127.0.0.1:9901" })
    );
    assert_eq!(b["admin"]["address"]["socket_address"]["port_value"], 9901);
    // Golden metrics: stats stream to the server over the xDS cluster every second, counters
    // as deltas, latencies as buckets.
    assert_eq!(b["stats_flush_interval"], "1s");
    assert_eq!(
        b["stats_sinks"],
        serde_json::json!([{
            "name": "envoy.stat_sinks.metrics_service",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig",
                "transport_api_version": "V3",
                "report_counters_as_deltas": true,
                "histogram_emit_mode": "HISTOGRAM",
                "grpc_service": { "envoy_grpc": { "cluster_name": "xds_cluster" } },
            },
        }])
    );
    let ads = &b["dynamic_resources"]["ads_config"];
    assert_eq!(ads["api_type"], "GRPC");
    assert_eq!(ads["transport_api_version"], "V3");
    assert_eq!(ads["set_node_on_first_message_only"], true);
    assert_eq!(
        ads["grpc_services"][0]["envoy_grpc"]["cluster_name"],
        "xds_cluster"
    );
    for source in ["cds_config", "lds_config"] {
        assert_eq!(b["dynamic_resources"][source]["resource_api_version"], "V3");
        assert!(b["dynamic_resources"][source]["ads"].is_object());
    }
    let cluster = &b["static_resources"]["clusters"][0];
    assert_eq!(cluster["name"], "xds_cluster");
    let http = &cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert!(
        http["explicit_http_config"]["http2_protocol_options"].is_object(),
        "{b}"
    );
    assert_eq!(
        xds_endpoint(&b),
        (&"STATIC".into(), &"127.0.0.1".into(), &18000.into())
    );

    let query = "node_id=edge%201%22x&cluster=ingress&delta=true&admin_port=19000\
                 &metadata.role=edge&metadata.zone=z%3A1";
    let b = bootstrap(&state, query, &[]).await;
    assert_eq!(b["node"]["id"], "edge 1\"x");
    assert_eq!(b["node"]["cluster"], "ingress");
    assert_eq!(
        b["node"]["metadata"],
        serde_json::json!({ "role": "edge", "zone": "z:1", "stats_address": "127.0.0.1:19000" })
    );

    assert_eq!(b["admin"]["address"]["socket_address"]["port_value"], 19000);
    assert_eq!(
        b["dynamic_resources"]["ads_config"]["api_type"],
        "DELTA_GRPC"
    );

    // The sink follows the xDS cluster's name; its interval and presence are the caller's.
    let query = "node_id=n&metadata.xds_cluster=cp&metadata.stats_address=10.0.0.7:15000\
                 &stats_flush_interval=10s";
    let b = bootstrap(&state, query, &[]).await;
    assert_eq!(b["stats_flush_interval"], "10s");
    let sink = &b["stats_sinks"][0]["typed_config"]["grpc_service"]["envoy_grpc"];
    assert_eq!(sink["cluster_name"], "cp");
    assert_eq!(b["node"]["metadata"]["stats_address"], "10.0.0.7:15000");
    let b = bootstrap(&state, "node_id=n&stats_sink=false", &[]).await;
    assert!(
        b.get("stats_sinks").is_none() && b.get("stats_flush_interval").is_none(),
        "{b}"
    );
}

#[tokio::test]
async fn bootstrap_uses_the_request_host_when_xds_listens_on_every_address() {
    let (state, _dir) = state().await;
    let any: SocketAddr = "0.0.0.0:18500".parse().unwrap();
    let state = AppState {
        xds_addr: any,
        ..state
    };
    // (Host header, extra query, the xDS address expected in the bootstrap)
    let cases = [
        (None, "", "127.0.0.1"),
        (Some("10.1.2.3:9090"), "", "10.1.2.3"),
        (Some("[::1]:9090"), "", "::1"),
        (Some("Mesh.Example.com:9090"), "", "mesh.example.com"),
        (Some("mesh.example.com"), "&xds_host=192.0.2.7", "192.0.2.7"),
    ];
    for (host, extra, expected) in cases {
        let headers: Vec<(&str, &str)> = host.map(|h| ("host", h)).into_iter().collect();
        let b = bootstrap(&state, &format!("node_id=n{extra}"), &headers).await;
        let (kind, address, port) = xds_endpoint(&b);
        assert_eq!(
            (address.as_str().unwrap(), port),
            (expected, &18500.into()),
            "{headers:?}"
        );
        let is_ip = expected.parse::<std::net::IpAddr>().is_ok();
        assert_eq!(
            kind,
            if is_ip { "STATIC" } else { "STRICT_DNS" },
            "{headers:?}"
        );
        let family = &b["static_resources"]["clusters"][0]["dns_lookup_family"];
        let expected = (!is_ip).then_some("V4_PREFERRED");
        assert_eq!(family.as_str(), expected, "{headers:?}");
    }
}

#[tokio::test]
async fn bootstrap_refuses_bad_parameters() {
    let (state, _dir) = state().await;
    let app = router(state);
    let long = "x".repeat(257);
    for (query, mentions) in [
        ("", "node_id"),
        ("cluster=c", "node_id"),
        ("node_id=", "node_id"),
        (&format!("node_id={long}") as &str, "node_id"),
        ("node_id=a%0Ab", "node_id"),
        ("node_id=a&cluster=%07", "cluster"),
        ("node_id=a&node_id=b", "node_id"),
        ("node_id=a&delta=yes", "delta"),
        ("node_id=a&admin_port=0", "admin_port"),
        ("node_id=a&admin_port=65536", "admin_port"),
        ("node_id=a&admin_port=http", "admin_port"),
        ("node_id=a&xds_host=not%20a%20host", "xds_host"),
        ("node_id=a&metadata.=x", "metadata."),
        ("node_id=a&metadata.k=%0A", "metadata.k"),
        ("node_id=a&format=json", "format"),
        ("node_id=a&stats_sink=no", "stats_sink"),
        ("node_id=a&stats_flush_interval=0s", "stats_flush_interval"),
        ("node_id=a&stats_flush_interval=61s", "stats_flush_interval"),
        (
            "node_id=a&stats_flush_interval=1.5s",
            "stats_flush_interval",
        ),
        ("node_id=a&stats_flush_interval=5", "stats_flush_interval"),
    ] {
        let (status, _, text) = get_text(&app, &format!("/api/v1/bootstrap?{query}"), &[]).await;
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{query}: {message}");
    }
}

/// The real Envoy must accept both flavours. Without `ENVOY_BIN` this skips, except under
/// `CI=true`, where it fails.
#[tokio::test]
async fn envoy_accepts_the_bootstrap() {
    let Some(envoy) = std::env::var_os("ENVOY_BIN") else {
        assert!(
            !integration::in_ci(),
            "ENVOY_BIN is not set, and CI=true forbids skipping"
        );
        integration::announce_skip("Envoy bootstrap validation", "ENVOY_BIN is not set");
        return;
    };
    let (state, dir) = state().await;
    let state = AppState {
        xds_addr: "0.0.0.0:18000".parse().unwrap(),
        ..state
    };
    // Both protocol variants with an IP (STATIC cluster), and a DNS name (STRICT_DNS).
    let cases = [
        ("false", "127.0.0.1:9090"),
        ("true", "127.0.0.1"),
        ("true", "localhost:9090"),
    ];
    for (delta, host) in cases {
        let query = format!("node_id=edge-1&cluster=ingress&metadata.role=edge&delta={delta}");
        let uri = format!("/api/v1/bootstrap?{query}");
        let headers = [("host", host)];
        let (status, _, text) = get_text(&router(state.clone()), &uri, &headers).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let file = dir
            .path()
            .join(format!("envoy-{delta}-{}.yaml", host.replace(':', "_")));
        std::fs::write(&file, &text).unwrap();
        let out = std::process::Command::new(&envoy)
            .args(["--mode", "validate", "--log-level", "error", "-c"])
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", envoy.to_string_lossy()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("OK"),
            "envoy --mode validate refused the delta={delta} bootstrap (Host {host}):\n{stdout}\n{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
