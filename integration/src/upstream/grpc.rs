//! A gRPC upstream and its client without code generation: the standard health service's
//! `grpc.health.v1.Health/Check`, with its two messages written as prost structs and the
//! server and client built from tonic's building blocks (what `tonic-build` would generate).
//!
//! `Check("")` and `Check(<upstream name>)` answer `SERVING`; any other service name is
//! `NOT_FOUND` (as the real health service answers). Every answer, error or not, carries the
//! metadata `x-upstream: <name>`.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tonic::{
    Request, Response, Status,
    codegen::{Body, BoxFuture, Service, StdError, http},
    metadata::{MetadataMap, MetadataValue},
    transport::server::TcpIncoming,
};
use tonic_prost::ProstCodec;

/// The method's path.
pub const CHECK: &str = "/grpc.health.v1.Health/Check";

/// `HealthCheckResponse.ServingStatus.SERVING`.
pub const SERVING: i32 = 1;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// A running gRPC upstream (h2c); it stops serving when dropped.
pub struct GrpcUpstream {
    addr: SocketAddr,
    calls: Arc<AtomicU64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl GrpcUpstream {
    /// Binds 127.0.0.1 on an ephemeral port and serves on the current tokio runtime.
    pub fn start(name: &str) -> GrpcUpstream {
        let listener = super::bind_local();
        let addr = listener.local_addr().expect("gRPC upstream address");
        let calls = Arc::new(AtomicU64::new(0));
        let health = Health {
            name: name.into(),
            calls: calls.clone(),
        };
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                eprintln!("gRPC upstream on {addr} stopped with an error: {e}");
            }
        });
        GrpcUpstream {
            addr,
            calls,
            shutdown: Some(shutdown),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `Check` calls answered so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Drop for GrpcUpstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// One `Check(service)` through `127.0.0.1:port` over h2c (within 10 s). `Ok((status, upstream))`
/// or the gRPC status the client got.
pub async fn check(port: u16, service: &str) -> Result<(i32, Option<String>), Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .map_err(|e| Status::internal(format!("endpoint: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("connect to 127.0.0.1:{port}: {e:?}")))?;
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
    let request = Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    let path = http::uri::PathAndQuery::from_static(CHECK);
    let response: Response<HealthCheckResponse> =
        client.unary(request, path, ProstCodec::default()).await?;
    let upstream = upstream_of(response.metadata());
    Ok((response.into_inner().status, upstream))
}

/// The `x-upstream` metadata of an answer or an error.
pub fn upstream_of(metadata: &MetadataMap) -> Option<String> {
    metadata
        .get("x-upstream")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

// === impl Health ===

/// The health service: routes `Check` to [`CheckMethod`], anything else is `UNIMPLEMENTED`.
#[derive(Clone)]
struct Health {
    name: Arc<str>,
    calls: Arc<AtomicU64>,
}

impl tonic::server::NamedService for Health {
    const NAME: &'static str = "grpc.health.v1.Health";
}

impl<B> Service<http::Request<B>> for Health
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = CheckMethod(self.clone());
        Box::pin(async move {
            if request.uri().path() != CHECK {
                let status = Status::unimplemented(format!("{} is not served here", request.uri()));
                return Ok(status.into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// `Check` itself.
struct CheckMethod(Health);

impl tonic::server::UnaryService<HealthCheckRequest> for CheckMethod {
    type Response = HealthCheckResponse;
    type Future = BoxFuture<Response<HealthCheckResponse>, Status>;

    fn call(&mut self, request: Request<HealthCheckRequest>) -> Self::Future {
        let health = self.0.clone();
        Box::pin(async move {
            health.calls.fetch_add(1, Ordering::SeqCst);
            let asked = request.into_inner().service;
            let upstream = MetadataValue::try_from(&*health.name)
                .map_err(|e| Status::internal(format!("metadata: {e}")))?;
            if asked.is_empty() || asked == *health.name {
                let mut response = Response::new(HealthCheckResponse { status: SERVING });
                response.metadata_mut().insert("x-upstream", upstream);
                Ok(response)
            } else {
                let mut status = Status::not_found(format!("unknown service '{asked}'"));
                status.metadata_mut().insert("x-upstream", upstream);
                Err(status)
            }
        })
    }
}
