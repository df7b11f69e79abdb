//! HTTP/1.1 and HTTP/2 on either side, and gRPC's trailers passing through.

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;

use super::support::*;
use crate::config::{Codec, RouteAction, RouteSource, UpstreamProtocol};

async fn proxy_to(
    upstream: &Upstream,
    protocol: UpstreamProtocol,
    codec: Codec,
) -> (
    crate::runtime::Runtime,
    crate::listener::Manager,
    std::net::SocketAddr,
) {
    let web = cluster("web", &[upstream.address], protocol);
    let runtime = runtime(vec![web], vec![]);
    let r = routes("r", vec![route("/", RouteAction::Forward(forward("web")))]);
    let mut config = hcm(RouteSource::Inline(Arc::new(r)));
    config.codec = codec;
    let listener = http_listener("l", "127.0.0.1:0".parse().unwrap(), config);
    let (manager, address) = serve(&runtime, listener).await;
    (runtime, manager, address)
}

#[tokio::test]
async fn h2c_downstream_reaches_an_http1_upstream_with_a_host_header() {
    let upstream = Upstream::echo().await;
    let (runtime, _manager, address) =
        proxy_to(&upstream, UpstreamProtocol::Http1, Codec::Auto).await;
    let mut client = Client::h2(address).await;
    let got = client.get("/h2?x=1").await;
    assert_eq!(got.status, 200);
    assert!(got.body.starts_with("GET /h2?x=1\n"), "{}", got.body);
    assert!(
        got.body.lines().any(|l| l == "host: web.test"),
        "{}",
        got.body
    );
    // The same connection carries more streams.
    assert_eq!(client.get("/again").await.status, 200);
    let stats = runtime.stats.http("ingress");
    assert_eq!(stats.downstream_cx_http2_total.get(), 1);
    assert_eq!(stats.downstream_rq_total.get(), 2);
}

#[tokio::test]
async fn http1_downstream_reaches_an_h2c_upstream_with_its_authority() {
    let upstream = Upstream::start(|request: Request<hyper::body::Incoming>| async move {
        let text = format!(
            "{:?} {}",
            request.version(),
            request.uri().authority().map_or("", |a| a.as_str())
        );
        reply(200, text)
    })
    .await;
    let (_runtime, _manager, address) =
        proxy_to(&upstream, UpstreamProtocol::Http2, Codec::Auto).await;
    let got = get(address, "/").await;
    assert_eq!(
        (got.status.as_u16(), got.body.as_str()),
        (200, "HTTP/2.0 web.test")
    );
}

#[tokio::test]
async fn grpc_responses_keep_their_trailers() {
    let upstream = Upstream::start(|request: Request<hyper::body::Incoming>| async move {
        let _ = request.into_body().collect().await;
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.insert("grpc-message", HeaderValue::from_static("fine"));
        let frames = vec![
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"\0\0\0\0\x02hi"))),
            Ok(Frame::trailers(trailers)),
        ];
        Response::builder()
            .header("content-type", "application/grpc")
            .body(BoxBody::new(StreamBody::new(futures::stream::iter(frames))))
            .unwrap()
    })
    .await;
    let (_runtime, _manager, address) =
        proxy_to(&upstream, UpstreamProtocol::Http2, Codec::Auto).await;
    let request = Request::post("/pkg.Service/Method")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\x01x")))
        .unwrap();
    let got = Client::h2(address).await.send(request).await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.body.as_bytes(), b"\0\0\0\0\x02hi");
    let trailers = got.trailers.expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "fine");
}

#[tokio::test]
async fn an_http1_only_listener_refuses_http2() {
    let upstream = Upstream::echo().await;
    let (_runtime, _manager, address) =
        proxy_to(&upstream, UpstreamProtocol::Http1, Codec::Http1).await;
    assert_eq!(get(address, "/").await.status, 200);
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let handshake = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await;
    let failed = match handshake {
        Err(_) => true,
        Ok((mut send, conn)) => {
            tokio::spawn(conn);
            send.send_request(
                Request::get("http://web.test/")
                    .body(Full::default())
                    .unwrap(),
            )
            .await
            .is_err()
        }
    };
    assert!(failed, "an HTTP/1.1-only listener answered HTTP/2");
}

#[tokio::test]
async fn local_replies_to_grpc_requests_are_grpc_statuses() {
    let empty = cluster("web", &[], UpstreamProtocol::Http2);
    let runtime = runtime(vec![empty], vec![]);
    let r = routes(
        "r",
        vec![route("/pkg.Service/", RouteAction::Forward(forward("web")))],
    );
    let (_manager, address) = serve(&runtime, inline_listener("l", r)).await;
    let mut client = Client::h2(address).await;
    let grpc = |path: &str| {
        Request::post(path)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::default())
            .unwrap()
    };
    let got = client.send(grpc("/pkg.Service/Method")).await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["content-type"], "application/grpc");
    assert_eq!(got.headers["grpc-status"], "14");
    assert_eq!(got.headers["grpc-message"], "no healthy upstream");
    assert_eq!(got.body, "");
    // No route: UNIMPLEMENTED, without a message.
    let got = client.send(grpc("/other.Service/Method")).await.unwrap();
    assert_eq!(got.headers["grpc-status"], "12");
    assert!(got.headers.get("grpc-message").is_none());
    let stats = runtime.stats.http("ingress");
    assert_eq!(stats.downstream_rq_xx[2].get(), 2);
}

/// hyper's HTTP/1 header-read timeout (30 s unless disabled) also closes an idle keep-alive
/// connection waiting for its next request; Envoy keeps such a connection (its idle timeout
/// is 1 h), so the proxy turns hyper's off.
#[tokio::test(start_paused = true)]
async fn an_idle_http1_keep_alive_connection_stays_open_past_30_seconds() {
    let runtime = runtime(vec![], vec![]);
    let r = routes("r", vec![route("/", direct(200, "hello"))]);
    let (_manager, address) = serve(&runtime, inline_listener("l", r)).await;
    let stats = runtime.stats.http("ingress");
    let mut client = Client::h1(address).await;
    assert_eq!(client.get("/").await.status, 200);
    // Paused: the clock jumps over every timer due meanwhile, each one run as it comes due.
    tokio::time::sleep(std::time::Duration::from_secs(10 * 60)).await;
    assert_eq!(stats.downstream_cx_active.get(), 1, "closed while idle");
    assert_eq!(client.get("/").await.status, 200);
    assert_eq!(
        stats.downstream_cx_total.get(),
        1,
        "one connection throughout"
    );
}
