//! Sending through the pools: keep-alive, HTTP/2, the Host header, connect errors and
//! timeouts, and the stats they keep.

use super::*;
use crate::{config::UpstreamProtocol, upstream::Error};

#[tokio::test]
async fn http1_reuses_a_kept_alive_connection_and_counts() {
    let up = Upstream::start("a").await;
    let c = cluster(one_host(up.address));
    let host = host_at(&c, up.address);
    for _ in 0..5 {
        assert_eq!(send(&c, &host).await.unwrap(), (200, "a".to_string()));
    }
    assert_eq!(up.connections.load(Ordering::Relaxed), 1);
    assert_eq!(
        *up.last_authority.lock().unwrap(),
        "web.test",
        "downstream Host kept"
    );
    let s = c.stats();
    assert_eq!(s.upstream_rq_total.get(), 5);
    assert_eq!(s.upstream_rq_code.get(200), 5);
    assert_eq!(s.upstream_rq_xx[2].get(), 5);
    assert_eq!(s.upstream_rq_completed.get(), 5);
    assert_eq!(
        (s.upstream_cx_total.get(), s.upstream_cx_http1_total.get()),
        (1, 1)
    );
    eventually(Duration::from_secs(5), || s.upstream_rq_active.get() == 0).await;
    let status = &c.host_statuses()[0];
    assert_eq!(
        (status.rq_total, status.rq_success, status.cx_active),
        (5, 5, 1)
    );
}

#[tokio::test]
async fn without_a_host_header_the_hosts_address_is_sent() {
    let up = Upstream::start("a").await;
    let c = cluster(one_host(up.address));
    let host = host_at(&c, up.address);
    let request = Request::get("/x")
        .body(BoxBody::new(Empty::new().map_err(|e| match e {})))
        .unwrap();
    let response = c.send(&host, request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(*up.last_authority.lock().unwrap(), up.address.to_string());
}

#[tokio::test]
async fn http2_multiplexes_on_one_connection_with_the_downstream_authority() {
    let up = Upstream::start("h2").await;
    let mut config = one_host(up.address);
    config.protocol = UpstreamProtocol::Http2;
    let c = cluster(config);
    let host = host_at(&c, up.address);
    let sends = (0..10).map(|_| send(&c, &host));
    for result in futures::future::join_all(sends).await {
        assert_eq!(result.unwrap(), (200, "h2".to_string()));
    }
    assert_eq!(up.connections.load(Ordering::Relaxed), 1);
    assert_eq!(*up.last_authority.lock().unwrap(), "web.test");
    assert_eq!(c.stats().upstream_cx_http2_total.get(), 1);
    assert_eq!(c.stats().upstream_rq_total.get(), 10);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure_charged_as_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = cluster(one_host(closed));
    let host = host_at(&c, closed);
    assert!(matches!(
        send(&c, &host).await,
        Err(Error::ConnectFailure(_))
    ));
    let s = c.stats();
    assert_eq!(
        (s.upstream_cx_connect_fail.get(), s.upstream_cx_active.get()),
        (1, 0)
    );
    assert_eq!(s.upstream_rq_code.get(503), 1);
    assert_eq!(
        s.upstream_rq_total.get(),
        0,
        "no request reached a connection"
    );
    let status = &c.host_statuses()[0];
    assert_eq!((status.cx_connect_fail, status.rq_error), (1, 1));
}

#[tokio::test]
async fn an_unanswered_connect_times_out() {
    // A listener whose accept queue is full: further handshakes get no answer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(addr(0)).unwrap();
    let listener = socket.listen(0).unwrap();
    let address = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::net::TcpStream::connect(address),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let mut config = one_host(address);
    config.connect_timeout = Duration::from_millis(200);
    let c = cluster(config);
    let host = host_at(&c, address);
    let started = std::time::Instant::now();
    assert!(matches!(send(&c, &host).await, Err(Error::ConnectTimeout)));
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(c.stats().upstream_cx_connect_timeout.get(), 1);
    assert_eq!(c.stats().upstream_cx_connect_fail.get(), 1);
}

#[test]
fn a_timeout_is_charged_as_504() {
    let c = cluster(one_host(addr(1)));
    let host = host_at(&c, addr(1));
    c.report_timeout(&host);
    assert_eq!(c.stats().upstream_rq_code.get(504), 1);
    let status = &c.host_statuses()[0];
    assert_eq!((status.rq_timeout, status.rq_error), (1, 1));
}

#[tokio::test]
async fn strict_dns_resolves_names_into_hosts() {
    use crate::config::{Discovery, DnsFamily, EndpointAddress};
    let up = Upstream::start("dns").await;
    let mut endpoint = endpoint(up.address, 1);
    endpoint.address = EndpointAddress::Dns {
        host: "localhost".into(),
        port: up.address.port(),
    };
    let mut config = one_host(up.address);
    config.discovery = Discovery::StrictDns {
        assignment: assignment(vec![endpoint]),
        refresh: Duration::from_secs(60),
        family: DnsFamily::V4Only,
    };
    let c = cluster(config);
    tokio::time::timeout(Duration::from_secs(5), c.ready())
        .await
        .unwrap();
    let statuses = c.host_statuses();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].address, up.address);
    let host = host_at(&c, up.address);
    assert_eq!(send(&c, &host).await.unwrap().0, 200);
    assert_eq!(c.stats().update_success.get(), 1);
}

