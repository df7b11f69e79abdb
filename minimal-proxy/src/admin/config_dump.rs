//! `GET /config_dump` in Envoy's shape: one `configs` entry per dump type (bootstrap, clusters,
//! listeners, scoped routes, routes, secrets; endpoints with `?include_eds`), each resource as
//! proto3 JSON with its `@type`; `?resource=<field>` lists that field's items alone, each
//! typed as Envoy types them (`...ClustersConfigDump.DynamicCluster`).
//!
//! Rendering decodes Envoy's descriptor pool (tens of megabytes) on first use: acceptable here,
//! and only here. The resources are copied out of the xDS engine under its lock and rendered
//! after it is released.

use std::{collections::BTreeMap, time::SystemTime};

use bytes::Bytes;
use envoy_types::pb::{envoy::config::cluster::v3::Cluster, google::protobuf::Any};
use http::{Response, StatusCode};
use http_body_util::Full;
use prost::Message;
use serde::de::DeserializeSeed;
use serde_json::{Map, Value, json};
use xds_core::{TypeUrl, type_url};

use super::{State, json as json_response, text};
use crate::xds::{
    node_proto,
    store::{Entry, Failure, Slot},
};

const ADMIN: &str = "type.googleapis.com/envoy.admin.v3.";
const BOOTSTRAP: &str = "type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap";

/// Everything the dump shows, copied out of the engine.
struct Held {
    cds_version: String,
    lds_version: String,
    clusters: Vec<(String, Slot<()>)>,
    listeners: Vec<(String, Slot<()>)>,
    routes: Vec<Entry<()>>,
    assignments: Vec<Entry<()>>,
    /// Secrets by name, their private keys already redacted.
    secrets: Vec<(String, Entry<()>)>,
}

/// A slot or entry without its converted config (the dump shows the resource as received).
fn strip<T>(e: &Entry<T>) -> Entry<()> {
    Entry {
        version: e.version.clone(),
        resource: e.resource.clone(),
        config: std::sync::Arc::new(()),
        last_updated: e.last_updated,
    }
}

fn strip_slot<T>(s: &Slot<T>) -> Slot<()> {
    Slot {
        is_static: s.is_static,
        active: s.active.as_ref().map(strip),
        warming: s.warming.as_ref().map(|w| crate::xds::store::Warming {
            entry: strip(&w.entry),
            deadline: w.deadline,
        }),
        failure: s.failure.clone(),
    }
}

fn copy(state: &State) -> Held {
    let engine = state.xds.lock();
    let store = engine.store();
    Held {
        cds_version: engine.version(&TypeUrl::Cluster).to_string(),
        lds_version: engine.version(&TypeUrl::Listener).to_string(),
        clusters: store
            .clusters
            .iter()
            .map(|(n, s)| (n.clone(), strip_slot(s)))
            .collect(),
        listeners: store
            .listeners
            .iter()
            .map(|(n, s)| (n.clone(), strip_slot(s)))
            .collect(),
        routes: store.routes.values().map(strip).collect(),
        assignments: store.assignments.values().map(strip).collect(),
        secrets: store
            .secrets
            .iter()
            .map(|(n, e)| {
                let mut e = strip(e);
                e.resource = redacted(&e.resource);
                (n.clone(), e)
            })
            .collect(),
    }
}

/// A secret with its private key replaced by `[redacted]`, as Envoy's dump shows it.
fn redacted(any: &Any) -> Any {
    use envoy_types::pb::envoy::{
        config::core::v3::data_source::Specifier,
        extensions::transport_sockets::tls::v3::{Secret, secret::Type},
    };
    let Ok(mut secret) = Secret::decode(any.value.as_slice()) else {
        // Not a secret we could read: show nothing of it.
        return Any {
            type_url: any.type_url.clone(),
            value: Vec::new(),
        };
    };
    if let Some(Type::TlsCertificate(c)) = &mut secret.r#type {
        for source in [&mut c.private_key, &mut c.password].into_iter().flatten() {
            source.specifier = Some(match source.specifier {
                Some(Specifier::InlineBytes(_)) => Specifier::InlineBytes(b"[redacted]".to_vec()),
                _ => Specifier::InlineString("[redacted]".into()),
            });
        }
    }
    Any {
        type_url: any.type_url.clone(),
        value: secret.encode_to_vec(),
    }
}

