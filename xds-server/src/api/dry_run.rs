//! `PUT …?dry_run=true`: everything a write checks, and the object as it would be stored,
//! without writing.
//!
//! The stored spec is normalised (defaults filled in, durations in their largest exact unit),
//! so a client cannot tell from its own file whether a write would change anything; a dry run
//! answers with the server's own form. `meshctl apply` compares that with what it read to say
//! `unchanged`, and `--dry-run` shows the difference. The checks are the store's (version,
//! references), run as reads outside a transaction: a write racing the dry run may make the
//! real write's answer differ.

use std::collections::{HashMap, HashSet};

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{SubsecRound, Utc};

use super::{ApiError, AppState, resources::record_json};
use crate::store::{self, Record, Write};

/// The query of a PUT: `dry_run=true|false`, nothing else (a misspelt `dry_run` must not
/// become a real write).
pub(super) fn parse_query(params: &HashMap<String, String>) -> Result<bool, ApiError> {
    let mut dry_run = false;
    for (key, value) in params {
        match (key.as_str(), value.as_str()) {
            ("dry_run", "true") => dry_run = true,
            ("dry_run", "false") => dry_run = false,
            ("dry_run", other) => {
                return Err(ApiError::invalid_query(format!(
                    "dry_run must be true or false, got '{other}'"
                ))
                .with_field("dry_run"));
            }
            (other, _) => {
                return Err(ApiError::invalid_query(format!(
                    "unknown query parameter '{other}'; a PUT takes only dry_run"
                )));
            }
        }
    }
    Ok(dry_run)
}

/// Checks `write` as the store would and answers as the write would (201 or 200 with the
/// resource, its version the one it would get), without an `ETag`: no such version exists.
pub(super) async fn preview(state: &AppState, write: Write) -> Result<Response, ApiError> {
    let current = state.store.get(write.kind, &write.name).await?;
    store::check_version(
        write.kind,
        &write.name,
        write.expected_version,
        current.as_ref().map(|c| c.version),
    )?;
    let mut checked = HashSet::new();
    for target in &write.references {
        if !checked.insert((target.kind, target.name.as_str())) {
            continue;
        }
        if state.store.get(target.kind, &target.name).await?.is_none() {
            return Err(store::Error::DanglingReference {
                field: target.field.clone(),
                kind: target.kind,
                name: target.name.clone(),
            }
            .into());
        }
    }
    let now = Utc::now().trunc_subsecs(6);
    let record = Record {
        kind: write.kind,
        name: write.name,
        version: current.as_ref().map_or(1, |c| c.version + 1),
        revision: current.as_ref().map_or(0, |c| c.revision),
        spec: write.spec,
        created_at: current.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
    };
    let status = if current.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(record_json(&record))).into_response())
}
