//! Translation tests: golden files (`testdata/*.json`, rewritten with `UPDATE_GOLDEN=1`) for
//! what Envoy receives, plain assertions for selection and versions, and a decode check of every
//! generated resource against Envoy's descriptors.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use xds_core::json::any_to_json;

use super::*;
use crate::model::{Endpoints, Spec};

mod encoding;
mod hash_policy;
mod provenance;
mod security;

// === helpers ===

/// A mesh from REST-shaped JSON: `{"services": {"web": {...}}, "endpoints": {...}, ...}`.
/// Every resource must pass the API's validation, so the inputs are ones the API accepts.
fn mesh(input: Value) -> Mesh {
    Mesh {
        revision: 1,
        services: section(&input, "services"),
        endpoints: section(&input, "endpoints"),
        routes: section(&input, "routes"),
        listeners: section(&input, "listeners"),
        envoy_resources: section(&input, "envoy_resources"),
        traffic_permissions: section(&input, "traffic_permissions"),
        ..Mesh::default()
    }
}

#[track_caller]
fn section<S: Spec>(input: &Value, key: &str) -> BTreeMap<String, S> {
    let Some(items) = input.get(key).and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    items
        .iter()
        .map(|(name, v)| {
            let spec: S = serde_json::from_value(v.clone())
                .unwrap_or_else(|e| panic!("{key}/{name} should parse: {e}"));
            spec.validate(name)
                .unwrap_or_else(|e| panic!("{key}/{name} should be valid: {e}"));
            (name.clone(), spec)
        })
        .collect()
}

fn node(id: &str, cluster: &str, metadata: &[(&str, &str)]) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        cluster: cluster.into(),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn edge_node() -> NodeInfo {
    node("ingress-1", "ingress", &[("role", "edge")])
}

fn resources_for(mesh: &Mesh, node: &NodeInfo) -> Resources {
    translate(mesh, &select(mesh, node))
}

fn names(r: &Resources, type_url: &str) -> Vec<String> {
    r.of_type(type_url)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// Compares the rendering of `r` with `testdata/<name>.json`, or rewrites the file when
/// `UPDATE_GOLDEN=1`.
#[track_caller]
fn golden(name: &str, r: &Resources) {
    golden_json(&format!("{name}.json"), &resources_to_json(r));
}

/// Compares `actual` with `testdata/<file>`, or rewrites the file when `UPDATE_GOLDEN=1`.
#[track_caller]
fn golden_json(file: &str, actual: &Value) {
    let path = format!(
        "{}/src/translate/testdata/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let actual = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run with UPDATE_GOLDEN=1 to create it)"));
    assert!(
        expected == actual,
        "{path} differs (UPDATE_GOLDEN=1 rewrites it); actual:\n{actual}"
    );
}

// === inputs ===

/// The design document's example: every service option, two zones, subsets, every rule option.
fn full_example() -> Mesh {
    mesh(json!({
        "services": { "web": {
            "protocol": "http", "lb_policy": "least_request", "connect_timeout": "1s",
            "circuit_breaker": { "max_connections": 1024, "max_pending_requests": 256,
                                 "max_requests": 2048, "max_retries": 3 },
            "outlier_detection": { "consecutive_5xx": 5, "interval": "10s",
                                   "base_ejection_time": "30s", "max_ejection_percent": 10 },
            "health_check": { "path": "/healthz", "interval": "5s", "timeout": "1s",
                              "healthy_threshold": 1, "unhealthy_threshold": 3 } } },
        "endpoints": { "web": { "endpoints": [
            { "address": "10.0.2.1", "port": 8080, "zone": "z2", "labels": { "version": "v2" } },
            { "address": "10.0.1.1", "port": 8080, "weight": 2, "zone": "z1",
              "labels": { "version": "v1" } },
            { "address": "10.0.1.2", "port": 8080, "zone": "z1", "labels": { "version": "v1" },
              "health": "draining" },
            { "address": "10.0.3.1", "port": 8080 } ] } },
        "routes": { "web": {
            "hosts": ["web.example.com", "*"],
            "rules": [
                { "match": { "path": { "prefix": "/api/" },
                             "headers": [ { "name": "x-canary", "exact": "1" },
                                          { "name": "x-trace", "regex": "[0-9a-f]+" },
                                          { "name": "x-debug", "present": true } ],
                             "method": "GET" },
                  "destinations": [
                      { "service": "web", "weight": 80, "subset": { "version": "v1" } },
                      { "service": "web", "weight": 20, "subset": { "version": "v2" } } ],
                  "timeout": "5s",
                  "retries": { "attempts": 2, "per_try_timeout": "1s",
                               "retry_on": ["5xx", "gateway-error", "connect-failure", "reset"],
                               "backoff": { "base_interval": "25ms", "max_interval": "250ms" } },
                  "rewrite": { "prefix": "/" },
                  "request_headers": { "set": { "x-from": "mesh" }, "remove": ["x-debug"] },
                  "response_headers": { "set": { "x-served-by": "mesh" }, "remove": ["server"] } },
                { "match": { "path": { "regex": "/v[0-9]+/.*" } },
                  "destinations": [ { "service": "web" } ],
                  "retries": { "attempts": 1 } },
                { "destinations": [ { "service": "web" } ] } ] } },
        "listeners": { "ingress": {
            "address": "0.0.0.0", "port": 10000, "protocol": "http", "routes": ["web"],
            "selector": { "node_id": "ingress-1", "node_cluster": "ingress",
                          "metadata": { "role": "edge" } } } }
    }))
}

