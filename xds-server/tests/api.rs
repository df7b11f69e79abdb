//! The REST admin API driven in-process (no socket): CRUD for every kind, endpoints,
//! pagination, concurrent writers, probes and the OpenAPI document. Malformed input, version
//! conflicts, auth and the other error answers live in `api_errors.rs`.

mod common;

use std::sync::Arc;

use axum::{
    Router,
    http::{StatusCode, header},
};
use serde_json::{Value, json};
use tempfile::TempDir;
use xds_server::{
    api::{AppState, router},
    store::Store,
};

// === helpers ===

use common::http::{Response, assert_error, call};

/// A router over a fresh SQLite store (keep the directory alive as long as the router).
async fn app() -> (Router, TempDir) {
    let (store, dir) = common::sqlite().await;
    (router(AppState::new(store)), dir)
}

async fn get(app: &Router, uri: &str) -> Response {
    call(app, "GET", uri, None, &[]).await
}

async fn put(app: &Router, uri: &str, body: &Value) -> Response {
    call(app, "PUT", uri, Some(&body.to_string()), &[]).await
}

async fn delete(app: &Router, uri: &str) -> Response {
    call(app, "DELETE", uri, None, &[]).await
}

/// PUT that must succeed (200 or 201); returns the resource.
async fn put_ok(app: &Router, uri: &str, body: &Value) -> Value {
    let (status, _, json) = put(app, uri, body).await;
    assert!(status.is_success(), "PUT {uri} {body}: {status} {json}");
    json
}

async fn assert_missing(app: &Router, uri: &str) {
    assert_error(&get(app, uri).await, StatusCode::NOT_FOUND, "not_found");
}

/// The response without the envelope fields and the status: what the client sent as the spec.
fn spec_of(resource: &Value) -> Value {
    let mut obj = resource.as_object().unwrap().clone();
    for key in ["name", "version", "created_at", "updated_at", "status"] {
        obj.remove(key);
    }
    Value::Object(obj)
}

/// A GET answer without its read-only `status` block: what a PUT answered.
fn stored_of(resource: &Value) -> Value {
    let mut obj = resource.as_object().unwrap().clone();
    obj.remove("status");
    Value::Object(obj)
}

/// The status of an object no connected proxy has anything of.
fn idle() -> Value {
    json!({ "proxies": 0, "received": 0, "accepted": 0, "rejected": [] })
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

fn rfc3339(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{v} is not RFC 3339: {e}"))
}

const CLUSTER_URL: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

/// A STATIC Envoy cluster in proto3 JSON.
fn static_cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name, "connect_timeout": "1s", "type": "STATIC",
        "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [{
            "endpoint": { "address": { "socket_address": {
                "address": "127.0.0.1", "port_value": port } } } }] }] }
    })
}

/// Two canonical specs (exactly as the server prints them back) for `kind`, named `name`.
/// Routes use the service `shared`; listeners the route `shared-route`.
fn specs(kind: &str, name: &str) -> (Value, Value) {
    match kind {
        "services" => (
            json!({ "protocol": "http" }),
            json!({ "protocol": "grpc", "lb_policy": "least_request", "connect_timeout": "2s" }),
        ),
        "routes" => (
            json!({ "hosts": [format!("{name}.example.com")],
                    "rules": [{ "match": {}, "destinations": [{ "service": "shared", "weight": 1 }],
                                "hash_policy": [{ "header": "x-user", "terminal": true }] }] }),
            json!({ "hosts": ["*"], "rules": [{ "match": { "path": { "prefix": "/api/" } },
                    "destinations": [{ "service": "shared", "weight": 5 }], "timeout": "5s" }] }),
        ),
        "listeners" => (
            json!({ "address": "0.0.0.0", "port": 10000, "protocol": "http",
                    "routes": ["shared-route"], "selector": {} }),
            json!({ "address": "127.0.0.1", "port": 15432, "protocol": "tcp",
                    "service": "shared", "selector": { "node_cluster": "db" } }),
        ),
        "envoy-resources" => (
            json!({ "type_url": CLUSTER_URL, "resource": static_cluster(name, 8080), "selector": {} }),
            json!({ "type_url": CLUSTER_URL, "resource": static_cluster(name, 9090),
                    "selector": { "node_cluster": "ingress" } }),
        ),
        other => panic!("no fixture for {other}"),
    }
}

