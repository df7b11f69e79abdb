//! Upstream clusters: endpoints, load balancing, health (active checks and outlier
//! detection), circuit breakers and connection pools.
//!
//! A [`Cluster`] is the runtime object for one `ClusterConfig`: created when CDS delivers the
//! cluster, its endpoints replaced in place by EDS, dropped when the cluster goes away (which
//! stops its health checks, outlier sweeps and DNS refreshes). Requests pick a [`Host`] with
//! [`Cluster::select`] and send through [`Cluster::send`], which applies the circuit breakers,
//! pools connections and keeps Envoy's stats.
//!
//! # Layout
//!
//! - `membership`: the cluster's shared core: hosts by address with their kept state, the
//!   published [`host_set`] (rebuilt on every change), readiness.
//! - `host`: a host and its live state; `host_set`: health tiers, panic, locality weights;
//!   `subset`: label subsets; `lb`: the balancers (round robin, least request, random, ring
//!   hash, maglev).
//! - `request`: one request's way (breakers, pool, books); `response`: the response body that
//!   keeps the request's books to its end; `pool`: per-host connections; `circuit_breaker`:
//!   the thresholds and their guards.
//! - `health`: active health checks; `outlier`: consecutive-5xx ejection; `dns`: STRICT_DNS.

mod circuit_breaker;
mod dns;
mod health;
mod host;
mod host_set;
mod lb;
mod membership;
mod outlier;
mod pool;
mod request;
mod response;
mod subset;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use bytes::Bytes;

use crate::{
    config::{ClusterConfig, Discovery, LoadAssignment},
    stats::ClusterStats,
};

pub use circuit_breaker::{ConnectionGuard, RetryGuard};
pub use host::{Host, HostStatus};
/// XXH64 as Envoy computes it, for the router's hash policies (so a header value hashes to
/// the same ring position as behind Envoy).
pub use lb::xxhash::xxh64;
use membership::{AbortOnDrop, Shared};
pub use response::ResponseBody;

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
    /// The subset the route asks for (`envoy.lb` labels); empty for none. With subsets
    /// configured, an empty match gets the cluster's fallback policy, as in Envoy.
    pub metadata_match: BTreeMap<String, String>,
    /// Hosts already tried by earlier attempts of this request: a pick that lands on one is
    /// tried once more (Envoy's `previous_hosts` retry predicate; leave it empty when the
    /// route does not ask for that predicate, as Envoy then may pick the same host again).
    pub previous: Vec<SocketAddr>,
}

/// Why no host or no upstream response.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no healthy upstream")]
    NoHealthyUpstream,
    #[error(
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure: {0}"
    )]
    ConnectFailure(String),
    #[error(
        "upstream connect error or disconnect/reset before headers. reset reason: connection timeout"
    )]
    ConnectTimeout,
    #[error("upstream reset before response headers: {0}")]
    Reset(String),
    /// A circuit breaker is open; `what` names it (`max_requests`, `max_pending_requests`,
    /// `max_connections`).
    #[error("upstream overflow: circuit breaker {0} reached")]
    Overflow(&'static str),
}

/// The runtime object for one cluster.
#[derive(Debug)]
pub struct Cluster {
    shared: Arc<Shared>,
    /// Outlier sweeps and DNS refreshes, stopped with the cluster (health checks stop with
    /// their hosts, held in `shared`).
    _tasks: Vec<AbortOnDrop>,
}

impl Cluster {
    /// Starts the cluster: static endpoints at once, STRICT_DNS resolution, outlier sweeps, and
    /// health checks for each host as it arrives. EDS endpoints come from
    /// [`Cluster::set_assignment`]. Background work needs a Tokio runtime (without one it is
    /// skipped with a warning).
    pub fn new(config: Arc<ClusterConfig>, stats: Arc<ClusterStats>) -> Arc<Cluster> {
        Cluster::with_secrets(config, stats, &crate::tls::Secrets::default())
    }

