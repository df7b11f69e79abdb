//! The xDS end-to-end stage: the real `xds-server` (on a fixed xDS port, so it can be restarted
//! in place) driven over its REST API, one real Envoy bootstrapped from
//! `GET /api/v1/bootstrap`, and requests sent through Envoy's listener.
//!
//! Scenarios take a [`Variant`] (State-of-the-World or Delta ADS) and a [`Backend`] (SQLite
//! file or Postgres); [`crate::each_variant_and_backend!`] writes one test per combination.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use reqwest::Client;
use serde_json::{Value, json};

pub use crate::control_plane::{Backend, ControlPlane};
use crate::envoy::{self, Envoy, POLL, free_port, local_client};

/// The xDS type URLs, as keys of a proxy's `types` in `GET /api/v1/proxies/{node_id}`.
pub mod type_url {
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    pub const ALL: [&str; 4] = [CLUSTER, ENDPOINT, LISTENER, ROUTE];
}

/// Which ADS flavour Envoy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Sotw,
    Delta,
    /// SotW over separate CDS, EDS, LDS and RDS streams instead of ADS.
    SotwSeparate,
    /// Delta over separate streams.
    DeltaSeparate,
}

impl Variant {
    /// As in the proxy status's `variant`.
    pub fn as_str(self) -> &'static str {
        if self.is_delta() { "delta" } else { "sotw" }
    }

    pub fn is_delta(self) -> bool {
        matches!(self, Variant::Delta | Variant::DeltaSeparate)
    }

    /// Over one aggregated (ADS) stream, as opposed to one stream per type.
    pub fn is_ads(self) -> bool {
        matches!(self, Variant::Sotw | Variant::Delta)
    }
}

/// One answer through Envoy: the status, and what the upstream echoed (when it was reached).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The upstream's name, `None` when Envoy answered itself (e.g. 503, 404).
    pub upstream: Option<String>,
    /// The path the upstream saw.
    pub path: Option<String>,
    /// The headers the upstream saw.
    pub headers: Value,
    pub body: String,
}

impl Reply {
    pub fn from(&self, upstream: &str) -> bool {
        self.status == 200 && self.upstream.as_deref() == Some(upstream)
    }
}

/// The server, one Envoy for one node id, and a listener port for that Envoy.
pub struct Stage {
    pub cp: ControlPlane,
    pub variant: Variant,
    pub node_id: String,
    /// Where the `ingress` listener (see [`Stage::listener`]) listens, on 127.0.0.1.
    pub listener_port: u16,
    envoy: Option<Envoy>,
    client: Client,
}

