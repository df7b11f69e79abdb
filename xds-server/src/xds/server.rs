//! The tonic services: ADS and the per-type CDS, EDS, LDS and RDS, each in SotW and delta.
//! All of them run the same stream machinery; a per-type service only serves its own type.
//! [`serve`] is the one place the gRPC server is built, for the binary and the embedded
//! server alike, so their transport settings cannot drift apart.

use std::{future::Future, time::Duration};

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
use tokio::net::TcpListener;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming, service::Routes};

use super::{
    delta::Delta,
    sotw::Sotw,
    stream::{self, Context},
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
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .add_routes(XdsServer::new(ctx).routes())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

type SotwStream = ReceiverStream<Result<DiscoveryResponse, Status>>;
type DeltaStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

/// Every xDS service, sharing one context.
#[derive(Debug, Clone)]
pub struct XdsServer {
    ctx: Context,
}

impl XdsServer {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// The gRPC routes for a tonic server.
    pub fn routes(self) -> Routes {
        Routes::new(AggregatedDiscoveryServiceServer::new(self.clone()))
            .add_service(ClusterDiscoveryServiceServer::new(self.clone()))
            .add_service(EndpointDiscoveryServiceServer::new(self.clone()))
            .add_service(ListenerDiscoveryServiceServer::new(self.clone()))
            .add_service(RouteDiscoveryServiceServer::new(self))
    }

    fn sotw(
        &self,
        req: Request<Streaming<DiscoveryRequest>>,
        only: Option<TypeUrl>,
        service: &'static str,
    ) -> Response<SotwStream> {
        Response::new(stream::run::<Sotw>(
            self.ctx.clone(),
            req.into_inner(),
            only,
            service,
        ))
    }

    fn delta(
        &self,
        req: Request<Streaming<DeltaDiscoveryRequest>>,
        only: Option<TypeUrl>,
        service: &'static str,
    ) -> Response<DeltaStream> {
        Response::new(stream::run::<Delta>(
            self.ctx.clone(),
            req.into_inner(),
            only,
            service,
        ))
    }
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
        Ok(self.sotw(req, None, "ads"))
    }

    async fn delta_aggregated_resources(
        &self,
        req: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<DeltaStream>, Status> {
        Ok(self.delta(req, None, "ads"))
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
                Ok(self.sotw(req, Some($ty), $service))
            }

            async fn $delta(
                &self,
                req: Request<Streaming<DeltaDiscoveryRequest>>,
            ) -> Result<Response<DeltaStream>, Status> {
                Ok(self.delta(req, Some($ty), $service))
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
