//! The tonic services: ADS and the per-type CDS, EDS, LDS and RDS, each in SotW and delta.
//! All of them run the same stream machinery; a per-type service only serves its own type.
//! [`serve`] is the one place the gRPC server is built, for the binary and the embedded
//! server alike, so their transport settings cannot drift apart. Each accepted connection is
//! wrapped in a [`Conn`] the streams on it can cut (a proxy that stops reading loses it).

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context as TaskContext, Poll},
    time::Duration,
};

use futures::{TryStreamExt, task::AtomicWaker};

use envoy_types::pb::envoy::service::{
    cluster::v3::cluster_discovery_service_server::{
        ClusterDiscoveryService, ClusterDiscoveryServiceServer,
    },
    discovery::v3::{
        DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
        aggregated_discovery_service_server::{
            AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
        },
    },
    endpoint::v3::endpoint_discovery_service_server::{
        EndpointDiscoveryService, EndpointDiscoveryServiceServer,
    },
    listener::v3::listener_discovery_service_server::{
        ListenerDiscoveryService, ListenerDiscoveryServiceServer,
    },
    route::v3::route_discovery_service_server::{
        RouteDiscoveryService, RouteDiscoveryServiceServer,
    },
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    Request, Response, Status, Streaming,
    service::Routes,
    transport::server::{Connected, TcpConnectInfo},
};

use super::{
    delta::Delta,
    sotw::Sotw,
    stream::{self, Context, Outbound},
};
use xds_core::TypeUrl;

/// How often an idle connection is pinged (HTTP/2 PING), so a proxy that vanished without
/// closing its connection (host gone, network cut) is noticed and its streams and status end.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// Serves every xDS service on `listener` until `shutdown` resolves, then stops accepting and
/// lets open streams end.
pub async fn serve(
    ctx: Context,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    // tonic passes no SETTINGS_MAX_CONCURRENT_STREAMS unless told (hyper's default of 200
    // would otherwise be removed): one connection could take every stream slot.
    let per_connection = ctx.limits.max_streams_per_connection;
    let incoming = TcpListenerStream::new(listener).map_ok(Conn::new);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .max_concurrent_streams(per_connection)
        .add_routes(XdsServer::new(ctx).routes())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

type SotwStream = Outbound<DiscoveryResponse>;
type DeltaStream = Outbound<DeltaDiscoveryResponse>;

// === impl Conn ===

/// An accepted TCP connection that the streams on it can close ([`Cutter`]): once cut, every
/// read and write fails, so the HTTP/2 connection ends and drops what its streams buffered.
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    cut: Arc<CutState>,
}

#[derive(Debug, Default)]
struct CutState {
    cut: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

/// Closes one connection (see [`Conn`]).
#[derive(Debug, Clone)]
pub struct Cutter(Arc<CutState>);

/// What an xDS request knows of its connection, in its extensions (tonic's
/// `Request::remote_addr` does not see it: read `tcp.remote_addr()` here).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub tcp: TcpConnectInfo,
    pub cutter: Cutter,
}

impl Cutter {
    pub(crate) fn cut(&self) {
        self.0.cut.store(true, Ordering::Release);
        self.0.reader.wake();
        self.0.writer.wake();
    }
}

impl Conn {
    fn new(io: TcpStream) -> Self {
        Self {
            io,
            cut: Arc::default(),
        }
    }

