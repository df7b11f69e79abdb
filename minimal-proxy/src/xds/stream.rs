//! One gRPC stream to the management server (ADS, or one type's service; SotW or Delta), kept
//! up with jittered exponential backoff. Each attempt is a new generation: the client learns
//! of it ([`Event::Opened`], with the sender for its requests), of each response, and of its
//! end; the client answers with the requests (so the first request of each generation
//! resumes from what the proxy holds).

use std::time::Duration;

use tokio::{sync::mpsc, task::JoinHandle};
use tokio_stream::{StreamExt, wrappers::UnboundedReceiverStream};
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
    super::endpoint::uri(&channel.target)
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
    let endpoint = match super::endpoint::endpoint(&channel.target) {
        Ok(e) => e
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
    let delta = matches!(channel.protocol, Protocol::Delta);
    let path = match method(key, delta) {
        Ok(p) => p,
        Err(status) => return (false, Error::Open { target, status }),
    };
    let result = if delta {
        let requests = requests.filter_map(|o| match o {
            Outgoing::Delta(r) => Some(r),
            Outgoing::Sotw(_) => None,
        });
        let forward = |r| forward(Update::from_delta(r));
        receive(
            path,
            conn,
            requests,
            &channel.initial_metadata,
            forward,
            &mut healthy,
            events,
        )
        .await
    } else {
        let requests = requests.filter_map(|o| match o {
            Outgoing::Sotw(r) => Some(r),
            Outgoing::Delta(_) => None,
        });
        let forward = |r| forward(Update::from_sotw(r));
        receive(
            path,
            conn,
            requests,
            &channel.initial_metadata,
            forward,
            &mut healthy,
            events,
        )
        .await
    };
    let result = match result {
        Ok(r) => r,
        Err(status) => return (false, Error::Open { target, status }),
    };
    let error = match result {
        Ok(()) => Error::Closed { target },
        Err(status) => Error::Stream { target, status },
    };
    (healthy, error)
}

type Conn = tonic::transport::Channel;

/// Opens the stream at gRPC method `path` and forwards every response as an event until the
/// stream ends. `Err` only when the stream could not be opened; the inner result is how an
/// opened stream ended.
async fn receive<Req, Resp>(
    path: &'static str,
    conn: Conn,
    requests: impl tokio_stream::Stream<Item = Req> + Send + 'static,
    metadata: &[(String, String)],
    forward: impl Fn(Resp) -> Event,
    healthy: &mut bool,
    events: &mpsc::Sender<Event>,
) -> Result<Result<(), tonic::Status>, tonic::Status>
where
    Req: prost::Message + Send + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    let path = http::uri::PathAndQuery::from_static(path);
    let mut grpc = tonic::client::Grpc::new(conn).max_decoding_message_size(MAX_MESSAGE);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("xDS channel not ready: {e}")))?;
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    let mut responses = grpc
        .streaming(super::with_metadata(requests, metadata), path, codec)
        .await?
        .into_inner();
    loop {
        match responses.message().await {
            Ok(Some(r)) => {
                *healthy = true;
                if events.send(forward(r)).await.is_err() {
                    return Ok(Ok(()));
                }
            }
            Ok(None) => return Ok(Ok(())),
            Err(status) => return Ok(Err(status)),
        }
    }
}

/// The gRPC method of `key`'s service (what Envoy's generated clients call).
fn method(key: &StreamKey, delta: bool) -> Result<&'static str, tonic::Status> {
    Ok(match (key, delta) {
        (StreamKey::Ads, false) => {
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
        }
        (StreamKey::Ads, true) => {
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
        }
        (StreamKey::Type(TypeUrl::Cluster), false) => {
            "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters"
        }
        (StreamKey::Type(TypeUrl::Cluster), true) => {
            "/envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters"
        }
        (StreamKey::Type(TypeUrl::Endpoint), false) => {
            "/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints"
        }
        (StreamKey::Type(TypeUrl::Endpoint), true) => {
            "/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints"
        }
        (StreamKey::Type(TypeUrl::Listener), false) => {
            "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners"
        }
        (StreamKey::Type(TypeUrl::Listener), true) => {
            "/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners"
        }
        (StreamKey::Type(TypeUrl::Route), false) => {
            "/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes"
        }
        (StreamKey::Type(TypeUrl::Route), true) => {
            "/envoy.service.route.v3.RouteDiscoveryService/DeltaRoutes"
        }
        (StreamKey::Type(other), _) => return Err(unsupported(other)),
    })
}

fn unsupported(t: &TypeUrl) -> tonic::Status {
    tonic::Status::unimplemented(format!("minimal-proxy has no per-type stream for {t}"))
}
