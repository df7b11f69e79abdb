//! An Envoy-like ADS client for tests and benchmarks (feature `testing`): one stream, SotW or
//! delta, that sends its node and subscriptions, ACKs every response as Envoy does (or NACKs
//! one when told to, or when a resource does not decode), optionally subscribes to what
//! clusters and listeners refer to, and keeps what it holds for assertions.
//!
//! ```no_run
//! # async fn example(addr: std::net::SocketAddr) -> Result<(), xds_core::testing::Error> {
//! use xds_core::{TypeUrl, testing::{AdsClient, node}};
//!
//! let mut proxy = AdsClient::delta(node("ingress-1", "ingress"))
//!     .wildcard(TypeUrl::Cluster)
//!     .follow_references()
//!     .connect(addr)
//!     .await?;
//! proxy.wait_for("web's assignment", |p| p.has(&TypeUrl::Endpoint, "web")).await?;
//! # Ok(()) }
//! ```
//!
//! The protocol half is a pure state machine (`session`), tested without tonic; this file is
//! the tonic glue.

mod names;
mod session;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use envoy_types::pb::{
    envoy::{
        config::core::v3::Node,
        service::discovery::v3::{
            DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
            aggregated_discovery_service_client::AggregatedDiscoveryServiceClient,
        },
    },
    google::protobuf::Any,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Streaming, transport::Channel};

use crate::TypeUrl;
use session::{Request, Session};

/// How long one wait (connecting, the next response, a `wait_for`) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which ADS flavour a stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// State of the World: `StreamAggregatedResources`.
    Sotw,
    /// Incremental: `DeltaAggregatedResources`.
    Delta,
}

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not connect to the xDS server at {addr}: {source} (is it listening?)")]
    Connect {
        addr: SocketAddr,
        source: tonic::transport::Error,
    },
    #[error("the xDS server refused or ended the stream: {0}")]
    Status(Box<tonic::Status>),
    #[error("the xDS server ended the stream")]
    Ended,
    #[error("nothing from the xDS server within {0:?}: does it serve what was subscribed?")]
    Timeout(Duration),
    #[error("{what}: not reached within {within:?}")]
    NotReached { what: String, within: Duration },
}

impl Error {
    /// The gRPC status, when the server ended the stream with one.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Error::Status(s) => Some(s),
            _ => None,
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::Status(Box::new(status))
    }
}

/// One response as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub type_url: TypeUrl,
    /// SotW `version_info`, delta `system_version_info`.
    pub version: String,
    pub nonce: String,
    /// The resources it carried, by name (SotW: the whole response; delta: the updates).
    /// Empty when they did not decode.
    pub resources: BTreeMap<String, Any>,
    /// Delta only: the names it removed.
    pub removed: Vec<String>,
    /// `Some(reason)` when the client NACKed it (and so holds what it held before).
    pub rejected: Option<String>,
}

/// A node with this id and cluster, as a bootstrap would give it.
pub fn node(id: &str, cluster: &str) -> Node {
    Node {
        id: id.to_string(),
        cluster: cluster.to_string(),
        ..Node::default()
    }
}

/// How to open a stream: built by [`AdsClient::sotw`] or [`AdsClient::delta`].
#[derive(Debug)]
pub struct Builder {
    variant: Variant,
    node: Option<Node>,
    subscriptions: Vec<(TypeUrl, Vec<String>)>,
    follow: bool,
    timeout: Duration,
    /// Sent as gRPC metadata: `Bearer <token>` as `authorization` (see [`Builder::token`]).
    token: Option<String>,
}

impl Builder {
    /// Presents a proxy token (`authorization: Bearer <token>` metadata), as Envoy does from
    /// its grpc_service's `initial_metadata`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Subscribes to `type_url` in the opening requests, in the order given: no names means
    /// wildcard for LDS and CDS, `*` means wildcard for any type.
    pub fn subscribe<N: Into<String>>(
        mut self,
        type_url: impl Into<TypeUrl>,
        names: impl IntoIterator<Item = N>,
    ) -> Self {
        let names = names.into_iter().map(Into::into).collect();
        self.subscriptions.push((type_url.into(), names));
        self
    }

