//! What a route and a cluster do with a misbehaving upstream, on both data planes (ADS SotW and
//! Delta): retries (an upstream failing the first attempt, then every attempt; a dead endpoint
//! under connect-failure retries), the route timeout and the per-try timeout (504).
//!
//! The upstream misbehaves on request (see `integration::upstream`): `x-test-key` numbers the
//! attempts of one request, `x-fail-attempts` fails the first ones with 503, `x-delay-ms`
//! delays them.

use std::time::{Duration, Instant};

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Reply, Stage, Variant},
    net::{self, free_port, local_client},
    upstream::Upstream,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// How Envoy's local reply for a failed upstream connection starts.
const CONNECT_FAILURE: &str =
    "upstream connect error or disconnect/reset before headers. reset reason:";

conformance!(retries_hide_a_failed_attempt, timeouts_answer_504);

fn http_service() -> Value {
    json!({ "protocol": "http", "connect_timeout": "1s" })
}

/// One request that must get an HTTP answer.
async fn must_send(stage: &Stage, path: &str, headers: &[(&str, &str)]) -> Reply {
    stage
        .send(path, headers)
        .await
        .unwrap_or_else(|e| stage.proxy().fail(&format!("GET {path}: {e}")))
}

/// Under `/retry/` up to 2 retries on 5xx; elsewhere none. A request whose first attempt fails
/// gets the second attempt's 200 (a POST's body replayed whole to it); one whose every attempt
/// fails gets the third attempt's 503
/// (the upstream's own answer, passed through); without a retry policy the first 503 is final.
async fn retries_hide_a_failed_attempt(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    let rules = json!([
        { "match": { "path": { "prefix": "/retry/" } },
          "destinations": [{ "service": "svc-a" }],
          "timeout": "5s",
          "retries": { "attempts": 2, "retry_on": ["5xx"],
                       "backoff": { "base_interval": "10ms", "max_interval": "50ms" } } },
        { "match": { "path": { "prefix": "/" } },
          "destinations": [{ "service": "svc-a" }],
          "timeout": "5s" }
    ]);
    stage.serve_with("svc-a", http_service(), &a, rules).await;

    let once = must_send(
        &stage,
        "/retry/once",
        &[("x-test-key", "once"), ("x-fail-attempts", "1")],
    )
    .await;
    assert!(once.from("a"), "the retry answers: {once:?}");
    assert_eq!(
        once.attempt,
        Some(2),
        "the second attempt answered: {once:?}"
    );

    // A request body is replayed whole to the retry.
    let body: Vec<u8> = (0..256 * 1024).map(|i| (i % 253) as u8).collect();
    let expected = (body.len() as u64, net::fnv1a(&body));
    let headers = [("x-test-key", "body"), ("x-fail-attempts", "1")];
    let port = stage.listener_port;
    let posted = net::post(&local_client(), port, "/retry/body", &headers, body)
        .await
        .unwrap_or_else(|e| stage.proxy().fail(&format!("POST /retry/body: {e}")));
    assert_eq!(
        (posted.status, posted.attempt, posted.request_body.as_ref()),
        (200, Some(2), Some(&expected)),
        "the retried POST carried the whole body to the second attempt: {posted:?}"
    );

    let hits = a.hits();
    let always = must_send(
        &stage,
        "/retry/always",
        &[("x-test-key", "always"), ("x-fail-attempts", "10")],
    )
    .await;
    assert_eq!(always.status, 503, "{always:?}");
    assert_eq!(
        (always.upstream.as_deref(), always.attempt),
        (Some("a"), Some(3)),
        "1 try + 2 retries, the last upstream answer passed through: {always:?}"
    );
    assert_eq!(
        a.hits() - hits,
        3,
        "the upstream saw exactly three attempts"
    );

    let plain = must_send(
        &stage,
        "/plain",
        &[("x-test-key", "plain"), ("x-fail-attempts", "1")],
    )
    .await;
    assert_eq!(
        (plain.status, plain.attempt),
        (503, Some(1)),
        "no retry policy, no retry: {plain:?}"
    );

    let proxy = stage.proxy();
    let retries = proxy.stat("cluster.svc-a.upstream_rq_retry").await;
    assert_eq!(
        retries,
        Some(4),
        "cluster.svc-a.upstream_rq_retry counts 1 + 1 + 2 retries"
    );
    let succeeded = proxy.stat("cluster.svc-a.upstream_rq_retry_success").await;
    assert_eq!(
        succeeded,
        Some(2),
        "cluster.svc-a.upstream_rq_retry_success"
    );

    connect_failures_are_retried(&stage).await;
}

