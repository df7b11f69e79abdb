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
    resources::{not_found, object_of, put_spec, read_response, statuses, with_status},
};
use crate::{
    model::{Endpoints, Kind, Service},
    translate::ObjectRef,
};

/// The endpoints, or an empty list at version 0 while none were ever set; with the `status`
/// block of the service's assignment.
pub async fn endpoints_get(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(record) = state.store.get(Kind::Endpoints, &service).await? {
        let status = statuses(&state, vec![object_of(&record)]).await;
        return Ok(read_response(&record, &status[0]));
    }
    let Some(parent) = state.store.get(Kind::Service, &service).await? else {
        return Err(not_found::<Service>(&service));
    };
    // Never written: the assignment (empty) is as current as the service.
    let object = (ObjectRef::new(Kind::Endpoints, &service), parent.revision);
    let status = statuses(&state, vec![object]).await;
    let empty = json!({ "name": service, "endpoints": [], "version": 0 });
    Ok(Json(with_status(empty, &status[0])).into_response())
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
