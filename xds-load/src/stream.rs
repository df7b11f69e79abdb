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
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::session::{Kind, Request, Session, Variant};

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
    let report = |what| {
        let _ = events.send(Event {
            stream,
            at: Instant::now(),
            what,
        });
    };
    tokio::pin!(stop);
    let mut session = Session::new(variant, node);
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel::<Request>(16);
    let _ = tx.try_send(session.start());
    let outbound = ReceiverStream::new(rx);
    let result = match variant {
        Variant::Sotw => {
            let call =
                client.stream_aggregated_resources(tokio_stream::StreamExt::map(outbound, sotw));
            let inbound = tokio::select! {
                r = call => r,
                () = &mut stop => return Outcome::Stopped,
            };
            match inbound {
                Ok(r) => {
                    let mut inbound = r.into_inner();
                    loop {
                        let msg = tokio::select! {
                            m = inbound.message() => m,
                            () = &mut stop => return Outcome::Stopped,
                        };
                        let at = Instant::now();
                        match msg {
                            Ok(Some(resp)) => {
                                let (seen, reqs) = session.on_sotw(resp);
                                emit(&events, stream, at, seen);
                                if !send(&tx, reqs).await {
                                    break Err(tonic::Status::cancelled("request stream closed"));
                                }
                            }
                            Ok(None) => break Ok(()),
                            Err(status) => break Err(status),
                        }
                    }
                }
                Err(status) => Err(status),
            }
        }
        Variant::Delta => {
            let call =
                client.delta_aggregated_resources(tokio_stream::StreamExt::map(outbound, delta));
            let inbound = tokio::select! {
                r = call => r,
                () = &mut stop => return Outcome::Stopped,
            };
            match inbound {
                Ok(r) => {
                    let mut inbound = r.into_inner();
                    loop {
                        let msg = tokio::select! {
                            m = inbound.message() => m,
                            () = &mut stop => return Outcome::Stopped,
                        };
                        let at = Instant::now();
                        match msg {
                            Ok(Some(resp)) => {
                                let (seen, reqs) = session.on_delta(resp);
                                emit(&events, stream, at, seen);
                                if !send(&tx, reqs).await {
                                    break Err(tonic::Status::cancelled("request stream closed"));
                                }
                            }
                            Ok(None) => break Ok(()),
                            Err(status) => break Err(status),
                        }
                    }
                }
                Err(status) => Err(status),
            }
        }
    };
    report(What::Ended {
        error: result.is_err(),
    });
    match result {
        Ok(()) => Outcome::Closed,
        Err(status) => Outcome::Failed(status),
    }
}

fn emit(
    events: &mpsc::UnboundedSender<Event>,
    stream: u32,
    at: Instant,
    seen: crate::session::Seen,
) {
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

async fn send(tx: &mpsc::Sender<Request>, requests: Vec<Request>) -> bool {
    for r in requests {
        if tx.send(r).await.is_err() {
            return false;
        }
    }
    true
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
