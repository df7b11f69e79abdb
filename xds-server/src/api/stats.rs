//! `GET /api/v1/services/{name}/stats` and `GET /api/v1/stats`: the golden metrics
//! (requests/s, success rate, latency percentiles) over `?window=10s|1m`, computed by
//! [`crate::telemetry`] from what the proxies report.

use axum::{
    Json,
    extract::{Query, State},
};

use super::{ApiError, AppState, path::Path};
use crate::telemetry::view::{AllStats, ServiceStats, Window};

/// One service's figures, with its routes and calling proxies.
pub async fn stats_get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<ServiceStats>, ApiError> {
    let window = window(query)?;
    state
        .telemetry
        .service(&name, window)
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no service '{name}' in the mesh; GET /api/v1/services lists them"
            ))
        })
}

/// Every service's figures, in name order.
pub async fn stats_list(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<AllStats>, ApiError> {
    Ok(Json(state.telemetry.all(window(query)?)))
}

/// `?window=` (default `1m`), the only parameter, at most once.
fn window(query: Vec<(String, String)>) -> Result<Window, ApiError> {
    let mut window = None;
    for (key, value) in query {
        if key != "window" {
            return Err(ApiError::invalid_query(format!(
                "unknown query parameter '{key}'; this path takes window=10s|1m"
            )));
        }
        let parsed = value
            .parse::<Window>()
            .map_err(|e| ApiError::invalid_query(e.to_string()).with_field("window"))?;
        if window.replace(parsed).is_some() {
            return Err(ApiError::invalid_query("window given more than once").with_field("window"));
        }
    }
    Ok(window.unwrap_or_default())
}
