//! Liveness and readiness probes.

use std::time::Duration;

use axum::{Json, extract::State};
use serde_json::{Value, json};

use super::{ApiError, AppState};

/// How long `/readyz` waits for the store: long enough for a busy but healthy database (and a
/// fresh connection after a restart), short enough that an unreachable one answers 503 well
/// before the pool's own acquire timeout. Give the probe a timeout above this (3 s).
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The store answers one cheap query (its revision) within [`READY_TIMEOUT`]; reports which
/// backend and the revision it is at. 503 `store_unavailable` otherwise: the server still
/// serves the mesh it last loaded over xDS, but cannot take writes.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let backend = state.store.backend();
    match tokio::time::timeout(READY_TIMEOUT, state.store.revision()).await {
        Ok(Ok(revision)) => Ok(Json(json!({
            "status": "ready",
            "store": backend,
            "revision": revision,
        }))),
        Ok(Err(e)) => {
            // The detail may name hosts or users: it goes to the log, not to the unauthenticated
            // caller.
            tracing::warn!(error = %e, "readiness check: store unreachable");
            Err(not_ready(backend))
        }
        Err(_) => {
            tracing::warn!(
                timeout = ?READY_TIMEOUT,
                "readiness check: store did not answer in time"
            );
            Err(not_ready(backend))
        }
    }
}

fn not_ready(backend: &str) -> ApiError {
    let mut err = ApiError::store_unavailable();
    err.body.message = format!(
        "the {backend} store is not reachable; proxies keep the mesh last loaded; see the server log"
    );
    err
}