    /// [`Cluster::new`] for a cluster that may speak TLS: its handshakes read `secrets`.
    pub fn with_secrets(
        config: Arc<ClusterConfig>,
        stats: Arc<ClusterStats>,
        secrets: &crate::tls::Secrets,
    ) -> Arc<Cluster> {
        let tls = config
            .tls
            .as_ref()
            .map(|t| crate::tls::client::Connector::new(t, secrets));
        let shared = Arc::new(Shared::new(config.clone(), stats, tls));
        let mut tasks = Vec::new();
        if let Some(outlier) = config.outlier_detection {
            let weak = Arc::downgrade(&shared);
            tasks.extend(membership::spawn("outlier detection", async move {
                loop {
                    tokio::time::sleep(outlier.interval).await;
                    let Some(shared) = weak.upgrade() else { return };
                    shared.outlier_sweep();
                }
            }));
        }
        match &config.discovery {
            Discovery::Static(assignment) => shared.apply_assignment(assignment),
            Discovery::StrictDns {
                assignment,
                refresh,
                family,
            } => tasks.extend(membership::spawn(
                "DNS resolution",
                dns::run(
                    Arc::downgrade(&shared),
                    assignment.clone(),
                    *refresh,
                    *family,
                ),
            )),
            Discovery::Eds { .. } => {}
        }
        Arc::new(Cluster {
            shared,
            _tasks: tasks,
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    pub fn config(&self) -> &Arc<ClusterConfig> {
        &self.shared.config
    }

    pub fn stats(&self) -> &Arc<ClusterStats> {
        &self.shared.stats
    }

    /// Replaces the endpoints; hosts that stay keep their health, outlier state and pools.
    /// (EDS update counters are the xDS client's to keep.)
    pub fn set_assignment(&self, assignment: &LoadAssignment) {
        self.shared.apply_assignment(assignment);
    }

    /// Resolves once the cluster has its endpoints (static, first DNS answer, or first
    /// [`Cluster::set_assignment`]) and every host has had its first health check: Envoy
    /// holds a cluster warming until then.
    pub async fn ready(&self) {
        self.shared.ready().await;
    }

    /// Picks a host for one request. Lock-free: one atomic load of the current host set.
    /// `Error::NoHealthyUpstream` (counted in `upstream_cx_none_healthy`) when there is none.
    pub fn select(&self, ctx: &LbContext) -> Result<Arc<Host>, Error> {
        let stats = &self.shared.stats;
        self.shared
            .host_set
            .load()
            .select(ctx, stats)
            .ok_or_else(|| {
                stats.upstream_cx_none_healthy.inc();
                Error::NoHealthyUpstream
            })
    }

    /// Sends one request to `host` through the cluster's pool; counts it, applies the circuit
    /// breakers, and feeds outlier detection with the outcome (a connect failure or reset
    /// counts as a 503).
    ///
    /// Breakers as in Envoy's pools: a request that finds no free connection, and may not
    /// open one under `max_connections`, waits as pending for one to come back (refused with
    /// [`Error::Overflow`] past `max_pending_requests`); `max_requests` is checked when a
    /// connection takes the request.
    ///
    /// The request may carry an origin-form or absolute URI; the caller keeps the downstream
    /// `Host` header (HTTP/1) or `:authority` (the URI's authority, HTTP/2) as Envoy forwards
    /// it. The connection always goes to `host.address`; for an HTTP/1.1 cluster the target is
    /// sent in origin form with that `Host` (the URI's authority or the host's address when
    /// there is none); for an HTTP/2 cluster `:authority` is the URI's authority, else the
    /// `Host` header (removed), else the host's address. Hop-by-hop headers are the caller's
    /// to strip.
    ///
    /// Stats: `upstream_rq_total` and `_active` (until the response body ends or is dropped),
    /// `upstream_rq_<code>`/`_<class>xx`/`_completed` (a reset, connect failure or overflow
    /// is charged as 503), `upstream_rq_time` (to the end of a complete response, as Envoy
    /// records it; see [`ResponseBody`]), the pending and connection counters, and the
    /// host's counters. Dropping the future (a timeout) drops the request; then call
    /// [`Cluster::report_timeout`].
    pub async fn send(
        &self,
        host: &Arc<Host>,
        request: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, Error> {
        request::send(&self.shared, host, request).await
    }

    /// A TCP connection to `host` (TCP proxy), within the connect timeout and the
    /// `max_connections` breaker; the guard keeps the connection counted until dropped.
    pub async fn connect(
        &self,
        host: &Arc<Host>,
    ) -> Result<(crate::tls::Io, ConnectionGuard), Error> {
        request::connect(&self.shared, host).await
    }

    /// A retry slot under `max_retries`, held for the retry's duration; `None` when the
    /// breaker is open (counted in `upstream_rq_retry_overflow`). `upstream_rq_retry` and
    /// `_retry_success` are the router's to count.
    pub fn try_retry(&self) -> Option<RetryGuard> {
        self.shared.breakers.try_retry()
    }

    /// The router gave up waiting for `host` (route or per-try timeout): charged as Envoy
    /// does, a 504 for the cluster's code stats, the host's `rq_timeout` and `rq_error`, and
    /// outlier detection. (`upstream_rq_timeout` / `_per_try_timeout` are the router's.)
    pub fn report_timeout(&self, host: &Arc<Host>) {
        host.state.stats.rq_timeout.inc();
        request::charge(&self.shared, host, 504, true);
    }

    /// Every host with its health and counters, for the admin `/clusters` page.
    pub fn host_statuses(&self) -> Vec<HostStatus> {
        self.shared.host_statuses()
    }
}