impl Stage {
    /// The server on `backend`; `None` (skip announced) without Envoy or Postgres.
    pub async fn new(variant: Variant, backend: Backend) -> Option<Stage> {
        envoy::envoy_bin()?;
        let cp = ControlPlane::start(backend).await?;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let node_id = format!(
            "envoy-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Some(Stage {
            cp,
            variant,
            node_id,
            listener_port: free_port(),
            envoy: None,
            client: local_client(),
        })
    }

    /// A service with one endpoint per `(upstream, labels)`.
    pub async fn service(&self, name: &str, endpoints: &[(&crate::upstream::Upstream, Value)]) {
        self.cp
            .put(
                &format!("/api/v1/services/{name}"),
                json!({ "protocol": "http", "connect_timeout": "1s" }),
            )
            .await;
        self.endpoints(name, endpoints).await;
    }

    /// Replaces the service's endpoints.
    pub async fn endpoints(&self, name: &str, endpoints: &[(&crate::upstream::Upstream, Value)]) {
        let list: Vec<Value> = endpoints
            .iter()
            .map(
                |(u, labels)| json!({ "address": "127.0.0.1", "port": u.port(), "labels": labels }),
            )
            .collect();
        self.cp
            .put(
                &format!("/api/v1/services/{name}/endpoints"),
                json!({ "endpoints": list }),
            )
            .await;
    }

    /// A route for every host with these rules.
    pub async fn route(&self, name: &str, rules: Value) {
        self.cp
            .put(
                &format!("/api/v1/routes/{name}"),
                json!({ "hosts": ["*"], "rules": rules }),
            )
            .await;
    }

    /// A route sending everything to `service`.
    pub async fn route_to(&self, name: &str, service: &str) {
        self.route(
            name,
            json!([{ "match": { "path": { "prefix": "/" } },
                     "destinations": [{ "service": service }],
                     "timeout": "5s" }]),
        )
        .await;
    }

    /// The HTTP listener `ingress` on 127.0.0.1:[`Stage::listener_port`], for this node only.
    pub async fn listener(&self, routes: &[&str]) {
        self.cp
            .put(
                "/api/v1/listeners/ingress",
                json!({ "address": "127.0.0.1", "port": self.listener_port, "protocol": "http",
                        "routes": routes, "selector": { "node_id": self.node_id } }),
            )
            .await;
    }

    /// Starts Envoy from the server's bootstrap and waits until it is LIVE.
    pub async fn start_envoy(&mut self) {
        let bootstrap = self
            .cp
            .bootstrap(&self.node_id, self.variant, free_port())
            .await;
        let envoy = Envoy::start(&bootstrap);
        envoy.wait_ready(Duration::from_secs(30)).await;
        self.envoy = Some(envoy);
    }

    pub fn envoy(&self) -> &Envoy {
        self.envoy.as_ref().expect("start_envoy first")
    }

    /// One GET through Envoy's listener; `Err` when no HTTP answer came back.
    pub async fn send(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
        send(&self.client, self.listener_port, path, headers).await
    }

    /// Sends requests until one's reply satisfies `accept` (at most 2000, within `timeout`).
    pub async fn wait_reply(
        &self,
        what: &str,
        path: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
        accept: impl Fn(&Reply) -> bool,
    ) -> Reply {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("nothing sent");
        for _ in 0..2000 {
            match self.send(path, headers).await {
                Ok(reply) if accept(&reply) => return reply,
                Ok(reply) => last = format!("{} {}", reply.status, reply.body),
                Err(e) => last = e,
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        self.envoy().fail(&format!(
            "never got {what} from GET {path} (last reply: {last})"
        ))
    }

    /// Polls the proxy status until `accept` holds for it; returns it.
    pub async fn wait_proxy(
        &self,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        loop {
            if let Some(status) = self.cp.proxy(&self.node_id).await {
                if accept(&status) {
                    return status;
                }
                last = status;
            }
            if Instant::now() > deadline {
                panic!(
                    "proxy status never showed {what}; last: {last:#}\nEnvoy log tail:\n{}",
                    self.envoy().log_tail()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the proxy status shows all four types SYNCED.
    pub async fn wait_synced(&self, timeout: Duration) -> Value {
        self.wait_proxy("every type SYNCED", timeout, |p| {
            type_url::ALL
                .iter()
                .all(|t| p["types"][*t]["status"] == "SYNCED")
        })
        .await
    }
}

/// One GET to `127.0.0.1:port`; `Err` when no HTTP answer came back.
pub async fn send(
    client: &Client,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    let mut req = client.get(format!("http://127.0.0.1:{port}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| format!("body failed: {e}"))?;
    let echo: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    Ok(Reply {
        status,
        upstream: echo["upstream"].as_str().map(str::to_string),
        path: echo["path"].as_str().map(str::to_string),
        headers: echo["headers"].clone(),
        body,
    })
}

/// Writes one `#[tokio::test]` per ADS variant and store backend for each scenario
/// `async fn name(Variant, Backend)`, as `name::sotw_sqlite`, `name::delta_postgres`, ….
#[macro_export]
macro_rules! each_variant_and_backend {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use $crate::mesh::{Backend, Variant};

            #[tokio::test(flavor = "multi_thread")]
            async fn sotw_sqlite() {
                super::$scenario(Variant::Sotw, Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn delta_sqlite() {
                super::$scenario(Variant::Delta, Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn sotw_postgres() {
                super::$scenario(Variant::Sotw, Backend::Postgres).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn delta_postgres() {
                super::$scenario(Variant::Delta, Backend::Postgres).await;
            }
        }
    )*};
}
