//! Authenticated xDS with real proxies: a server started with `--xds-auth required`; a proxy
//! bootstrapped with `token=issue` connects (Envoy and minimal-proxy), one without a token is
//! refused (the server logs the refusal), a node presenting another node's token is refused
//! (PERMISSION_DENIED, logged with the token's id), and revoking a connected proxy's token ends its
//! stream: it leaves GET /api/v1/proxies and cannot come back.

use std::time::{Duration, Instant};

use integration::{
    net::{free_port, local_client},
    proxy::{DataPlane, Proxy},
    server::Server,
};

const WAIT: Duration = Duration::from_secs(30);

/// Polls `check` every 100 ms until it holds, failing with `what` after [`WAIT`].
async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connected(server: &Server, node: &str) -> bool {
    let url = server.url(&format!("/api/v1/proxies/{node}"));
    local_client()
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

/// The bootstrap for `node` (with a new token when `token`), and the token's id.
async fn bootstrap(server: &Server, node: &str, token: bool) -> (String, Option<String>) {
    let mut url = server.url(&format!(
        "/api/v1/bootstrap?node_id={node}&cluster=auth&admin_port={}",
        free_port()
    ));
    if token {
        url.push_str("&token=issue");
    }
    let resp = local_client().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp
        .headers()
        .get("x-proxy-token-id")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.text().await.unwrap(), id)
}

async fn tokens_gate_the_xds_port(plane: DataPlane) {
    if plane.binary().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesh.db").display().to_string();
    let mut server = Server::start(&["--sqlite-file", &db, "--xds-auth", "required"], &[]);

    // With a token: connected.
    let node = format!("auth-{}", plane.as_str());
    let (text, id) = bootstrap(&server, &node, true).await;
    let proxy = Proxy::start(plane, &text);
    wait_until("the proxy with a token to connect", async || {
        connected(&server, &node).await
    })
    .await;

    // Without: refused, and the server says why.
    let stranger = format!("stranger-{}", plane.as_str());
    let (text, none) = bootstrap(&server, &stranger, false).await;
    assert!(none.is_none());
    let _refused = Proxy::start(plane, &text);
    let deadline = Instant::now() + WAIT;
    while !server
        .logs()
        .iter()
        .any(|l| l.contains("xDS stream refused: no proxy token"))
    {
        assert!(Instant::now() < deadline, "no refusal logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!connected(&server, &stranger).await);

    // Another node with that node's token: PERMISSION_DENIED, logged with the token's id.
    let (text, other_id) = bootstrap(&server, &node, true).await;
    let impostor = format!("impostor-{}", plane.as_str());
    let text = text.replace(
        &format!("\"id\": \"{node}\""),
        &format!("\"id\": \"{impostor}\""),
    );
    assert!(text.contains(&impostor));
    let _impostor = Proxy::start(plane, &text);
    let other_id = other_id.unwrap();
    let deadline = Instant::now() + WAIT;
    while !server
        .logs()
        .iter()
        .any(|l| l.contains("the proxy token belongs to another node") && l.contains(&other_id))
    {
        assert!(Instant::now() < deadline, "no PERMISSION_DENIED logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!connected(&server, &impostor).await);

    // Revoked: the live stream ends and the proxy stays out.
    let id = id.expect("token=issue names its token");
    let url = server.url(&format!("/api/v1/proxy-tokens/{id}"));
    let resp = local_client().delete(url).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    wait_until("the revoked proxy to leave", async || {
        !connected(&server, &node).await
    })
    .await;
    assert!(proxy.is_running(), "the proxy itself keeps running");
    let secret_logged = server.logs().iter().any(|l| l.contains("xdst_"));
    assert!(!secret_logged, "a token secret reached the server log");
}

#[tokio::test]
async fn envoy_needs_a_token_and_loses_its_stream_on_revocation() {
    tokens_gate_the_xds_port(DataPlane::Envoy).await;
}

#[tokio::test]
async fn minimal_proxy_needs_a_token_and_loses_its_stream_on_revocation() {
    tokens_gate_the_xds_port(DataPlane::Minimal).await;
}
