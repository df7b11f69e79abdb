//! The REST admin API's answers to bad requests (malformed bodies, bad queries, stale versions,
//! dangling and blocking references, unknown paths and methods, missing credentials): every one
//! is the single JSON error shape `{"error": {"code", "message", "field"?}}`, and none stores
//! anything. The happy paths live in `api.rs`.

mod common;

use std::sync::Arc;

use axum::{
    Router,
    http::{StatusCode, header},
};
use serde_json::{Value, json};
use tempfile::TempDir;
use xds_server::api::{AppState, router};

// === helpers ===

use common::http::{Response, assert_error, call};

/// A router over a fresh SQLite store holding the service `web` (keep the directory alive).
async fn app_with(configure: impl FnOnce(&mut AppState)) -> (Router, TempDir) {
    let (store, dir) = common::sqlite().await;
    let mut state = AppState::new(store);
    configure(&mut state);
    let app = router(state);
    let (status, _, body) = put(&app, "/api/v1/services/web", HTTP).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (app, dir)
}

async fn app() -> (Router, TempDir) {
    app_with(|_| {}).await
}

async fn get(app: &Router, uri: &str) -> Response {
    call(app, "GET", uri, None, &[]).await
}

async fn put(app: &Router, uri: &str, body: &str) -> Response {
    call(app, "PUT", uri, Some(body), &[]).await
}

/// A request with an optional `If-Match`.
async fn call_if(
    app: &Router,
    method: &str,
    uri: &str,
    body: &str,
    if_match: Option<&str>,
) -> Response {
    let headers: Vec<(&str, &str)> = if_match.map(|v| ("if-match", v)).into_iter().collect();
    let body = Some(body).filter(|b| !b.is_empty());
    call(app, method, uri, body, &headers).await
}

async fn assert_not_found(app: &Router, uri: &str) {
    assert_error(&get(app, uri).await, StatusCode::NOT_FOUND, "not_found");
}

