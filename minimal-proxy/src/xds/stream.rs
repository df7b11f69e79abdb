//! One gRPC stream to the management server (ADS, or one type's service; SotW or Delta), kept
//! up with jittered exponential backoff. Each attempt is a new generation: the client learns
//! of it ([`Event::Opened`], with the sender for its requests), of each response, and of its
//! end; the client answers with the requests (so the first request of each generation
//! resumes from what the proxy holds).

use std::{net::Ipv6Addr, time::Duration};

use envoy_types::pb::envoy::service::{
    cluster::v3::cluster_discovery_service_client::ClusterDiscoveryServiceClient,
    discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient,
    endpoint::v3::endpoint_discovery_service_client::EndpointDiscoveryServiceClient,
    listener::v3::listener_discovery_service_client::ListenerDiscoveryServiceClient,
    route::v3::route_discovery_service_client::RouteDiscoveryServiceClient,
};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_stream::{StreamExt, wrappers::UnboundedReceiverStream};
use tonic::transport::Endpoint;
use xds_core::TypeUrl;

use super::{Error, Outgoing, StreamKey, Update, backoff::Backoff};
use crate::bootstrap::{Channel, Protocol};

/// Responses may be large (every cluster of a mesh in one SotW response).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// What a stream tells the client.
#[derive(Debug)]
pub enum Event {
    /// A new generation is up; requests go through `requests`.
    Opened {
        key: StreamKey,
        generation: u64,
        requests: mpsc::UnboundedSender<Outgoing>,
    },
    Response {
        key: StreamKey,
        generation: u64,
        update: Update,
    },
    Closed {
        key: StreamKey,
        generation: u64,
        error: Error,
    },
}

/// Starts the stream's task: it reconnects until the client drops its event receiver.
pub fn spawn(key: StreamKey, channel: Channel, events: mpsc::Sender<Event>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Backoff::default();
        for generation in 1.. {
            let (healthy, error) = tokio::select! {
                outcome = attempt(&key, &channel, generation, &events) => outcome,
                () = events.closed() => return,
            };
            if healthy {
                backoff.reset();
            }
            if error.is_permanent() {
                backoff.saturate();
            }
            let closed = Event::Closed {
                key: key.clone(),
                generation,
                error,
            };
            if events.send(closed).await.is_err() {
                return;
            }
            let delay = backoff.next_delay(&mut rand::rng());
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = events.closed() => return,
            }
        }
    })
}

/// The URI of the management server.
fn uri(channel: &Channel) -> String {
    let t = &channel.target;
    match t.host.parse::<Ipv6Addr>() {
        Ok(ip) => format!("http://[{ip}]:{}", t.port),
        Err(_) => format!("http://{}:{}", t.host, t.port),
    }
}