    /// Registers `cx` to be woken by a cut; an error once cut.
    fn check(&self, waker: &AtomicWaker, cx: &TaskContext<'_>) -> io::Result<()> {
        waker.register(cx.waker());
        if self.cut.cut.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed by the xDS server: a stream on it stopped reading (--xds-write-timeout)",
            ));
        }
        Ok(())
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        ConnInfo {
            tcp: self.io.connect_info(),
            cutter: Cutter(self.cut.clone()),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(&self.cut.reader, cx)?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(&self.cut.writer, cx)?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        self.check(&self.cut.writer, cx)?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check(&self.cut.writer, cx)?;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

// === impl XdsServer ===

/// Every xDS service, sharing one context.
#[derive(Debug, Clone)]
pub struct XdsServer {
    ctx: Context,
}

impl XdsServer {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// The gRPC routes for a tonic server; each refuses requests over
    /// `--xds-max-request-bytes`.
    pub fn routes(self) -> Routes {
        let max = self.ctx.limits.max_request_bytes;
        let ads = AggregatedDiscoveryServiceServer::new(self.clone());
        let cds = ClusterDiscoveryServiceServer::new(self.clone());
        let eds = EndpointDiscoveryServiceServer::new(self.clone());
        let lds = ListenerDiscoveryServiceServer::new(self.clone());
        let rds = RouteDiscoveryServiceServer::new(self);
        Routes::new(ads.max_decoding_message_size(max))
            .add_service(cds.max_decoding_message_size(max))
            .add_service(eds.max_decoding_message_size(max))
            .add_service(lds.max_decoding_message_size(max))
            .add_service(rds.max_decoding_message_size(max))
    }

    fn sotw(
        &self,
        req: Request<Streaming<DiscoveryRequest>>,
        only: Option<TypeUrl>,
        service: &'static str,
    ) -> Result<Response<SotwStream>, Status> {
        let cut = cutter(&req);
        let out = stream::run::<Sotw>(self.ctx.clone(), req.into_inner(), only, service, cut)?;
        Ok(Response::new(out))
    }

    fn delta(
        &self,
        req: Request<Streaming<DeltaDiscoveryRequest>>,
        only: Option<TypeUrl>,
        service: &'static str,
    ) -> Result<Response<DeltaStream>, Status> {
        let cut = cutter(&req);
        let out = stream::run::<Delta>(self.ctx.clone(), req.into_inner(), only, service, cut)?;
        Ok(Response::new(out))
    }
}

/// The request's connection's [`Cutter`] (absent when served over another transport).
fn cutter<T>(req: &Request<T>) -> Option<Cutter> {
    req.extensions()
        .get::<ConnInfo>()
        .map(|info| info.cutter.clone())
}

fn no_fetch() -> Status {
    Status::unimplemented("REST-style fetch is not served: open a stream (SotW or delta) instead")
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for XdsServer {
    type StreamAggregatedResourcesStream = SotwStream;
    type DeltaAggregatedResourcesStream = DeltaStream;

    async fn stream_aggregated_resources(
        &self,
        req: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<SotwStream>, Status> {
        self.sotw(req, None, "ads")
    }

    async fn delta_aggregated_resources(
        &self,
        req: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<DeltaStream>, Status> {
        self.delta(req, None, "ads")
    }
}

/// The four per-type services differ only in names; one macro writes them.
macro_rules! per_type_service {
    ($trait:ident, $ty:expr, $service:literal, $stream_ty:ident, $delta_ty:ident, $stream:ident, $delta:ident, $fetch:ident) => {
        #[tonic::async_trait]
        impl $trait for XdsServer {
            type $stream_ty = SotwStream;
            type $delta_ty = DeltaStream;

            async fn $stream(
                &self,
                req: Request<Streaming<DiscoveryRequest>>,
            ) -> Result<Response<SotwStream>, Status> {
                self.sotw(req, Some($ty), $service)
            }

            async fn $delta(
                &self,
                req: Request<Streaming<DeltaDiscoveryRequest>>,
            ) -> Result<Response<DeltaStream>, Status> {
                self.delta(req, Some($ty), $service)
            }

            async fn $fetch(
                &self,
                _req: Request<DiscoveryRequest>,
            ) -> Result<Response<DiscoveryResponse>, Status> {
                Err(no_fetch())
            }
        }
    };
}

per_type_service!(
    ClusterDiscoveryService,
    TypeUrl::Cluster,
    "cds",
    StreamClustersStream,
    DeltaClustersStream,
    stream_clusters,
    delta_clusters,
    fetch_clusters
);
per_type_service!(
    EndpointDiscoveryService,
    TypeUrl::Endpoint,
    "eds",
    StreamEndpointsStream,
    DeltaEndpointsStream,
    stream_endpoints,
    delta_endpoints,
    fetch_endpoints
);
per_type_service!(
    ListenerDiscoveryService,
    TypeUrl::Listener,
    "lds",
    StreamListenersStream,
    DeltaListenersStream,
    stream_listeners,
    delta_listeners,
    fetch_listeners
);
per_type_service!(
    RouteDiscoveryService,
    TypeUrl::Route,
    "rds",
    StreamRoutesStream,
    DeltaRoutesStream,
    stream_routes,
    delta_routes,
    fetch_routes
);