/// The service `shared` and the route `shared-route` that the fixtures of other kinds name.
async fn create_shared(app: &Router) {
    let service = specs("services", "shared").0;
    put_ok(app, "/api/v1/services/shared", &service).await;
    let route = specs("routes", "shared-route").0;
    put_ok(app, "/api/v1/routes/shared-route", &route).await;
}

// === CRUD for every kind ===

async fn every_kind_supports_create_replace_get_list_delete(store: Arc<dyn Store>) {
    let app = router(AppState::new(store));
    create_shared(&app).await;
    for kind in ["services", "routes", "listeners", "envoy-resources"] {
        let uri = |name: &str| format!("/api/v1/{kind}/{name}");
        let (v1, v2) = specs(kind, "b-item");

        let (status, _, created) = put(&app, &uri("b-item"), &v1).await;
        assert_eq!(status, StatusCode::CREATED, "{kind}: {created}");
        assert_eq!(created["name"], "b-item", "{kind}");
        assert_eq!(created["version"], 1, "{kind}");
        let created_at = rfc3339(&created["created_at"]);
        assert_eq!(created_at, rfc3339(&created["updated_at"]), "{kind}");
        assert_eq!(spec_of(&created), v1, "{kind}: the spec fields, flat");

        let (status, headers, replaced) = put(&app, &uri("b-item"), &v2).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {replaced}");
        assert_eq!(headers[header::ETAG], "\"2\"", "{kind}");
        assert_eq!(replaced["version"], 2, "{kind}");
        assert_eq!(replaced["created_at"], created["created_at"], "{kind}");
        assert!(rfc3339(&replaced["updated_at"]) >= created_at, "{kind}");
        assert_eq!(spec_of(&replaced), v2, "{kind}");

        let (status, headers, got) = get(&app, &uri("b-item")).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {got}");
        assert_eq!(headers[header::ETAG], "\"2\"", "{kind}");
        assert_eq!(
            stored_of(&got),
            replaced,
            "{kind}: GET returns what PUT returned, and the status"
        );
        assert_eq!(got["status"], idle(), "{kind}: no proxy is connected");
        assert!(
            replaced.get("status").is_none(),
            "{kind}: a PUT answers without it"
        );

        assert_missing(&app, &uri("missing")).await;

        let (a1, _) = specs(kind, "a-item");
        put_ok(&app, &uri("a-item"), &a1).await;
        let (status, _, list) = get(&app, &format!("/api/v1/{kind}")).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {list}");
        let mut expected = vec!["a-item", "b-item"];
        expected.extend(match kind {
            "services" => Some("shared"),
            "routes" => Some("shared-route"),
            _ => None,
        });
        assert_eq!(names(&list), expected, "{kind}: name order");
        assert_eq!(list["next_page_token"], Value::Null, "{kind}");
        assert_eq!(list["items"][1], got, "{kind}: items are whole resources");

        for name in ["a-item", "b-item"] {
            let (status, _, body) = delete(&app, &uri(name)).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{kind}: {body}");
            assert_eq!(body, Value::Null, "{kind}: 204 has no body");
            assert_missing(&app, &uri(name)).await;
        }
        let resp = delete(&app, &uri("b-item")).await;
        assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn crud_sqlite() {
    let (store, _dir) = common::sqlite().await;
    every_kind_supports_create_replace_get_list_delete(store).await;
}

#[tokio::test]
async fn crud_postgres() {
    if let Some((store, _url)) = common::postgres().await {
        every_kind_supports_create_replace_get_list_delete(store).await;
    }
}

#[tokio::test]
async fn design_examples_are_accepted_and_round_trip() {
    let (app, _dir) = app().await;
    let examples = [
        ("/api/v1/services/postgres", json!({ "protocol": "tcp" })),
        (
            "/api/v1/services/web",
            json!({ "protocol": "http", "lb_policy": "round_robin", "connect_timeout": "1s",
                "circuit_breaker": { "max_connections": 1024, "max_pending_requests": 1024,
                                     "max_requests": 1024, "max_retries": 3 },
                "outlier_detection": { "consecutive_5xx": 5, "interval": "10s",
                                       "base_ejection_time": "30s", "max_ejection_percent": 10 },
                "health_check": { "path": "/healthz", "interval": "5s", "timeout": "1s",
                                  "healthy_threshold": 1, "unhealthy_threshold": 3 } }),
        ),
        (
            "/api/v1/services/web/endpoints",
            json!({ "endpoints": [{ "address": "127.0.0.1", "port": 8081, "weight": 1, "zone": "z1",
                                    "labels": { "version": "v1" }, "health": "healthy" }] }),
        ),
        (
            "/api/v1/routes/web",
            json!({ "hosts": ["web.example.com", "*"], "rules": [{
                "match": { "path": { "prefix": "/api/" },
                           "headers": [{ "name": "x-canary", "exact": "1" }], "method": "GET" },
                "destinations": [
                    { "service": "web", "weight": 80, "subset": { "version": "v1" } },
                    { "service": "web", "weight": 20, "subset": { "version": "v2" } }],
                "timeout": "5s",
                "retries": { "attempts": 2, "per_try_timeout": "1s",
                             "retry_on": ["5xx", "gateway-error", "connect-failure", "reset"],
                             "backoff": { "base_interval": "25ms", "max_interval": "250ms" } },
                "rewrite": { "prefix": "/" },
                "request_headers": { "set": { "x-from": "mesh" }, "remove": ["x-debug"] },
                "response_headers": { "set": {}, "remove": [] } }] }),
        ),
        (
            "/api/v1/listeners/ingress",
            json!({ "address": "0.0.0.0", "port": 10000, "protocol": "http", "routes": ["web"],
                    "selector": { "node_id": "ingress-1", "node_cluster": "ingress",
                                  "metadata": { "role": "edge" } } }),
        ),
        (
            "/api/v1/listeners/db",
            json!({ "port": 15432, "protocol": "tcp", "service": "postgres", "selector": {} }),
        ),
        (
            "/api/v1/envoy-resources/extra-cluster",
            json!({ "type_url": CLUSTER_URL, "resource": static_cluster("extra-cluster", 8080),
                    "selector": { "node_cluster": "ingress" } }),
        ),
    ];
    for (uri, body) in &examples {
        let (status, _, created) = put(&app, uri, body).await;
        assert_eq!(status, StatusCode::CREATED, "PUT {uri}: {created}");
    }
    // GET, then PUT the very same JSON back (name, version, created_at, updated_at included).
    for (uri, _) in &examples {
        let (_, _, before) = get(&app, uri).await;
        let (status, _, after) = call(&app, "PUT", uri, Some(&before.to_string()), &[]).await;
        assert_eq!(status, StatusCode::OK, "PUT {uri} {before}: {after}");
        assert_eq!(after["version"], 2, "{uri}");
        assert_eq!(spec_of(&after), spec_of(&before), "{uri}: spec unchanged");
    }
}

// === endpoints ===

#[tokio::test]
async fn endpoints_are_replaced_as_a_whole_and_go_with_their_service() {
    let (app, _dir) = app().await;
    let uri = "/api/v1/services/web/endpoints";
    assert_missing(&app, uri).await;
    let three = json!({ "endpoints": [
        { "address": "10.0.0.1", "port": 80 }, { "address": "10.0.0.2", "port": 80 },
        { "address": "10.0.0.3", "port": 80, "zone": "z1" }] });
    let resp = put(&app, uri, &three).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    assert_missing(&app, "/api/v1/services/web").await;

    put_ok(&app, "/api/v1/services/web", &json!({ "protocol": "http" })).await;
    let (status, _, empty) = get(&app, uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["endpoints"], json!([]), "{empty}");
    assert_eq!(empty["version"], 0, "{empty}");

    let (status, _, set) = put(&app, uri, &three).await;
    assert_eq!(status, StatusCode::CREATED, "{set}");
    assert_eq!(set["version"], 1);
    assert_eq!(set["endpoints"].as_array().unwrap().len(), 3);

    let one = json!({ "endpoints": [{ "address": "10.0.0.9", "port": 8080, "weight": 3 }] });
    let (status, _, replaced) = put(&app, uri, &one).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    let (status, headers, got) = get(&app, uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ETAG], "\"2\"");
    assert_eq!(got["version"], 2);
    assert_eq!(
        got["endpoints"],
        json!([{ "address": "10.0.0.9", "port": 8080, "weight": 3, "health": "healthy" }]),
        "only the second PUT's endpoints remain"
    );

    let resp = delete(&app, "/api/v1/services/web").await;
    assert_eq!(resp.0, StatusCode::NO_CONTENT, "{}", resp.2);
    assert_missing(&app, uri).await;
    put_ok(&app, "/api/v1/services/web", &json!({ "protocol": "http" })).await;
    let (status, _, again) = get(&app, uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&again["endpoints"], &again["version"]),
        (&json!([]), &json!(0)),
        "the old endpoints went with the service: {again}"
    );
}

