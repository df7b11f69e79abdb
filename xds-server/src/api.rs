//! The REST admin API under `/api/v1`, built as axum's examples build theirs: a cloneable
//! [`AppState`], handlers named `<resource>_<verb>`, one JSON error shape ([`ApiError`]), and
//! [`router`] callable from tests without a socket.

mod auth;
mod body;
mod endpoints;
mod error;
mod health;
mod openapi;
mod resources;

use std::sync::Arc;

use axum::{Router, extract::DefaultBodyLimit, routing::get};

use crate::{
    model::{EnvoyResource, Listener, Route, Service},
    store::Store,
};

pub use error::{ApiError, ErrorBody};
pub use openapi::openapi;

/// The default request-body limit: far above any sane mesh resource, far below harm.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Requests (except health checks) must carry this bearer token when set.
    pub admin_token: Option<Arc<str>>,
    pub max_body_bytes: usize,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            admin_token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// The whole admin API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .merge(resources::routes::<Service>())
        .merge(resources::routes::<Route>())
        .merge(resources::routes::<Listener>())
        .merge(resources::routes::<EnvoyResource>())
        .route(
            "/api/v1/services/{name}/endpoints",
            get(endpoints::endpoints_get).put(endpoints::endpoints_put),
        )
        .fallback(|| async { ApiError::not_found("no such API path; see /api/openapi.json") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}