/// `flaky` balances over a port nothing listens on and b: under `/connect/`, connect failures
/// are retried (every request answered by b); elsewhere, the requests sent to the dead port
/// get the proxy's own 503 naming the connection failure.
async fn connect_failures_are_retried(stage: &Stage) {
    let b = Upstream::start("b");
    let dead = free_port();
    stage
        .service_on_ports(
            "flaky",
            http_service(),
            &[(dead, json!({})), (b.port(), json!({}))],
        )
        .await;
    stage
        .route(
            "main",
            json!([
                { "match": { "path": { "prefix": "/connect/" } },
                  "destinations": [{ "service": "flaky" }],
                  "retries": { "attempts": 2, "retry_on": ["connect-failure"] } },
                { "match": { "path": { "prefix": "/" } },
                  "destinations": [{ "service": "flaky" }] }
            ]),
        )
        .await;
    stage
        .wait_reply("flaky routed", "/connect/x", &[], WAIT, |r| r.from("b"))
        .await;
    for i in 0..10 {
        let reply = must_send(stage, &format!("/connect/{i}"), &[]).await;
        assert!(reply.from("b"), "connect failures are retried: {reply:?}");
    }
    let mut failed = 0;
    for i in 0..10 {
        let reply = must_send(stage, &format!("/no-retry/{i}"), &[]).await;
        if reply.status == 503 {
            assert!(
                reply.body.starts_with(CONNECT_FAILURE)
                    && reply.body.contains("connection failure"),
                "the proxy's own answer names the connection failure: {reply:?}"
            );
            failed += 1;
        } else {
            assert!(reply.from("b"), "{reply:?}");
        }
    }
    assert!(
        failed > 0,
        "without retries some requests meet the dead port"
    );
    let proxy = stage.proxy();
    let connect_fail = proxy.stat("cluster.flaky.upstream_cx_connect_fail").await;
    assert!(
        connect_fail.is_some_and(|n| n >= failed),
        "cluster.flaky.upstream_cx_connect_fail: {connect_fail:?}, {failed} failed"
    );
}

/// Sends one request and returns the reply with how long it took.
async fn timed(stage: &Stage, path: &str, headers: &[(&str, &str)]) -> (Reply, Duration) {
    let start = Instant::now();
    let reply = must_send(stage, path, headers).await;
    (reply, start.elapsed())
}

/// The route timeout (500 ms) cuts a 3 s answer short with the proxy's own 504. A per-try
/// timeout (300 ms, one retry, route timeout 5 s) retries a slow first attempt and the fast
/// second one answers; when every attempt is slow the answer is a 504 after two tries, long
/// before the route timeout.
async fn timeouts_answer_504(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    let rules = json!([
        { "match": { "path": { "prefix": "/route-timeout/" } },
          "destinations": [{ "service": "svc-a" }],
          "timeout": "500ms" },
        { "match": { "path": { "prefix": "/per-try/" } },
          "destinations": [{ "service": "svc-a" }],
          "timeout": "5s",
          "retries": { "attempts": 1, "per_try_timeout": "300ms", "retry_on": ["5xx"] } },
        { "match": { "path": { "prefix": "/" } },
          "destinations": [{ "service": "svc-a" }],
          "timeout": "5s" }
    ]);
    stage.serve_with("svc-a", http_service(), &a, rules).await;
    let slow = [("x-delay-ms", "3000")];

    let (reply, took) = timed(&stage, "/route-timeout/x", &slow).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (504, "upstream request timeout"),
        "route timeout: {reply:?}"
    );
    assert_eq!(reply.upstream, None, "the proxy answers itself: {reply:?}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(2500),
        "a 500 ms route timeout answered after {took:?}"
    );

    let first_slow = [
        ("x-test-key", "first-slow"),
        ("x-delay-ms", "3000"),
        ("x-delay-attempts", "1"),
    ];
    let (reply, took) = timed(&stage, "/per-try/first-slow", &first_slow).await;
    assert!(
        reply.from("a"),
        "the retry after the per-try timeout answers: {reply:?}"
    );
    assert_eq!(reply.attempt, Some(2), "{reply:?}");
    assert_eq!(
        reply.headers["x-envoy-expected-rq-timeout-ms"], "300",
        "with a per-try timeout, the upstream is told the per-try timeout: {}",
        reply.headers
    );
    assert!(
        took < Duration::from_millis(2500),
        "answered after {took:?}"
    );

    let all_slow = [("x-test-key", "all-slow"), ("x-delay-ms", "3000")];
    let (reply, took) = timed(&stage, "/per-try/all-slow", &all_slow).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (504, "upstream request timeout"),
        "every try timed out: {reply:?}"
    );
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(2500),
        "two 300 ms tries answered after {took:?} (the route allows 5 s)"
    );

    let proxy = stage.proxy();
    let route = proxy.stat("cluster.svc-a.upstream_rq_timeout").await;
    assert!(
        route.is_some_and(|n| n >= 1),
        "cluster.svc-a.upstream_rq_timeout counts the route timeout: {route:?}"
    );
    let per_try = proxy
        .stat("cluster.svc-a.upstream_rq_per_try_timeout")
        .await;
    assert_eq!(
        per_try,
        Some(3),
        "cluster.svc-a.upstream_rq_per_try_timeout: one, then two"
    );
}
