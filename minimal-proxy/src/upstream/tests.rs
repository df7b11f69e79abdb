//! Upstream tests: load balancing over fixed hosts, and sending through real hyper servers on
//! 127.0.0.1 (HTTP/1.1 and h2c), with health checks, outlier detection and breakers.

mod balancing;
mod breakers;
mod health;
mod sending;
mod subsets;

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU16, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{net::TcpListener, sync::Semaphore};

use crate::{
    config::{
        CircuitBreakers, ClusterConfig, Discovery, Endpoint, EndpointAddress, EndpointHealth,
        LbPolicy, LoadAssignment, LocalityEndpoints, UpstreamProtocol,
    },
    stats::ClusterStats,
};

use super::{Body, Cluster, Host, LbContext};

/// A real upstream: answers every request with its name in `x-upstream` and the status set in
/// `status`; `hold` (when set) makes requests wait for a permit, to keep them in flight.
pub(super) struct Upstream {
    pub address: SocketAddr,
    pub status: Arc<AtomicU16>,
    pub requests: Arc<AtomicU64>,
    pub connections: Arc<AtomicU64>,
    /// The last request's `Host` header or `:authority`.
    pub last_authority: Arc<std::sync::Mutex<String>>,
    _task: super::membership::AbortOnDrop,
}

impl Upstream {
    pub async fn start(name: &str) -> Upstream {
        Upstream::start_with(name, None).await
    }

    /// An upstream whose requests wait for a permit of `hold`.
    pub async fn holding(name: &str, hold: Arc<Semaphore>) -> Upstream {
        Upstream::start_with(name, Some(hold)).await
    }

    async fn start_with(name: &str, hold: Option<Arc<Semaphore>>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(200));
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let last_authority = Arc::new(std::sync::Mutex::new(String::new()));
        let (s, r, c, a, h) = (
            status.clone(),
            requests.clone(),
            connections.clone(),
            last_authority.clone(),
            hold.clone(),
        );
        let name = name.to_string();
        let task = tokio::spawn(async move {
            // Connections die with the server.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::Relaxed);
                let (s, r, a, h, name) = (s.clone(), r.clone(), a.clone(), h.clone(), name.clone());
                let service = service_fn(move |req: Request<Incoming>| {
                    let (s, r, a, h, name) =
                        (s.clone(), r.clone(), a.clone(), h.clone(), name.clone());
                    async move {
                        r.fetch_add(1, Ordering::Relaxed);
                        let authority = req
                            .uri()
                            .authority()
                            .map(|a| a.to_string())
                            .or_else(|| {
                                req.headers()
                                    .get(http::header::HOST)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string)
                            })
                            .unwrap_or_default();
                        *a.lock().unwrap() = authority;
                        if let Some(hold) = h {
                            hold.acquire().await.unwrap().forget();
                        }
                        let response = Response::builder()
                            .status(s.load(Ordering::Relaxed))
                            .header("x-upstream", name)
                            .body(Full::new(Bytes::from_static(b"hello")))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                conns.spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            address,
            status,
            requests,
            connections,
            last_authority,
            _task: super::membership::AbortOnDrop(task.abort_handle()),
        }
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// An endpoint at `address` with `weight`, healthy, no labels.
pub(super) fn endpoint(address: SocketAddr, weight: u32) -> Endpoint {
    Endpoint {
        address: EndpointAddress::Socket(address),
        weight,
        health: EndpointHealth::Healthy,
        labels: BTreeMap::new(),
    }
}

/// One locality (zone `z1`, no weight) holding `endpoints`.
pub(super) fn assignment(endpoints: Vec<Endpoint>) -> LoadAssignment {
    LoadAssignment {
        cluster_name: "web".into(),
        localities: vec![LocalityEndpoints {
            zone: "z1".into(),
            weight: None,
            endpoints,
        }],
    }
}

/// A static cluster `web` over `assignment` with Envoy's defaults otherwise.
pub(super) fn config(policy: LbPolicy, assignment: LoadAssignment) -> ClusterConfig {
    ClusterConfig {
        name: "web".into(),
        discovery: Discovery::Static(assignment),
        connect_timeout: Duration::from_secs(1),
        lb_policy: policy,
        protocol: UpstreamProtocol::Http1,
        circuit_breakers: CircuitBreakers::default(),
        outlier_detection: None,
        health_checks: Vec::new(),
        subsets: None,
        locality_weighted: false,
        tls: None,
    }
}

/// A round-robin cluster `web` of the one endpoint `upstream`.
pub(super) fn one_host(upstream: SocketAddr) -> ClusterConfig {
    config(
        LbPolicy::RoundRobin,
        assignment(vec![endpoint(upstream, 1)]),
    )
}

pub(super) fn cluster(config: ClusterConfig) -> Arc<Cluster> {
    Cluster::new(Arc::new(config), Arc::new(ClusterStats::default()))
}

/// Addresses `127.0.0.1:<port>` for tests that only pick (nothing listens there).
pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Counts picks per port over `n` selections.
pub(super) fn picks(cluster: &Cluster, ctx: &LbContext, n: usize) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let host = cluster.select(ctx).expect("a host");
        *counts.entry(host.address.port()).or_default() += 1;
    }
    counts
}

/// The host of `cluster` at `address` (picked until it comes up).
pub(super) fn host_at(cluster: &Cluster, address: SocketAddr) -> Arc<Host> {
    for _ in 0..10_000 {
        let host = cluster.select(&LbContext::default()).expect("a host");
        if host.address == address {
            return host;
        }
    }
    panic!("{address} never picked")
}

/// A GET for `/` with `Host: web.test`.
pub(super) fn get() -> Request<Body> {
    Request::get("/")
        .header(http::header::HOST, "web.test")
        .body(BoxBody::new(Empty::new().map_err(|e| match e {})))
        .unwrap()
}

/// Sends one GET to `host` and returns its status and `x-upstream`, reading the body out.
pub(super) async fn send(
    cluster: &Cluster,
    host: &Arc<Host>,
) -> Result<(u16, String), super::Error> {
    let response = cluster.send(host, get()).await?;
    let status = response.status().as_u16();
    let name = response
        .headers()
        .get("x-upstream")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let _ = response.into_body().collect().await;
    Ok((status, name))
}

/// Waits until `condition` holds, polling every 10 ms, for at most `within`.
pub(super) async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
