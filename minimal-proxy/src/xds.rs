//! The xDS client: ADS or per-type streams (CDS, EDS, LDS, RDS), State-of-the-World or Delta,
//! to the management server named by the bootstrap.
//!
//! - [`subscription`]: one type's protocol state (names, versions, nonces) and its requests.
//! - [`handlers`]: one handler per type: convert with `config::*_from_proto`, record, and
//!   return what was rejected (the NACK names each resource and why).
//! - [`store`]: what the proxy holds: active, warming and failed versions, raw resources kept
//!   for `/config_dump`.
//! - [`warming`]: clusters wait for their assignments, listeners for their routes, both for
//!   their secrets (SDS over ADS, for TLS); the
//!   initialisation `/ready` waits for.
//! - [`engine`]: the state machine tying them together; pure, unit-tested rule by rule.
//! - [`live`]: the cluster objects and route tables published to the runtime.
//! - `client`: the glue: streams, applying to the runtime and the listener manager, then ACK.
//! - `stream`: one gRPC stream with reconnects; [`backoff`]: jittered exponential.
//!
//! Choices, each Envoy's unless said:
//! - An ACK is sent once the response is applied: converted, the runtime snapshot published,
//!   the listener set handed to the listener manager. A cluster or listener still warming is
//!   accepted (ACKed) and shown in `dynamic_warming_clusters` / `warming_state`.
//! - A partly bad response: the good resources are applied, the bad ones keep their previous
//!   version, and the NACK names each (`cluster 'x': field: reason`, one per line).
//! - EDS and RDS come over the channel of CDS and LDS respectively (what xds-server
//!   configures); a cluster's own `eds_config` is not consulted.
//! - Ours: a listener the listener manager refuses after it warmed (its routes arrived after
//!   LDS was ACKed) is NACKed again on LDS's last nonce, so the server shows the failure as it
//!   shows Envoy's bind errors.
//! - Ours: a cluster or listener warms for its source's `initial_fetch_timeout` (CDS's for
//!   clusters, LDS's for listeners), not the one of its own `eds_config` / `rds.config_source`.

pub mod backoff;
mod client;
pub mod endpoint;
pub mod engine;
pub mod handlers;
pub mod live;
pub mod store;
mod stream;

/// `message` as a gRPC request carrying a grpc_service's `initial_metadata` (validated when
/// the bootstrap was read; an entry that still does not parse is skipped).
pub(crate) fn with_metadata<T>(message: T, metadata: &[(String, String)]) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    for (key, value) in metadata {
        let key =
            tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(key.as_bytes());
        if let (Ok(key), Ok(value)) = (key, value.parse()) {
            req.metadata_mut().append(key, value);
        }
    }
    req
}

/// Why `key: value` cannot be sent as gRPC metadata by [`with_metadata`] (a lowercase ASCII
/// key not ending in `-bin`, a printable ASCII value); checked wherever a grpc_service's
/// `initial_metadata` is read.
pub(crate) fn metadata_problem(key: &str, value: &str) -> Option<(&'static str, String)> {
    let parsed = tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(key.as_bytes());
    if parsed.is_err() || key.ends_with("-bin") {
        return Some((
            "key",
            format!("'{key}' is not an ASCII gRPC metadata key (lowercase, no -bin)"),
        ));
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Some(("value", "must be printable ASCII".to_string()));
    }
    None
}

pub mod subscription;
pub mod warming;

#[cfg(test)]
pub(crate) mod tests;

use std::{
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
};

use envoy_types::pb::{
    envoy::{
        config::core::v3::{Locality, Node, node::UserAgentVersionType},
        service::discovery::v3::{
            DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
        },
    },
    google::protobuf::Any,
};
use xds_core::TypeUrl;

pub use client::run;

use crate::{
    bootstrap::{self, Channel, Dynamic},
    config::{ListenerConfig, Rejection},
};

/// What the proxy calls the listener manager: takes the whole set of active listeners and
/// returns those it could not start (a port in use, ...). A trait so the xDS client does not
/// depend on the listener module (and tests can stand in for it).
pub trait ListenerSink: Send + Sync + 'static {
    fn apply(&self, listeners: Vec<ListenerConfig>) -> impl Future<Output = Vec<Rejection>> + Send;
}

