//! Small fixed meshes, translated once, as the resource sets a stream sees change over time:
//! services come and go, endpoints and clusters change, a raw resource replaces a generated one.

use std::{
    collections::BTreeMap,
    sync::{Arc, LazyLock},
};

use serde_json::{Value, json};
use xds_server::{
    model::{Mesh, Spec},
    translate::{Delivery, NodeInfo, Resources, select, translate},
};

/// The node every mesh is selected for (all listeners select every node, one raw resource
/// selects this node's cluster).
pub fn node() -> NodeInfo {
    NodeInfo {
        id: "proxy-1".into(),
        cluster: "edge".into(),
        metadata: BTreeMap::from([("role".into(), "edge".into())]),
    }
}

/// A mesh from REST-shaped JSON; every resource must pass the API's validation.
pub fn mesh(revision: i64, input: Value) -> Mesh {
    Mesh {
        revision,
        services: section(&input, "services"),
        endpoints: section(&input, "endpoints"),
        routes: section(&input, "routes"),
        listeners: section(&input, "listeners"),
        envoy_resources: section(&input, "envoy_resources"),
        traffic_permissions: section(&input, "traffic_permissions"),
        ..Mesh::default()
    }
}

fn section<S: Spec>(input: &Value, key: &str) -> BTreeMap<String, S> {
    let Some(items) = input.get(key).and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    items
        .iter()
        .map(|(name, v)| {
            let spec: S = serde_json::from_value(v.clone())
                .unwrap_or_else(|e| panic!("fixture {key}/{name} should parse: {e}"));
            spec.validate(name)
                .unwrap_or_else(|e| panic!("fixture {key}/{name} should be valid: {e}"));
            (name.clone(), spec)
        })
        .collect()
}

fn http_route(destinations: Value) -> Value {
    json!({ "hosts": ["*"], "rules": [ { "destinations": destinations } ] })
}

fn endpoints(address: &str, port: u32) -> Value {
    json!({ "endpoints": [ { "address": address, "port": port } ] })
}

/// The meshes, in an order where each differs from the one before.
fn inputs() -> Vec<Value> {
    let raw_cluster = json!({
        "type_url": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "resource": { "name": "extra-cluster", "connect_timeout": "1s", "type": "STATIC",
                      "load_assignment": { "cluster_name": "extra-cluster" } },
        "selector": { "node_cluster": "edge" } });
    // A raw cluster replacing the generated "api": a cluster the proxy does not warm via us.
    let raw_api = json!({
        "type_url": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "resource": { "name": "api", "connect_timeout": "2s", "type": "STATIC",
                      "load_assignment": { "cluster_name": "api" } } });
    vec![
        json!({}),
        json!({
            "services": { "web": { "protocol": "http" }, "api": { "protocol": "http2" } },
            "endpoints": { "web": endpoints("10.0.0.1", 80), "api": endpoints("10.0.0.2", 80) },
            "routes": { "web": http_route(json!([ { "service": "web" } ])) },
            "listeners": { "ingress": { "port": 10000, "protocol": "http", "routes": ["web"] } }
        }),
        json!({
            "services": { "web": { "protocol": "http" }, "api": { "protocol": "http2" },
                          "db": { "protocol": "tcp" } },
            "endpoints": { "web": endpoints("10.0.0.1", 81), "api": endpoints("10.0.0.2", 80),
                           "db": endpoints("10.0.0.3", 5432) },
            "routes": { "web": http_route(json!([ { "service": "web", "weight": 50 },
                                                  { "service": "api", "weight": 50 } ])) },
            "listeners": {
                "ingress": { "port": 10000, "protocol": "http", "routes": ["web"] },
                "db-in": { "port": 15432, "protocol": "tcp", "service": "db" } }
        }),
        json!({
            "services": { "web": { "protocol": "http", "connect_timeout": "3s" },
                          "lonely": { "protocol": "http" } },
            "endpoints": { "web": endpoints("10.0.0.1", 81) },
            "routes": { "web": http_route(json!([ { "service": "web" } ])),
                        "lonely": { "hosts": ["lonely.example.com"],
                                    "rules": [ { "destinations": [ { "service": "lonely" } ] } ] } },
            "listeners": { "ingress": { "port": 10000, "protocol": "http",
                                        "routes": ["web", "lonely"] } }
        }),
        json!({
            "services": { "web": { "protocol": "http" }, "api": { "protocol": "http2" } },
            "endpoints": { "web": endpoints("10.0.0.1", 80), "api": endpoints("10.0.0.2", 80) },
            "routes": { "web": http_route(json!([ { "service": "api" } ])) },
            "listeners": { "ingress": { "port": 10001, "protocol": "http", "routes": ["web"] } },
            "envoy_resources": { "extra-cluster": raw_cluster, "api": raw_api }
        }),
    ]
}

/// Each mesh translated for [`node`]: `ads[i]` for ADS streams, `separate[i]` for per-type
/// streams (assignments and routes fetched on their own streams).
pub struct Translated {
    pub ads: Vec<Arc<Resources>>,
    pub separate: Vec<Arc<Resources>>,
}

/// The meshes, translated once per process.
pub static TRANSLATED: LazyLock<Translated> = LazyLock::new(|| {
    let meshes: Vec<Mesh> = inputs()
        .into_iter()
        .enumerate()
        .map(|(i, v)| mesh(i as i64 + 1, v))
        .collect();
    let with = |delivery: Delivery| -> Vec<Arc<Resources>> {
        meshes
            .iter()
            .map(|m| {
                let selection = xds_server::translate::Selection {
                    delivery: delivery.clone(),
                    ..select(m, &node())
                };
                Arc::new(translate(m, &selection))
            })
            .collect()
    };
    Translated {
        ads: with(Delivery::Ads),
        separate: with(Delivery::Separate {
            delta: false,
            xds_cluster: "xds".into(),
        }),
    }
});