    /// Subscribes to every resource of `type_url` the way Envoy does for LDS and CDS: by
    /// naming nothing (the legacy wildcard). For other types, use `subscribe(t, ["*"])`.
    pub fn wildcard(self, type_url: impl Into<TypeUrl>) -> Self {
        self.subscribe(type_url, Vec::<String>::new())
    }

    /// Sends no node at all (to test that the server refuses such a stream).
    pub fn without_node(mut self) -> Self {
        self.node = None;
        self
    }

    /// Subscribes to the assignments of received EDS clusters and to the route configurations
    /// received listeners name, as Envoy does (after ACKing the clusters or listeners).
    pub fn follow_references(mut self) -> Self {
        self.follow = true;
        self
    }

    /// How long one wait may take (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects to `addr` (plain HTTP/2) and opens the stream.
    pub async fn connect(self, addr: SocketAddr) -> Result<AdsClient, Error> {
        let endpoint = Channel::from_shared(format!("http://{addr}"))
            .expect("an IP address and port make a valid URI")
            .connect_timeout(self.timeout);
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| Error::Connect { addr, source })?;
        self.open(channel).await
    }

    /// Opens the stream on an existing connection (many streams may share one).
    pub async fn open(self, channel: Channel) -> Result<AdsClient, Error> {
        let mut session = Session::new(self.variant, self.node, self.follow);
        let opening: Vec<Request> = self
            .subscriptions
            .into_iter()
            .filter_map(|(t, names)| session.subscribe(t, &names))
            .collect();
        let mut client = AggregatedDiscoveryServiceClient::new(channel);
        let timeout = self.timeout;
        let token = self.token.as_deref();
        let capacity = opening.len() + 16;
        let wire = match self.variant {
            Variant::Sotw => {
                let (tx, rx) = mpsc::channel(capacity);
                for r in opening {
                    let _ = tx.try_send(sotw(r));
                }
                let call =
                    client.stream_aggregated_resources(with_token(token, ReceiverStream::new(rx)));
                let inbound = within(timeout, call).await??.into_inner();
                Wire::Sotw { tx, inbound }
            }
            Variant::Delta => {
                let (tx, rx) = mpsc::channel(capacity);
                for r in opening {
                    let _ = tx.try_send(delta(r));
                }
                let call =
                    client.delta_aggregated_resources(with_token(token, ReceiverStream::new(rx)));
                let inbound = within(timeout, call).await??.into_inner();
                Wire::Delta { tx, inbound }
            }
        };
        Ok(AdsClient {
            session,
            wire,
            timeout,
        })
    }
}

/// `message` as a gRPC request, with `authorization: Bearer <token>` when there is a token.
fn with_token<T>(token: Option<&str>, message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Some(value) = token.and_then(|t| format!("Bearer {t}").parse().ok()) {
        req.metadata_mut().insert("authorization", value);
    }
    req
}

/// One open ADS stream; dropping it closes the stream, as a proxy going away does.
#[derive(Debug)]
pub struct AdsClient {
    session: Session,
    wire: Wire,
    timeout: Duration,
}

#[derive(Debug)]
enum Wire {
    Sotw {
        tx: mpsc::Sender<DiscoveryRequest>,
        inbound: Streaming<DiscoveryResponse>,
    },
    Delta {
        tx: mpsc::Sender<DeltaDiscoveryRequest>,
        inbound: Streaming<DeltaDiscoveryResponse>,
    },
}

impl AdsClient {
    /// A State-of-the-World stream for `node`.
    pub fn sotw(node: Node) -> Builder {
        Self::builder(Variant::Sotw, node)
    }

