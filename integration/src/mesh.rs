//! The xDS end-to-end stage: the real `xds-server` (on a fixed xDS port, so it can be restarted
//! in place) driven over its REST API, one data plane ([`DataPlane`]: Envoy or minimal-proxy)
//! bootstrapped from `GET /api/v1/bootstrap`, and requests sent through its listener.
//!
//! Scenarios take a [`DataPlane`], a [`Variant`] (State-of-the-World or Delta) and a
//! [`Backend`] (SQLite file or Postgres); the macros of [`crate::conformance`] write one test
//! per combination.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use reqwest::Client;
use serde_json::{Value, json};
use xds_core::TypeUrl;

pub use crate::control_plane::{Backend, ControlPlane};
pub use crate::net::Reply;
pub use crate::proxy::DataPlane;
use crate::{
    net::{self, POLL, free_port, local_client},
    proxy::Proxy,
    upstream::Upstream,
};

/// Which xDS flavour the proxy speaks.
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

/// The server, one proxy for one node id, and a listener port for that proxy.
pub struct Stage {
    pub cp: ControlPlane,
    pub plane: DataPlane,
    pub variant: Variant,
    pub node_id: String,
    /// Where the `ingress` listener (see [`Stage::listener`]) listens, on 127.0.0.1.
    pub listener_port: u16,
    proxy: Option<Proxy>,
    client: Client,
}

impl Stage {
    /// The server on `backend`; `None` (skip announced) without the data plane's binary
    /// (Envoy only) or Postgres.
    pub async fn new(plane: DataPlane, variant: Variant, backend: Backend) -> Option<Stage> {
        Self::new_with(plane, variant, backend, &[]).await
    }