/// One response from the server, whichever variant it came as.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub type_url: TypeUrl,
    /// SotW `version_info`; Delta `system_version_info`.
    pub version: String,
    pub nonce: String,
    pub resources: Vec<Received>,
    /// Delta `removed_resources`.
    pub removed: Vec<String>,
    /// SotW for CDS and LDS: the response holds every resource, so the absent ones are gone.
    pub state_of_the_world: bool,
}

/// One resource of a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Delta names each resource; SotW's name is inside it.
    pub name: Option<String>,
    /// SotW: the response's version; Delta: the resource's.
    pub version: String,
    pub resource: Option<Any>,
}

impl Update {
    pub fn from_sotw(r: DiscoveryResponse) -> Update {
        let type_url = TypeUrl::from(r.type_url);
        let version = r.version_info;
        Update {
            state_of_the_world: type_url.wildcard_capable(),
            resources: r
                .resources
                .into_iter()
                .map(|any| Received {
                    name: None,
                    version: version.clone(),
                    resource: Some(any),
                })
                .collect(),
            type_url,
            version,
            nonce: r.nonce,
            removed: Vec::new(),
        }
    }

    pub fn from_delta(r: DeltaDiscoveryResponse) -> Update {
        Update {
            type_url: TypeUrl::from(r.type_url),
            version: r.system_version_info,
            nonce: r.nonce,
            resources: r
                .resources
                .into_iter()
                .map(|res| Received {
                    name: Some(res.name),
                    version: res.version,
                    resource: res.resource,
                })
                .collect(),
            removed: r.removed_resources,
            state_of_the_world: false,
        }
    }
}

/// A request to send, in the stream's variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Sotw(DiscoveryRequest),
    Delta(DeltaDiscoveryRequest),
}

impl Outgoing {
    pub fn type_url(&self) -> TypeUrl {
        match self {
            Outgoing::Sotw(r) => TypeUrl::from(r.type_url.as_str()),
            Outgoing::Delta(r) => TypeUrl::from(r.type_url.as_str()),
        }
    }

    /// Whether this is a NACK.
    pub fn is_nack(&self) -> bool {
        match self {
            Outgoing::Sotw(r) => r.error_detail.is_some(),
            Outgoing::Delta(r) => r.error_detail.is_some(),
        }
    }

    /// Whether this answers a response (ACK or NACK), rather than subscribing.
    pub fn is_answer(&self) -> bool {
        match self {
            Outgoing::Sotw(r) => !r.response_nonce.is_empty(),
            Outgoing::Delta(r) => !r.response_nonce.is_empty(),
        }
    }

    /// Folds a subscription change of the same type into this answer: SotW answers already
    /// list the current names; Delta's carry the (un)subscriptions.
    fn absorb(&mut self, other: &Outgoing) {
        if let (Outgoing::Delta(mine), Outgoing::Delta(theirs)) = (self, other) {
            mine.resource_names_subscribe
                .extend(theirs.resource_names_subscribe.iter().cloned());
            mine.resource_names_unsubscribe
                .extend(theirs.resource_names_unsubscribe.iter().cloned());
        }
    }

    fn set_node(&mut self, node: Node) {
        match self {
            Outgoing::Sotw(r) => r.node = Some(node),
            Outgoing::Delta(r) => r.node = Some(node),
        }
    }
}

/// Which gRPC stream carries a type: the one ADS stream, or the type's own service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKey {
    Ads,
    Type(TypeUrl),
}

/// Every configured type with the stream and channel carrying it: clusters and their
/// assignments over CDS's source, listeners and their routes over LDS's.
pub fn routing(dynamic: &Dynamic) -> Vec<(TypeUrl, StreamKey, Channel)> {
    let mut out = Vec::new();
    let sources = [
        (&dynamic.cds, [TypeUrl::Cluster, TypeUrl::Endpoint]),
        (&dynamic.lds, [TypeUrl::Listener, TypeUrl::Route]),
    ];
    // Secrets come over ADS (`sds_config: {ads: {}}`, the only SDS source accepted).
    let ads = [&dynamic.cds, &dynamic.lds]
        .into_iter()
        .flatten()
        .find(|s| s.channel.aggregated);
    if let Some(ads) = ads {
        out.push((TypeUrl::Secret, StreamKey::Ads, ads.channel.clone()));
    }
    for (source, types) in sources {
        let Some(source) = source else { continue };
        for t in types {
            let key = if source.channel.aggregated {
                StreamKey::Ads
            } else {
                StreamKey::Type(t.clone())
            };
            out.push((t, key, source.channel.clone()));
        }
    }
    out
}

