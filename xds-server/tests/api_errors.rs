//! The REST admin API's answers to bad requests: every one is the single JSON error shape
//! `{"error": {"code", "message", "field"?}}`, and none of them stores anything.
//! The happy paths live in `api.rs`.

mod common;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;
use xds_server::api::{AppState, router};

// === helpers ===

type Response = (StatusCode, HeaderMap, Value);

/// A router over a fresh SQLite store holding the service `web` (keep the directory alive).
async fn app_with(configure: impl FnOnce(&mut AppState)) -> (Router, TempDir) {
    let (store, dir) = common::sqlite().await;
    let mut state = AppState::new(store);
    configure(&mut state);
    let app = router(state);
    let (status, _, body) = put(&app, "/api/v1/services/web", r#"{"protocol":"http"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (app, dir)
}

async fn app() -> (Router, TempDir) {
    app_with(|_| {}).await
}

/// Sends one request; the body is parsed as JSON when there is one (`Null` otherwise).
async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>) -> Response {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Body::from(body.unwrap_or_default().to_string()))
        .unwrap();
    let (parts, body) = app.clone().oneshot(req).await.unwrap().into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {uri}: response is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (parts.status, parts.headers, json)
}

async fn get(app: &Router, uri: &str) -> Response {
    call(app, "GET", uri, None).await
}

async fn put(app: &Router, uri: &str, body: &str) -> Response {
    call(app, "PUT", uri, Some(body)).await
}

/// Asserts the one error shape with this status and code; returns the `error` object.
#[track_caller]
fn assert_error(resp: &Response, status: StatusCode, code: &str) -> Value {
    let (got, headers, body) = resp;
    assert_eq!(*got, status, "body: {body}");
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap());
    assert_eq!(content_type, Some("application/json"), "body: {body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    let err = &body["error"];
    assert_eq!(err["code"], code, "{body}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    for key in err.as_object().unwrap().keys() {
        assert!(
            ["code", "message", "field", "referrers"].contains(&key.as_str()),
            "unexpected key '{key}' in {body}"
        );
    }
    err.clone()
}

/// A PUT that must fail with 422, this code and this field, and leave `uri` absent.
async fn rejects_new(app: &Router, uri: &str, body: &str, code: &str, field: &str) {
    let resp = put(app, uri, body).await;
    let err = assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, code);
    assert_eq!(err["field"], field, "PUT {uri} {body}: {err}");
    assert_not_found(app, uri).await;
}

async fn assert_not_found(app: &Router, uri: &str) {
    assert_error(&get(app, uri).await, StatusCode::NOT_FOUND, "not_found");
}

const CLUSTER_URL: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

fn raw_cluster(resource: Value) -> String {
    json!({ "type_url": CLUSTER_URL, "resource": resource }).to_string()
}

// === malformed bodies ===

#[tokio::test]
async fn invalid_json_is_400() {
    let (app, _dir) = app().await;
    for body in [
        r#"{"protocol": "http""#,
        "",
        "protocol=http",
        "[]",
        r#"["protocol"]"#,
        "42",
        "null",
    ] {
        let resp = put(&app, "/api/v1/services/api", body).await;
        assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_json");
    }
    assert_not_found(&app, "/api/v1/services/api").await;
}

#[tokio::test]
async fn unknown_fields_are_named_by_their_path() {
    let (app, _dir) = app().await;
    let route =
        r#"{"hosts": ["*"], "rules": [{"destinations": [{"service": "web", "wieght": 5}]}]}"#;
    let field = "rules[0].destinations[0].wieght";
    rejects_new(&app, "/api/v1/routes/web", route, "unknown_field", field).await;
    let top = r#"{"protocol": "http", "lb_polcy": "random"}"#;
    rejects_new(
        &app,
        "/api/v1/services/api",
        top,
        "unknown_field",
        "lb_polcy",
    )
    .await;
    let ep = r#"{"endpoints": [{"address": "10.0.0.1", "port": 80, "zone": "z", "lables": {}}]}"#;
    let resp = put(&app, "/api/v1/services/web/endpoints", ep).await;
    let err = assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "unknown_field");
    assert_eq!(err["field"], "endpoints[0].lables");
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422_with_the_field() {
    let (app, _dir) = app().await;
    let listener = r#"{"port": "80", "protocol": "tcp", "service": "web"}"#;
    rejects_new(
        &app,
        "/api/v1/listeners/db",
        listener,
        "invalid_field",
        "port",
    )
    .await;
    rejects_new(
        &app,
        "/api/v1/services/api",
        "{}",
        "invalid_field",
        "protocol",
    )
    .await;
    let listener = r#"{"protocol": "tcp", "service": "web"}"#;
    rejects_new(
        &app,
        "/api/v1/listeners/db",
        listener,
        "invalid_field",
        "port",
    )
    .await;
    let bad_enum = r#"{"protocol": "carrier-pigeon"}"#;
    rejects_new(
        &app,
        "/api/v1/services/api",
        bad_enum,
        "invalid_field",
        "protocol",
    )
    .await;
    let bad_duration = r#"{"protocol": "http", "connect_timeout": "soon"}"#;
    rejects_new(
        &app,
        "/api/v1/services/api",
        bad_duration,
        "invalid_field",
        "connect_timeout",
    )
    .await;
    let bad_version = r#"{"protocol": "http", "version": "1"}"#;
    rejects_new(
        &app,
        "/api/v1/services/api",
        bad_version,
        "invalid_field",
        "version",
    )
    .await;
    let bad_name = r#"{"protocol": "http", "name": 7}"#;
    rejects_new(
        &app,
        "/api/v1/services/api",
        bad_name,
        "invalid_field",
        "name",
    )
    .await;
}

