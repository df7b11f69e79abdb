//! Create-or-replace, get, list and delete, written once for every kind of resource.

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use super::{
    ApiError, AppState,
    body::{self, Body},
    dry_run,
    path::Path,
};
use crate::{
    model::{Kind, LabelSelector, Spec, noun, validate_name},
    status::ObjectStatus,
    store::{Record, Store, Write},
    translate::ObjectRef,
};

/// Default and largest page size for lists.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// `/api/v1/{kind}` and `/api/v1/{kind}/{name}` for one kind.
pub fn routes<S: Spec>() -> Router<AppState> {
    let kind = S::KIND.collection();
    Router::new()
        .route(&format!("/api/v1/{kind}"), get(resource_list::<S>))
        .route(
            &format!("/api/v1/{kind}/{{name}}"),
            get(resource_get::<S>)
                .put(resource_put::<S>)
                .delete(resource_delete::<S>),
        )
}

async fn resource_get<S: Spec>(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.get(S::KIND, &name).await? {
        Some(record) => {
            let status = statuses(&state, vec![object_of(&record)]).await;
            Ok(read_response(&record, &status[0]))
        }
        None => Err(not_found::<S>(&name)),
    }
}

async fn resource_put<S: Spec>(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    let dry_run = dry_run::parse_query(&params)?;
    put_spec::<S>(&state, &name, &headers, &bytes, dry_run).await
}

/// Parses, validates and stores one resource; 201 when it was created, 200 when replaced.
/// `dry_run`: checks and answers the same, and stores nothing (see `dry_run.rs`).
pub(super) async fn put_spec<S: Spec>(
    state: &AppState,
    name: &str,
    headers: &HeaderMap,
    bytes: &[u8],
    dry_run: bool,
) -> Result<Response, ApiError> {
    validate_name("name", name)?;
    let envelope = body::parse::<S>(bytes)?;
    if let Some(body_name) = envelope.name.as_ref().filter(|n| *n != name) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("the body names '{body_name}' but the path names '{name}'; they must be equal"),
        )
        .with_field("name"));
    }
    let expected_version = body::expected_version(headers, envelope.version)?;
    envelope.spec.validate(name)?;
    let write = Write {
        kind: S::KIND,
        name: name.to_string(),
        spec: serde_json::to_value(&envelope.spec)
            .map_err(|e| ApiError::invalid_json(e.to_string()))?,
        references: envelope.spec.references(name),
        expected_version,
    };
    if dry_run {
        return dry_run::preview(state, write).await;
    }
    let written = state.store.put(write).await?;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(record_response(status, &written.record))
}

async fn resource_list<S: Spec>(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    let mut selector = None;
    for (key, value) in &params {
        match key.as_str() {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::invalid_query(format!(
                            "limit must be 1..={MAX_LIMIT}, got '{value}'"
                        ))
                    })?;
            }
            "page_token" => {
                validate_name("page_token", value).map_err(|_| {
                    ApiError::invalid_query("page_token is not one this server returned")
                })?;
                after = Some(value.as_str());
            }
            "selector" => {
                selector =
                    Some(LabelSelector::parse(value).map_err(|e| {
                        ApiError::invalid_query(e.to_string()).with_field("selector")
                    })?);
            }
            other => {
                return Err(ApiError::invalid_query(format!(
                    "unknown query parameter '{other}'; use limit, page_token and selector"
                )));
            }
        }
    }
    // One extra row tells whether another page follows.
    let mut records = match &selector {
        None => state.store.list(S::KIND, after, limit + 1).await?,
        Some(selector) => list_matching(&*state.store, S::KIND, after, limit + 1, selector).await?,
    };
    let next_page_token = if records.len() > limit as usize {
        records.truncate(limit as usize);
        records.last().map(|r| r.name.clone())
    } else {
        None
    };
    let status = statuses(&state, records.iter().map(object_of).collect()).await;
    let items: Vec<Value> = records
        .iter()
        .zip(&status)
        .map(|(r, s)| with_status(record_json(r), s))
        .collect();
    Ok(Json(
        json!({ "items": items, "next_page_token": next_page_token }),
    ))
}

