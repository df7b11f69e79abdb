//! Circuit breaking on both data planes (ADS SotW and Delta): past a cluster's limits the proxy
//! refuses requests at once with its own 503, queues what the pending limit allows, and never
//! lets the upstream see more than the request limit at once.

use std::time::{Duration, Instant};

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Stage, Variant},
    net::{self, POLL, local_client},
    upstream::Upstream,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Envoy's local reply when a circuit breaker refuses a request.
const OVERFLOW: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: overflow";

conformance!(circuit_breaker_rejects_past_the_limit);

/// A cluster allowing one connection, one pending request and one request at a time. With one
/// request held at the upstream, five more sent at once: the proxy queues one (the pending
/// request) and fails the other four at once with its own 503 marked `x-envoy-overloaded`,
/// while the held one is still in flight; the upstream never sees two requests at once.
/// Released, the held one and then the queued one answer 200.
async fn circuit_breaker_rejects_past_the_limit(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    let spec = json!({ "protocol": "http", "connect_timeout": "1s",
                       "circuit_breaker": { "max_connections": 1, "max_pending_requests": 1,
                                            "max_requests": 1, "max_retries": 0 } });
    let rules = json!([{ "match": { "path": { "prefix": "/" } },
                         "destinations": [{ "service": "svc-a" }],
                         "timeout": "20s" }]);
    stage.serve_with("svc-a", spec, &a, rules).await;
    let port = stage.listener_port;

    let held =
        tokio::spawn(
            async move { net::send(&local_client(), port, "/held", &[("x-hold", "1")]).await },
        );
    let deadline = Instant::now() + WAIT;
    while a.held() < 1 {
        assert!(
            Instant::now() < deadline,
            "the first request never reached a"
        );
        tokio::time::sleep(POLL).await;
    }
    let more: Vec<_> = (0..5)
        .map(|i| {
            tokio::spawn(async move {
                let path = format!("/more/{i}");
                net::send(&local_client(), port, &path, &[]).await
            })
        })
        .collect();
    // While the first is held, four of the five must be refused.
    let deadline = Instant::now() + WAIT;
    while more.iter().filter(|t| t.is_finished()).count() < 4 {
        if Instant::now() > deadline {
            stage
                .proxy()
                .fail("the proxy never refused requests past the limit");
        }
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(a.held(), 1, "the upstream holds only the first request");
    a.release_held();

    let first = held.await.expect("the held request's task");
    assert!(
        first.as_ref().is_ok_and(|r| r.from("a")),
        "the request within the limit succeeds: {first:?}"
    );
    let mut refused = 0;
    let mut answered = 0;
    for task in more {
        let reply = task.await.expect("a request task").expect("an HTTP answer");
        match reply.status {
            503 => {
                assert_eq!(
                    reply.body, OVERFLOW,
                    "the proxy refuses by itself: {reply:?}"
                );
                assert_eq!(
                    reply
                        .response_headers
                        .get("x-envoy-overloaded")
                        .map(|v| v.as_bytes()),
                    Some(&b"true"[..]),
                    "an overflow is marked x-envoy-overloaded: true, as Envoy marks it: {reply:?}"
                );
                refused += 1;
            }
            200 => answered += 1,
            _ => panic!("only 503 (overflow) or 200 (queued): {reply:?}"),
        }
    }
    assert_eq!(
        (refused, answered),
        (4, 1),
        "of 5 requests past the limit, max_pending_requests 1 lets one wait for the connection \
         (answered once it is free) and the other 4 are refused at once"
    );
    assert_eq!(
        a.max_in_flight(),
        1,
        "the upstream never saw two requests at once"
    );
    let overflow = stage
        .proxy()
        .stat("cluster.svc-a.upstream_rq_pending_overflow")
        .await;
    assert_eq!(
        overflow,
        Some(refused),
        "cluster.svc-a.upstream_rq_pending_overflow counts the refusals"
    );
}
