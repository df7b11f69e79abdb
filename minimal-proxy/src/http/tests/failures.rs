//! Failures answered as Envoy answers them: status, body, headers and counters.

use std::{sync::Arc, time::Duration};

use tokio::sync::Semaphore;

use super::support::*;
use crate::config::{CircuitBreakers, RouteAction, UpstreamProtocol};

/// A listener routing everything to cluster `web` with `timeout`, over `clusters`.
async fn proxy(
    clusters: Vec<Arc<crate::upstream::Cluster>>,
    timeout: Option<Duration>,
) -> (
    crate::runtime::Runtime,
    crate::listener::Manager,
    std::net::SocketAddr,
) {
    let mut fwd = forward("web");
    fwd.timeout = timeout;
    let runtime = runtime(clusters, vec![]);
    let r = routes("r", vec![route("/", RouteAction::Forward(fwd))]);
    let (manager, address) = serve(&runtime, inline_listener("l", r)).await;
    (runtime, manager, address)
}

#[tokio::test]
async fn a_missing_cluster_is_a_503_with_no_body_and_the_routes_response_headers() {
    let mut web = route("/", RouteAction::Forward(forward("web")));
    web.response_headers.add.push((
        http::HeaderName::from_static("x-route"),
        http::HeaderValue::from_static("web"),
        false,
    ));
    let runtime = runtime(vec![], vec![]);
    let (_manager, address) = serve(&runtime, inline_listener("l", routes("r", vec![web]))).await;
    let got = get(address, "/").await;
    assert_eq!((got.status.as_u16(), got.body.as_str()), (503, ""));
    assert_eq!(got.headers["x-route"], "web");
    assert_eq!(runtime.stats.http("ingress").no_cluster.get(), 1);
}

#[tokio::test]
async fn a_cluster_without_hosts_has_no_healthy_upstream() {
    let web = cluster("web", &[], UpstreamProtocol::Http1);
    let (_runtime, _manager, address) = proxy(vec![web], None).await;
    let got = get(address, "/").await;
    assert_eq!(
        (got.status.as_u16(), got.body.as_str()),
        (503, "no healthy upstream")
    );
    assert_eq!(got.headers["content-type"], "text/plain");
}

#[tokio::test]
async fn a_refused_connection_is_envoys_connect_failure() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let web = cluster("web", &[closed], UpstreamProtocol::Http1);
    let (_runtime, _manager, address) = proxy(vec![web], None).await;
    let got = get(address, "/").await;
    assert_eq!(got.status, 503);
    assert_eq!(
        got.body,
        "upstream connect error or disconnect/reset before headers. reset reason: remote \
         connection failure"
    );
}

#[tokio::test]
async fn an_upstream_closing_before_headers_is_a_connection_termination() {
    // Accepts and closes at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let _closer = Task(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    }));
    let web = cluster("web", &[upstream], UpstreamProtocol::Http1);
    let (_runtime, _manager, address) = proxy(vec![web], None).await;
    let got = get(address, "/").await;
    assert_eq!(got.status, 503);
    assert!(
        got.body.starts_with(
            "upstream connect error or disconnect/reset before headers. reset reason: "
        ),
        "{}",
        got.body
    );
}

#[tokio::test]
async fn the_route_timeout_is_a_504() {
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
    let web = cluster("web", &[upstream.address], UpstreamProtocol::Http1);
    let (runtime, _manager, address) =
        proxy(vec![web.clone()], Some(Duration::from_millis(200))).await;
    let got = get(address, "/").await;
    assert_eq!(
        (got.status.as_u16(), got.body.as_str()),
        (504, "upstream request timeout")
    );
    assert_eq!(web.stats().upstream_rq_timeout.get(), 1);
    assert_eq!(runtime.stats.http("ingress").downstream_rq_xx[5].get(), 1);
    hold.add_permits(100);
}

