//! `GET /clusters`: every active cluster and its hosts in Envoy's text format
//! (`web::127.0.0.1:8081::health_flags::healthy`), or with `?format=json` in Envoy's
//! `envoy.admin.v3.Clusters` shape.

use std::{collections::BTreeMap, sync::Arc};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value, json};

use super::{State, json as json_response, text};
use crate::{
    config::{CircuitBreakers, EndpointHealth},
    upstream::{Cluster, HostStatus},
};

/// One cluster as the page shows it.
struct Shown {
    cluster: Arc<Cluster>,
    /// Configured over xDS (Envoy's `added_via_api`), not in the bootstrap.
    added_via_api: bool,
    hosts: Vec<HostStatus>,
}

/// The active clusters: static ones first, then dynamic ones, each by name.
fn shown(state: &State) -> Vec<Shown> {
    let snapshot = state.runtime.load();
    let statics: Vec<String> = {
        let engine = state.xds.lock();
        let slots = &engine.store().clusters;
        slots
            .iter()
            .filter(|(_, s)| s.is_static)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let mut all: Vec<Shown> = snapshot
        .clusters
        .values()
        .map(|c| Shown {
            added_via_api: !statics.iter().any(|s| s == c.name()),
            hosts: c.host_statuses(),
            cluster: c.clone(),
        })
        .collect();
    all.sort_by(|a, b| {
        (a.added_via_api, a.cluster.name()).cmp(&(b.added_via_api, b.cluster.name()))
    });
    all
}

pub fn render(state: &State, query: &BTreeMap<String, String>) -> Response<Full<Bytes>> {
    let clusters = shown(state);
    match query.get("format").map(String::as_str) {
        Some("json") => json_response(StatusCode::OK, &as_json(&clusters)),
        None | Some("text") => text(StatusCode::OK, &as_text(&clusters)),
        Some(other) => text(
            StatusCode::BAD_REQUEST,
            &format!("format '{other}' is not supported: use text or json\n"),
        ),
    }
}

fn as_text(clusters: &[Shown]) -> String {
    let mut out = String::new();
    let mut line = |parts: &[&str]| {
        out.push_str(&parts.join("::"));
        out.push('\n');
    };
    for c in clusters {
        let name = c.cluster.name();
        line(&[name, "observability_name", name]);
        let b = c.cluster.config().circuit_breakers;
        for (priority, b) in [
            ("default_priority", b),
            ("high_priority", CircuitBreakers::default()),
        ] {
            for (k, v) in thresholds(&b) {
                line(&[name, priority, k, &v.to_string()]);
            }
        }
        line(&[name, "added_via_api", &c.added_via_api.to_string()]);
        for h in &c.hosts {
            let address = h.address.to_string();
            let host = |k: &str, v: String| {
                [name.to_string(), address.clone(), k.to_string(), v].join("::")
            };
            let lines = [
                host("cx_active", h.cx_active.to_string()),
                host("cx_connect_fail", h.cx_connect_fail.to_string()),
                host("cx_total", h.cx_total.to_string()),
                host("rq_active", h.rq_active.to_string()),
                host("rq_error", h.rq_error.to_string()),
                host("rq_pending_active", "0".to_string()),
                host("rq_success", h.rq_success.to_string()),
                host("rq_timeout", h.rq_timeout.to_string()),
                host("rq_total", h.rq_total.to_string()),
                host("hostname", String::new()),
                host("health_flags", h.health_flags()),
                host("weight", h.weight.to_string()),
                host("region", String::new()),
                host("zone", h.zone.clone()),
                host("sub_zone", String::new()),
                host("canary", "false".to_string()),
                host("priority", "0".to_string()),
                host("success_rate", "-1".to_string()),
                host("local_origin_success_rate", "-1".to_string()),
            ];
            for l in lines {
                line(&[&l]);
            }
        }
    }
    out
}

fn thresholds(b: &CircuitBreakers) -> [(&'static str, u32); 4] {
    [
        ("max_connections", b.max_connections),
        ("max_pending_requests", b.max_pending_requests),
        ("max_requests", b.max_requests),
        ("max_retries", b.max_retries),
    ]
}

fn as_json(clusters: &[Shown]) -> Value {
    let statuses: Vec<Value> = clusters
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("name".into(), c.cluster.name().into());
            if c.added_via_api {
                m.insert("added_via_api".into(), true.into());
            }
            let hosts: Vec<Value> = c.hosts.iter().map(host_json).collect();
            if !hosts.is_empty() {
                m.insert("host_statuses".into(), hosts.into());
            }
            let b = c.cluster.config().circuit_breakers;
            let threshold = |b: &CircuitBreakers| {
                thresholds(b)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Value::from(v)))
                    .collect::<Map<_, _>>()
            };
            let mut high = threshold(&CircuitBreakers::default());
            high.insert("priority".into(), "HIGH".into());
            m.insert(
                "circuit_breakers".into(),
                json!({ "thresholds": [threshold(&b), high] }),
            );
            m.insert("observability_name".into(), c.cluster.name().into());
            Value::Object(m)
        })
        .collect();
    json!({ "cluster_statuses": statuses })
}

fn host_json(h: &HostStatus) -> Value {
    // Envoy leaves zero values out of the stats (proto3 JSON), and types the gauges.
    let stat = |name: &str, value: u64, gauge: bool| {
        let mut s = Map::new();
        if gauge {
            s.insert("type".into(), "GAUGE".into());
        }
        if value != 0 {
            s.insert("value".into(), value.to_string().into());
        }
        s.insert("name".into(), name.into());
        Value::Object(s)
    };
    let stats = vec![
        stat("cx_connect_fail", h.cx_connect_fail, false),
        stat("cx_total", h.cx_total, false),
        stat("rq_error", h.rq_error, false),
        stat("rq_success", h.rq_success, false),
        stat("rq_timeout", h.rq_timeout, false),
        stat("rq_total", h.rq_total, false),
        stat("cx_active", h.cx_active, true),
        stat("rq_active", h.rq_active, true),
        stat("rq_pending_active", 0, true),
    ];
    let eds = match h.eds_health {
        EndpointHealth::Healthy => "HEALTHY",
        EndpointHealth::Unhealthy => "UNHEALTHY",
        EndpointHealth::Draining => "DRAINING",
        EndpointHealth::Degraded => "DEGRADED",
    };
    let mut health = Map::new();
    if h.failed_active_health_check {
        health.insert("failed_active_health_check".into(), true.into());
    }
    if h.outlier_ejected {
        health.insert("failed_outlier_check".into(), true.into());
    }
    health.insert("eds_health_status".into(), eds.into());
    let mut locality = Map::new();
    if !h.zone.is_empty() {
        locality.insert("zone".into(), h.zone.clone().into());
    }
    json!({
        "address": { "socket_address": {
            "address": h.address.ip().to_string(),
            "port_value": h.address.port(),
        }},
        "stats": stats,
        "health_status": health,
        "weight": h.weight,
        "locality": locality,
    })
}
