//! The mesh both proxies are given, written through xds-server's public REST API only (the
//! bench does not link xds-server): the upstream as three services (HTTP/1.1, HTTP/2, gRPC)
//! with circuit breakers raised, one route sending each path prefix to one of them, a listener
//! per proxy selected by its node id; and, later, 1,000 more services and routes.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};

/// Thresholds high enough that no circuit breaker ever trips in a run.
const CIRCUIT_BREAKER: u32 = 1_000_000;

/// Path prefixes of the route, one per service.
pub const H2_PREFIX: &str = "/h2/";

/// The xDS types a proxy must have `SYNCED` before it is measured.
const TYPES: usize = 4;

/// A small blocking client for xds-server's REST API and for probes through the proxies.
pub struct Rest {
    base: String,
    runtime: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
    /// HTTP/2 only (h2c prior knowledge), for the gRPC probe.
    h2: Client<HttpConnector, Full<Bytes>>,
}

impl Rest {
    pub fn new(admin_port: u16) -> anyhow::Result<Rest> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = Client::builder(TokioExecutor::new()).build_http();
        let h2 = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        Ok(Rest {
            base: format!("http://127.0.0.1:{admin_port}"),
            runtime,
            client,
            h2,
        })
    }

    /// One request to any URL: its status and body (10 s at most).
    pub fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let (status, bytes, _) = self.send(&self.client, request)?;
        Ok((status, bytes))
    }

    fn send(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(StatusCode, Bytes, Option<http::HeaderMap>)> {
        let url = request.uri().to_string();
        self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                let response = client.request(request).await?;
                let status = response.status();
                let collected = response.into_body().collect().await?;
                let trailers = collected.trailers().cloned();
                anyhow::Ok((status, collected.to_bytes(), trailers))
            })
            .await
            .with_context(|| format!("{url} did not answer within 10 s"))?
        })
    }

    /// `GET http://127.0.0.1:<port><path>` (with `host` as the Host header when given) must
    /// answer 200 with the upstream's body.
    pub fn probe(&self, port: u16, path: &str, host: Option<&str>) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{port}{path}");
        let mut request = Request::get(&url);
        if let Some(host) = host {
            request = request.header(http::header::HOST, host);
        }
        let (status, body, _) = self.send(&self.client, request.body(Full::default())?)?;
        if status != StatusCode::OK || body != super::upstream::BODY {
            bail!(
                "GET {url} (host {host:?}) answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }

    /// A gRPC unary call over h2c to `url` must end with `grpc-status: 0`.
    pub fn grpc_probe(&self, url: &str) -> anyhow::Result<()> {
        let request = Request::post(url)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from_static(super::upstream::GRPC_REQUEST)))?;
        let (status, body, trailers) = self.send(&self.h2, request)?;
        let grpc_status = trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        if status != StatusCode::OK || grpc_status != "0" {
            bail!(
                "gRPC call to {url} answered {status}, grpc-status {grpc_status}, {} bytes",
                body.len()
            );
        }
        Ok(())
    }

    /// `PUT /api/v1/<path>`; any status but 200 or 201 is an error carrying the server's.
    pub fn put(&self, path: &str, body: Value) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/{path}", self.base);
        let (status, bytes) = self.request(Method::PUT, &url, Some(&body))?;
        if !status.is_success() {
            bail!(
                "PUT {url} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(())
    }

    /// `GET <path>` on the admin API: the body as text, or an error with the status.
    pub fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let (status, bytes) = self.request(Method::GET, &url, None)?;
        if !status.is_success() {
            bail!(
                "GET {url} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Waits until xds-server is ready.
    pub fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while self.get_text("/readyz").is_err() {
            if Instant::now() > deadline {
                bail!("xds-server is not ready at {} after {within:?}", self.base);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// A bootstrap for `node_id` with its admin on `admin_port`.
    pub fn bootstrap(&self, node_id: &str, admin_port: u16) -> anyhow::Result<String> {
        self.get_text(&format!(
            "/api/v1/bootstrap?node_id={node_id}&cluster=bench&admin_port={admin_port}"
        ))
    }

    /// Whether every type xds-server sent `node_id` is `SYNCED` (and all four were sent):
    /// `Ok(None)` when so, else what is missing.
    pub fn sync_state(&self, node_id: &str) -> anyhow::Result<Option<String>> {
        let text = match self.get_text(&format!("/api/v1/proxies/{node_id}")) {
            Ok(text) => text,
            Err(_) => return Ok(Some("not connected".into())),
        };
        let status: Value = serde_json::from_str(&text)?;
        let types = status["types"].as_object().cloned().unwrap_or_default();
        let not_synced: Vec<String> = types
            .iter()
            .filter(|(_, t)| t["status"] != "SYNCED")
            .map(|(url, t)| format!("{} {}", short(url), t["status"]))
            .collect();
        if types.len() < TYPES || !not_synced.is_empty() {
            return Ok(Some(format!(
                "{} of {TYPES} types sent; not synced: [{}]",
                types.len(),
                not_synced.join(", ")
            )));
        }
        Ok(None)
    }

    /// Waits until `node_id` has every type `SYNCED`, failing early if `alive` fails.
    pub fn wait_synced(
        &self,
        node_id: &str,
        within: Duration,
        mut alive: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            alive()?;
            match self.sync_state(node_id)? {
                None => return Ok(()),
                Some(state) if Instant::now() > deadline => {
                    bail!("{node_id} is not SYNCED after {within:?}: {state}")
                }
                Some(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

fn short(type_url: &str) -> &str {
    type_url.rsplit('.').next().unwrap_or(type_url)
}

fn service(rest: &Rest, name: &str, protocol: &str, upstream_port: u16) -> anyhow::Result<()> {
    rest.put(
        &format!("services/{name}"),
        json!({
            "protocol": protocol,
            "connect_timeout": "1s",
            "circuit_breaker": {
                "max_connections": CIRCUIT_BREAKER,
                "max_pending_requests": CIRCUIT_BREAKER,
                "max_requests": CIRCUIT_BREAKER,
            },
        }),
    )?;
    rest.put(
        &format!("services/{name}/endpoints"),
        json!({ "endpoints": [{ "address": "127.0.0.1", "port": upstream_port }] }),
    )
}

/// The bench's mesh: services `bench-h1`, `bench-h2`, `bench-grpc` on the upstream; route
/// `bench` (any host; gRPC paths, `/h2/`, then everything else); one listener per
/// `(node_id, port)` on 127.0.0.1 selected by that node id.
pub fn configure(rest: &Rest, upstream_port: u16, proxies: &[(&str, u16)]) -> anyhow::Result<()> {
    service(rest, "bench-h1", "http", upstream_port)?;
    service(rest, "bench-h2", "http2", upstream_port)?;
    service(rest, "bench-grpc", "grpc", upstream_port)?;
    let rule = |prefix: &str, service: &str| {
        json!({ "match": { "path": { "prefix": prefix } },
                "destinations": [{ "service": service, "weight": 1 }] })
    };
    rest.put(
        "routes/bench",
        json!({
            "hosts": ["*"],
            "rules": [
                rule(super::upstream::GRPC_PREFIX, "bench-grpc"),
                rule(H2_PREFIX, "bench-h2"),
                rule("/", "bench-h1"),
            ],
        }),
    )?;
    for (node_id, port) in proxies {
        rest.put(
            &format!("listeners/{node_id}"),
            json!({
                "address": "127.0.0.1", "port": port, "protocol": "http",
                "routes": ["bench"], "selector": { "node_id": node_id },
            }),
        )?;
    }
    Ok(())
}

/// Routes per listener: xds-server allows at most 100.
pub const ROUTES_PER_LISTENER: usize = 100;

/// `count` more services (each its own cluster, on the upstream) and `count` routes (host
/// `r-<i>.bench` → service `c-<i>`), spread over listeners of 100 routes on each proxy:
/// `ports[proxy][k]` is the port of that proxy's `k`-th listener.
pub fn add_large_config(
    rest: &Rest,
    count: usize,
    upstream_port: u16,
    proxies: &[(&str, Vec<u16>)],
) -> anyhow::Result<()> {
    for i in 0..count {
        service(rest, &format!("c-{i:04}"), "http", upstream_port)?;
    }
    for i in 0..count {
        rest.put(
            &format!("routes/r-{i:04}"),
            json!({
                "hosts": [format!("r-{i:04}.bench")],
                "rules": [{ "match": { "path": { "prefix": "/" } },
                            "destinations": [{ "service": format!("c-{i:04}"), "weight": 1 }] }],
            }),
        )?;
    }
    for (node_id, ports) in proxies {
        for (k, port) in ports.iter().enumerate() {
            let routes: Vec<String> = (k * ROUTES_PER_LISTENER..(k + 1) * ROUTES_PER_LISTENER)
                .filter(|i| *i < count)
                .map(|i| format!("r-{i:04}"))
                .collect();
            rest.put(
                &format!("listeners/{node_id}-large-{k}"),
                json!({
                    "address": "127.0.0.1", "port": port, "protocol": "http",
                    "routes": routes, "selector": { "node_id": node_id },
                }),
            )?;
        }
    }
    Ok(())
}
