//! The REST admin API as the load generator uses it: the mesh every proxy gets (one service
//! with one endpoint, one route, one listener selecting every proxy), the one-PUT change a
//! round makes, and the figures the soak samples (`/metrics`, `/api/v1/proxies`).

use std::{net::SocketAddr, time::Duration};

use serde_json::{Value, json};

/// The name of the service, route and listener the generator creates.
pub const NAME: &str = "xds-load";

/// What went wrong talking to the admin API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: the admin API at {addr} did not answer: {source} (is the server running?)")]
    Request {
        what: String,
        addr: SocketAddr,
        source: reqwest::Error,
    },
    #[error("{what}: the admin API answered {status}: {body}")]
    Status {
        what: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("the admin API at {0} was not ready within {1:?}")]
    NotReady(SocketAddr, Duration),
}

/// Which one-PUT change a round makes; each changes exactly one Envoy resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// The endpoint's weight: the `ClusterLoadAssignment`.
    EndpointWeight,
    /// The service's `connect_timeout`: the `Cluster` (Envoy then re-warms it).
    ServiceTimeout,
    /// The route rule's timeout: the `RouteConfiguration`.
    RouteTimeout,
}

fn service_path() -> String {
    format!("/api/v1/services/{NAME}")
}

fn route_path() -> String {
    format!("/api/v1/routes/{NAME}")
}

fn service(connect_timeout_ms: u32) -> Value {
    json!({ "protocol": "http", "connect_timeout": format!("{connect_timeout_ms}ms") })
}

fn route(timeout_ms: u32) -> Value {
    json!({ "hosts": ["*"], "rules": [{ "destinations": [{ "service": NAME, "weight": 1 }],
        "timeout": format!("{timeout_ms}ms") }] })
}

/// What `/metrics` says about live streams and tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scrape {
    /// Open streams subscribed to CDS (every ADS proxy is), over both variants.
    pub streams: i64,
    /// `xds_server_tokio_alive_tasks`, when the server exports it.
    pub tasks: Option<i64>,
}

/// A client for one server's admin API.
#[derive(Debug, Clone)]
pub struct Admin {
    addr: SocketAddr,
    http: reqwest::Client,
    token: Option<String>,
}

impl Admin {
    pub fn new(addr: SocketAddr, token: Option<String>) -> Self {
        // No idle connections: each one is a task in the server, and the soak compares the
        // server's task count before and after.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()
            .expect("a plain HTTP client builds");
        Self { addr, http, token }
    }

    /// Another client for the same server, with connections of its own.
    pub fn fresh(&self) -> Self {
        Self::new(self.addr, self.token.clone())
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ready = self.http.get(self.url("/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::NotReady(self.addr, within));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates (or replaces) the mesh: service, its endpoint at weight 1, route, listener.
    pub async fn create_mesh(&self) -> Result<(), Error> {
        self.put(&service_path(), service(1000)).await?;
        self.set_weight(1).await?;
        self.put(&route_path(), route(15_000)).await?;
        let listener = json!({ "address": "0.0.0.0", "port": 10000, "protocol": "http",
            "routes": [NAME], "selector": {} });
        self.put(&format!("/api/v1/listeners/{NAME}"), listener)
            .await
    }

    /// Makes change number `n` (from 1) of the given kind with one PUT.
    pub async fn change(&self, change: Change, n: u32) -> Result<(), Error> {
        match change {
            Change::EndpointWeight => self.set_weight(1 + n % 9999).await,
            Change::ServiceTimeout => self.put(&service_path(), service(1000 + n % 9000)).await,
            Change::RouteTimeout => self.put(&route_path(), route(15_000 + n % 9000)).await,
        }
    }

    /// The endpoint's weight: exactly one resource (the `ClusterLoadAssignment`) changes.
    pub async fn set_weight(&self, weight: u32) -> Result<(), Error> {
        let body = json!({ "endpoints": [{ "address": "127.0.0.1", "port": 8081,
            "weight": weight, "health": "healthy" }] });
        self.put(&format!("/api/v1/services/{NAME}/endpoints"), body)
            .await
    }

    /// Live streams and tasks from `/metrics`.
    pub async fn scrape(&self) -> Result<Scrape, Error> {
        let text = self.get_text("/metrics").await?;
        Ok(parse_scrape(&text))
    }

    /// How many proxies `GET /api/v1/proxies` lists.
    pub async fn proxies(&self) -> Result<usize, Error> {
        let text = self.get_text("/api/v1/proxies").await?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(v["items"].as_array().map_or(0, Vec::len))
    }

    async fn put(&self, path: &str, body: Value) -> Result<(), Error> {
        let what = format!("PUT {path}");
        let req = self.auth(self.http.put(self.url(path)).json(&body));
        let resp = req.send().await.map_err(|source| Error::Request {
            what: what.clone(),
            addr: self.addr,
            source,
        })?;
        check(what, resp).await.map(drop)
    }

    async fn get_text(&self, path: &str) -> Result<String, Error> {
        let what = format!("GET {path}");
        let req = self.auth(self.http.get(self.url(path)));
        let resp = req.send().await.map_err(|source| Error::Request {
            what: what.clone(),
            addr: self.addr,
            source,
        })?;
        check(what, resp).await
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn check(what: String, resp: reqwest::Response) -> Result<String, Error> {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(body)
    } else {
        Err(Error::Status { what, status, body })
    }
}

/// Reads the CDS rows of `xds_connected_proxies` and `xds_server_tokio_alive_tasks`.
fn parse_scrape(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if series.starts_with("xds_connected_proxies{") && series.contains(".Cluster\"") {
            scrape.streams += value as i64;
        } else if series == "xds_server_tokio_alive_tasks" {
            scrape.tasks = Some(value as i64);
        }
    }
    scrape
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_sums_cds_streams_over_variants() {
        let text = "# HELP x\n\
            xds_connected_proxies{type_url=\"type.googleapis.com/envoy.config.cluster.v3.Cluster\",variant=\"sotw\"} 3\n\
            xds_connected_proxies{type_url=\"type.googleapis.com/envoy.config.cluster.v3.Cluster\",variant=\"delta\"} 4\n\
            xds_connected_proxies{type_url=\"type.googleapis.com/envoy.config.listener.v3.Listener\",variant=\"delta\"} 9\n\
            xds_server_tokio_alive_tasks 12\n";
        assert_eq!(
            parse_scrape(text),
            Scrape {
                streams: 7,
                tasks: Some(12)
            }
        );
        assert_eq!(parse_scrape("").tasks, None);
    }
}
