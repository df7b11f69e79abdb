//! The web console's files as the server serves them (in-process, no socket): every file the
//! page loads is there with its content type, the policy headers forbid inline code and other
//! origins, ETags revalidate, unknown paths are 404, no token is needed for the files while
//! the API needs one, and the sources keep to the rules the policy relies on.
//! (The console in a real browser: integration/tests/console.rs.)

mod common;

use std::collections::BTreeSet;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use tower::ServiceExt;
use xds_server::api::{AppState, router};

async fn app(token: Option<&str>) -> (Router, tempfile::TempDir) {
    let (store, dir) = common::sqlite().await;
    let mut state = AppState::new(store);
    state.admin_token = token.map(Into::into);
    (router(state), dir)
}

async fn get(app: &Router, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into(),
    )
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// Every `/ui/...` path the page loads: the page's links and scripts, then each module's
/// static imports, followed from file to file.
async fn crawl(app: &Router) -> BTreeSet<String> {
    let (_, _, html) = get(app, "/ui/", &[]).await;
    let mut todo: Vec<String> = quoted_after(&html, &["src=\"", "href=\""])
        .into_iter()
        .filter(|p| p.starts_with("/ui/"))
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) || !path.ends_with(".js") {
            continue;
        }
        let (status, _, js) = get(app, &path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let dir = &path[..path.rfind('/').unwrap()];
        for import in quoted_after(&js, &["from '"]) {
            todo.push(resolve(dir, &import));
        }
    }
    seen
}

/// The text up to the next quote after each occurrence of each prefix.
fn quoted_after(text: &str, prefixes: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in prefixes {
        let close = prefix.chars().last().unwrap();
        for (i, _) in text.match_indices(prefix) {
            let rest = &text[i + prefix.len()..];
            out.push(rest[..rest.find(close).unwrap()].to_string());
        }
    }
    out
}

/// `./x.js` and `../x.js` against a directory like `/ui/views`.
fn resolve(dir: &str, import: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').collect();
    for segment in import.split('/') {
        match segment {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[tokio::test]
async fn every_file_the_page_loads_is_served_with_its_type_and_policy() {
    let (app, _dir) = app(None).await;
    let paths = crawl(&app).await;
    for expected in [
        "/ui/app.js",
        "/ui/console.css",
        "/ui/views/tap.js",
        "/ui/sync.js",
    ] {
        assert!(
            paths.contains(expected),
            "{expected} not reached: {paths:?}"
        );
    }
    for path in paths.iter().map(String::as_str).chain(["/ui", "/ui/"]) {
        let (status, headers, body) = get(&app, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.is_empty(), "{path}");
        let want = match path.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            _ => "text/html; charset=utf-8",
        };
        assert_eq!(header(&headers, header::CONTENT_TYPE), want, "{path}");
        let csp = header(&headers, header::CONTENT_SECURITY_POLICY);
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(header(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header(&headers, header::CACHE_CONTROL), "no-cache");
        assert!(header(&headers, header::ETAG).starts_with('"'), "{path}");
    }
}

#[tokio::test]
async fn an_unchanged_file_revalidates_with_its_etag() {
    let (app, _dir) = app(None).await;
    let (_, headers, _) = get(&app, "/ui/app.js", &[]).await;
    let etag = header(&headers, header::ETAG).to_string();
    let (status, again, body) = get(&app, "/ui/app.js", &[("if-none-match", &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(header(&again, header::ETAG), etag);
    let (status, _, _) = get(&app, "/ui/app.js", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, StatusCode::OK);
    // Each file has its own tag.
    let (_, css, _) = get(&app, "/ui/console.css", &[]).await;
    assert_ne!(header(&css, header::ETAG), etag);
}

#[tokio::test]
async fn unknown_console_paths_are_404() {
    let (app, _dir) = app(None).await;
    for path in [
        "/ui/nope.js",
        "/ui/views/",
        "/ui/../api/v1/services",
        "/ui/%2e%2e/Cargo.toml",
        "/ui/app.js/x",
    ] {
        let (status, headers, body) = get(&app, path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(
            body.contains("/ui/"),
            "says where the console starts: {body}"
        );
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
    }
}

#[tokio::test]
async fn the_files_need_no_token_while_the_api_does() {
    let (app, _dir) = app(Some("s3cret")).await;
    for path in ["/ui", "/ui/", "/ui/app.js", "/ui/console.css"] {
        let (status, _, _) = get(&app, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _, _) = get(&app, "/api/v1/proxies", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = get(
        &app,
        "/api/v1/proxies",
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// The policy forbids inline code, so the page has none; nothing from the API is parsed as
/// markup; the token stays in sessionStorage and headers, never in a URL.
#[tokio::test]
async fn the_sources_keep_to_the_policy() {
    let (app, _dir) = app(None).await;
    let (_, _, html) = get(&app, "/ui/", &[]).await;
    for tag in html.match_indices("<script").map(|(i, _)| &html[i..]) {
        let open = &tag[..tag.find('>').unwrap()];
        assert!(open.contains("src=\"/ui/"), "inline script: {open}");
    }
    assert!(
        !html.contains("<style") && !html.contains(" style="),
        "inline style"
    );
    let handler = html.match_indices(" on").find(|(i, _)| {
        let rest = &html[i + 3..];
        let name_len = rest.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(0);
        name_len > 0 && rest[name_len..].starts_with('=')
    });
    assert!(handler.is_none(), "inline handler attribute: {handler:?}");
    for path in crawl(&app).await.iter().filter(|p| p.ends_with(".js")) {
        let (_, _, js) = get(&app, path, &[]).await;
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "eval(",
            "new Function",
            "localStorage",
            "token=",
        ] {
            assert!(!js.contains(banned), "{path} uses {banned}");
        }
    }
}
