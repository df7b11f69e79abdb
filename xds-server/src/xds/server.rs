//! The tonic services: ADS and the per-type CDS, EDS, LDS, RDS and SDS, each in SotW and delta.
//! All of them run the same stream machinery; a per-type service only serves its own type.
//! [`serve`] is the one place the gRPC server is built, for the binary and the embedded
//! server alike, so their transport settings cannot drift apart. Each accepted connection is
//! wrapped in a [`Conn`] the streams on it can cut (a proxy that stops reading loses it).

use std::{
    convert::Infallible,
    future::Future,
    io,
    marker::PhantomData,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context as TaskContext, Poll},
    time::Duration,
};

use futures::{TryStreamExt, task::AtomicWaker};

use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    Request, Response, Status, Streaming,
    body::Body,
    server::{Grpc, NamedService, StreamingService},
    service::Routes,
    service::interceptor::InterceptedService,
    transport::server::{Connected, TcpConnectInfo},
};

use super::{
    delta::Delta,
    sotw::Sotw,
    stream::{self, Context, Machine, Outbound},
    wire::{DeltaResponse, SotwResponse, XdsCodec},
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
    serve_tls(ctx, listener, None, shutdown).await
}

/// As [`serve`], over TLS when `tls` is given (`--xds-tls`).
pub async fn serve_tls(
    ctx: Context,
    listener: TcpListener,
    tls: Option<super::tls::XdsTls>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    match tls {
        None => {
            let plain = TcpListenerStream::new(listener).map_ok(super::tls::Io::Plain);
            serve_incoming(ctx, plain.map_ok(Conn::new), shutdown).await
        }
        Some(tls) => {
            let secured = super::tls::incoming(listener, tls.acceptor()).map_ok(Conn::new);
            // `tls` lives as long as the server: its renewal task with it.
            let result = serve_incoming(ctx, secured, shutdown).await;
            drop(tls);
            result
        }
    }
}

async fn serve_incoming(
    ctx: Context,
    incoming: impl futures::Stream<Item = io::Result<Conn>> + Send + 'static,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    // tonic passes no SETTINGS_MAX_CONCURRENT_STREAMS unless told (hyper's default of 200
    // would otherwise be removed): one connection could take every stream slot.
    let per_connection = ctx.limits.max_streams_per_connection;
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .max_concurrent_streams(per_connection)
        .add_routes(XdsServer::new(ctx).routes())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

// === impl Conn ===

/// An accepted TCP connection that the streams on it can close ([`Cutter`]): once cut, every
/// read and write fails, so the HTTP/2 connection ends and drops what its streams buffered.
#[derive(Debug)]
pub struct Conn {
    io: super::tls::Io,
    cut: Arc<CutState>,
    auth: ConnAuth,
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
    /// The proxy token a stream on this connection presented, if any.
    pub auth: ConnAuth,
}

/// The proxy token the streams on one connection presented. A per-type EDS, RDS or SDS stream
/// on it that presents none is that proxy's: Envoy opens those from the config sources the
/// server writes, which cannot carry the proxy's secret, on the connection its CDS and LDS
/// streams authenticated (HTTP/2: the same TCP and TLS session). A connection that carried two
/// different tokens is multiplexing several proxies (an L7 proxy in front of the server):
/// nothing is inherited on it from then on.
#[derive(Debug, Clone, Default)]
pub struct ConnAuth(Arc<std::sync::Mutex<Presented>>);

#[derive(Debug, Default)]
enum Presented {
    #[default]
    Nothing,
    One(Arc<crate::proxy_auth::Grant>),
    Several,
}

impl ConnAuth {
    fn remember(&self, grant: &Arc<crate::proxy_auth::Grant>) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *seen = match &*seen {
            Presented::Nothing => Presented::One(grant.clone()),
            Presented::One(first) if first.id == grant.id => return,
            Presented::One(_) | Presented::Several => {
                tracing::warn!(
                    token = %grant.id,
                    "two proxy tokens on one xDS connection: per-type streams without a token \
                     are refused on it (a proxy in front of the server multiplexes proxies; use \
                     ADS, or a layer-4 load balancer)"
                );
                Presented::Several
            }
        };
    }

    fn grant(&self) -> Option<Arc<crate::proxy_auth::Grant>> {
        match &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Presented::One(grant) => Some(grant.clone()),
            Presented::Nothing | Presented::Several => None,
        }
    }
}