/// The node as sent to the control plane: the bootstrap's, with this proxy as user agent.
pub fn node_proto(node: &bootstrap::Node) -> Node {
    Node {
        id: node.id.clone(),
        cluster: node.cluster.clone(),
        metadata: xds_core::node::json_to_struct(&serde_json::Value::Object(node.metadata.clone())),
        locality: node.locality.as_ref().map(|l| Locality {
            region: l.region.clone(),
            zone: l.zone.clone(),
            sub_zone: l.sub_zone.clone(),
        }),
        user_agent_name: "minimal-proxy".to_string(),
        user_agent_version_type: Some(UserAgentVersionType::UserAgentVersion(
            env!("CARGO_PKG_VERSION").to_string(),
        )),
        // A changed cluster keeps serving from its assignment while it re-warms.
        client_features: vec![xds_core::node::REWARMS_FROM_HELD_ASSIGNMENTS.to_string()],
        ..Default::default()
    }
}

/// The engine shared between the client task and the admin API (config dump, readiness).
/// Locked briefly by each event; never held across an await.
#[derive(Debug, Clone)]
pub struct Handle {
    engine: Arc<Mutex<engine::Engine>>,
}

impl Handle {
    pub fn new(engine: engine::Engine) -> Handle {
        Handle {
            engine: Arc::new(Mutex::new(engine)),
        }
    }

    /// The engine, for a short look (the admin API) or one step (the client).
    pub fn lock(&self) -> MutexGuard<'_, engine::Engine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Initialised: `/ready` answers `LIVE`.
    pub fn ready(&self) -> bool {
        self.lock().ready()
    }

    /// Envoy's name for where start-up is: `PRE_INITIALIZING` while clusters initialise,
    /// `INITIALIZING` while listeners do, then `LIVE`.
    pub fn server_state(&self) -> &'static str {
        match self.lock().phase() {
            warming::Phase::Clusters => "PRE_INITIALIZING",
            warming::Phase::Listeners => "INITIALIZING",
            warming::Phase::Done => "LIVE",
        }
    }
}

/// Why a stream to the management server failed (logged; the stream is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot connect to the xDS server {target} (cluster '{cluster}'): {reason}; is it running and reachable?"
    )]
    Connect {
        target: String,
        cluster: String,
        /// The transport error with its causes (tonic's own text says only "transport error").
        reason: String,
    },
    #[error("the xDS server {target} refused the stream: {status}")]
    Open {
        target: String,
        status: tonic::Status,
    },
    #[error("the xDS stream to {target} ended: {status}")]
    Stream {
        target: String,
        status: tonic::Status,
    },
    #[error("the xDS server {target} closed the stream")]
    Closed { target: String },
    /// The address or the cluster's TLS settings are unusable (the message says which).
    #[error("cannot reach the xDS server {0}: {1}")]
    Address(String, String),
}

impl Error {
    /// A connection failure, with every cause in the message.
    fn connect(target: String, cluster: String, e: &tonic::transport::Error) -> Error {
        let mut reason = e.to_string();
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            reason.push_str(": ");
            reason.push_str(&c.to_string());
            cause = c.source();
        }
        Error::Connect {
            target,
            cluster,
            reason,
        }
    }

    /// Whether retrying soon cannot help: the server does not serve this service, or refuses
    /// this proxy or its requests. Reconnects then wait the longest.
    pub fn is_permanent(&self) -> bool {
        use tonic::Code;
        let status = match self {
            Error::Open { status, .. } | Error::Stream { status, .. } => status,
            Error::Address(..) => return true,
            Error::Connect { .. } | Error::Closed { .. } => return false,
        };
        matches!(
            status.code(),
            Code::Unimplemented
                | Code::InvalidArgument
                | Code::PermissionDenied
                | Code::Unauthenticated
        )
    }
}
