//! `/metrics` (counters the xDS layer bumps, gauges computed at scrape time) and the token
//! and OpenAPI coverage of the operations routes.

use axum::http::{StatusCode, header};
use xds_core::type_url;
use xds_server::{
    api::{AppState, router},
    status::{SyncState, Variant},
};

use super::{get_text, proxy, state, type_status};

/// The value of the sample named exactly `series` (name and labels), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_count_streams_pushes_and_the_store_revision() {
    let (state, _dir) = state().await;
    let app = router(state.clone());
    let synced = type_status(SyncState::Synced, "v1", Some("v1"), None);
    let _a = state.registry.connect(proxy(
        "a",
        Variant::Delta,
        "ads",
        vec![(type_url::CLUSTER, synced.clone())],
    ));
    let _b = state.registry.connect(proxy(
        "b",
        Variant::Delta,
        "ads",
        vec![(type_url::CLUSTER, synced)],
    ));

    let (status, headers, text) = get_text(&app, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    for name in [
        "xds_connected_proxies",
        "xds_pushes_total",
        "xds_acks_total",
        "xds_nacks_total",
        "xds_push_latency_seconds",
        "xds_convergence_seconds",
        "xds_snapshot_rebuilds_total",
        "xds_snapshot_rebuild_duration_seconds",
        "xds_store_revision",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{text}"
        );
    }
    let connected =
        |t: &str, v: &str| format!("xds_connected_proxies{{type_url=\"{t}\",variant=\"{v}\"}}");
    assert_eq!(
        sample(&text, &connected(type_url::CLUSTER, "delta")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &connected(type_url::CLUSTER, "sotw")),
        Some(0.0),
        "{text}"
    );
    assert_eq!(sample(&text, "xds_store_revision"), Some(0.0), "{text}");

    let pushes = format!(
        "xds_pushes_total{{type_url=\"{}\",variant=\"sotw\"}}",
        type_url::LISTENER
    );
    assert_eq!(
        sample(&text, &pushes),
        Some(0.0),
        "series start at zero: {text}"
    );
    state.metrics.push(type_url::LISTENER, Variant::Sotw);
    state.metrics.push(type_url::LISTENER, Variant::Sotw);
    state.metrics.nack(type_url::LISTENER, Variant::Sotw);
    state.metrics.observe_push_latency(0.003);
    state.metrics.rebuild(0.02);
    let (_, _, text) = get_text(&app, "/metrics", &[]).await;
    assert_eq!(sample(&text, &pushes), Some(2.0), "{text}");
    assert_eq!(
        sample(&text, &pushes.replace("pushes", "nacks")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "xds_push_latency_seconds_count"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "xds_push_latency_seconds_bucket{le=\"0.0025\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "xds_push_latency_seconds_bucket{le=\"0.005\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "xds_snapshot_rebuilds_total"),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn operations_routes_need_the_token_and_are_documented() {
    let (state, _dir) = state().await;
    let app = router(AppState {
        admin_token: Some("s3cret".into()),
        ..state
    });
    for uri in ["/metrics", "/api/v1/proxies", "/api/v1/bootstrap?node_id=a"] {
        assert_eq!(
            get_text(&app, uri, &[]).await.0,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        let auth = [("authorization", "Bearer s3cret")];
        assert_eq!(get_text(&app, uri, &auth).await.0, StatusCode::OK, "{uri}");
    }
    let doc = xds_server::api::openapi();
    let doc = serde_json::to_value(&doc).unwrap();
    for path in [
        "/api/v1/proxies",
        "/api/v1/proxies/{node_id}",
        "/api/v1/proxies/{node_id}/config",
        "/api/v1/bootstrap",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} not documented"
        );
    }
    assert!(doc["components"]["schemas"]["ProxyStatus"].is_object());
}
