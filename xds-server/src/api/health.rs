//! Liveness and readiness probes.

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use super::{ApiError, AppState};

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The store answers; reports which backend and the revision it is at.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.store.revision().await {
        Ok(revision) => Ok(Json(json!({
            "status": "ready",
            "store": state.store.backend(),
            "revision": revision,
        }))),
        Err(e) => {
            // The detail may name hosts or users: it goes to the log, not to the unauthenticated
            // caller.
            tracing::warn!(error = %e, "readiness check: store unreachable");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!(
                    "the {} store is not reachable; see the server log",
                    state.store.backend()
                ),
            ))
        }
    }
}
