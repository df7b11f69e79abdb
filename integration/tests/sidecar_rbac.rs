//! Traffic permissions enforced by the sidecar, the same scenarios on Envoy and minimal-proxy:
//! the real xds-server turns permissions into RBAC filters on `web`'s inbound listener, real
//! sidecars run them in front of a real application.
//!
//! - Plaintext (no CA): a deny permission names callers by certificate, so a plaintext caller
//!   passes it (and is counted as allowed); under `--permissions-default deny` it gets 403
//!   "RBAC: access denied" (HTTP) or a closed connection (TCP), and nothing reaches the
//!   application.
//! - mTLS (built-in CA, `api`'s sidecar calling `web`'s, on either data plane): a shadow deny
//!   only counts, a deny narrowed to a path answers 403 there and 200 elsewhere, a deny of the
//!   pair answers 403; under a default deny an allow lets `api` in while plaintext is refused.
//!   The same for a TCP service: its connections are closed until `api` is allowed, and again
//!   once it is denied.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use integration::{
    net::free_port,
    proxy::{DataPlane, Proxy},
    sidecars::{Answer, WAIT, available, control_plane, counted, ok_from, wait_get},
    upstream::Upstream,
};
use serde_json::json;

const DENIED: &str = "RBAC: access denied";

fn denied(a: &Answer) -> bool {
    matches!(a, Ok((403, _, body)) if body == DENIED)
}

