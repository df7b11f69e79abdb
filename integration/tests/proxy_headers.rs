//! What the proxy adds and answers by itself, on both data planes (ADS SotW and Delta), held to
//! Envoy's behaviour: the exact headers on each side of the proxy, and its own 404, 503 and 403
//! (an upgrade nothing allows).

use std::time::Duration;

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Reply, Stage, Variant},
    upstream::Upstream,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

conformance!(local_replies_and_proxy_headers);

/// What the proxy adds and answers by itself, as Envoy does: the upstream sees
/// `x-forwarded-proto`, a UUID `x-request-id`, the route timeout in
/// `x-envoy-expected-rq-timeout-ms` and the client's `host`; the client sees `server: envoy`
/// and `x-envoy-upstream-service-time`. No matching route is the proxy's own empty 404; a
/// service without endpoints its own `503 no healthy upstream`.
async fn local_replies_and_proxy_headers(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.service("svc-a", &[(&a, json!({}))]).await;
    stage.service("empty", &[]).await;
    stage
        .route(
            "main",
            json!([
                { "match": { "path": { "prefix": "/api/" } },
                  "destinations": [{ "service": "svc-a" }], "timeout": "5s" },
                { "match": { "path": { "prefix": "/empty/" } },
                  "destinations": [{ "service": "empty" }] }
            ]),
        )
        .await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
    let reply = stage
        .wait_reply("a reply from a", "/api/x", &[], WAIT, |r| r.from("a"))
        .await;

    let seen = &reply.headers;
    let mut names: Vec<&str> = seen
        .as_object()
        .map(|h| h.keys().map(String::as_str).collect())
        .unwrap_or_default();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "accept",
            "host",
            "x-envoy-expected-rq-timeout-ms",
            "x-forwarded-proto",
            "x-request-id"
        ],
        "exactly the client's headers and what Envoy adds reach the upstream: {seen}"
    );
    let mut answered: Vec<&str> = reply.response_headers.keys().map(|k| k.as_str()).collect();
    answered.sort_unstable();
    assert_eq!(
        answered,
        [
            "content-length",
            "content-type",
            "date",
            "server",
            "x-envoy-upstream-service-time",
            "x-upstream"
        ],
        "exactly the upstream's headers and what Envoy adds reach the client: {reply:?}"
    );
    assert_eq!(seen["x-forwarded-proto"], "http", "{seen}");
    assert_eq!(seen["x-envoy-expected-rq-timeout-ms"], "5000", "{seen}");
    assert_eq!(
        seen["host"],
        format!("127.0.0.1:{}", stage.listener_port),
        "{seen}"
    );
    let request_id = seen["x-request-id"].as_str().unwrap_or_default();
    assert!(
        request_id.len() == 36 && request_id.matches('-').count() == 4,
        "x-request-id is a UUID: {seen}"
    );
    let header = |r: &Reply, name: &str| {
        r.response_headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(
        header(&reply, "server").as_deref(),
        Some("envoy"),
        "{reply:?}"
    );
    assert!(
        header(&reply, "x-envoy-upstream-service-time").is_some_and(|t| t.parse::<u64>().is_ok()),
        "x-envoy-upstream-service-time: {reply:?}"
    );

    let no_route = stage.send("/elsewhere", &[]).await.unwrap();
    assert_eq!(
        (no_route.status, no_route.body.as_str()),
        (404, ""),
        "no route: the proxy's empty 404: {no_route:?}"
    );
    let no_host = stage.send("/empty/x", &[]).await.unwrap();
    assert_eq!(
        (no_host.status, no_host.body.as_str()),
        (503, "no healthy upstream"),
        "no endpoint: {no_host:?}"
    );
    assert_eq!(header(&no_host, "server").as_deref(), Some("envoy"));

    // No upgrade is configured: a WebSocket upgrade is refused and never reaches a.
    let hits = a.hits();
    let upgrade = [("connection", "upgrade"), ("upgrade", "websocket")];
    let refused = stage.send("/api/ws", &upgrade).await.unwrap();
    assert_eq!(refused.status, 403, "an unconfigured upgrade: {refused:?}");
    assert_eq!(a.hits(), hits, "the upgrade request never reached a");
}