    /// A delta (incremental) stream for `node`.
    pub fn delta(node: Node) -> Builder {
        Self::builder(Variant::Delta, node)
    }

    /// A stream of `variant` for `node`.
    pub fn builder(variant: Variant, node: Node) -> Builder {
        Builder {
            variant,
            node: Some(node),
            subscriptions: Vec::new(),
            follow: false,
            timeout: DEFAULT_TIMEOUT,
            token: None,
        }
    }

    pub fn variant(&self) -> Variant {
        self.session.variant()
    }

    /// Waits for the next response, ACKs or NACKs it and sends any follow-up subscription.
    pub async fn next(&mut self) -> Result<Received, Error> {
        let (received, requests) = match &mut self.wire {
            Wire::Sotw { inbound, .. } => {
                let resp = within(self.timeout, inbound.message()).await??;
                self.session.on_sotw(resp.ok_or(Error::Ended)?)
            }
            Wire::Delta { inbound, .. } => {
                let resp = within(self.timeout, inbound.message()).await??;
                self.session.on_delta(resp.ok_or(Error::Ended)?)
            }
        };
        for r in requests {
            self.send(r).await?;
        }
        Ok(received)
    }

    /// Reads responses until `done` holds for the client (checked first, then after each).
    pub async fn wait_for(
        &mut self,
        what: &str,
        mut done: impl FnMut(&AdsClient) -> bool,
    ) -> Result<(), Error> {
        let within = self.timeout;
        let waiting = async {
            while !done(self) {
                self.next().await?;
            }
            Ok(())
        };
        tokio::time::timeout(within, waiting)
            .await
            .map_err(|_| Error::NotReached {
                what: what.to_string(),
                within,
            })?
    }

    /// Replaces the subscription to `type_url` (see [`Builder::subscribe`]); sends nothing
    /// when it is unchanged.
    pub async fn subscribe<N: Into<String>>(
        &mut self,
        type_url: impl Into<TypeUrl>,
        names: impl IntoIterator<Item = N>,
    ) -> Result<(), Error> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        match self.session.subscribe(type_url.into(), &names) {
            Some(r) => self.send(r).await,
            None => Ok(()),
        }
    }

    /// Rejects the next response of `type_url` with `message` as its `error_detail`, keeping
    /// what was held before.
    pub fn nack_next(&mut self, type_url: impl Into<TypeUrl>, message: impl Into<String>) {
        self.session.nack_next(type_url.into(), message.into());
    }

    /// What the client holds of `type_url`, by name (empty when nothing).
    pub fn held(&self, type_url: &TypeUrl) -> &BTreeMap<String, Any> {
        static NOTHING: BTreeMap<String, Any> = BTreeMap::new();
        self.session.held(type_url).unwrap_or(&NOTHING)
    }

    /// The names the client holds of `type_url`, sorted.
    pub fn names(&self, type_url: &TypeUrl) -> Vec<String> {
        self.held(type_url).keys().cloned().collect()
    }

    /// Whether the client holds `name` of `type_url`.
    pub fn has(&self, type_url: &TypeUrl, name: &str) -> bool {
        self.held(type_url).contains_key(name)
    }

    /// The last version of `type_url` the client accepted.
    pub fn version(&self, type_url: &TypeUrl) -> Option<&str> {
        self.session.accepted(type_url)
    }

    async fn send(&mut self, r: Request) -> Result<(), Error> {
        let sent = match &self.wire {
            Wire::Sotw { tx, .. } => tx.send(sotw(r)).await.is_ok(),
            Wire::Delta { tx, .. } => tx.send(delta(r)).await.is_ok(),
        };
        if sent { Ok(()) } else { Err(Error::Ended) }
    }
}

async fn within<T>(timeout: Duration, f: impl Future<Output = T>) -> Result<T, Error> {
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| Error::Timeout(timeout))
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
