//! Retries and per-try timeouts against upstreams that fail on purpose.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tokio::sync::Semaphore;

use super::support::*;
use crate::config::{RetryOn, RetryPolicy, RouteAction, UpstreamProtocol};

fn policy(retry_on: RetryOn, num_retries: u32) -> RetryPolicy {
    RetryPolicy {
        retry_on,
        num_retries,
        per_try_timeout: None,
        retriable_status_codes: vec![409],
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
    }
}

fn server_error() -> RetryOn {
    RetryOn {
        server_error: true,
        ..RetryOn::default()
    }
}

/// An upstream failing its first `failures` requests with `status`, echoing the body after.
async fn flaky(failures: u64, status: u16) -> Upstream {
    let seen = Arc::new(AtomicU64::new(0));
    Upstream::start(move |request: http::Request<hyper::body::Incoming>| {
        let n = seen.fetch_add(1, Ordering::Relaxed);
        async move {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            if n < failures {
                reply(status, "failed")
            } else {
                reply(200, body)
            }
        }
    })
    .await
}

async fn proxy_with(
    upstream: &Upstream,
    retry: RetryPolicy,
) -> (
    Arc<crate::upstream::Cluster>,
    crate::listener::Manager,
    std::net::SocketAddr,
) {
    let web = cluster("web", &[upstream.address], UpstreamProtocol::Http1);
    let mut fwd = forward("web");
    fwd.retry = Some(retry);
    let runtime = runtime(vec![web.clone()], vec![]);
    let r = routes("r", vec![route("/", RouteAction::Forward(fwd))]);
    let (manager, address) = serve(&runtime, inline_listener("l", r)).await;
    (web, manager, address)
}

#[tokio::test]
async fn a_5xx_is_retried_and_the_request_body_is_sent_again() {
    let upstream = flaky(1, 503).await;
    let (web, _manager, address) = proxy_with(&upstream, policy(server_error(), 2)).await;
    let request = Request::post("/")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let got = Client::h1(address).await.send(request).await.unwrap();
    assert_eq!((got.status.as_u16(), got.body.as_str()), (200, "payload"));
    assert_eq!(upstream.requests.load(Ordering::Relaxed), 2);
    assert_eq!(web.stats().upstream_rq_retry.get(), 1);
    assert_eq!(web.stats().upstream_rq_retry_success.get(), 1);
    assert_eq!(web.stats().upstream_rq_retry_limit_exceeded.get(), 0);
}

#[tokio::test]
async fn when_retries_run_out_the_last_response_is_returned() {
    let upstream = flaky(u64::MAX, 503).await;
    let (web, _manager, address) = proxy_with(&upstream, policy(server_error(), 2)).await;
    let got = get(address, "/").await;
    assert_eq!((got.status.as_u16(), got.body.as_str()), (503, "failed"));
    assert_eq!(upstream.requests.load(Ordering::Relaxed), 3);
    assert_eq!(web.stats().upstream_rq_retry.get(), 2);
    assert_eq!(web.stats().upstream_rq_retry_success.get(), 0);
    assert_eq!(web.stats().upstream_rq_retry_limit_exceeded.get(), 1);
}

#[tokio::test]
async fn only_the_conditions_of_retry_on_are_retried() {
    let gateway = RetryOn {
        gateway_error: true,
        ..RetryOn::default()
    };
    // 500 is no gateway error.
    let upstream = flaky(1, 500).await;
    let (web, _manager, address) = proxy_with(&upstream, policy(gateway, 2)).await;
    assert_eq!(get(address, "/").await.status, 500);
    assert_eq!(upstream.requests.load(Ordering::Relaxed), 1);
    // Not a retry condition: no limit was reached.
    assert_eq!(web.stats().upstream_rq_retry_limit_exceeded.get(), 0);

    let codes = RetryOn {
        retriable_status_codes: true,
        ..RetryOn::default()
    };
    let upstream = flaky(1, 409).await;
    let (_web, _manager, address) = proxy_with(&upstream, policy(codes, 2)).await;
    assert_eq!(get(address, "/").await.status, 200);
    assert_eq!(upstream.requests.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_body_larger_than_the_replay_buffer_is_not_retried() {
    let upstream = flaky(1, 503).await;
    let (web, _manager, address) = proxy_with(&upstream, policy(server_error(), 2)).await;
    let big = Bytes::from(vec![b'x'; 2 * 1024 * 1024]);
    let got = Client::h1(address)
        .await
        .send(Request::post("/").body(Full::new(big)).unwrap())
        .await
        .unwrap();
    assert_eq!(got.status, 503);
    assert_eq!(web.stats().upstream_rq_retry.get(), 0);
}

#[tokio::test]
async fn per_try_timeouts_are_retried_then_answered_with_a_504() {
    let hold = Arc::new(Semaphore::new(0));
    let held = hold.clone();
    let upstream = Upstream::start(move |_| {
        let held = held.clone();
        async move {
            let _permit = held.acquire().await;
            reply(200, "late")
        }
    })
    .await;
    let mut retry = policy(server_error(), 1);
    retry.per_try_timeout = Some(Duration::from_millis(100));
    let (web, _manager, address) = proxy_with(&upstream, retry).await;
    let got = get(address, "/").await;
    assert_eq!(
        (got.status.as_u16(), got.body.as_str()),
        (504, "upstream request timeout")
    );
    assert_eq!(web.stats().upstream_rq_per_try_timeout.get(), 2);
    assert_eq!(web.stats().upstream_rq_retry.get(), 1);
    assert_eq!(web.stats().upstream_rq_timeout.get(), 0);
    hold.add_permits(100);
}

#[tokio::test]
async fn connect_failures_are_retried_and_say_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let web = cluster("web", &[closed], UpstreamProtocol::Http1);
    let mut fwd = forward("web");
    fwd.retry = Some(policy(
        RetryOn {
            connect_failure: true,
            ..RetryOn::default()
        },
        2,
    ));
    let runtime = runtime(vec![web.clone()], vec![]);
    let r = routes("r", vec![route("/", RouteAction::Forward(fwd))]);
    let (_manager, address) = serve(&runtime, inline_listener("l", r)).await;
    let got = get(address, "/").await;
    assert_eq!(got.status, 503);
    assert_eq!(
        got.body,
        "upstream connect error or disconnect/reset before headers. retried and the latest \
         reset reason: remote connection failure"
    );
    assert_eq!(web.stats().upstream_rq_retry.get(), 2);
}
