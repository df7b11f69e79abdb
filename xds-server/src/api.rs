//! The REST admin API under `/api/v1`, built as axum's examples build theirs: a cloneable
//! [`AppState`], handlers named `<resource>_<verb>`, one JSON error shape ([`ApiError`]), and
//! [`router`] callable from tests without a socket.

mod auth;
pub(crate) mod body;
mod bootstrap;
mod ca;
mod dry_run;
mod endpoints;
mod error;
mod health;
mod openapi;
mod path;
mod prometheus;
mod proxies;
mod proxy_tokens;
mod resources;
mod stats;
mod tap;

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
};

use axum::{Router, extract::DefaultBodyLimit, routing::get};

use crate::{
    metrics::Metrics,
    model::{EnvoyResource, Listener, Route, Service, TrafficPermission},
    status::Registry,
    store::Store,
    tap::Taps,
};

pub use auth::bearer;
pub use error::{ApiError, ErrorBody};
pub use openapi::openapi;

/// The default request-body limit: far above any sane mesh resource, far below harm.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Where xDS listens unless told otherwise (Envoy's convention: port 18000).
pub const DEFAULT_XDS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 18000);

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Requests (except health checks) must carry this bearer token when set.
    pub admin_token: Option<Arc<str>>,
    /// Read-only tokens (GET/HEAD); only checked when `admin_token` is set.
    pub reader_tokens: Arc<[Arc<str>]>,
    /// The xDS port's proxy tokens: reloaded at once when this replica issues or revokes one.
    pub proxy_auth: crate::proxy_auth::ProxyAuth,
    pub max_body_bytes: usize,
    /// Every open xDS stream's status; the xDS server writes it, `/api/v1/proxies` reads it.
    pub registry: Registry,
    /// Counted by the xDS server, rendered by `/metrics`.
    pub metrics: Metrics,
    /// The xDS listen address, for `/api/v1/bootstrap` (when unspecified, `0.0.0.0` or `::`,
    /// the bootstrap uses the host the request came to).
    pub xds_addr: SocketAddr,
    /// With `--xds-tls`: the CA certificates (PEM, public) proxies trust for the xDS port;
    /// `/api/v1/bootstrap` then makes them connect over TLS.
    pub xds_tls_ca: Option<Arc<str>>,
    /// The mesh CA (`--ca`), for `/api/v1/ca`; `None` when it is off.
    pub ca: Option<Arc<crate::ca::Authority>>,
    /// The live taps `/api/v1/tap` opens (fed by the xDS server's access-log service).
    pub taps: Taps,
    /// The golden metrics `/api/v1/stats` serves (fed by the xDS server's metrics service).
    pub telemetry: crate::telemetry::Telemetry,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            admin_token: None,
            reader_tokens: Arc::from([]),
            proxy_auth: crate::proxy_auth::ProxyAuth::off(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            registry: Registry::default(),
            metrics: Metrics::new(),
            xds_addr: DEFAULT_XDS_ADDR,
            xds_tls_ca: None,
            ca: None,
            taps: Taps::default(),
            telemetry: crate::telemetry::Telemetry::detached(),
        }
    }
}

/// The whole admin API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/metrics", get(proxies::metrics_get))
        .merge(resources::routes::<Service>())
        .merge(resources::routes::<Route>())
        .merge(resources::routes::<Listener>())
        .merge(resources::routes::<EnvoyResource>())
        .merge(resources::routes::<TrafficPermission>())
        .route(
            "/api/v1/services/{name}/endpoints",
            get(endpoints::endpoints_get).put(endpoints::endpoints_put),
        )
        .route("/api/v1/proxies", get(proxies::proxies_list))
        .route("/api/v1/proxies/{node_id}", get(proxies::proxies_get))
        .route(
            "/api/v1/proxies/{node_id}/config",
            get(proxies::proxy_config),
        )
        .route("/api/v1/bootstrap", get(bootstrap::bootstrap_get))
        .route("/api/v1/stats", get(stats::stats_list))
        .route("/api/v1/services/{name}/stats", get(stats::stats_get))
        .route(
            "/api/v1/prometheus/targets",
            get(prometheus::prometheus_targets),
        )
        .route("/api/v1/tap", get(tap::tap_get))
        .route("/api/v1/ca", get(ca::ca_get))
        .route(
            "/api/v1/proxy-tokens",
            get(proxy_tokens::proxy_tokens_list).post(proxy_tokens::proxy_tokens_create),
        )
        .route(
            "/api/v1/proxy-tokens/{id}",
            axum::routing::delete(proxy_tokens::proxy_tokens_delete),
        )
        .fallback(|| async { ApiError::not_found("no such API path; see /api/openapi.json") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        // After the token's layer: the console's files hold no data (it asks for the token).
        .merge(crate::ui::routes())
        .with_state(state)
}