pub fn render(state: &State, query: &BTreeMap<String, String>) -> Response<Full<Bytes>> {
    if query.contains_key("mask") || query.contains_key("name_regex") {
        return text(
            StatusCode::BAD_REQUEST,
            "mask and name_regex are not supported by minimal-proxy: use resource= or the whole dump\n",
        );
    }
    let include_eds = query.contains_key("include_eds");
    let configs = configs(state, include_eds);
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return json_response(StatusCode::OK, &json!({ "configs": configs }));
    };
    let mut items = Vec::new();
    for config in &configs {
        let parent = config["@type"].as_str().unwrap_or_default();
        let Some(Value::Array(list)) = config.get(resource.as_str()) else {
            continue;
        };
        for item in list {
            let mut typed = Map::new();
            typed.insert(
                "@type".into(),
                format!("{parent}.{}", item_type(resource)).into(),
            );
            if let Value::Object(fields) = item {
                typed.extend(fields.clone());
            }
            items.push(Value::Object(typed));
        }
    }
    if items.is_empty() && !configs.iter().any(|c| c.get(resource.as_str()).is_some()) {
        return text(
            StatusCode::NOT_FOUND,
            &format!("{resource} not found in config dump\n"),
        );
    }
    json_response(StatusCode::OK, &json!({ "configs": items }))
}

/// The message name of one item of a repeated dump field, as Envoy names it.
fn item_type(field: &str) -> &'static str {
    match field {
        "static_clusters" => "StaticCluster",
        "dynamic_active_clusters" | "dynamic_warming_clusters" => "DynamicCluster",
        "static_listeners" => "StaticListener",
        "dynamic_listeners" => "DynamicListener",
        "static_route_configs" => "StaticRouteConfig",
        "dynamic_route_configs" => "DynamicRouteConfig",
        "static_endpoint_configs" => "StaticEndpointConfig",
        "dynamic_endpoint_configs" => "DynamicEndpointConfig",
        "dynamic_active_secrets" => "DynamicSecret",
        _ => "Item",
    }
}

fn configs(state: &State, include_eds: bool) -> Vec<Value> {
    let c = copy(state);
    let mut configs = vec![bootstrap(state), clusters(&c), listeners(&c)];
    configs.push(json!({ "@type": format!("{ADMIN}ScopedRoutesConfigDump") }));
    let mut routes = object("RoutesConfigDump");
    let dynamic: Vec<Value> = c
        .routes
        .iter()
        .map(|e| entry_json(e, "route_config"))
        .collect();
    put(&mut routes, "dynamic_route_configs", dynamic);
    configs.push(Value::Object(routes));
    let mut secrets = object("SecretsConfigDump");
    let dynamic = c.secrets.iter().map(|(name, e)| {
        let mut item = entry_json(e, "secret");
        item["name"] = name.clone().into();
        item
    });
    put(&mut secrets, "dynamic_active_secrets", dynamic.collect());
    configs.push(Value::Object(secrets));
    if include_eds {
        configs.push(endpoints(&c));
    }
    configs
}

fn object(dump: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("@type".into(), format!("{ADMIN}{dump}").into());
    m
}

/// Adds a list field, left out when empty (as Envoy's proto3 JSON does).
fn put(m: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if !items.is_empty() {
        m.insert(key.into(), Value::Array(items));
    }
}

fn version(m: &mut Map<String, Value>, version: &str) {
    if !version.is_empty() {
        m.insert("version_info".into(), version.into());
    }
}

/// The bootstrap as Envoy shows it: normalised through its message, with the node as sent.
fn bootstrap(state: &State) -> Value {
    let b = &state.bootstrap;
    let mut document = normalised(&b.document).unwrap_or_else(|| b.document.clone());
    let node = Any {
        type_url: "type.googleapis.com/envoy.config.core.v3.Node".into(),
        value: node_proto(&b.node).encode_to_vec(),
    };
    if let (Value::Object(d), Ok(node)) = (&mut document, xds_core::json::any_to_json(&node)) {
        d.insert("node".into(), node);
    }
    json!({
        "@type": format!("{ADMIN}BootstrapConfigDump"),
        "bootstrap": document,
        "last_updated": timestamp(SystemTime::now()),
    })
}

/// The document read as Envoy's `Bootstrap` and written back as proto3 JSON.
fn normalised(document: &Value) -> Option<Value> {
    let descriptor = xds_core::descriptors::message(BOOTSTRAP)?;
    let message = descriptor.deserialize(document).ok()?;
    let any = Any {
        type_url: BOOTSTRAP.into(),
        value: message.encode_to_vec(),
    };
    xds_core::json::any_to_json(&any).ok()
}