#[tokio::test]
async fn an_open_circuit_breaker_is_a_503_marked_overloaded() {
    let hold = Arc::new(Semaphore::new(0));
    let held = hold.clone();
    let upstream = Upstream::start(move |_| {
        let held = held.clone();
        async move {
            let _permit = held.acquire().await;
            reply(200, "ok")
        }
    })
    .await;
    let web = {
        let c = cluster("web", &[upstream.address], UpstreamProtocol::Http1);
        let mut config = (**c.config()).clone();
        config.circuit_breakers = CircuitBreakers {
            max_requests: 1,
            max_pending_requests: 1,
            max_connections: 1,
            max_retries: 3,
        };
        crate::upstream::Cluster::new(Arc::new(config), Arc::new(Default::default()))
    };
    let (_runtime, _manager, address) = proxy(vec![web.clone()], None).await;
    // One request in flight fills `max_requests`, one waiting fills `max_pending_requests`.
    let first = tokio::spawn(async move { get(address, "/").await });
    let upstream_requests = upstream.requests.clone();
    eventually(Duration::from_secs(5), || {
        upstream_requests.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
    let second = tokio::spawn(async move { get(address, "/").await });
    let stats = web.stats().clone();
    eventually(Duration::from_secs(5), || {
        stats.upstream_rq_pending_active.get() == 1
    })
    .await;
    let got = get(address, "/").await;
    assert_eq!(got.status, 503, "{got:?}");
    assert_eq!(got.headers["x-envoy-overloaded"], "true");
    assert_eq!(
        got.body,
        "upstream connect error or disconnect/reset before headers. reset reason: overflow"
    );
    hold.add_permits(100);
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(second.await.unwrap().status, 200);
}

/// A listener with `stream_idle_timeout` and no route timeout, over one upstream.
async fn idle_proxy(
    upstream: &Upstream,
    idle: Duration,
) -> (
    crate::runtime::Runtime,
    crate::listener::Manager,
    std::net::SocketAddr,
) {
    let web = cluster("web", &[upstream.address], UpstreamProtocol::Http1);
    let mut fwd = forward("web");
    fwd.timeout = None;
    let runtime = runtime(vec![web], vec![]);
    let r = routes("r", vec![route("/", RouteAction::Forward(fwd))]);
    let mut config = hcm(crate::config::RouteSource::Inline(Arc::new(r)));
    config.stream_idle_timeout = Some(idle);
    let listener = http_listener("l", "127.0.0.1:0".parse().unwrap(), config);
    let (manager, address) = serve(&runtime, listener).await;
    (runtime, manager, address)
}

#[tokio::test]
async fn a_stream_idle_while_waiting_for_the_upstream_is_a_504_stream_timeout() {
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
    let (runtime, _manager, address) = idle_proxy(&upstream, Duration::from_millis(200)).await;
    let got = get(address, "/").await;
    assert_eq!(
        (got.status.as_u16(), got.body.as_str()),
        (504, "stream timeout")
    );
    // The books close when hyper is done with the local reply's body, maybe just after the
    // client has read it.
    let stats = runtime.stats.http("ingress");
    eventually(Duration::from_secs(5), || {
        stats.downstream_rq_active.get() == 0
    })
    .await;
    assert_eq!(stats.downstream_rq_idle_timeout.get(), 1);
    hold.add_permits(10);
}

#[tokio::test]
async fn a_response_body_that_stalls_past_the_idle_timeout_is_cut() {
    use futures::StreamExt;
    use http_body_util::{StreamBody, combinators::BoxBody};
    use hyper::body::Frame;

    let upstream = Upstream::start(|_| async {
        // One chunk, then silence.
        let frames = futures::stream::iter(vec![Ok::<_, std::convert::Infallible>(Frame::data(
            bytes::Bytes::from_static(b"first"),
        ))])
        .chain(futures::stream::pending());
        http::Response::new(BoxBody::new(StreamBody::new(frames)))
    })
    .await;
    let (runtime, _manager, address) = idle_proxy(&upstream, Duration::from_millis(200)).await;
    let started = tokio::time::Instant::now();
    let failed = Client::h1(address)
        .await
        .send(http::Request::get("/").body(Default::default()).unwrap())
        .await;
    assert!(failed.is_err(), "the stalled body was not cut: {failed:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    // Counted before the stream was cut.
    let stats = runtime.stats.http("ingress");
    assert_eq!(stats.downstream_rq_idle_timeout.get(), 1);
}
