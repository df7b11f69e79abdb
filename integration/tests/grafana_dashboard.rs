//! The Grafana dashboard (`demo/grafana/mesh.json`) queries what the proxies really expose:
//! after real traffic (one good and one failing endpoint), every metric name in every panel's
//! PromQL is in the proxy's `/stats/prometheus` scrape, with every label the panel groups by
//! (except `node_id`, which Prometheus adds from `/api/v1/prometheus/targets`). Envoy and
//! minimal-proxy alike: minimal-proxy shares Envoy's names. Prometheus and Grafana are not
//! needed: the scrape is what Prometheus would store.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use integration::mesh::{Backend, DataPlane, Stage, Variant};
use reqwest::StatusCode;
use serde_json::Value;

/// On each data plane (the xDS variant does not change what is exposed).
mod scrape {
    use integration::conformance_case;

    conformance_case!(
        every_panel_queries_metrics_the_proxy_exposes,
        envoy,
        Envoy,
        Sotw,
        Sqlite
    );
    conformance_case!(
        every_panel_queries_metrics_the_proxy_exposes,
        minimal,
        Minimal,
        Sotw,
        Sqlite
    );
}

/// The dashboard's panels: `(title, exprs)`.
fn panels() -> Vec<(String, Vec<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/grafana/mesh.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dashboard: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let panels: Vec<_> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|p| p["type"] != "row")
        .map(|p| {
            let exprs = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    t["expr"]
                        .as_str()
                        .expect("every target has an expr")
                        .to_string()
                })
                .collect();
            (p["title"].as_str().unwrap_or("?").to_string(), exprs)
        })
        .collect();
    assert!(panels.len() >= 9, "the dashboard lost its panels");
    panels
}

/// The `envoy_*` metric names a PromQL expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("envoy_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        // A label (`envoy_cluster_name=~…`, `by (envoy_route)`) is not a metric.
        let next = tail[end..].trim_start().chars().next();
        let is_label = matches!(next, Some('=' | '!' | ',' | ')'));
        if !is_label {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// The labels a PromQL expression groups by (`by (a, b)`).
fn grouped_by(expr: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    for part in expr.split("by (").skip(1) {
        let list = part.split(')').next().unwrap_or_default();
        labels.extend(list.split(',').map(|l| l.trim().to_string()));
    }
    labels
}

/// Each sample's metric name, with the label names seen on it.
fn scrape_index(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut index: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = index.entry(line[..name_end].to_string()).or_default();
        if let Some(body) = line[name_end..].strip_prefix('{') {
            let body = body.split('}').next().unwrap_or_default();
            for pair in body.split(',') {
                if let Some((key, _)) = pair.split_once('=') {
                    labels.insert(key.trim().to_string());
                }
            }
        }
    }
    index
}

async fn every_panel_queries_metrics_the_proxy_exposes(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let panels = panels();
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let (_ok, _failing) = stage.serve_web_partly_failing().await;
    for i in 0..20 {
        if let Err(e) = stage.send(&format!("/dash/{i}"), &[]).await {
            stage.proxy().fail(&format!("request {i}: {e}"));
        }
    }

    let scrape = match stage.proxy().admin_get("/stats/prometheus").await {
        Some((StatusCode::OK, text)) => text,
        other => stage
            .proxy()
            .fail(&format!("GET /stats/prometheus answered {other:?}")),
    };
    let index = scrape_index(&scrape);
    let mut missing = Vec::new();
    for (title, exprs) in &panels {
        for expr in exprs {
            let by = grouped_by(expr);
            for name in metric_names(expr) {
                let Some(labels) = index.get(&name) else {
                    missing.push(format!("panel '{title}': metric {name}"));
                    continue;
                };
                for label in by.iter().filter(|l| *l != "node_id") {
                    if !labels.contains(label) {
                        missing.push(format!("panel '{title}': {name} has no label {label}"));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{}: the dashboard asks for what /stats/prometheus does not have:\n{}",
        plane.as_str(),
        missing.join("\n")
    );
}

#[test]
fn promql_is_read_as_intended() {
    let expr = "1 - sum by (envoy_cluster_name, le) (rate(envoy_cluster_upstream_rq_xx\
                {envoy_cluster_name=~\"$service\",envoy_response_code_class=\"5\"}[1m])) / \
                envoy_vhost_route_upstream_rq_time_bucket";
    assert_eq!(
        metric_names(expr),
        BTreeSet::from([
            "envoy_cluster_upstream_rq_xx".to_string(),
            "envoy_vhost_route_upstream_rq_time_bucket".to_string()
        ])
    );
    assert_eq!(
        grouped_by(expr),
        BTreeSet::from(["envoy_cluster_name".to_string(), "le".to_string()])
    );
    let index = scrape_index("# TYPE x counter\nx{a=\"1\",b=\"2\"} 3\ny 1\n");
    assert_eq!(
        index["x"],
        BTreeSet::from(["a".to_string(), "b".to_string()])
    );
    assert!(index["y"].is_empty());
}
