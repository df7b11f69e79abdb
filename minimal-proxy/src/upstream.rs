//! Upstream clusters: endpoints, load balancing, health (active checks and outlier
//! detection), circuit breakers and connection pools.
//!
//! A [`Cluster`] is the runtime object for one `ClusterConfig`: created when CDS delivers the
//! cluster, its endpoints replaced in place by EDS, dropped when the cluster goes away (which
//! stops its health checks). Requests pick a [`Host`] with [`Cluster::select`] and send
//! through [`Cluster::send`], which applies the circuit breakers and pools connections.

// OWNER: the upstream helper fills this module; the signatures below are the contract the
// HTTP router, the TCP proxy, the xDS client and the admin API are written against.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use bytes::Bytes;

use crate::{
    config::{ClusterConfig, LoadAssignment},
    stats::ClusterStats,
};

/// Any error a body may carry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type sent upstream (a downstream body streamed through, or a buffered one replayed
/// on retry).
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// What a load balancer may use to pick a host for one request.
#[derive(Debug, Default, Clone)]
pub struct LbContext {
    /// From the route's hash policy (ring hash, maglev); `None` picks at random.
    pub hash: Option<u64>,
    /// The subset the route asks for (`envoy.lb` labels); empty for none.
    pub metadata_match: BTreeMap<String, String>,
    /// Hosts already tried by earlier attempts of this request, avoided when possible.
    pub previous: Vec<SocketAddr>,
}

/// Why no host or no upstream response.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no healthy upstream")]
    NoHealthyUpstream,
    #[error("upstream connect error or disconnect/reset before headers. reset reason: connection failure: {0}")]
    ConnectFailure(String),
    #[error("upstream connect error or disconnect/reset before headers. reset reason: connection timeout")]
    ConnectTimeout,
    #[error("upstream reset before response headers: {0}")]
    Reset(String),
    /// A circuit breaker is open; `what` names it (`max_requests`, `max_pending_requests`, …).
    #[error("upstream overflow: circuit breaker {0} reached")]
    Overflow(&'static str),
}

/// One endpoint of a cluster, with its live state (health, outlier ejection, active requests).
#[derive(Debug)]
pub struct Host {
    pub address: SocketAddr,
}

/// The runtime object for one cluster.
#[derive(Debug)]
pub struct Cluster {
    config: Arc<ClusterConfig>,
    stats: Arc<ClusterStats>,
}

impl Cluster {
    /// Starts the cluster (and its health checks, if any). Endpoints come from
    /// [`Cluster::set_assignment`] (EDS) or from the config (static clusters).
    pub fn new(config: Arc<ClusterConfig>, stats: Arc<ClusterStats>) -> Arc<Cluster> {
        Arc::new(Cluster { config, stats })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &Arc<ClusterConfig> {
        &self.config
    }

    pub fn stats(&self) -> &Arc<ClusterStats> {
        &self.stats
    }

    /// Replaces the endpoints; hosts that stay keep their health, outlier state and pools.
    pub fn set_assignment(&self, _assignment: &LoadAssignment) {}

    /// Picks a host for one request.
    pub fn select(&self, _ctx: &LbContext) -> Result<Arc<Host>, Error> {
        Err(Error::NoHealthyUpstream)
    }

    /// Sends one request to `host` through the cluster's pool; counts it, applies the circuit
    /// breakers, and feeds outlier detection with the outcome.
    pub async fn send(
        &self,
        _host: &Arc<Host>,
        _request: http::Request<Body>,
    ) -> Result<http::Response<hyper::body::Incoming>, Error> {
        Err(Error::NoHealthyUpstream)
    }

    /// A TCP connection to `host` (TCP proxy), within the connect timeout and the
    /// `max_connections` breaker; the guard keeps the connection counted until dropped.
    pub async fn connect(
        &self,
        _host: &Arc<Host>,
    ) -> Result<(tokio::net::TcpStream, ConnectionGuard), Error> {
        Err(Error::NoHealthyUpstream)
    }
}

/// Counts an open upstream connection against `max_connections` until dropped.
#[derive(Debug)]
pub struct ConnectionGuard {}
