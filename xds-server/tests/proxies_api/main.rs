//! The read-only and operations API driven in-process: `/api/v1/proxies` over fake streams
//! registered straight in the status registry, a proxy's computed config, `/metrics`,
//! `/api/v1/bootstrap` (checked by the real Envoy in `--mode validate` when `ENVOY_BIN` is set),
//! and the `status` block of mesh objects (`object_status.rs`).

mod bootstrap;
#[path = "../common/mod.rs"]
mod common;
mod metrics;
mod object_status;

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;
use xds_core::type_url;
use xds_server::{
    api::{AppState, router},
    model::Mesh,
    status::{ProxyStatus, SyncState, TypeStatus, Variant},
    translate::{Resources, Selection, translate},
};

// === helpers ===

pub(crate) async fn state() -> (AppState, TempDir) {
    let (store, dir) = common::sqlite().await;
    (AppState::new(store), dir)
}

/// Sends a GET; returns the status, headers and body text.
pub(crate) async fn get_text(
    app: &Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::builder().method("GET").uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let (parts, body) = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
        .into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

/// A GET whose answer must be JSON.
async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (status, _, text) = get_text(app, uri, &[]).await;
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {uri}: not JSON ({e}): {text}"));
    (status, json)
}

pub(crate) fn type_status(
    status: SyncState,
    sent: &str,
    acked: Option<&str>,
    error: Option<&str>,
) -> TypeStatus {
    TypeStatus {
        version_sent: Some(sent.to_string()),
        version_acked: acked.map(str::to_string),
        status,
        error_detail: error.map(str::to_string),
        resources_sent: 1,
    }
}

pub(crate) fn proxy(
    node_id: &str,
    variant: Variant,
    service: &'static str,
    types: Vec<(&str, TypeStatus)>,
) -> ProxyStatus {
    ProxyStatus {
        node_id: node_id.to_string(),
        cluster: "ingress".to_string(),
        metadata: json!({ "role": "edge" }),
        variant,
        service,
        connected_since: chrono::Utc::now(),
        types: types
            .into_iter()
            .map(|(t, s)| (t.to_string(), Box::new(s)))
            .collect(),
        resources: None,
        held_back: vec![],
    }
}

/// A TCP listener proxying to one service: a Listener, a Cluster and its assignment.
fn resources() -> Resources {
    let mesh = Mesh {
        revision: 3,
        services: BTreeMap::from([(
            "postgres".to_string(),
            serde_json::from_value(json!({ "protocol": "tcp" })).unwrap(),
        )]),
        listeners: BTreeMap::from([(
            "db".to_string(),
            serde_json::from_value(
                json!({ "port": 15432, "protocol": "tcp", "service": "postgres" }),
            )
            .unwrap(),
        )]),
        ..Mesh::default()
    };
    let selection = Selection {
        listeners: vec!["db".to_string()],
        ..Selection::default()
    };
    translate(&mesh, &selection)
}

// === proxies ===

#[tokio::test]
async fn proxies_list_reports_sync_state_per_type() {
    let (state, _dir) = state().await;
    let app = router(state.clone());
    assert_eq!(
        get(&app, "/api/v1/proxies").await,
        (StatusCode::OK, json!({ "items": [] }))
    );

    let synced = type_status(SyncState::Synced, "v1", Some("v1"), None);
    let stale = type_status(SyncState::Stale, "v2", Some("v1"), None);
    let nacked = type_status(
        SyncState::Nacked,
        "v3",
        Some("v2"),
        Some("cluster 'web': bad lb"),
    );
    let first = state.registry.connect(proxy(
        "edge-1",
        Variant::Sotw,
        "ads",
        vec![(type_url::CLUSTER, synced), (type_url::LISTENER, stale)],
    ));
    let _second = state.registry.connect(proxy(
        "edge-2",
        Variant::Delta,
        "ads",
        vec![(type_url::CLUSTER, nacked)],
    ));

    let (status, body) = get(&app, "/api/v1/proxies").await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    let (a, b) = (&items[0], &items[1]);
    assert_eq!(a["node_id"], "edge-1", "oldest first: {body}");
    assert_eq!(a["cluster"], "ingress");
    assert_eq!(a["metadata"], json!({ "role": "edge" }));
    assert_eq!(a["variant"], "sotw");
    assert_eq!(a["service"], "ads");
    assert!(a["connected_since"].is_string());
    let cds = &a["types"][type_url::CLUSTER];
    assert_eq!(cds["status"], "SYNCED");
    assert_eq!(cds["version_sent"], "v1");
    assert_eq!(cds["version_acked"], "v1");
    assert!(cds.get("error_detail").is_none(), "{cds}");
    assert_eq!(a["types"][type_url::LISTENER]["status"], "STALE");
    assert_eq!(b["variant"], "delta");
    let nack = &b["types"][type_url::CLUSTER];
    assert_eq!(nack["status"], "NACKED");
    assert_eq!(nack["error_detail"], "cluster 'web': bad lb");
    assert!(
        a.get("resources").is_none() && a.get("node").is_none(),
        "{a}"
    );

    drop(first);
    let (_, body) = get(&app, "/api/v1/proxies").await;
    assert_eq!(
        body["items"].as_array().unwrap().len(),
        1,
        "a closed stream is gone: {body}"
    );
    let (status, body) = get(&app, "/api/v1/proxies?limit=1").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_query"))
    );
}

