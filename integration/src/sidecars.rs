//! The sidecar tests' shared stage: the real server on its own SQLite database with extra
//! flags, sidecars bootstrapped for a service (node cluster = service), `api`'s sidecar
//! calling `web`'s, and polling a URL through them until the answer is the one expected.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    control_plane::{Backend, ControlPlane},
    net::free_port,
    proxy::{DataPlane, Proxy},
    upstream::Upstream,
};

/// How long a sidecar test waits for any one condition.
pub const WAIT: Duration = Duration::from_secs(30);

/// One GET: (status, `x-upstream`, body), or why the request failed.
pub type Answer = Result<(u16, String, String), String>;

/// The server on a fresh SQLite database, polled every 100 ms, with `extra` flags (e.g.
/// `--ca builtin`).
pub async fn control_plane(extra: &[&str]) -> ControlPlane {
    ControlPlane::start_with(Backend::Sqlite, extra)
        .await
        .expect("SQLite needs no external server")
}

/// Whether every data plane in `planes` is there (a missing Envoy is announced by the
/// harness).
pub fn available(planes: &[DataPlane]) -> bool {
    planes.iter().all(|p| p.binary().is_some())
}

// === impl ControlPlane ===

// The sidecar side of the REST API: here rather than in `control_plane` because only the
// sidecar tests declare services with an inbound.
impl ControlPlane {
    /// The bootstrap of node `node_id` in node cluster `service` (the sidecar of that
    /// service), with an admin port of its own; `query` adds parameters (`&delta=true`).
    pub async fn sidecar_bootstrap(&self, node_id: &str, service: &str, query: &str) -> String {
        let path = format!(
            "/api/v1/bootstrap?node_id={node_id}&cluster={service}{query}&admin_port={}",
            free_port()
        );
        let r = reqwest::Client::new().get(self.url(&path)).send().await;
        let r = r.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.text().await.unwrap()
    }

    /// `service`'s sidecar (node id `<service>-1`) started on `plane`; `query` as in
    /// [`ControlPlane::sidecar_bootstrap`].
    pub async fn sidecar(&self, plane: DataPlane, service: &str, query: &str) -> Proxy {
        let node_id = format!("{service}-1");
        Proxy::start(
            plane,
            &self.sidecar_bootstrap(&node_id, service, query).await,
        )
    }

    /// The traffic permission `name`.
    pub async fn permit(&self, name: &str, body: Value) {
        self.put(&format!("/api/v1/traffic-permissions/{name}"), body)
            .await;
    }

    /// `web` (`protocol`, `mtls`) on 127.0.0.1:`port` in front of `app`.
    pub async fn web(&self, protocol: &str, mtls: &str, port: u16, app: &Upstream) {
        self.put(
            "/api/v1/services/web",
            json!({ "protocol": protocol, "mtls": mtls, "connect_timeout": "1s",
                    "inbound": { "address": "127.0.0.1", "port": port,
                                 "app_port": app.port() } }),
        )
        .await;
    }

    /// `web` (HTTP, `mtls`) on `web_in` in front of `app`, its inbound its endpoint; `api`
    /// strict in front of `api_app`; `api`'s outbound listener on `outbound` routes
    /// everything to `web`.
    pub async fn api_calls_web(
        &self,
        mtls: &str,
        web_in: u16,
        app: &Upstream,
        api_app: u16,
        outbound: u16,
    ) {
        self.web("http", mtls, web_in, app).await;
        self.put(
            "/api/v1/services/web/endpoints",
            json!({ "endpoints": [ { "address": "127.0.0.1", "port": web_in } ] }),
        )
        .await;
        self.put(
            "/api/v1/services/api",
            json!({ "protocol": "http", "mtls": "strict",
                    "inbound": { "address": "127.0.0.1", "port": free_port(),
                                 "app_port": api_app } }),
        )
        .await;
        self.put(
            "/api/v1/routes/to-web",
            json!({ "hosts": ["*"], "rules": [ { "destinations": [ { "service": "web" } ] } ] }),
        )
        .await;
        self.put(
            "/api/v1/listeners/api-outbound",
            json!({ "address": "127.0.0.1", "port": outbound, "protocol": "http",
                    "routes": ["to-web"], "selector": { "node_cluster": "api" } }),
        )
        .await;
    }
}

// === requests through sidecars ===

/// GET `url` once with `client`.
pub async fn get(client: &reqwest::Client, url: &str) -> Answer {
    let r = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let from = r
        .headers()
        .get("x-upstream")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok((status, from, r.text().await.unwrap_or_default()))
}

/// GETs `url` (5 s a request) every 100 ms until `accept` takes the answer; fails with the
/// last one, naming `what`, after [`WAIT`].
pub async fn wait_get(url: &str, what: &str, accept: impl Fn(&Answer) -> bool) -> Answer {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = get(&client, url).await;
        if accept(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what}: last answer {answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 200 from the upstream named `upstream`.
pub fn ok_from(upstream: &str) -> impl Fn(&Answer) -> bool + '_ {
    move |a| matches!(a, Ok((200, from, _)) if from == upstream)
}

/// Waits until `proxy`'s stat `name` is at least 1; on failure shows its stats matching
/// `topic` (e.g. `ssl`, `rbac`).
pub async fn counted(proxy: &Proxy, name: &str, topic: &str) {
    let deadline = Instant::now() + WAIT;
    while proxy.stat(name).await.unwrap_or(0) < 1 {
        assert!(
            Instant::now() < deadline,
            "{} never counted {name}:\n{}",
            proxy.plane().as_str(),
            proxy.stats_matching(&[topic]).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