/// An h2c upstream whose response bodies stream what the test sends: each request hands the
/// test the sender of its body (dropping it ends the body).
async fn streaming_h2() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<tokio::sync::mpsc::Sender<Bytes>>,
    super::super::membership::AbortOnDrop,
) {
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (bodies, senders) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = service_fn(move |_: Request<Incoming>| {
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
            let _ = bodies.send(tx);
            let frames = futures::stream::unfold(rx, |mut rx| async move {
                let chunk = rx.recv().await?;
                Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
            });
            async move { Ok::<_, Infallible>(Response::new(StreamBody::new(frames))) }
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
    let guard = super::super::membership::AbortOnDrop(task.abort_handle());
    (address, senders, guard)
}

#[tokio::test]
async fn an_http2_request_is_active_and_timed_until_its_response_body_ends() {
    let (address, mut bodies, _server) = streaming_h2().await;
    let mut config = one_host(address);
    config.protocol = UpstreamProtocol::Http2;
    let c = cluster(config);
    let host = host_at(&c, address);
    let s = c.stats().clone();
    let timed = || s.upstream_rq_time.snapshot().2;
    let empty = || BoxBody::new(Empty::new().map_err(|e| match e {}));

    let response = c
        .send(&host, Request::get("/").body(empty()).unwrap())
        .await
        .unwrap();
    let mut body = response.into_body();
    let tx = bodies.recv().await.unwrap();
    tx.send(Bytes::from_static(b"one")).await.unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "one");
    // The head and a first chunk are in; the stream is not over.
    assert_eq!(s.upstream_rq_active.get(), 1, "active while streaming");
    assert_eq!(timed(), 0, "no time before the end");
    drop(tx);
    // hyper may yield the closing (empty, END_STREAM) DATA frame before the end.
    let rest = body.collect().await.unwrap().to_bytes();
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(s.upstream_rq_active.get(), 0, "released at the end");
    assert_eq!(timed(), 1, "timed at the end");

    // Given up mid-body: released, and no time for an incomplete response (as Envoy).
    let response = c
        .send(&host, Request::get("/").body(empty()).unwrap())
        .await
        .unwrap();
    let _tx = bodies.recv().await.unwrap();
    assert_eq!(s.upstream_rq_active.get(), 1);
    drop(response);
    assert_eq!(s.upstream_rq_active.get(), 0, "released on drop");
    assert_eq!(timed(), 1);
}

/// Connections coming back to a full idle stack are closed: with room for two, four
/// connections used at once leave two open.
#[tokio::test]
async fn http1_idle_connections_beyond_the_cap_are_closed() {
    let hold = Arc::new(Semaphore::new(0));
    let up = Upstream::holding("a", hold.clone()).await;
    let c = cluster(one_host(up.address));
    let host = host_at(&c, up.address);
    host.state.pool.set_idle_limits(2, Duration::from_secs(60));
    let sends: Vec<_> = (0..4)
        .map(|_| {
            let (c, h) = (c.clone(), host.clone());
            tokio::spawn(async move { send(&c, &h).await })
        })
        .collect();
    eventually(Duration::from_secs(5), || up.requests() == 4).await;
    let s = c.stats();
    assert_eq!(s.upstream_cx_active.get(), 4, "one connection per request");
    hold.add_permits(4);
    for task in sends {
        assert_eq!(task.await.unwrap().unwrap().0, 200);
    }
    assert_eq!(host.state.pool.idle_count(), 2);
    eventually(Duration::from_secs(5), || s.upstream_cx_active.get() == 2).await;
    assert_eq!(s.upstream_cx_destroy.get(), 2);
    // The two kept are reused.
    hold.add_permits(1);
    assert_eq!(send(&c, &host).await.unwrap().0, 200);
    assert_eq!(up.connections.load(Ordering::Relaxed), 4);
}

/// An idle connection is closed once unused for the idle timeout, and not before.
#[tokio::test]
async fn http1_idle_connection_is_closed_after_the_idle_timeout() {
    let up = Upstream::start("a").await;
    let c = cluster(one_host(up.address));
    let host = host_at(&c, up.address);
    assert_eq!(send(&c, &host).await.unwrap().0, 200);
    let s = c.stats();
    assert_eq!(host.state.pool.idle_count(), 1);
    // The connection is idle, nothing else waits on I/O: the clock can be moved by hand.
    tokio::time::pause();
    tokio::time::advance(crate::upstream::pool::IDLE_TIMEOUT - Duration::from_secs(1)).await;
    tokio::task::yield_now().await;
    assert_eq!(host.state.pool.idle_count(), 1, "still within the timeout");
    assert_eq!(s.upstream_cx_active.get(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    eventually(Duration::from_secs(5), || {
        host.state.pool.idle_count() == 0 && s.upstream_cx_active.get() == 0
    })
    .await;
    assert_eq!(s.upstream_cx_destroy.get(), 1);
    // The next request opens a new connection.
    tokio::time::resume();
    assert_eq!(send(&c, &host).await.unwrap().0, 200);
    assert_eq!(up.connections.load(Ordering::Relaxed), 2);
}