// === pagination ===

/// Five services in pages of two: three pages, no duplicates, no gaps, byte order (`-` sorts
/// before digits, digits before letters) on every backend.
async fn lists_page_through_in_name_order(store: Arc<dyn Store>) {
    let app = router(AppState::new(store));
    for name in ["svc1", "svc-b", "svca", "svc-a", "svc0"] {
        let uri = format!("/api/v1/services/{name}");
        put_ok(&app, &uri, &json!({ "protocol": "tcp" })).await;
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut uri = "/api/v1/services?limit=2".to_string();
    loop {
        let (status, _, page) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {page}");
        sizes.push(page["items"].as_array().unwrap().len());
        seen.extend(names(&page));
        match &page["next_page_token"] {
            Value::Null => break,
            Value::String(token) => uri = format!("/api/v1/services?limit=2&page_token={token}"),
            other => panic!("next_page_token must be a string or null, got {other}"),
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, ["svc-a", "svc-b", "svc0", "svc1", "svca"]);
    let (_, _, all) = get(&app, "/api/v1/services").await;
    assert_eq!(names(&all), seen, "the default page holds all five");
    assert_eq!(all["next_page_token"], Value::Null);
}

#[tokio::test]
async fn pagination_sqlite() {
    let (store, _dir) = common::sqlite().await;
    lists_page_through_in_name_order(store).await;
}

#[tokio::test]
async fn pagination_postgres() {
    if let Some((store, _url)) = common::postgres().await {
        lists_page_through_in_name_order(store).await;
    }
}

// === concurrent writers ===

/// Two creators both insisting on a new resource (`"version": 0`): one 201, one 409. Then,
/// five times, both writers read the same version and write with it at once: exactly one wins,
/// the other gets 409, and what is stored is the winner's spec (no lost update).
async fn concurrent_writers_do_not_lose_updates(store: Arc<dyn Store>) {
    let app = router(AppState::new(store));
    let uri = "/api/v1/services/web";
    let a = json!({ "protocol": "http", "version": 0 });
    let b = json!({ "protocol": "tcp", "version": 0 });
    let (ra, rb) = tokio::join!(put(&app, uri, &a), put(&app, uri, &b));
    let winner = match (ra.0, rb.0) {
        (StatusCode::CREATED, StatusCode::CONFLICT) => &a,
        (StatusCode::CONFLICT, StatusCode::CREATED) => &b,
        other => panic!("create race: want one 201 and one 409, got {other:?}: {ra:?} {rb:?}"),
    };
    let (_, _, stored) = get(&app, uri).await;
    let want = (&winner["protocol"], &json!(1));
    assert_eq!((&stored["protocol"], &stored["version"]), want, "{stored}");
    for round in 0..5 {
        let (_, _, first) = get(&app, uri).await;
        let (_, _, second) = get(&app, uri).await;
        let read = first["version"].clone();
        assert_eq!(read, second["version"]);
        let a = json!({ "protocol": "http", "lb_policy": "random", "version": read });
        let b = json!({ "protocol": "http", "lb_policy": "maglev", "version": read });
        let (ra, rb) = tokio::join!(put(&app, uri, &a), put(&app, uri, &b));
        let winner = match (ra.0, rb.0) {
            (StatusCode::OK, StatusCode::CONFLICT) => &a,
            (StatusCode::CONFLICT, StatusCode::OK) => &b,
            other => panic!("round {round}: want 200 + 409, got {other:?}: {ra:?} {rb:?}"),
        };
        let loser = [&ra, &rb].into_iter().find(|r| r.0 == StatusCode::CONFLICT);
        assert_error(loser.unwrap(), StatusCode::CONFLICT, "conflict");
        let (_, _, stored) = get(&app, uri).await;
        assert_eq!(stored["lb_policy"], winner["lb_policy"], "round {round}");
        let next = read.as_i64().unwrap() + 1;
        assert_eq!(stored["version"], next, "round {round}: {stored}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_sqlite() {
    let (store, _dir) = common::sqlite().await;
    concurrent_writers_do_not_lose_updates(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_postgres() {
    if let Some((store, _url)) = common::postgres().await {
        concurrent_writers_do_not_lose_updates(store).await;
    }
}

// === probes and the OpenAPI document ===

#[tokio::test]
async fn probes_report_health_and_the_store_revision() {
    let (app, _dir) = app().await;
    let (status, _, health) = get(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    let (status, _, before) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["store"], "sqlite");
    let rev = |v: &Value| v["revision"].as_i64().unwrap_or_else(|| panic!("{v}"));
    put_ok(&app, "/api/v1/services/web", &json!({ "protocol": "http" })).await;
    let (_, _, after) = get(&app, "/readyz").await;
    assert!(rev(&after) > rev(&before), "{before} then {after}");
}

/// Every `$ref` string in the document.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_describes_every_route_and_every_ref_resolves() {
    let (app, _dir) = app().await;
    let (status, _, doc) = get(&app, "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "openapi: {version}");
    let paths = &doc["paths"];
    for kind in ["services", "routes", "listeners", "envoy-resources"] {
        assert!(
            paths[format!("/api/v1/{kind}")]["get"].is_object(),
            "{kind}"
        );
        let item = &paths[format!("/api/v1/{kind}/{{name}}")];
        for method in ["get", "put", "delete"] {
            assert!(item[method].is_object(), "{method} /api/v1/{kind}/{{name}}");
        }
    }
    let endpoints = &paths["/api/v1/services/{name}/endpoints"];
    assert!(endpoints["get"].is_object() && endpoints["put"].is_object());
    for path in ["/healthz", "/readyz"] {
        assert!(paths[path]["get"].is_object(), "{path}");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in ["Service", "Route", "Listener", "EnvoyResource", "Endpoints"] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let hash_policy = &schemas["Rule"]["properties"]["hash_policy"];
    assert_eq!(
        hash_policy["items"]["$ref"],
        "#/components/schemas/HashPolicy"
    );
    let inputs = schemas["HashPolicy"]["properties"].as_object().unwrap();
    for key in ["header", "cookie", "ttl", "source_ip", "terminal"] {
        assert!(inputs.contains_key(key), "HashPolicy.{key} missing");
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20, "expected many $refs, found {}", all.len());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("$ref {r} does not point into components.schemas"));
        assert!(schemas.contains_key(name), "$ref {r} does not resolve");
    }
}

/// `schema`, or the component schema its `$ref` names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// The top-level keys of `instance` that `schema` forbids with `additionalProperties: false`,
/// following `$ref` and `allOf` (where every branch judges the whole instance).
fn forbidden_keys(doc: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut out = Vec::new();
    for branch in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(forbidden_keys(doc, branch, instance));
    }
    if schema["additionalProperties"] == false {
        let known = |k: &String| schema["properties"].get(k).is_some();
        let keys = instance.as_object().unwrap().keys();
        out.extend(keys.filter(|k| !known(k)).cloned());
    }
    out
}

/// The document must admit what the server really sends (GET responses) and really accepts
/// (a GET response PUT back unchanged, as the PUT description promises).
#[tokio::test]
async fn openapi_schemas_admit_real_responses_and_round_trip_bodies() {
    let (app, _dir) = app().await;
    create_shared(&app).await;
    let (_, _, doc) = get(&app, "/api/openapi.json").await;
    let mut uris: Vec<String> = vec!["/api/v1/services/{name}/endpoints".into()];
    for kind in ["services", "routes", "listeners", "envoy-resources"] {
        let uri = format!("/api/v1/{kind}/item");
        put_ok(&app, &uri, &specs(kind, "item").0).await;
        uris.push(format!("/api/v1/{kind}/{{name}}"));
    }
    let mut problems = Vec::new();
    for template in &uris {
        let name = if template.contains("endpoints") {
            "shared"
        } else {
            "item"
        };
        let uri = template.replace("{name}", name);
        let (status, _, resource) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {resource}");
        let item = &doc["paths"][template];
        let response = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        let request = &item["put"]["requestBody"]["content"]["application/json"]["schema"];
        for (what, schema) in [("GET 200 response", response), ("PUT body", request)] {
            let bad = forbidden_keys(&doc, schema, &resource);
            if !bad.is_empty() {
                problems.push(format!("{template}: the {what} schema forbids {bad:?}"));
            }
        }
        let (status, _, body) = call(&app, "PUT", &uri, Some(&resource.to_string()), &[]).await;
        assert!(
            status.is_success(),
            "{uri}: the round trip is accepted: {body}"
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The document states the security the server is configured with: none without a token;
/// with one, bearer auth (and its 401) everywhere but the probes, which need no token (auth.rs,
/// and their own summaries say so). And the endpoints PUT, which reads a body like every other
/// PUT, documents the same 400 and 413 answers.
#[tokio::test]
async fn openapi_matches_auth_and_status_codes() {
    let (app, _dir) = app().await;
    let (_, _, open) = get(&app, "/api/openapi.json").await;
    assert!(open.get("security").is_none(), "no token, no security");
    let (store, _dir2) = common::sqlite().await;
    let mut state = AppState::new(store);
    state.admin_token = Some(Arc::from("s3cret"));
    let auth = [("authorization", "Bearer s3cret")];
    let (_, _, doc) = call(&router(state), "GET", "/api/openapi.json", None, &auth).await;
    let global = doc["security"].as_array();
    assert!(global.is_some_and(|s| !s.is_empty()), "global bearer auth");
    let mut problems = Vec::new();
    let services = &doc["paths"]["/api/v1/services"]["get"]["responses"];
    if !services["401"].is_object() {
        problems.push("GET /api/v1/services does not document 401".to_string());
    }
    for path in ["/healthz", "/readyz"] {
        if doc["paths"][path]["get"]["security"] != json!([]) {
            problems.push(format!(
                "{path} inherits the bearer token; want security: []"
            ));
        }
    }
    let put = &doc["paths"]["/api/v1/services/{name}/endpoints"]["put"]["responses"];
    for status in ["400", "413"] {
        if !put[status].is_object() {
            problems.push(format!("endpoints PUT does not document {status}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