/// A TCP listener in front of a gRPC service, and an HTTP/2 service nobody uses.
fn tcp_grpc() -> Mesh {
    mesh(json!({
        "services": {
            "greeter": { "protocol": "grpc", "lb_policy": "ring_hash",
                         "health_check": { "path": "/grpc.health.v1.Health/Check",
                                           "interval": "2s", "timeout": "500ms" } },
            "unused": { "protocol": "http2" } },
        "endpoints": { "greeter": { "endpoints": [ { "address": "::1", "port": 50051 } ] } },
        "listeners": { "grpc-in": { "address": "127.0.0.1", "port": 15051, "protocol": "tcp",
                                    "service": "greeter" } }
    }))
}

fn raw_cluster() -> Value {
    json!({ "name": "extra-cluster", "connect_timeout": "1s", "type": "STATIC",
            "load_assignment": { "cluster_name": "extra-cluster", "endpoints": [ { "lb_endpoints": [
                { "endpoint": { "address": { "socket_address": {
                    "address": "127.0.0.1", "port_value": 9901 } } } } ] } ] } })
}

/// The listener for the edge plus a raw cluster selected by node cluster.
fn with_raw() -> Mesh {
    mesh(json!({
        "services": { "web": { "protocol": "http" } },
        "routes": { "web": { "hosts": ["*"],
                             "rules": [ { "destinations": [ { "service": "web" } ] } ] } },
        "listeners": { "ingress": { "port": 10000, "protocol": "http", "routes": ["web"] } },
        "envoy_resources": { "extra-cluster": {
            "type_url": type_url::CLUSTER, "resource": raw_cluster(),
            "selector": { "node_cluster": "ingress" } } }
    }))
}

// === golden files ===

#[test]
fn golden_full_example() {
    golden(
        "full_example",
        &resources_for(&full_example(), &edge_node()),
    );
}

#[test]
fn golden_tcp_listener_to_grpc_service() {
    let r = resources_for(&tcp_grpc(), &edge_node());
    assert_eq!(
        names(&r, type_url::CLUSTER),
        ["greeter"],
        "only used services"
    );
    golden("tcp_grpc", &r);
}

#[test]
fn service_without_endpoints_gets_an_empty_assignment() {
    let mut m = tcp_grpc();
    m.endpoints.clear();
    let r = resources_for(&m, &edge_node());
    assert_eq!(names(&r, type_url::ENDPOINT), ["greeter"]);
    golden("no_endpoints", &r);
}

#[test]
fn duplicate_domain_stays_with_the_first_route() {
    let m = mesh(json!({
        "services": { "a": { "protocol": "http" }, "b": { "protocol": "http" } },
        "routes": {
            "second": { "hosts": ["b.example.com", "shared.example.com"],
                        "rules": [ { "destinations": [ { "service": "b" } ] } ] },
            "first": { "hosts": ["shared.example.com", "a.example.com"],
                       "rules": [ { "destinations": [ { "service": "a" } ] } ] },
            "shadowed": { "hosts": ["a.example.com"],
                          "rules": [ { "destinations": [ { "service": "b" } ] } ] } },
        "listeners": { "edge": { "port": 8080, "protocol": "http",
                                 "routes": ["first", "second", "shadowed"] } }
    }));
    let r = resources_for(&m, &edge_node());
    assert_eq!(r.warnings.len(), 3, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("'shared.example.com' of route 'second'"));
    assert!(r.warnings[1].contains("'a.example.com' of route 'shadowed'"));
    assert!(r.warnings[2].contains("route 'shadowed' has no host left"));
    golden("duplicate_domains", &r);
}