/// The names of `proxy`'s RBAC statistics (zeros included: both data planes create them with
/// the filter).
async fn rbac_names(proxy: &Proxy) -> BTreeSet<String> {
    let stats = proxy.stats().await;
    stats["stats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| n.contains(".rbac."))
        .map(str::to_string)
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Plaintext to an HTTP sidecar: a deny passes a caller without a certificate, a default deny
/// refuses it.
async fn plaintext_http(plane: DataPlane) {
    if !available(&[plane]) {
        return;
    }
    let app = Upstream::start("web-app");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hello");

    let open = control_plane(&[]).await;
    open.web("http", "off", port, &app).await;
    open.permit(
        "deny-all",
        json!({ "from": ["*"], "to": "web", "action": "deny" }),
    )
    .await;
    let web = open.sidecar(plane, "web", "").await;
    let deadline = Instant::now() + WAIT;
    while !web
        .config_dump()
        .await
        .is_some_and(|d| d.to_string().contains("rbac|deny|deny-all"))
    {
        assert!(
            Instant::now() < deadline,
            "the RBAC filter never showed in /config_dump"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Counted as allowed: the filter is there and ran, and let the plaintext call through.
    let deadline = Instant::now() + WAIT;
    while web
        .stat("http.inbound|web.rbac.deny-all.allowed")
        .await
        .unwrap_or(0)
        < 1
    {
        wait_get(&url, "plaintext past a deny", ok_from("web-app"))
            .await
            .unwrap_or_else(|e| web.fail(&e));
        assert!(
            Instant::now() < deadline,
            "{}",
            web.stats_matching(&["rbac"]).await
        );
    }
    drop(web);
    drop(open);

    let closed = control_plane(&["--permissions-default", "deny"]).await;
    closed.web("http", "off", port, &app).await;
    let web = closed.sidecar(plane, "web", "").await;
    let hits = app.hits();
    let (_, _, body) = wait_get(&url, "plaintext under a default deny", denied)
        .await
        .unwrap_or_else(|e| web.fail(&e));
    assert_eq!(body, DENIED);
    counted(&web, "http.inbound|web.rbac.default-deny.denied", "rbac").await;
    assert_eq!(app.hits(), hits, "nothing reached the application");
    // Envoy's names, the same on both data planes: the enforced pair under the filter's
    // prefix, the shadow pair (no shadow prefix) under the connection manager's.
    assert_eq!(
        rbac_names(&web).await,
        names(&[
            "http.inbound|web.rbac.default-deny.allowed",
            "http.inbound|web.rbac.default-deny.denied",
            "http.inbound|web.rbac.shadow_allowed",
            "http.inbound|web.rbac.shadow_denied",
        ])
    );
}

/// Plaintext to a TCP sidecar under a default deny: the connection is closed (the HTTP
/// request over it fails) and nothing reaches the application.
async fn plaintext_tcp(plane: DataPlane) {
    if !available(&[plane]) {
        return;
    }
    let app = Upstream::start("web-app");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hello");
    let mesh = control_plane(&["--permissions-default", "deny"]).await;
    mesh.web("tcp", "off", port, &app).await;
    let web = mesh.sidecar(plane, "web", "").await;
    counted_after(&web, "inbound|web.default-deny.rbac.denied", &url).await;
    assert_eq!(app.hits(), 0, "nothing reached the application");
    assert_eq!(
        rbac_names(&web).await,
        names(&[
            "inbound|web.default-deny.rbac.allowed",
            "inbound|web.default-deny.rbac.denied",
            "inbound|web.default-deny.rbac.shadow_allowed",
            "inbound|web.default-deny.rbac.shadow_denied",
        ])
    );
}

/// Sends plaintext requests to `url` (each must fail) until `proxy` counts `name`.
async fn counted_after(proxy: &Proxy, name: &str, url: &str) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while proxy.stat(name).await.unwrap_or(0) < 1 {
        if let Ok(r) = client.get(url).send().await {
            panic!("a denied TCP connection answered: {}", r.status());
        }
        assert!(
            Instant::now() < deadline,
            "{} never counted {name}:\n{}",
            proxy.plane().as_str(),
            proxy.stats_matching(&["rbac"]).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `api`'s sidecar (on `api_plane`) calls `web`'s (on `web_plane`) over mTLS while
/// permissions change.
async fn over_mtls(web_plane: DataPlane, api_plane: DataPlane) {
    if !available(&[web_plane, api_plane]) {
        return;
    }
    let mesh = control_plane(&["--ca", "builtin"]).await;
    let app = Upstream::start("web-app");
    let (web_in, outbound) = (free_port(), free_port());
    mesh.api_calls_web("strict", web_in, &app, free_port(), outbound)
        .await;
    let web = mesh.sidecar(web_plane, "web", "").await;
    let _api = mesh.sidecar(api_plane, "api", "").await;
    let call = format!("http://127.0.0.1:{outbound}/call");
    let admin = format!("http://127.0.0.1:{outbound}/admin/users");
    wait_get(&call, "api → web over mTLS", ok_from("web-app"))
        .await
        .unwrap_or_else(|e| web.fail(&e));

    // A shadow deny only counts.
    mesh.permit(
        "try-deny-api",
        json!({ "from": ["api"], "to": "web", "action": "deny", "shadow": true }),
    )
    .await;
    let stat = "http.inbound|web.rbac.try-deny-api.shadow_denied";
    let deadline = Instant::now() + WAIT;
    while web.stat(stat).await.unwrap_or(0) < 1 {
        wait_get(
            &call,
            "a shadow deny lets the call through",
            ok_from("web-app"),
        )
        .await
        .unwrap_or_else(|e| web.fail(&e));
        assert!(
            Instant::now() < deadline,
            "{}",
            web.stats_matching(&["rbac"]).await
        );
    }

    // A deny narrowed to a path: 403 there, 200 elsewhere.
    mesh.permit(
        "no-admin",
        json!({ "from": ["api"], "to": "web", "action": "deny", "paths": ["/admin"] }),
    )
    .await;
    wait_get(&admin, "api to /admin is denied", denied)
        .await
        .unwrap_or_else(|e| web.fail(&e));
    wait_get(&call, "api elsewhere still gets in", ok_from("web-app"))
        .await
        .unwrap_or_else(|e| web.fail(&e));
    counted(&web, "http.inbound|web.rbac.no-admin.denied", "rbac").await;

    // Enforced for the pair: 403 from web's sidecar.
    mesh.permit(
        "try-deny-api",
        json!({ "from": ["api"], "to": "web", "action": "deny" }),
    )
    .await;
    wait_get(&call, "the denied pair", denied)
        .await
        .unwrap_or_else(|e| web.fail(&e));
    counted(&web, "http.inbound|web.rbac.try-deny-api.denied", "rbac").await;
}

/// Under a default deny, an allow lets `api` in over mTLS; a plaintext caller (web
/// permissive) is refused with 403.
async fn default_deny(web_plane: DataPlane, api_plane: DataPlane) {
    if !available(&[web_plane, api_plane]) {
        return;
    }
    let mesh = control_plane(&["--ca", "builtin", "--permissions-default", "deny"]).await;
    let app = Upstream::start("web-app");
    let (web_in, outbound) = (free_port(), free_port());
    mesh.api_calls_web("strict", web_in, &app, free_port(), outbound)
        .await;
    mesh.web("http", "permissive", web_in, &app).await;
    let web = mesh.sidecar(web_plane, "web", "").await;
    let _api = mesh.sidecar(api_plane, "api", "").await;
    let call = format!("http://127.0.0.1:{outbound}/call");
    let plain = format!("http://127.0.0.1:{web_in}/plain");
    wait_get(&call, "api before any allow", denied)
        .await
        .unwrap_or_else(|e| web.fail(&e));
    mesh.permit(
        "api-to-web",
        json!({ "from": ["api"], "to": "web", "action": "allow" }),
    )
    .await;
    wait_get(&call, "api once allowed", ok_from("web-app"))
        .await
        .unwrap_or_else(|e| web.fail(&e));
    let hits = app.hits();
    wait_get(&plain, "plaintext is not on the allow list", denied)
        .await
        .unwrap_or_else(|e| web.fail(&e));
    assert_eq!(app.hits(), hits);
    counted(&web, "http.inbound|web.rbac.default-deny.allowed", "rbac").await;
    counted(&web, "http.inbound|web.rbac.default-deny.denied", "rbac").await;
}

/// A TCP service over mTLS under a default deny: `api`'s sidecar reaches `web`'s through
/// its outbound TCP listener once allowed; without an allow, or with a deny, the connection
/// is closed.
async fn tcp_mtls(web_plane: DataPlane, api_plane: DataPlane) {
    if !available(&[web_plane, api_plane]) {
        return;
    }
    let mesh = control_plane(&["--ca", "builtin", "--permissions-default", "deny"]).await;
    let app = Upstream::start("web-app");
    let (web_in, outbound) = (free_port(), free_port());
    mesh.web("tcp", "strict", web_in, &app).await;
    mesh.put(
        "/api/v1/services/web/endpoints",
        json!({ "endpoints": [ { "address": "127.0.0.1", "port": web_in } ] }),
    )
    .await;
    mesh.put(
        "/api/v1/services/api",
        json!({ "protocol": "http", "mtls": "strict",
                "inbound": { "address": "127.0.0.1", "port": free_port(),
                             "app_port": free_port() } }),
    )
    .await;
    mesh.put(
        "/api/v1/listeners/api-outbound",
        json!({ "address": "127.0.0.1", "port": outbound, "protocol": "tcp",
                "service": "web", "selector": { "node_cluster": "api" } }),
    )
    .await;
    let web = mesh.sidecar(web_plane, "web", "").await;
    let _api = mesh.sidecar(api_plane, "api", "").await;
    let call = format!("http://127.0.0.1:{outbound}/call");
    counted_after(&web, "inbound|web.default-deny.rbac.denied", &call).await;
    assert_eq!(app.hits(), 0);

    mesh.permit(
        "api-to-web",
        json!({ "from": ["api"], "to": "web", "action": "allow" }),
    )
    .await;
    wait_get(&call, "api once allowed", ok_from("web-app"))
        .await
        .unwrap_or_else(|e| web.fail(&e));
    counted(&web, "inbound|web.default-deny.rbac.allowed", "rbac").await;

    mesh.permit(
        "deny-api",
        json!({ "from": ["api"], "to": "web", "action": "deny" }),
    )
    .await;
    wait_get(&call, "api once denied", |a| a.is_err())
        .await
        .unwrap_err();
    counted(&web, "inbound|web.deny-api.rbac.denied", "rbac").await;
}

macro_rules! on {
    ($name:ident, $scenario:ident, $($plane:ident),+) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $scenario($(DataPlane::$plane),+).await;
        }
    };
}

on!(plaintext_http_on_envoy, plaintext_http, Envoy);
on!(plaintext_http_on_minimal, plaintext_http, Minimal);
on!(plaintext_tcp_on_envoy, plaintext_tcp, Envoy);
on!(plaintext_tcp_on_minimal, plaintext_tcp, Minimal);
// (web's plane, api's plane): the first enforces.
on!(mtls_on_envoy, over_mtls, Envoy, Envoy);
on!(mtls_on_minimal, over_mtls, Minimal, Minimal);
on!(mtls_minimal_for_envoy, over_mtls, Minimal, Envoy);
on!(default_deny_on_envoy, default_deny, Envoy, Envoy);
on!(default_deny_on_minimal, default_deny, Minimal, Minimal);
on!(tcp_mtls_on_envoy, tcp_mtls, Envoy, Envoy);
on!(tcp_mtls_on_minimal, tcp_mtls, Minimal, Minimal);
on!(tcp_mtls_minimal_for_envoy, tcp_mtls, Minimal, Envoy);
