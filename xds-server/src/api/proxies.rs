//! Read-only views of the connected proxies (from the status registry the xDS streams
//! write), the resources computed for one of them, and the Prometheus metrics.

use std::collections::{BTreeMap, HashMap};

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{ApiError, AppState, path::Path};
use crate::{
    metrics,
    status::{ProxyStatus, TypeStatus, Variant},
    translate::{HeldBack, resources_to_json},
};

/// Every connected proxy, one item per node id (as [`proxies_get`] shows it), in node id
/// order: `{"items": [...]}`.
pub async fn proxies_list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Items>, ApiError> {
    no_params(&params)?;
    let mut by_node: BTreeMap<String, Vec<ProxyStatus>> = BTreeMap::new();
    for stream in state.registry.list() {
        by_node
            .entry(stream.node_id.clone())
            .or_default()
            .push(stream);
    }
    Ok(Json(Items {
        items: by_node.into_values().map(Node).collect(),
    }))
}

/// The list's body.
#[derive(Debug, Serialize)]
pub struct Items {
    items: Vec<Node>,
}

/// One node's streams (oldest first), serialised as a [`NodeView`].
#[derive(Debug)]
pub struct Node(Vec<ProxyStatus>);

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match NodeView::of(&self.0) {
            Some(view) => view.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }
}

/// One node: its newest stream, with `types` merged over all its streams (a proxy using the
/// per-type services opens one stream per type; the newest stream wins a type both have) and
/// `streams`, how many it has open.
pub async fn proxies_get(
    State(state): State<AppState>,
    Path(node_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Node>, ApiError> {
    no_params(&params)?;
    let streams = state.registry.streams_of(&node_id);
    if streams.is_empty() {
        return Err(not_connected(&node_id));
    }
    Ok(Json(Node(streams)))
}

/// One node from its streams (oldest first): the newest stream's fields, `types` merged over
/// all of them (the newest wins a type two streams share), and `streams`, how many. Borrowed
/// and serialised directly: no JSON tree is built, so listing 10,000 proxies costs about the
/// size of the answer, not ~10 KB of maps per proxy.
#[derive(Debug, Serialize)]
struct NodeView<'a> {
    node_id: &'a str,
    cluster: &'a str,
    metadata: &'a Value,
    variant: Variant,
    service: &'static str,
    connected_since: DateTime<Utc>,
    types: BTreeMap<&'a str, &'a TypeStatus>,
    #[serde(skip_serializing_if = "<[HeldBack]>::is_empty")]
    held_back: &'a [HeldBack],
    streams: usize,
}

impl<'a> NodeView<'a> {
    fn of(streams: &'a [ProxyStatus]) -> Option<Self> {
        let newest = streams.last()?;
        let types = streams
            .iter()
            .flat_map(|s| s.types.iter().map(|(t, status)| (t.as_str(), &**status)))
            .collect();
        Some(Self {
            node_id: &newest.node_id,
            cluster: &newest.cluster,
            metadata: &newest.metadata,
            variant: newest.variant,
            service: newest.service,
            connected_since: newest.connected_since,
            types,
            held_back: &newest.held_back,
            streams: streams.len(),
        })
    }
}

/// The resources computed for the node's newest stream, as proto3 JSON:
/// `{"<type_url>": {"<name>": {"version", "resource"}}, "warnings": [...]}`.
pub async fn proxy_config(
    State(state): State<AppState>,
    Path(node_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    no_params(&params)?;
    let status = state
        .registry
        .get(&node_id)
        .ok_or_else(|| not_connected(&node_id))?;
    let resources = status.resources.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!(
                "proxy '{node_id}' is connected but its resources are not computed yet; retry shortly"
            ),
        )
    })?;
    Ok(Json(resources_to_json(&resources)))
}

/// Prometheus text exposition (format 0.0.4).
pub async fn metrics_get(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    no_params(&params)?;
    // The watched revision is what this replica knows without asking the database, so a
    // scrape neither waits on nor fails with the store.
    let revision = *state.store.watch().borrow();
    let body = state.metrics.render(&state.registry, revision);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        body,
    )
        .into_response())
}

fn not_connected(node_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no proxy with node id '{node_id}' is connected; see /api/v1/proxies"
    ))
}

/// These paths take no query parameters; refuse any, as the other routes refuse unknown ones.
fn no_params(params: &HashMap<String, String>) -> Result<(), ApiError> {
    match params.keys().min() {
        Some(key) => Err(ApiError::invalid_query(format!(
            "unknown query parameter '{key}'; this path takes none"
        ))),
        None => Ok(()),
    }
}