/// Up to `want` resources after `after` whose labels match `selector`, in name order. The
/// store pages by name, so this reads on in pages of the largest size until it has enough or
/// none are left.
async fn list_matching(
    store: &dyn Store,
    kind: Kind,
    after: Option<&str>,
    want: u32,
    selector: &LabelSelector,
) -> Result<Vec<Record>, ApiError> {
    let mut out = Vec::new();
    let mut cursor = after.map(str::to_string);
    loop {
        let page = store.list(kind, cursor.as_deref(), MAX_LIMIT).await?;
        let last_page = page.len() < MAX_LIMIT as usize;
        cursor = page.last().map(|r| r.name.clone());
        out.extend(
            page.into_iter()
                .filter(|r| selector.matches(r.spec.get("labels"))),
        );
        if last_page || out.len() >= want as usize {
            out.truncate(want as usize);
            return Ok(out);
        }
    }
}

async fn resource_delete<S: Spec>(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let mut version = None;
    for (key, value) in &params {
        match key.as_str() {
            "version" => {
                version = Some(
                    value
                        .parse::<i64>()
                        .ok()
                        .filter(|v| *v > 0)
                        .ok_or_else(|| {
                            ApiError::invalid_query(format!(
                                "version must be a positive integer, got '{value}'"
                            ))
                        })?,
                );
            }
            other => {
                return Err(ApiError::invalid_query(format!(
                    "unknown query parameter '{other}'; use version"
                )));
            }
        }
    }
    let expected = body::expected_version(&headers, version)?;
    if expected == Some(0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            "If-Match on a delete takes the version you read (1 or more); 0 means \"must not exist\"",
        ));
    }
    state.store.delete(S::KIND, &name, expected).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn not_found<S: Spec>(name: &str) -> ApiError {
    ApiError::not_found(format!("{} '{name}' does not exist", noun(S::KIND)))
}

/// The spec's fields, flat, plus `name`, `version`, `created_at`, `updated_at`.
pub(super) fn record_json(record: &Record) -> Value {
    let mut obj = match &record.spec {
        Value::Object(m) => m.clone(),
        other => Map::from_iter([("spec".to_string(), other.clone())]),
    };
    let time = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    obj.insert("name".into(), record.name.clone().into());
    obj.insert("version".into(), record.version.into());
    obj.insert("created_at".into(), time(&record.created_at).into());
    obj.insert("updated_at".into(), time(&record.updated_at).into());
    Value::Object(obj)
}

/// The record's object and the revision of its last write, for [`statuses`].
pub(super) fn object_of(record: &Record) -> (ObjectRef, i64) {
    (ObjectRef::new(record.kind, &record.name), record.revision)
}

/// The `status` block of each object (read-only; see `status/objects.rs`). It reads every
/// connected stream, so it runs on a blocking thread, not on a worker serving xDS streams.
pub(super) async fn statuses(
    state: &AppState,
    objects: Vec<(ObjectRef, i64)>,
) -> Vec<ObjectStatus> {
    let registry = state.registry.clone();
    let run = move || registry.object_statuses(&objects);
    tokio::task::spawn_blocking(run)
        .await
        .expect("computing object status does not panic")
}

/// `object` (a JSON object) with its `status` block.
pub(super) fn with_status(mut object: Value, status: &ObjectStatus) -> Value {
    if let (Value::Object(map), Ok(status)) = (&mut object, serde_json::to_value(status)) {
        map.insert("status".into(), status);
    }
    object
}

/// A record as read by GET: with its `status` block and its version as the `ETag`.
pub(super) fn read_response(record: &Record, status: &ObjectStatus) -> Response {
    let mut response = Json(with_status(record_json(record), status)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", record.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// A record as JSON with its version as the `ETag`, for use with `If-Match`.
pub(super) fn record_response(status: StatusCode, record: &Record) -> Response {
    let mut response = (status, Json(record_json(record))).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", record.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}