/// One generation: connect, open, forward responses until the stream ends. Returns whether
/// it was healthy (delivered a response) and why it ended.
async fn attempt(
    key: &StreamKey,
    channel: &Channel,
    generation: u64,
    events: &mpsc::Sender<Event>,
) -> (bool, Error) {
    let target = uri(channel);
    let endpoint = match Endpoint::from_shared(target.clone()) {
        Ok(e) => e
            .connect_timeout(channel.target.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true),
        Err(e) => return (false, Error::Address(target, e)),
    };
    let conn = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => return (false, Error::connect(target, channel.cluster.clone(), &e)),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let opened = Event::Opened {
        key: key.clone(),
        generation,
        requests: tx,
    };
    if events.send(opened).await.is_err() {
        return (false, Error::Closed { target });
    }
    let requests = UnboundedReceiverStream::new(rx);
    let mut healthy = false;
    let forward = |update| Event::Response {
        key: key.clone(),
        generation,
        update,
    };
    let result = match channel.protocol {
        Protocol::Sotw => {
            let requests = requests.filter_map(|o| match o {
                Outgoing::Sotw(r) => Some(r),
                Outgoing::Delta(_) => None,
            });
            let mut responses = match open_sotw(key, conn, requests).await {
                Ok(s) => s,
                Err(status) => return (false, Error::Open { target, status }),
            };
            loop {
                match responses.message().await {
                    Ok(Some(r)) => {
                        healthy = true;
                        if events.send(forward(Update::from_sotw(r))).await.is_err() {
                            break Ok(());
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(status) => break Err(status),
                }
            }
        }
        Protocol::Delta => {
            let requests = requests.filter_map(|o| match o {
                Outgoing::Delta(r) => Some(r),
                Outgoing::Sotw(_) => None,
            });
            let mut responses = match open_delta(key, conn, requests).await {
                Ok(s) => s,
                Err(status) => return (false, Error::Open { target, status }),
            };
            loop {
                match responses.message().await {
                    Ok(Some(r)) => {
                        healthy = true;
                        if events.send(forward(Update::from_delta(r))).await.is_err() {
                            break Ok(());
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(status) => break Err(status),
                }
            }
        }
    };
    let error = match result {
        Ok(()) => Error::Closed { target },
        Err(status) => Error::Stream { target, status },
    };
    (healthy, error)
}

type Conn = tonic::transport::Channel;

/// Opens the SotW stream of `key`'s service.
async fn open_sotw(
    key: &StreamKey,
    conn: Conn,
    requests: impl tokio_stream::Stream<
        Item = envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest,
    > + Send
    + 'static,
) -> Result<
    tonic::Streaming<envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse>,
    tonic::Status,
> {
    let response = match key {
        StreamKey::Ads => {
            let mut c =
                AggregatedDiscoveryServiceClient::new(conn).max_decoding_message_size(MAX_MESSAGE);
            c.stream_aggregated_resources(requests).await?
        }
        StreamKey::Type(TypeUrl::Cluster) => {
            let mut c =
                ClusterDiscoveryServiceClient::new(conn).max_decoding_message_size(MAX_MESSAGE);
            c.stream_clusters(requests).await?
        }
        StreamKey::Type(TypeUrl::Endpoint) => {
            let mut c =
                EndpointDiscoveryServiceClient::new(conn).max_decoding_message_size(MAX_MESSAGE);
            c.stream_endpoints(requests).await?
        }
        StreamKey::Type(TypeUrl::Listener) => {
            let mut c =
                ListenerDiscoveryServiceClient::new(conn).max_decoding_message_size(MAX_MESSAGE);
            c.stream_listeners(requests).await?
        }
        StreamKey::Type(TypeUrl::Route) => {
            let mut c =
                RouteDiscoveryServiceClient::new(conn).max_decoding_message_size(MAX_MESSAGE);
            c.stream_routes(requests).await?
        }
        StreamKey::Type(other) => return Err(unsupported(other)),
    };
    Ok(response.into_inner())
}

/// Opens the Delta stream of `key`'s service.
async fn open_delta(
    key: &StreamKey,
    conn: Conn,
    requests: impl tokio_stream::Stream<
        Item = envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest,
    > + Send
    + 'static,
) -> Result<
    tonic::Streaming<envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse>,
    tonic::Status,
> {
    let response = match key {
        StreamKey::Ads => {
            let mut c =
                AggregatedDiscoveryServiceClient::new(conn).max_decoding_message_size(MAX_MESSAGE);
            c.delta_aggregated_resources(requests).await?
        }
        StreamKey::Type(TypeUrl::Cluster) => {
            let mut c =
                ClusterDiscoveryServiceClient::new(conn).max_decoding_message_size(MAX_MESSAGE);
            c.delta_clusters(requests).await?
        }
        StreamKey::Type(TypeUrl::Endpoint) => {
            let mut c =
                EndpointDiscoveryServiceClient::new(conn).max_decoding_message_size(MAX_MESSAGE);
            c.delta_endpoints(requests).await?
        }
        StreamKey::Type(TypeUrl::Listener) => {
            let mut c =
                ListenerDiscoveryServiceClient::new(conn).max_decoding_message_size(MAX_MESSAGE);
            c.delta_listeners(requests).await?
        }
        StreamKey::Type(TypeUrl::Route) => {
            let mut c =
                RouteDiscoveryServiceClient::new(conn).max_decoding_message_size(MAX_MESSAGE);
            c.delta_routes(requests).await?
        }
        StreamKey::Type(other) => return Err(unsupported(other)),
    };
    Ok(response.into_inner())
}

fn unsupported(t: &TypeUrl) -> tonic::Status {
    tonic::Status::unimplemented(format!("minimal-proxy has no per-type stream for {t}"))
}
