//! The admin token: when configured, every request but the health checks must carry
//! `Authorization: Bearer <token>`. The comparison takes the same time wherever the tokens
//! differ, and the token is never logged.

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};

/// Paths that load balancers and orchestrators probe without credentials.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];

pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.admin_token.as_deref() else {
        return next.run(req).await;
    };
    if OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    // The scheme name is case-insensitive (RFC 9110); the token is not.
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "))
        .map(|v| &v[7..]);
    match presented {
        Some(token) if bool::from(token.ct_eq(expected.as_bytes())) => next.run(req).await,
        _ => ApiError::unauthorized().into_response(),
    }
}
