//! A service's endpoints, read and replaced as one list.

use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde_json::json;
use std::collections::HashMap;

use super::{
    ApiError, AppState,
    body::Body,
    dry_run,
    path::Path,
    resources::{not_found, put_spec, record_response},
};
use crate::model::{Endpoints, Kind, Service};

/// The endpoints, or an empty list at version 0 while none were ever set.
pub async fn endpoints_get(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(record) = state.store.get(Kind::Endpoints, &service).await? {
        return Ok(record_response(axum::http::StatusCode::OK, &record));
    }
    if state.store.get(Kind::Service, &service).await?.is_none() {
        return Err(not_found::<Service>(&service));
    }
    Ok(Json(json!({ "name": service, "endpoints": [], "version": 0 })).into_response())
}

/// Replaces every endpoint of the service at once; 404 when the service does not exist.
pub async fn endpoints_put(
    State(state): State<AppState>,
    Path(service): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    let dry_run = dry_run::parse_query(&params)?;
    // The store checks the reference again inside the write; this only picks the status a
    // client expects for a missing parent (404 rather than 422).
    if state.store.get(Kind::Service, &service).await?.is_none() {
        return Err(not_found::<Service>(&service));
    }
    put_spec::<Endpoints>(&state, &service, &headers, &bytes, dry_run).await
}