    /// As [`Stage::new`], the server started with more flags (see
    /// [`ControlPlane::start_with`]).
    pub async fn new_with(
        plane: DataPlane,
        variant: Variant,
        backend: Backend,
        extra: &[&str],
    ) -> Option<Stage> {
        plane.binary()?;
        let cp = ControlPlane::start_with(backend, extra).await?;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let node_id = format!(
            "{}-{}-{}",
            plane.as_str(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Some(Stage {
            cp,
            plane,
            variant,
            node_id,
            listener_port: free_port(),
            proxy: None,
            client: local_client(),
        })
    }

    /// An HTTP service with one endpoint per `(upstream, labels)`.
    pub async fn service(&self, name: &str, endpoints: &[(&Upstream, Value)]) {
        let spec = json!({ "protocol": "http", "connect_timeout": "1s" });
        self.service_with(name, spec, endpoints).await;
    }

    /// A service described by `spec` (the REST body), with one endpoint per
    /// `(upstream, labels)`.
    pub async fn service_with(&self, name: &str, spec: Value, endpoints: &[(&Upstream, Value)]) {
        let ports: Vec<(u16, Value)> = endpoints
            .iter()
            .map(|(u, labels)| (u.port(), labels.clone()))
            .collect();
        self.service_on_ports(name, spec, &ports).await;
    }

    /// A service described by `spec`, with one endpoint per `(port on 127.0.0.1, labels)`
    /// (for upstreams other than [`Upstream`]: TCP, gRPC).
    pub async fn service_on_ports(&self, name: &str, spec: Value, endpoints: &[(u16, Value)]) {
        self.cp.put(&format!("/api/v1/services/{name}"), spec).await;
        self.endpoints_on_ports(name, endpoints).await;
    }

    /// Replaces the service's endpoints.
    pub async fn endpoints(&self, name: &str, endpoints: &[(&Upstream, Value)]) {
        let ports: Vec<(u16, Value)> = endpoints
            .iter()
            .map(|(u, labels)| (u.port(), labels.clone()))
            .collect();
        self.endpoints_on_ports(name, &ports).await;
    }

    /// Replaces the service's endpoints, given as ports on 127.0.0.1.
    pub async fn endpoints_on_ports(&self, name: &str, endpoints: &[(u16, Value)]) {
        let list: Vec<Value> = endpoints
            .iter()
            .map(|(port, labels)| json!({ "address": "127.0.0.1", "port": port, "labels": labels }))
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

    /// The bootstrap this stage's proxy gets from the server.
    pub async fn bootstrap(&self) -> String {
        self.cp
            .bootstrap(&self.node_id, self.variant, free_port())
            .await
    }

    /// Starts the proxy from the server's bootstrap and waits until it is LIVE.
    pub async fn start_proxy(&mut self) {
        self.launch_proxy().await;
        self.proxy().wait_ready(Duration::from_secs(30)).await;
    }

    /// Starts the proxy from the server's bootstrap without waiting for anything.
    pub async fn launch_proxy(&mut self) {
        let bootstrap = self.bootstrap().await;
        self.proxy = Some(Proxy::start(self.plane, &bootstrap));
    }

    pub fn proxy(&self) -> &Proxy {
        self.proxy.as_ref().expect("start_proxy first")
    }

    /// `web` on two upstreams, `web-ok` and `web-failing` (which answers every request 503),
    /// routed by `main` behind the `ingress` listener, with the proxy started and answering
    /// from `web-ok`: a service with some failures, for figures that count them.
    pub async fn serve_web_partly_failing(&mut self) -> (Upstream, Upstream) {
        let ok = Upstream::start("web-ok");
        let failing = Upstream::start("web-failing");
        failing.set_failing(true);
        self.service("web", &[(&ok, json!({})), (&failing, json!({}))])
            .await;
        self.route_to("main", "web").await;
        self.listener(&["main"]).await;
        self.start_proxy().await;
        self.wait_reply(
            "a reply from web-ok",
            "/",
            &[],
            Duration::from_secs(30),
            |r| r.from("web-ok"),
        )
        .await;
        (ok, failing)
    }

    /// `service` on `upstream`, routed by `main` behind the `ingress` listener, with the
    /// proxy started, answering from it, and every type SYNCED.
    pub async fn serve(&mut self, service: &str, upstream: &Upstream) {
        let spec = json!({ "protocol": "http", "connect_timeout": "1s" });
        let rules = json!([{ "match": { "path": { "prefix": "/" } },
                             "destinations": [{ "service": service }],
                             "timeout": "5s" }]);
        self.serve_with(service, spec, upstream, rules).await;
    }

    /// `service` (described by `spec`) on `upstream`, routed by `main` with `rules` (which
    /// must send `/` to it) behind the `ingress` listener, with the proxy started, answering
    /// from it, and every type SYNCED.
    pub async fn serve_with(
        &mut self,
        service: &str,
        spec: Value,
        upstream: &Upstream,
        rules: Value,
    ) {
        let wait = Duration::from_secs(30);
        self.service_with(service, spec, &[(upstream, json!({}))])
            .await;
        self.route("main", rules).await;
        self.listener(&["main"]).await;
        self.start_proxy().await;
        let what = format!("a reply from {}", upstream.name());
        self.wait_reply(&what, "/", &[], wait, |r| r.from(upstream.name()))
            .await;
        self.wait_synced(wait).await;
    }

    /// Sends `count` requests; every one must be a `200` from `upstream`.
    pub async fn all_from(&self, upstream: &str, count: usize, what: &str) {
        for i in 0..count {
            let reply = self
                .send(&format!("/{what}/{i}"), &[])
                .await
                .unwrap_or_else(|e| self.proxy().fail(&format!("{what}: request {i}: {e}")));
            if !reply.from(upstream) {
                self.proxy().fail(&format!(
                    "{what}: request {i} should come from {upstream}: {reply:?}"
                ));
            }
        }
    }

    /// One GET through the proxy's listener; `Err` when no HTTP answer came back.
    pub async fn send(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
        net::send(&self.client, self.listener_port, path, headers).await
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
        self.proxy().fail(&format!(
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
                self.proxy()
                    .fail(&format!("proxy status never showed {what}; last: {last:#}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls the read-only `status` block of the mesh object at `path` (e.g.
    /// `/api/v1/routes/main`) until `accept` holds for it; returns it.
    pub async fn wait_status(
        &self,
        path: &str,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        loop {
            let (code, object) = self.cp.get(path).await;
            if code.is_success() {
                if accept(&object["status"]) {
                    return object["status"].clone();
                }
                last = object;
            }
            if Instant::now() > deadline {
                self.proxy()
                    .fail(&format!("GET {path} never showed {what}; last: {last:#}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the proxy status shows all four types SYNCED.
    pub async fn wait_synced(&self, timeout: Duration) -> Value {
        self.wait_proxy("every type SYNCED", timeout, all_synced)
            .await
    }
}

/// True when a proxy status shows CDS, EDS, LDS and RDS all SYNCED.
pub fn all_synced(status: &Value) -> bool {
    TypeUrl::ADS_ORDER
        .iter()
        .all(|t| status["types"][t.as_str()]["status"] == "SYNCED")
}