#[tokio::test]
async fn proxies_get_merges_a_nodes_streams_and_404s_unknown_nodes() {
    let (state, _dir) = state().await;
    let app = router(state.clone());
    let (status, body) = get(&app, "/api/v1/proxies/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nobody"),
        "{body}"
    );

    let synced = || type_status(SyncState::Synced, "v1", Some("v1"), None);
    let _cds = state.registry.connect(proxy(
        "edge 1/a",
        Variant::Sotw,
        "cds",
        vec![(type_url::CLUSTER, synced())],
    ));
    let _lds = state.registry.connect(proxy(
        "edge 1/a",
        Variant::Sotw,
        "lds",
        vec![(type_url::LISTENER, synced())],
    ));
    let _other = state
        .registry
        .connect(proxy("edge-2", Variant::Sotw, "ads", vec![]));
    let (status, body) = get(&app, "/api/v1/proxies/edge%201%2Fa").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["node_id"], "edge 1/a");
    assert_eq!(body["service"], "lds", "the newest stream: {body}");
    assert_eq!(body["streams"], 2);
    assert_eq!(body["types"][type_url::LISTENER]["status"], "SYNCED");
    assert_eq!(
        body["types"][type_url::CLUSTER]["status"],
        "SYNCED",
        "types merge over the node's streams: {body}"
    );

    // The list shows each node once, merged the same way.
    let (_, list) = get(&app, "/api/v1/proxies").await;
    let items = list["items"].as_array().unwrap();
    let nodes: Vec<&str> = items
        .iter()
        .map(|i| i["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["edge 1/a", "edge-2"]);
    assert_eq!(items[0]["streams"], 2);
    assert_eq!(items[0], body);
}

#[tokio::test]
async fn proxy_config_renders_the_computed_resources() {
    let (state, _dir) = state().await;
    let app = router(state.clone());
    assert_eq!(
        get(&app, "/api/v1/proxies/edge-1/config").await.0,
        StatusCode::NOT_FOUND
    );

    let waiting = state
        .registry
        .connect(proxy("edge-1", Variant::Sotw, "ads", vec![]));
    let (status, body) = get(&app, "/api/v1/proxies/edge-1/config").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("unavailable")),
        "{body}"
    );

    let resources = Arc::new(resources());
    waiting.update(|s| s.resources = Some(resources.clone()));
    let (status, body) = get(&app, "/api/v1/proxies/edge-1/config").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (type_url, name) in [
        (type_url::LISTENER, "db"),
        (type_url::CLUSTER, "postgres"),
        (type_url::ENDPOINT, "postgres"),
    ] {
        let entry = &body[type_url][name];
        let expected = &resources.by_type[type_url][name];
        assert_eq!(
            entry["version"],
            expected.version.as_str(),
            "{type_url} {name}: {body}"
        );
        assert!(entry["resource"].is_object(), "{type_url} {name}: {body}");
    }
    assert!(body["warnings"].is_array(), "{body}");
}
