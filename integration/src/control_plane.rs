//! The real `xds-server` for xDS tests: on a fixed xDS port and its own database, so it can be
//! stopped and started again in place, with helpers for its REST API.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::{
    mesh::Variant,
    net::{free_port, local_client},
    server::Server,
};

/// Where the server stores the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The real server, restartable on the same xDS port and database.
pub struct ControlPlane {
    server: Option<Server>,
    args: Vec<String>,
    pub xds_port: u16,
    http: Client,
    _dir: TempDir,
}

impl ControlPlane {
    /// Starts the server on `backend`; `None` (skip announced) when Postgres is unavailable.
    pub async fn start(backend: Backend) -> Option<ControlPlane> {
        Self::start_with(backend, &[]).await
    }

    /// As [`ControlPlane::start`], with more flags (e.g. `--xds-auth required`: then every
    /// [`ControlPlane::bootstrap`] carries a proxy token of its own).
    pub async fn start_with(backend: Backend, extra: &[&str]) -> Option<ControlPlane> {
        let dir = tempfile::tempdir().expect("a temporary directory for the server");
        let mut store = match backend {
            Backend::Sqlite => vec![
                "--sqlite-file".into(),
                dir.path().join("mesh.db").display().to_string(),
            ],
            Backend::Postgres => {
                let pg = crate::postgres::server()?;
                vec![
                    "--database-url".into(),
                    crate::postgres::fresh_database(&pg).await,
                ]
            }
        };
        store.extend(extra.iter().map(|a| a.to_string()));
        Some(Self::launch(dir, "100ms", store))
    }

    /// Starts the server on an existing database (`postgres://…`), polling it every
    /// `poll_interval` (e.g. `"1h"`: then only Postgres NOTIFY tells it of writes made
    /// elsewhere). Several started on one database are replicas, each on its own ports.
    pub fn start_on(database_url: &str, poll_interval: &str) -> ControlPlane {
        let dir = tempfile::tempdir().expect("a temporary directory for the server");
        let store = vec!["--database-url".into(), database_url.into()];
        Self::launch(dir, poll_interval, store)
    }

    /// Starts the server on a fresh xDS port with these store flags.
    fn launch(dir: tempfile::TempDir, poll_interval: &str, store: Vec<String>) -> ControlPlane {
        let xds_port = free_port();
        let mut args: Vec<String> = vec![
            "--xds-addr".into(),
            format!("127.0.0.1:{xds_port}"),
            "--poll-interval".into(),
            poll_interval.into(),
        ];
        args.extend(store);
        let mut cp = ControlPlane {
            server: None,
            args,
            xds_port,
            http: local_client(),
            _dir: dir,
        };
        cp.start_again();
        cp
    }

    /// Starts the server with the same flags (same xDS port, same database).
    pub fn start_again(&mut self) {
        assert!(self.server.is_none(), "the server is already running");
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let server = Server::start(&args, &[]);
        self.server = Some(server);
    }

    /// Stops the server with SIGTERM and checks it exits cleanly.
    pub fn stop(&mut self) {
        let server = self.server.take().expect("the server is running");
        let status = server.stop();
        assert!(
            status.success(),
            "SIGTERM must stop xds-server cleanly, got {status}"
        );
    }

    pub fn server(&mut self) -> &mut Server {
        self.server.as_mut().expect("the server is running")
    }

    /// The admin API URL for `path`.
    pub fn url(&self, path: &str) -> String {
        self.server
            .as_ref()
            .expect("the server is running")
            .url(path)
    }

    /// `PUT path` with a JSON body; asserts 200 or 201 and returns the stored object.
    pub async fn put(&self, path: &str, body: Value) -> Value {
        let resp = self.http.put(self.url(path)).json(&body).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("PUT {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            status == StatusCode::OK || status == StatusCode::CREATED,
            "PUT {path} answered {status}: {text}\nbody sent: {body}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// `DELETE path`; asserts 204.
    pub async fn delete(&self, path: &str) {
        let resp = self.http.delete(self.url(path)).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("DELETE {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::NO_CONTENT, "DELETE {path}: {text}");
    }

    /// `GET path`: status and JSON body (`Null` when the body is not JSON).
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.http.get(self.url(path)).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An HTTP service `name` with one endpoint on 127.0.0.1:`port`.
    pub async fn service(&self, name: &str, port: u16) {
        self.put(
            &format!("/api/v1/services/{name}"),
            json!({ "protocol": "http", "connect_timeout": "1s" }),
        )
        .await;
        self.put(
            &format!("/api/v1/services/{name}/endpoints"),
            json!({ "endpoints": [{ "address": "127.0.0.1", "port": port }] }),
        )
        .await;
    }

    /// The route `main`, sending everything to `service`; returns the stored route.
    pub async fn route_to(&self, service: &str) -> Value {
        self.put(
            "/api/v1/routes/main",
            json!({ "hosts": ["*"],
                    "rules": [{ "match": { "path": { "prefix": "/" } },
                                "destinations": [{ "service": service }],
                                "timeout": "5s" }] }),
        )
        .await
    }

    /// The value of the unlabelled series `name` in the server's `/metrics` (Prometheus text);
    /// panics when it is missing.
    pub async fn metric(&self, name: &str) -> f64 {
        let resp = self.http.get(self.url("/metrics")).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        let text = resp.text().await.unwrap_or_default();
        let prefix = format!("{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("/metrics has no {name}:\n{text}"))
    }

    /// The bootstrap for one proxy, from `GET /api/v1/bootstrap`.
    pub async fn bootstrap(&self, node_id: &str, variant: Variant, admin_port: u16) -> String {
        let tokens = self
            .args
            .windows(2)
            .any(|a| a == ["--xds-auth", "required"]);
        let path = format!(
            "/api/v1/bootstrap?node_id={node_id}&cluster=mesh-test&delta={}&ads={}&admin_port={admin_port}{}",
            variant.is_delta(),
            variant.is_ads(),
            if tokens { "&token=issue" } else { "" }
        );
        let resp = self.http.get(self.url(&path)).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
        text
    }

    /// `GET /api/v1/proxies/{node_id}`, `None` while that proxy is not connected (404).
    pub async fn proxy(&self, node_id: &str) -> Option<Value> {
        let (status, body) = self.get(&format!("/api/v1/proxies/{node_id}")).await;
        match status {
            StatusCode::OK => Some(body),
            StatusCode::NOT_FOUND => None,
            other => panic!("GET /api/v1/proxies/{node_id} answered {other}: {body}"),
        }
    }
}