/// A PUT to `/api/v1/{path}` that must fail with 422, `code` and `field`, and store nothing.
async fn rejects(app: &Router, path: &str, body: &str, code: &str, field: &str) {
    let uri = format!("/api/v1/{path}");
    let err = assert_error(
        &put(app, &uri, body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
    );
    assert_eq!(err["field"], field, "PUT {uri} {body}: {err}");
    if path.ends_with("/endpoints") {
        assert_eq!(get(app, &uri).await.2["version"], 0, "endpoints stored");
    } else {
        assert_not_found(app, &uri).await;
    }
}

/// [`rejects`] with `invalid_field`.
async fn invalid(app: &Router, path: &str, body: &str, field: &str) {
    rejects(app, path, body, "invalid_field", field).await;
}

const HTTP: &str = r#"{"protocol": "http"}"#;
const CLUSTER_URL: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

fn raw_cluster(resource: &Value) -> String {
    json!({ "type_url": CLUSTER_URL, "resource": resource }).to_string()
}

// === malformed bodies ===

#[tokio::test]
async fn invalid_json_is_400() {
    let (app, _dir) = app().await;
    let not_objects = ["[]", r#"["protocol"]"#, "42", "null", r#""http""#];
    let not_json = [
        r#"{"protocol": "http""#,
        "",
        "protocol=http",
        r#"{"protocol": "http"} {}"#,
    ];
    for body in not_objects.into_iter().chain(not_json) {
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
    rejects(&app, "routes/web", route, "unknown_field", field).await;
    let service = r#"{"protocol": "http", "lb_polcy": "random"}"#;
    rejects(&app, "services/api", service, "unknown_field", "lb_polcy").await;
    let eps = r#"{"endpoints": [{"address": "10.0.0.1", "port": 80, "lables": {}}]}"#;
    let field = "endpoints[0].lables";
    rejects(&app, "services/web/endpoints", eps, "unknown_field", field).await;
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422_with_the_field() {
    let (app, _dir) = app().await;
    for (path, body, field) in [
        (
            "listeners/db",
            r#"{"port": "80", "protocol": "tcp", "service": "web"}"#,
            "port",
        ),
        (
            "listeners/db",
            r#"{"protocol": "tcp", "service": "web"}"#,
            "port",
        ),
        ("services/api", "{}", "protocol"),
        (
            "services/api",
            r#"{"protocol": "carrier-pigeon"}"#,
            "protocol",
        ),
        (
            "services/api",
            r#"{"protocol": "http", "connect_timeout": "soon"}"#,
            "connect_timeout",
        ),
        (
            "services/api",
            r#"{"protocol": "http", "version": "1"}"#,
            "version",
        ),
        ("services/api", r#"{"protocol": "http", "name": 7}"#, "name"),
        (
            "routes/web",
            r#"{"hosts": ["*"], "rules": [{"timeout": "1s"}]}"#,
            "rules[0].destinations",
        ),
    ] {
        invalid(&app, path, body, field).await;
    }
}

#[tokio::test]
async fn out_of_range_values_are_422_with_the_field() {
    let (app, _dir) = app().await;
    let listener = r#"{"port": 70000, "protocol": "tcp", "service": "web"}"#;
    invalid(&app, "listeners/db", listener, "port").await;
    let route = r#"{"hosts": ["*"], "rules": [{"destinations": [
        {"service": "web"}, {"service": "web", "weight": 0}]}]}"#;
    invalid(&app, "routes/web", route, "rules[0].destinations[1].weight").await;
    let eps = r#"{"endpoints": [{"address": "not-an-ip", "port": 80}]}"#;
    invalid(&app, "services/web/endpoints", eps, "endpoints[0].address").await;
}

#[tokio::test]
async fn names_must_be_valid_and_agree_with_the_path() {
    let (app, _dir) = app().await;
    let other = r#"{"protocol": "http", "name": "other"}"#;
    invalid(&app, "services/api", other, "name").await;
    assert_not_found(&app, "/api/v1/services/other").await;
    let long = format!("services/{}", "a".repeat(64));
    for path in ["services/Bad_Name", "services/-web", long.as_str()] {
        let uri = format!("/api/v1/{path}");
        let resp = put(&app, &uri, HTTP).await;
        let err = assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(err["field"], "name", "{uri}");
    }
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
    let big = format!("{HTTP:<2048}");
    assert_eq!(big.len(), 2048);
    for uri in ["/api/v1/services/big", "/api/v1/services/web/endpoints"] {
        let resp = put(&app, uri, &big).await;
        assert_error(&resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
    assert_not_found(&app, "/api/v1/services/big").await;
    let eps = get(&app, "/api/v1/services/web/endpoints").await;
    assert_eq!(eps.2["version"], 0, "{}", eps.2);
    assert_eq!(
        put(&app, "/api/v1/services/big", HTTP).await.0,
        StatusCode::CREATED
    );
}

// === queries ===

#[tokio::test]
async fn bad_list_queries_are_400() {
    let (app, _dir) = app().await;
    for query in [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "limit=-1",
        "colour=red",
        "page_token=UPPER",
        "page_token=",
    ] {
        let resp = get(&app, &format!("/api/v1/services?{query}")).await;
        assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_query");
    }
    let resp = get(&app, "/api/v1/services?limit=1000").await;
    assert_eq!(resp.0, StatusCode::OK);
}

// === version conflicts ===

#[tokio::test]
async fn stale_versions_conflict_and_change_nothing() {
    let (app, _dir) = app().await;
    let uri = "/api/v1/services/web";
    let http2 = put(&app, uri, r#"{"protocol": "http2"}"#).await;
    assert_eq!(http2.2["version"], 2);
    let grpc = r#"{"protocol": "grpc"}"#;
    for (body, if_match) in [
        (r#"{"protocol": "grpc", "version": 1}"#, None),
        (r#"{"protocol": "grpc", "version": 0}"#, None),
        (grpc, Some("1")),
        (grpc, Some("\"1\"")),
        (grpc, Some("0")),
    ] {
        let resp = call_if(&app, "PUT", uri, body, if_match).await;
        assert_error(&resp, StatusCode::CONFLICT, "conflict");
    }
    for (body, if_match) in [
        (r#"{"protocol": "grpc", "version": 2}"#, Some("1")),
        (r#"{"protocol": "grpc", "version": 1}"#, Some("2")),
        (grpc, Some("yesterday")),
        (grpc, Some("-1")),
    ] {
        let resp = call_if(&app, "PUT", uri, body, if_match).await;
        assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_header");
    }
    let (_, headers, got) = get(&app, uri).await;
    let unchanged = (&json!("http2"), &json!(2));
    assert_eq!((&got["protocol"], &got["version"]), unchanged, "{got}");
    assert_eq!(headers[header::ETAG], "\"2\"");

    let tcp4 = r#"{"protocol": "tcp", "version": 4}"#;
    let fresh = [(grpc, Some("2")), (grpc, Some("\"3\"")), (tcp4, None)];
    for (n, (body, if_match)) in fresh.into_iter().enumerate() {
        let (status, _, ok) = call_if(&app, "PUT", uri, body, if_match).await;
        assert_eq!(
            (status, &ok["version"]),
            (StatusCode::OK, &json!(n + 3)),
            "{ok}"
        );
    }
    let new = r#"{"protocol": "tcp", "version": 0}"#;
    assert_eq!(
        put(&app, "/api/v1/services/fresh", new).await.0,
        StatusCode::CREATED
    );
    let resp = put(&app, "/api/v1/services/other", tcp4).await;
    assert_error(&resp, StatusCode::CONFLICT, "conflict");
    assert_not_found(&app, "/api/v1/services/other").await;
}

#[tokio::test]
async fn deletes_honour_the_expected_version() {
    let (app, _dir) = app().await;
    let uri = "/api/v1/services/web";
    assert_eq!(put(&app, uri, HTTP).await.2["version"], 2);
    let (conflict, bad) = (StatusCode::CONFLICT, StatusCode::BAD_REQUEST);
    for (query, if_match, status, code) in [
        ("", Some("1"), conflict, "conflict"),
        ("?version=1", None, conflict, "conflict"),
        ("?version=two", None, bad, "invalid_query"),
        ("?force=true", None, bad, "invalid_query"),
        ("?version=2", Some("1"), bad, "invalid_header"),
        ("", Some("0"), bad, "invalid_header"),
    ] {
        let resp = call_if(&app, "DELETE", &format!("{uri}{query}"), "", if_match).await;
        assert_error(&resp, status, code);
    }
    assert_eq!(get(&app, uri).await.2["version"], 2, "still there");
    let resp = call(&app, "DELETE", &format!("{uri}?version=2"), None, &[]).await;
    assert_eq!((resp.0, resp.2), (StatusCode::NO_CONTENT, Value::Null));
    assert_not_found(&app, uri).await;

    assert_eq!(put(&app, uri, HTTP).await.0, StatusCode::CREATED);
    let resp = call_if(&app, "DELETE", uri, "", Some("\"1\"")).await;
    assert_eq!(resp.0, StatusCode::NO_CONTENT, "{}", resp.2);
}

// === references ===

#[tokio::test]
async fn dangling_references_are_422_and_store_nothing() {
    let (app, _dir) = app().await;
    let route = r#"{"hosts": ["*"], "rules": [{"destinations": [{"service": "ghost"}]}]}"#;
    invalid(
        &app,
        "routes/web",
        route,
        "rules[0].destinations[0].service",
    )
    .await;
    let http = r#"{"port": 10000, "protocol": "http", "routes": ["ghost"]}"#;
    invalid(&app, "listeners/ingress", http, "routes[0]").await;
    let tcp = r#"{"port": 15432, "protocol": "tcp", "service": "ghost"}"#;
    invalid(&app, "listeners/db", tcp, "service").await;
}

#[tokio::test]
async fn deleting_a_referenced_resource_is_409_and_keeps_it() {
    let (app, _dir) = app().await;
    let route = r#"{"hosts": ["*"], "rules": [{"destinations": [{"service": "web"}]}]}"#;
    let listener = r#"{"port": 10000, "protocol": "http", "routes": ["web-route"]}"#;
    for (target, referrer, body) in [
        ("services/web", "routes/web-route", route),
        ("routes/web-route", "listeners/ingress", listener),
    ] {
        let created = put(&app, &format!("/api/v1/{referrer}"), body).await;
        assert_eq!(created.0, StatusCode::CREATED, "{}", created.2);
        let uri = format!("/api/v1/{target}");
        let resp = call(&app, "DELETE", &uri, None, &[]).await;
        let err = assert_error(&resp, StatusCode::CONFLICT, "referenced");
        let (kind, name) = referrer.split_once('/').unwrap();
        assert_eq!(err["referrers"], json!([{ "kind": kind, "name": name }]));
        assert_eq!(
            get(&app, &uri).await.0,
            StatusCode::OK,
            "{uri} is still there"
        );
    }
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
        assert_not_found(&app, uri).await;
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
        let resp = call(&app, method, uri, Some("{}"), &[]).await;
        assert_error(&resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert!(
            resp.1.contains_key(header::ALLOW),
            "{method} {uri}: no Allow"
        );
    }
    let resp = call(&app, "PATCH", "/api/v1/services/web", Some("{}"), &[]).await;
    let allow = resp.1[header::ALLOW].to_str().unwrap().to_string();
    for method in ["GET", "PUT", "DELETE"] {
        assert!(
            allow.split(',').any(|m| m.trim() == method),
            "Allow: {allow}"
        );
    }
    let web = get(&app, "/api/v1/services/web").await;
    assert_eq!(web.2["version"], 1, "untouched");
}

// === the admin token ===

#[tokio::test]
async fn the_admin_token_guards_everything_but_the_probes() {
    let (store, _dir) = common::sqlite().await;
    let mut state = AppState::new(store);
    state.admin_token = Some(Arc::from("s3cret"));
    let app = router(state);
    let uri = "/api/v1/services/web";
    let unauthorized = |resp: &Response| {
        assert_error(resp, StatusCode::UNAUTHORIZED, "unauthorized");
    };

    unauthorized(&get(&app, "/api/v1/services").await);
    unauthorized(&put(&app, uri, HTTP).await);
    for wrong in [
        "Bearer nope",
        "Bearer s3cret2",
        "Bearer s3cre",
        "Bearer ",
        "s3cret",
        "Basic czNjcmV0",
    ] {
        let auth = [("authorization", wrong)];
        unauthorized(&call(&app, "GET", "/api/v1/services", None, &auth).await);
        unauthorized(&call(&app, "PUT", uri, Some(HTTP), &auth).await);
    }
    unauthorized(&get(&app, "/api/openapi.json").await);

    let good = [("authorization", "Bearer s3cret")];
    let resp = call(&app, "GET", uri, None, &good).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let (status, _, created) = call(&app, "PUT", uri, Some(HTTP), &good).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, _, list) = call(&app, "GET", "/api/v1/services", None, &good).await;
    assert_eq!(
        (status, &list["items"][0]["name"]),
        (StatusCode::OK, &json!("web"))
    );
    let resp = call(&app, "GET", "/api/openapi.json", None, &good).await;
    assert_eq!(resp.0, StatusCode::OK);
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(get(&app, probe).await.0, StatusCode::OK, "{probe}");
    }
}

// === raw Envoy resources ===

#[tokio::test]
async fn raw_envoy_resources_are_checked_against_envoys_messages() {
    let (app, _dir) = app().await;
    let path = "envoy-resources/extra-cluster";
    let cluster = json!({
        "name": "extra-cluster", "connect_timeout": "1s", "type": "STATIC",
        "load_assignment": { "cluster_name": "extra-cluster", "endpoints": [{ "lb_endpoints": [{
            "endpoint": { "address": { "socket_address": {
                "address": "127.0.0.1", "port_value": 8080 } } } }] }] }
    });
    let with = |key: &str, value: Value| {
        let mut c = cluster.clone();
        c[key] = value;
        raw_cluster(&c)
    };
    let mut typo = cluster.clone();
    typo.as_object_mut().unwrap().remove("connect_timeout");
    typo["conect_timeout"] = json!("1s");
    invalid(&app, path, &raw_cluster(&typo), "resource").await;
    invalid(&app, path, &with("type", json!("SOMETIMES")), "resource").await;
    invalid(&app, path, &with("connect_timeout", json!(1)), "resource").await;
    invalid(
        &app,
        path,
        &with("name", json!("other-cluster")),
        "resource.name",
    )
    .await;
    let empty = json!({ "type_url": "type.googleapis.com/google.protobuf.Empty", "resource": {} });
    invalid(&app, path, &empty.to_string(), "type_url").await;
    let array = json!({ "type_url": CLUSTER_URL, "resource": [cluster] });
    invalid(&app, path, &array.to_string(), "resource").await;

    let uri = format!("/api/v1/{path}");
    let (status, _, created) = put(&app, &uri, &raw_cluster(&cluster)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["resource"], cluster, "served verbatim");
    assert_eq!(created["type_url"], CLUSTER_URL);
}
