//! `GET /api/v1/prometheus/targets`: Prometheus HTTP service discovery (`http_sd_configs`)
//! listing every connected proxy's stats endpoint, so one scrape config covers the mesh.
//!
//! A proxy is listed when its node metadata says where its stats are served:
//! `stats_address` (`host:port`; the bootstrap from `/api/v1/bootstrap` sets it to the admin
//! address). Proxies without it are left out: the server cannot guess their admin address.

use std::collections::{BTreeMap, HashMap};

use axum::{
    Json,
    extract::{Query, State},
};
use serde::Serialize;

use super::{ApiError, AppState};

/// The node metadata key naming where a proxy serves `/stats/prometheus`.
pub const STATS_ADDRESS: &str = "stats_address";

/// The path Envoy (and minimal-proxy) serve Prometheus text on.
const METRICS_PATH: &str = "/stats/prometheus";

/// One target group of the http_sd format.
#[derive(Debug, Serialize)]
pub struct TargetGroup {
    targets: Vec<String>,
    labels: BTreeMap<&'static str, String>,
}

/// Every connected proxy with a `stats_address`, in node id order.
pub async fn prometheus_targets(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<TargetGroup>>, ApiError> {
    if let Some(key) = params.keys().min() {
        return Err(ApiError::invalid_query(format!(
            "unknown query parameter '{key}'; this path takes none"
        )));
    }
    // The newest stream of each node (a node on per-type streams has several).
    let mut nodes = BTreeMap::new();
    for stream in state.registry.list() {
        let newer = nodes
            .get(&stream.node_id)
            .is_none_or(|(since, _, _)| *since <= stream.connected_since);
        if newer {
            nodes.insert(
                stream.node_id.clone(),
                (stream.connected_since, stream.cluster, stream.metadata),
            );
        }
    }
    let groups = nodes
        .into_iter()
        .filter_map(|(node_id, (_, cluster, metadata))| {
            let address = metadata.get(STATS_ADDRESS)?.as_str()?;
            valid_address(address).then(|| {
                let mut labels = BTreeMap::from([
                    ("__metrics_path__", METRICS_PATH.to_string()),
                    ("node_id", node_id),
                ]);
                if state.telemetry.has_service(&cluster) {
                    labels.insert("service", cluster.clone());
                }
                labels.insert("node_cluster", cluster);
                TargetGroup {
                    targets: vec![address.to_string()],
                    labels,
                }
            })
        })
        .collect();
    Ok(Json(groups))
}

/// `host:port` with a port (Prometheus refuses other targets); a proxy's metadata is its own
/// to write, so anything else is left out rather than handed to Prometheus.
fn valid_address(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    !host.is_empty()
        && host.len() <= 253
        && port.parse::<u16>().is_ok_and(|p| p != 0)
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
}

#[cfg(test)]
mod tests {
    use super::valid_address;

    #[test]
    fn addresses() {
        assert!(valid_address("127.0.0.1:9901"));
        assert!(valid_address("[::1]:9901"));
        assert!(valid_address("envoy-1.local:15000"));
        assert!(!valid_address("127.0.0.1"));
        assert!(!valid_address("127.0.0.1:0"));
        assert!(!valid_address(":9901"));
        assert!(!valid_address("a b:1"));
        assert!(!valid_address("evil/x:1"));
    }
}