#[tokio::test]
async fn out_of_range_values_are_422_with_the_field() {
    let (app, _dir) = app().await;
    let listener = r#"{"port": 70000, "protocol": "tcp", "service": "web"}"#;
    rejects_new(
        &app,
        "/api/v1/listeners/db",
        listener,
        "invalid_field",
        "port",
    )
    .await;
    let route = r#"{"hosts": ["*"], "rules": [{"destinations": [
        {"service": "web"}, {"service": "web", "weight": 0}]}]}"#;
    let field = "rules[0].destinations[1].weight";
    rejects_new(&app, "/api/v1/routes/web", route, "invalid_field", field).await;
    let ep = r#"{"endpoints": [{"address": "not-an-ip", "port": 80}]}"#;
    let resp = put(&app, "/api/v1/services/web/endpoints", ep).await;
    let err = assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(err["field"], "endpoints[0].address");
    let (_, _, eps) = get(&app, "/api/v1/services/web/endpoints").await;
    assert_eq!(eps["version"], 0, "nothing stored: {eps}");
}

#[tokio::test]
async fn names_must_be_valid_and_agree_with_the_path() {
    let (app, _dir) = app().await;
    let body = r#"{"protocol": "http", "name": "other"}"#;
    rejects_new(&app, "/api/v1/services/api", body, "invalid_field", "name").await;
    assert_not_found(&app, "/api/v1/services/other").await;
    let resp = put(&app, "/api/v1/services/Bad_Name", r#"{"protocol": "http"}"#).await;
    let err = assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(err["field"], "name");
    let long = "a".repeat(64);
    let resp = put(
        &app,
        &format!("/api/v1/services/{long}"),
        r#"{"protocol": "http"}"#,
    )
    .await;
    assert_eq!(
        assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "name"
    );
    let (_, _, list) = get(&app, "/api/v1/services").await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "only web: {list}"
    );
    let same = r#"{"protocol": "http2", "name": "web"}"#;
    assert_eq!(
        put(&app, "/api/v1/services/web", same).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_and_store_nothing() {
    let (app, _dir) = app_with(|state| state.max_body_bytes = 1024).await;
    let small = r#"{"protocol": "http"}"#;
    let big = format!("{small:<2048}");
    assert_eq!(big.len(), 2048);
    let resp = put(&app, "/api/v1/services/big", &big).await;
    assert_error(&resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_not_found(&app, "/api/v1/services/big").await;
    let resp = put(&app, "/api/v1/services/web/endpoints", &big).await;
    assert_error(&resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        put(&app, "/api/v1/services/big", small).await.0,
        StatusCode::CREATED
    );
}

// === references ===

#[tokio::test]
async fn dangling_references_are_422_and_store_nothing() {
    let (app, _dir) = app().await;
    let route = r#"{"hosts": ["*"], "rules": [{"destinations": [{"service": "ghost"}]}]}"#;
    let field = "rules[0].destinations[0].service";
    rejects_new(&app, "/api/v1/routes/web", route, "invalid_field", field).await;
    let listener = r#"{"port": 10000, "protocol": "http", "routes": ["ghost"]}"#;
    rejects_new(
        &app,
        "/api/v1/listeners/ingress",
        listener,
        "invalid_field",
        "routes[0]",
    )
    .await;
    let listener = r#"{"port": 15432, "protocol": "tcp", "service": "ghost"}"#;
    rejects_new(
        &app,
        "/api/v1/listeners/db",
        listener,
        "invalid_field",
        "service",
    )
    .await;
}

#[tokio::test]
async fn deleting_a_referenced_resource_is_409_and_keeps_it() {
    let (app, _dir) = app().await;
    let route = r#"{"hosts": ["*"], "rules": [{"destinations": [{"service": "web"}]}]}"#;
    assert_eq!(
        put(&app, "/api/v1/routes/web-route", route).await.0,
        StatusCode::CREATED
    );
    let resp = call(&app, "DELETE", "/api/v1/services/web", None).await;
    let err = assert_error(&resp, StatusCode::CONFLICT, "referenced");
    assert_eq!(
        err["referrers"],
        json!([{ "kind": "routes", "name": "web-route" }])
    );
    assert_eq!(get(&app, "/api/v1/services/web").await.0, StatusCode::OK);

    let listener = r#"{"port": 10000, "protocol": "http", "routes": ["web-route"]}"#;
    assert_eq!(
        put(&app, "/api/v1/listeners/ingress", listener).await.0,
        StatusCode::CREATED
    );
    let resp = call(&app, "DELETE", "/api/v1/routes/web-route", None).await;
    let err = assert_error(&resp, StatusCode::CONFLICT, "referenced");
    assert_eq!(
        err["referrers"],
        json!([{ "kind": "listeners", "name": "ingress" }])
    );
    assert_eq!(
        get(&app, "/api/v1/routes/web-route").await.0,
        StatusCode::OK
    );
}

// === unknown paths and methods ===

#[tokio::test]
async fn unknown_paths_are_404_json() {
    let (app, _dir) = app().await;
    for uri in [
        "/nope",
        "/api/v1/widgets",
        "/api/v1/widgets/x",
        "/api/v1/services/web/extra",
        "/api/v2/services",
    ] {
        assert_error(&get(&app, uri).await, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn wrong_methods_are_405_json() {
    let (app, _dir) = app().await;
    for (method, uri) in [
        ("POST", "/api/v1/services/web"),
        ("PATCH", "/api/v1/services/web"),
        ("POST", "/api/v1/services"),
        ("DELETE", "/api/v1/services"),
        ("DELETE", "/api/v1/services/web/endpoints"),
        ("PUT", "/healthz"),
        ("POST", "/api/openapi.json"),
    ] {
        let resp = call(&app, method, uri, Some("{}")).await;
        assert_error(&resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
    assert_eq!(
        get(&app, "/api/v1/services/web").await.2["version"],
        1,
        "untouched"
    );
}

// === raw Envoy resources ===

#[tokio::test]
async fn raw_envoy_resources_are_checked_against_envoys_messages() {
    let (app, _dir) = app().await;
    let uri = "/api/v1/envoy-resources/extra-cluster";
    let cluster = json!({
        "name": "extra-cluster", "connect_timeout": "1s", "type": "STATIC",
        "load_assignment": { "cluster_name": "extra-cluster", "endpoints": [{ "lb_endpoints": [{
            "endpoint": { "address": { "socket_address": {
                "address": "127.0.0.1", "port_value": 8080 } } } }] }] }
    });

    let mut typo = cluster.clone();
    typo["conect_timeout"] = typo
        .as_object_mut()
        .unwrap()
        .remove("connect_timeout")
        .unwrap();
    rejects_new(&app, uri, &raw_cluster(typo), "invalid_field", "resource").await;
    let mut wrong_type = cluster.clone();
    wrong_type["type"] = json!("SOMETIMES");
    rejects_new(
        &app,
        uri,
        &raw_cluster(wrong_type),
        "invalid_field",
        "resource",
    )
    .await;
    let mut other_name = cluster.clone();
    other_name["name"] = json!("other-cluster");
    rejects_new(
        &app,
        uri,
        &raw_cluster(other_name),
        "invalid_field",
        "resource.name",
    )
    .await;
    let unsupported =
        json!({ "type_url": "type.googleapis.com/google.protobuf.Empty", "resource": {} });
    rejects_new(
        &app,
        uri,
        &unsupported.to_string(),
        "invalid_field",
        "type_url",
    )
    .await;
    let not_object = json!({ "type_url": CLUSTER_URL, "resource": [cluster] });
    rejects_new(
        &app,
        uri,
        &not_object.to_string(),
        "invalid_field",
        "resource",
    )
    .await;

    let (status, _, created) = put(&app, uri, &raw_cluster(cluster.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["resource"], cluster, "served verbatim");
    assert_eq!(created["type_url"], CLUSTER_URL);
}
