//! The upstream every run ends at: a small hyper server on one thread answering HTTP/1.1 and
//! h2c (prior knowledge) on one port with a fixed small body, and gRPC unary calls with a
//! fixed `grpc.health.v1.HealthCheckResponse { status: SERVING }` and `grpc-status: 0`.
//!
//! It runs in its own process (the bench binary started again with [`ARG`]) so it can be
//! pinned with `taskset` and measured like the proxies.

use std::convert::Infallible;

use bytes::Bytes;
use futures::stream;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};

/// The first argument that makes the bench binary serve as the upstream: `__upstream <port>`.
pub const ARG: &str = "__upstream";

/// The body of every plain HTTP response.
pub const BODY: &[u8] = b"minimal-proxy bench upstream: a small fixed response body.......\n";

/// A gRPC-framed `HealthCheckRequest {}` (uncompressed, empty message): what the gRPC load
/// sends as its request body.
pub const GRPC_REQUEST: &[u8] = &[0, 0, 0, 0, 0];

/// A gRPC-framed `HealthCheckResponse { status: SERVING }`.
pub const GRPC_RESPONSE: &[u8] = &[0, 0, 0, 0, 2, 0x08, 0x01];

/// Paths under this prefix are answered as gRPC.
pub const GRPC_PREFIX: &str = "/grpc.";

type GrpcBody = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;
type Body = Either<Full<Bytes>, GrpcBody>;

/// Serves on `127.0.0.1:port` until the process is killed.
pub fn serve(port: u16) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handle);
                // A connection closed by the client mid-request is not our concern here.
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn handle(request: Request<Incoming>) -> Result<Response<Body>, hyper::Error> {
    let grpc = request.uri().path().starts_with(GRPC_PREFIX);
    // Read the request to its end, as a real service would.
    request.into_body().collect().await?;
    if !grpc {
        let mut response = Response::new(Either::Left(Full::new(Bytes::from_static(BODY))));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(response);
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = vec![
        Ok(Frame::data(Bytes::from_static(GRPC_RESPONSE))),
        Ok(Frame::trailers(trailers)),
    ];
    let mut response = Response::new(Either::Right(StreamBody::new(stream::iter(frames))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    Ok(response)
}
