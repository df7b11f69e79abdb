//! The web console at `/ui`: static HTML, CSS and JavaScript modules embedded in the binary,
//! which read the REST API from the browser. No build step: the files under `xds-server/ui/`
//! are served as they are written.
//!
//! The assets themselves need no token (they hold no data); the console asks for the admin
//! token when the API answers 401 and sends it as a bearer header. Every answer carries a
//! strict Content-Security-Policy (no inline script or style, nothing from other origins), an
//! ETag over the content and `Cache-Control: no-cache`, so a browser revalidates each asset
//! and gets 304 until the binary changes.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::OnceLock,
};

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// The policy for every console answer: scripts, styles and fetches from this origin only,
/// no inline code, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    /// Its path under `/ui/`.
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_str!(concat!("../ui/", $path)),
        }
    };
}

/// Every file of the console; a path not listed here is 404.
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("console.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("live.js", JS),
    asset!("sync.js", JS),
    asset!("format.js", JS),
    asset!("views/proxies.js", JS),
    asset!("views/objects.js", JS),
    asset!("views/services.js", JS),
    asset!("views/tap.js", JS),
    asset!("views/token.js", JS),
];

/// `/ui`, `/ui/` (the page) and `/ui/{path}` (its files). Merged outside the admin token's
/// layer: the files hold no data.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(index_get))
        .route("/ui/", get(index_get))
        .route("/ui/{*path}", get(asset_get))
}

async fn index_get(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset_get(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// The asset at `path` (304 when the request's `If-None-Match` names its ETag), or 404.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) else {
        let body = format!("no console file '{path}'; the console starts at /ui/\n");
        return with_policy((StatusCode::NOT_FOUND, body).into_response());
    };
    let etag = &etags()[index];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_policy(response)
}

/// The security headers every console answer carries.
fn with_policy(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A strong ETag per asset (in [`ASSETS`] order), hashed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                // SipHash with fixed keys: the same content gives the same tag in every
                // process, so replicas behind one address agree.
                let mut hasher = DefaultHasher::new();
                a.body.hash(&mut hasher);
                format!("\"{:016x}\"", hasher.finish())
            })
            .collect()
    })
}