#[test]
fn raw_resource_is_served_verbatim_to_selected_nodes_only() {
    let m = with_raw();
    let r = resources_for(&m, &edge_node());
    assert_eq!(names(&r, type_url::CLUSTER), ["extra-cluster", "web"]);
    assert_eq!(
        names(&r, type_url::ENDPOINT),
        ["web"],
        "raw cluster adds no EDS"
    );
    let raw = &r.of_type(type_url::CLUSTER).unwrap()["extra-cluster"];
    assert_eq!(any_to_json(&raw.resource).unwrap(), raw_cluster());
    golden("raw_resource", &r);

    let other = resources_for(&m, &node("app-1", "app", &[]));
    assert_eq!(names(&other, type_url::CLUSTER), ["web"]);
}

#[test]
fn two_listeners_on_one_address_and_port_keep_the_first() {
    let m = mesh(json!({
        "services": { "web": { "protocol": "http" } },
        "routes": { "web": { "hosts": ["*"],
                             "rules": [ { "destinations": [ { "service": "web" } ] } ] } },
        "listeners": {
            "a": { "port": 10000, "protocol": "http", "routes": ["web"] },
            "b": { "port": 10000, "protocol": "http", "routes": ["web"] },
            "c": { "address": "127.0.0.1", "port": 10000, "protocol": "http", "routes": ["web"] } }
    }));
    let r = resources_for(&m, &edge_node());
    assert_eq!(names(&r, type_url::LISTENER), ["a", "c"]);
    assert_eq!(names(&r, type_url::ROUTE), ["a", "c"]);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("'b'") && w.contains("'a'")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_raw_cluster_replacing_a_generated_one_is_not_waited_for() {
    let mut m = with_raw();
    let mut raw = raw_cluster();
    raw["name"] = "web".into();
    raw["load_assignment"]["cluster_name"] = "web".into();
    let resource = json!({ "type_url": type_url::CLUSTER, "resource": raw, "selector": {} });
    m.envoy_resources
        .insert("web".into(), serde_json::from_value(resource).unwrap());
    let r = resources_for(&m, &edge_node());
    assert!(
        !r.warms("web"),
        "a STATIC cluster never fetches an assignment"
    );
    assert!(!r.warms("extra-cluster"));
    let plain = resources_for(&with_raw(), &edge_node());
    assert!(plain.warms("web"));
}

// === selection and versions ===

#[test]
fn selectors_pick_listeners_and_only_the_clusters_they_use() {
    let m = mesh(json!({
        "services": { "web": { "protocol": "http" }, "postgres": { "protocol": "tcp" },
                      "unused": { "protocol": "http" } },
        "routes": { "web": { "hosts": ["*"],
                             "rules": [ { "destinations": [ { "service": "web" } ] } ] } },
        "listeners": {
            "edge": { "port": 10000, "protocol": "http", "routes": ["web"],
                      "selector": { "node_cluster": "ingress", "metadata": { "role": "edge" } } },
            "db": { "port": 15432, "protocol": "tcp", "service": "postgres",
                    "selector": { "node_id": "app-1" } } }
    }));
    let edge = node("ingress-1", "ingress", &[("role", "edge"), ("zone", "z1")]);
    let app = node("app-1", "app", &[("role", "edge")]);
    let internal = node("ingress-2", "ingress", &[("role", "internal")]);
    assert_eq!(select(&m, &edge).listeners, ["edge"]);
    assert_eq!(select(&m, &app).listeners, ["db"]);
    assert_eq!(select(&m, &internal), Selection::default());

    let r = resources_for(&m, &edge);
    assert_eq!(names(&r, type_url::LISTENER), ["edge"]);
    assert_eq!(
        names(&r, type_url::ROUTE),
        ["edge"],
        "named after its listener"
    );
    assert_eq!(names(&r, type_url::CLUSTER), ["web"]);
    assert_eq!(names(&r, type_url::ENDPOINT), ["web"]);
    let r = resources_for(&m, &app);
    assert_eq!(names(&r, type_url::LISTENER), ["db"]);
    assert!(r.of_type(type_url::ROUTE).is_none());
    assert_eq!(names(&r, type_url::CLUSTER), ["postgres"]);
    assert_eq!(names(&r, type_url::ENDPOINT), ["postgres"]);
    let r = resources_for(&m, &internal);
    assert!(r.by_type.is_empty() && r.warnings.is_empty(), "{r:?}");
}

#[test]
fn versions_are_content_hashes() {
    let m = full_example();
    let first = resources_for(&m, &edge_node());
    let again = resources_for(&m, &edge_node());
    assert_eq!(first, again, "same input, same resources and versions");

    let mut changed = m.clone();
    let eps: &mut Endpoints = changed.endpoints.get_mut("web").unwrap();
    eps.endpoints[0].weight = 7;
    let after = resources_for(&changed, &edge_node());
    for (url, resources) in &first.by_type {
        for (name, before) in resources {
            let now = &after.by_type[url][name];
            let moved = before.version != now.version;
            assert_eq!(moved, url == type_url::ENDPOINT, "{url} {name}");
        }
    }
}