impl Cutter {
    pub(crate) fn cut(&self) {
        self.0.cut.store(true, Ordering::Release);
        self.0.reader.wake();
        self.0.writer.wake();
    }
}

impl Conn {
    fn new(io: super::tls::Io) -> Self {
        Self {
            io,
            cut: Arc::default(),
            auth: ConnAuth::default(),
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
            auth: self.auth.clone(),
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
        Routes::new(Service::<Ads>::new(self.ctx.clone()))
            .add_service(Service::<Cds>::new(self.ctx.clone()))
            .add_service(Service::<Eds>::new(self.ctx.clone()))
            .add_service(Service::<Lds>::new(self.ctx.clone()))
            .add_service(Service::<Rds>::new(self.ctx.clone()))
            .add_service(Service::<Sds>::new(self.ctx.clone()))
            .add_service(InterceptedService::new(
                crate::telemetry::Receiver::new(self.ctx.telemetry.clone()).server(),
                self.ctx.auth.interceptor(),
            ))
            .add_service(crate::tap::receiver::authenticated(
                self.ctx.taps.clone(),
                &self.ctx.auth,
            ))
    }
}

/// One xDS gRPC service (ADS, or a per-type one), written by hand rather than generated so
/// its responses are encoded from the shared resources (see `wire.rs`): tonic's generated
/// servers take `DiscoveryResponse`s, which would copy every resource into every stream.
#[derive(Debug)]
pub struct Service<K> {
    ctx: Context,
    kind: PhantomData<K>,
}

impl<K> Clone for Service<K> {
    fn clone(&self) -> Self {
        Self {
            ctx: self.ctx.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Kind> Service<K> {
    fn new(ctx: Context) -> Self {
        Self {
            ctx,
            kind: PhantomData,
        }
    }
}

/// What tells the xDS services apart: the gRPC name, the method names, the one type a
/// per-type service serves, and the label in the proxy status.
pub trait Kind: Send + Sync + 'static {
    const NAME: &'static str;
    const SOTW: &'static str;
    const DELTA: &'static str;
    /// REST-style fetch (per-type services only): answered UNIMPLEMENTED.
    const FETCH: Option<&'static str>;
    const LABEL: &'static str;
    fn only() -> Option<TypeUrl>;
}

macro_rules! kind {
    ($kind:ident, $name:literal, $sotw:literal, $delta:literal, $fetch:expr, $label:literal, $only:expr) => {
        #[derive(Debug)]
        pub enum $kind {}
        impl Kind for $kind {
            const NAME: &'static str = $name;
            const SOTW: &'static str = $sotw;
            const DELTA: &'static str = $delta;
            const FETCH: Option<&'static str> = $fetch;
            const LABEL: &'static str = $label;
            fn only() -> Option<TypeUrl> {
                $only
            }
        }
    };
}

kind!(
    Ads,
    "envoy.service.discovery.v3.AggregatedDiscoveryService",
    "StreamAggregatedResources",
    "DeltaAggregatedResources",
    None,
    "ads",
    None
);
kind!(
    Cds,
    "envoy.service.cluster.v3.ClusterDiscoveryService",
    "StreamClusters",
    "DeltaClusters",
    Some("FetchClusters"),
    "cds",
    Some(TypeUrl::Cluster)
);
kind!(
    Eds,
    "envoy.service.endpoint.v3.EndpointDiscoveryService",
    "StreamEndpoints",
    "DeltaEndpoints",
    Some("FetchEndpoints"),
    "eds",
    Some(TypeUrl::Endpoint)
);
kind!(
    Lds,
    "envoy.service.listener.v3.ListenerDiscoveryService",
    "StreamListeners",
    "DeltaListeners",
    Some("FetchListeners"),
    "lds",
    Some(TypeUrl::Listener)
);
kind!(
    Rds,
    "envoy.service.route.v3.RouteDiscoveryService",
    "StreamRoutes",
    "DeltaRoutes",
    Some("FetchRoutes"),
    "rds",
    Some(TypeUrl::Route)
);

kind!(
    Sds,
    "envoy.service.secret.v3.SecretDiscoveryService",
    "StreamSecrets",
    "DeltaSecrets",
    Some("FetchSecrets"),
    "sds",
    Some(TypeUrl::Secret)
);

impl<K: Kind> NamedService for Service<K> {
    const NAME: &'static str = K::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<K: Kind> tower::Service<http::Request<Body>> for Service<K> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(
        &mut self,
        req: http::Request<Body>,
    ) -> BoxFuture<Result<http::Response<Body>, Infallible>> {
        let method = req
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(K::NAME))
            .and_then(|p| p.strip_prefix('/'))
            .unwrap_or_default()
            .to_string();
        let ctx = self.ctx.clone();
        let max = ctx.limits.max_request_bytes;
        Box::pin(async move {
            let response = if method == K::SOTW {
                let codec = XdsCodec::<SotwResponse, DiscoveryRequest>::default();
                let mut grpc = Grpc::new(codec).apply_max_message_size_config(Some(max), None);
                grpc.streaming(Method::<Sotw, K>::new(ctx), req).await
            } else if method == K::DELTA {
                let codec = XdsCodec::<DeltaResponse, DeltaDiscoveryRequest>::default();
                let mut grpc = Grpc::new(codec).apply_max_message_size_config(Some(max), None);
                grpc.streaming(Method::<Delta, K>::new(ctx), req).await
            } else if K::FETCH == Some(method.as_str()) {
                no_fetch().into_http()
            } else {
                Status::unimplemented(format!("no method '{method}' in {}", K::NAME)).into_http()
            };
            Ok(response)
        })
    }
}

/// One streaming method: a state machine `M` on service `K`.
struct Method<M, K> {
    ctx: Context,
    marker: PhantomData<(M, K)>,
}

impl<M, K> Method<M, K> {
    fn new(ctx: Context) -> Self {
        Self {
            ctx,
            marker: PhantomData,
        }
    }
}

impl<M: Machine, K: Kind> StreamingService<M::Request> for Method<M, K>
where
    M::Request: prost::Message + Default,
    M::Response: prost::Message,
    Streaming<M::Request>: Send,
{
    type Response = M::Response;
    type ResponseStream = Outbound<M::Response>;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, req: Request<Streaming<M::Request>>) -> Self::Future {
        let cut = cutter(&req);
        let conn = req.extensions().get::<ConnInfo>().map(|i| i.auth.clone());
        let mut ctx = self.ctx.clone();
        Box::pin(async move {
            // Only the types Envoy opens from server-written config sources may inherit.
            let inherits = matches!(
                K::only(),
                Some(TypeUrl::Endpoint | TypeUrl::Route | TypeUrl::Secret)
            );
            ctx.grant = authenticate(&ctx, req.metadata(), conn.as_ref(), inherits).await?;
            stream::run::<M>(ctx, req.into_inner(), K::only(), K::LABEL, cut).map(Response::new)
        })
    }
}

/// The stream's grant: its own token's, or, for a stream that `inherits` and presents none,
/// the token the connection's streams presented (see [`ConnAuth`]; its node is checked like
/// any other). Every token presented is remembered on its connection.
async fn authenticate(
    ctx: &Context,
    metadata: &tonic::metadata::MetadataMap,
    conn: Option<&ConnAuth>,
    inherits: bool,
) -> Result<Option<Arc<crate::proxy_auth::Grant>>, Status> {
    let inherited = conn
        .filter(|_| inherits && metadata.get("authorization").is_none())
        .and_then(ConnAuth::grant)
        .filter(|g| ctx.auth.knows(g));
    if let Some(grant) = inherited {
        return Ok(Some(grant));
    }
    let grant = ctx.auth.authenticate(metadata).await?;
    if let (Some(grant), Some(conn)) = (&grant, conn) {
        conn.remember(grant);
    }
    Ok(grant)
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
