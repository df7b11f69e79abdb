//! The tonic glue for one [`Session`]: opens an ADS stream on a shared connection, stamps
//! every response the moment it is decoded, sends the session's requests, and reports what
//! happened as small [`Event`]s to one collector.

use std::time::{Duration, Instant};

use envoy_types::pb::envoy::{
    config::core::v3::Node,
    service::discovery::v3::{
        DeltaDiscoveryRequest, DiscoveryRequest,
        aggregated_discovery_service_client::AggregatedDiscoveryServiceClient,
    },
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{
    Streaming,
    transport::{Channel, Endpoint},
};

use crate::session::{Kind, Request, Seen, Session, Variant};

/// What one stream reports.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// The stream's index.
    pub stream: u32,
    /// When it happened (for a response: just after it was decoded).
    pub at: Instant,
    pub what: What,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// A response arrived; `changed` when it altered a resource the stream held.
    Response { kind: Option<Kind>, changed: bool },
    /// The first full configuration arrived (CDS, EDS, LDS, RDS).
    Synced,
    /// The stream ended: the server closed it (`error` false) or failed it (`error` true).
    /// A stream told to stop reports nothing.
    Ended { error: bool },
}

/// Opens one HTTP/2 connection to `addr`.
pub async fn connect(addr: std::net::SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("an IP address and port make a valid URI")
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .connect()
        .await
}

/// A node as an Envoy bootstrap gives it.
pub fn node(id: String, cluster: &str) -> Node {
    Node {
        id,
        cluster: cluster.to_string(),
        user_agent_name: "xds-load".to_string(),
        ..Node::default()
    }
}

/// How a stream ended.
#[derive(Debug)]
pub enum Outcome {
    /// `stop` resolved.
    Stopped,
    /// The server ended the stream cleanly.
    Closed,
    /// Opening, reading or writing failed.
    Failed(tonic::Status),
}

/// Runs one ADS stream until `stop` resolves (then it reports nothing more) or the stream
/// ends (reported as [`What::Ended`], and returned).
pub async fn run(
    channel: Channel,
    variant: Variant,
    node: Node,
    stream: u32,
    events: mpsc::UnboundedSender<Event>,
    stop: impl Future<Output = ()>,
) -> Outcome {
    tokio::pin!(stop);
    let mut session = Session::new(variant, node);
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel::<Request>(16);
    let _ = tx.try_send(session.start());
    let outbound = ReceiverStream::new(rx);
    let ends = Ends {
        stream,
        events: &events,
        tx: &tx,
    };
    let result = match variant {
        Variant::Sotw => {
            let call = client.stream_aggregated_resources(outbound.map(sotw));
            let opened = tokio::select! {
                r = call => r,
                () = &mut stop => return Outcome::Stopped,
            };
            match opened {
                Ok(r) => {
                    ends.drive(r.into_inner(), |m| session.on_sotw(m), stop)
                        .await
                }
                Err(status) => Some(Err(status)),
            }
        }
        Variant::Delta => {
            let call = client.delta_aggregated_resources(outbound.map(delta));
            let opened = tokio::select! {
                r = call => r,
                () = &mut stop => return Outcome::Stopped,
            };
            match opened {
                Ok(r) => {
                    ends.drive(r.into_inner(), |m| session.on_delta(m), stop)
                        .await
                }
                Err(status) => Some(Err(status)),
            }
        }
    };
    let Some(result) = result else {
        return Outcome::Stopped;
    };
    let _ = events.send(Event {
        stream,
        at: Instant::now(),
        what: What::Ended {
            error: result.is_err(),
        },
    });
    match result {
        Ok(()) => Outcome::Closed,
        Err(status) => Outcome::Failed(status),
    }
}

/// What a running stream talks to: the collector and its own request queue.
struct Ends<'a> {
    stream: u32,
    events: &'a mpsc::UnboundedSender<Event>,
    tx: &'a mpsc::Sender<Request>,
}

impl Ends<'_> {
    /// Reads responses, stamps and reports each, sends what the session answers. `None`
    /// when `stop` resolved first; else how the stream ended.
    async fn drive<M>(
        &self,
        mut inbound: Streaming<M>,
        mut on: impl FnMut(M) -> (Seen, Vec<Request>),
        mut stop: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Option<Result<(), tonic::Status>> {
        loop {
            let msg = tokio::select! {
                m = inbound.message() => m,
                () = &mut stop => return None,
            };
            let at = Instant::now();
            match msg {
                Ok(Some(resp)) => {
                    let (seen, requests) = on(resp);
                    emit(self.events, self.stream, at, seen);
                    for r in requests {
                        if self.tx.send(r).await.is_err() {
                            return Some(Err(tonic::Status::cancelled("request stream closed")));
                        }
                    }
                }
                Ok(None) => return Some(Ok(())),
                Err(status) => return Some(Err(status)),
            }
        }
    }
}

fn emit(events: &mpsc::UnboundedSender<Event>, stream: u32, at: Instant, seen: Seen) {
    let _ = events.send(Event {
        stream,
        at,
        what: What::Response {
            kind: seen.kind,
            changed: seen.changed,
        },
    });
    if seen.synced_now {
        let _ = events.send(Event {
            stream,
            at,
            what: What::Synced,
        });
    }
}

fn sotw(r: Request) -> DiscoveryRequest {
    match r {
        Request::Sotw(r) => r,
        Request::Delta(_) => unreachable!("a SotW session builds SotW requests"),
    }
}

fn delta(r: Request) -> DeltaDiscoveryRequest {
    match r {
        Request::Delta(r) => r,
        Request::Sotw(_) => unreachable!("a delta session builds delta requests"),
    }
}