fn clusters(c: &Held) -> Value {
    let mut m = object("ClustersConfigDump");
    version(&mut m, &c.cds_version);
    let (statics, dynamics): (Vec<_>, Vec<_>) = c.clusters.iter().partition(|(_, s)| s.is_static);
    let statics = statics
        .iter()
        .filter_map(|(_, s)| s.active.as_ref().map(|e| static_json(e, "cluster")))
        .collect();
    put(&mut m, "static_clusters", statics);
    let active = dynamics
        .iter()
        .filter_map(|(_, s)| s.active.as_ref().map(|e| entry_json(e, "cluster")))
        .collect();
    put(&mut m, "dynamic_active_clusters", active);
    let warming = dynamics
        .iter()
        .filter_map(|(_, s)| s.warming.as_ref().map(|w| entry_json(&w.entry, "cluster")))
        .collect();
    put(&mut m, "dynamic_warming_clusters", warming);
    Value::Object(m)
}

fn listeners(c: &Held) -> Value {
    let mut m = object("ListenersConfigDump");
    version(&mut m, &c.lds_version);
    let (statics, dynamics): (Vec<_>, Vec<_>) = c.listeners.iter().partition(|(_, s)| s.is_static);
    let statics = statics
        .iter()
        .filter_map(|(_, s)| s.latest().map(|e| static_json(e, "listener")))
        .collect();
    put(&mut m, "static_listeners", statics);
    let dynamic = dynamics
        .iter()
        .map(|(name, s)| {
            let mut l = Map::new();
            l.insert("name".into(), name.clone().into());
            if let Some(e) = &s.active {
                l.insert("active_state".into(), entry_json(e, "listener"));
            }
            if let Some(w) = &s.warming {
                l.insert("warming_state".into(), entry_json(&w.entry, "listener"));
            }
            if let Some(f) = &s.failure {
                l.insert("error_state".into(), failure_json(f));
            }
            Value::Object(l)
        })
        .collect();
    put(&mut m, "dynamic_listeners", dynamic);
    Value::Object(m)
}

fn endpoints(c: &Held) -> Value {
    let mut m = object("EndpointsConfigDump");
    let statics = c
        .clusters
        .iter()
        .filter(|(_, s)| s.is_static)
        .filter_map(|(_, s)| {
            let cluster = Cluster::decode(s.active.as_ref()?.resource.value.as_slice()).ok()?;
            let any = Any {
                type_url: type_url::ENDPOINT.into(),
                value: cluster.load_assignment?.encode_to_vec(),
            };
            Some(json!({ "endpoint_config": resource_json(&any) }))
        })
        .collect();
    put(&mut m, "static_endpoint_configs", statics);
    let dynamic = c
        .assignments
        .iter()
        .map(|e| entry_json(e, "endpoint_config"))
        .collect();
    put(&mut m, "dynamic_endpoint_configs", dynamic);
    Value::Object(m)
}

/// `{version_info, <key>: resource, last_updated}`.
fn entry_json(e: &Entry<()>, key: &str) -> Value {
    let mut m = Map::new();
    if !e.version.is_empty() {
        m.insert("version_info".into(), e.version.clone().into());
    }
    m.insert(key.into(), resource_json(&e.resource));
    m.insert("last_updated".into(), timestamp(e.last_updated).into());
    Value::Object(m)
}

/// `{<key>: resource, last_updated}` for static resources.
fn static_json(e: &Entry<()>, key: &str) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), resource_json(&e.resource));
    m.insert("last_updated".into(), timestamp(e.last_updated).into());
    Value::Object(m)
}

fn failure_json(f: &Failure) -> Value {
    let mut m = Map::new();
    if let Some(r) = &f.resource {
        m.insert("failed_configuration".into(), resource_json(r));
    }
    m.insert("last_update_attempt".into(), timestamp(f.when).into());
    m.insert("details".into(), f.details.clone().into());
    if !f.version.is_empty() {
        m.insert("version_info".into(), f.version.clone().into());
    }
    Value::Object(m)
}

/// One resource as proto3 JSON with its `@type`; one that does not render says why.
fn resource_json(any: &Any) -> Value {
    let mut m = Map::new();
    m.insert("@type".into(), any.type_url.clone().into());
    match xds_core::json::any_to_json(any) {
        Ok(Value::Object(fields)) => m.extend(fields),
        Ok(_) => {}
        Err(e) => {
            m.insert("error".into(), format!("cannot render: {e}").into());
        }
    }
    Value::Object(m)
}

/// RFC 3339 in UTC with milliseconds, as Envoy writes `last_updated`.
pub fn timestamp(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
