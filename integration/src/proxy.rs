//! The data plane under test as a child process: real Envoy (`ENVOY_BIN`, which
//! `scripts/test.sh` exports) or minimal-proxy (built by cargo beside the tests), started with
//! the same command line and the same bootstrap, and read through the same admin API
//! (`/ready`, `/config_dump`, `/stats?format=json`). Every wait polls a condition until a
//! deadline and, on timeout, panics with the tail of the proxy's log.

use std::{
    fs::File,
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

use crate::net::{POLL, local_client};

/// How many lines of the proxy's log a failure message shows.
const LOG_TAIL: usize = 60;

/// Which data plane a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPlane {
    /// The real Envoy binary.
    Envoy,
    /// This workspace's `minimal-proxy` binary.
    Minimal,
}

impl DataPlane {
    /// As in test names and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DataPlane::Envoy => "envoy",
            DataPlane::Minimal => "minimal-proxy",
        }
    }

    /// The binary, or `None` after announcing the skip (Envoy only: `ENVOY_BIN` unset).
    ///
    /// # Panics
    /// Under `CI=true` without Envoy; whenever the minimal-proxy binary is missing (cargo
    /// builds it with the tests: there is nothing to install, so nothing to skip).
    pub fn binary(self) -> Option<PathBuf> {
        match self {
            DataPlane::Envoy => envoy_bin(),
            DataPlane::Minimal => Some(crate::target_binary("minimal-proxy")),
        }
    }
}

/// The Envoy binary from `ENVOY_BIN`, or `None` after announcing the skip. Panics under
/// `CI=true`, where a missing Envoy is a failure.
fn envoy_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    if bin.is_none() {
        assert!(
            !crate::in_ci(),
            "CI=true but no Envoy: set ENVOY_BIN to the envoy binary (scripts/test.sh does)"
        );
        crate::announce_skip(
            "Envoy case",
            "no ENVOY_BIN; run scripts/test.sh to include it",
        );
    }
    bin
}

/// A running data plane; killed on drop.
pub struct Proxy {
    plane: DataPlane,
    child: Mutex<Child>,
    dir: TempDir,
    admin: OnceLock<String>,
    http: Client,
}

impl Proxy {
    /// Writes `bootstrap` (YAML or JSON) to a temporary file and starts `plane` on it, with
    /// Envoy's command line for both:
    /// `-c <file> --admin-address-path <file> --disable-hot-restart --use-dynamic-base-id
    /// --log-level warn --concurrency 1 --drain-time-s 1`.
    ///
    /// The admin address is read from the file the proxy writes once its admin listener is up,
    /// so any admin port works, including 0.
    ///
    /// # Panics
    /// When [`DataPlane::binary`] has none (call it first to skip instead), or the proxy
    /// cannot be spawned.
    pub fn start(plane: DataPlane, bootstrap: &str) -> Proxy {
        Proxy::start_in(plane, bootstrap, &[])
    }

    /// [`Proxy::start`] with the command run through `prefix` (e.g. `ip netns exec <ns>`,
    /// see `crate::netns`), so the proxy runs somewhere else than the test; empty = directly.
    pub fn start_in(plane: DataPlane, bootstrap: &str, prefix: &[String]) -> Proxy {
        let bin = plane
            .binary()
            .unwrap_or_else(|| panic!("no {} binary: see DataPlane::binary", plane.as_str()));
        let dir = tempfile::tempdir().expect("a temporary directory for the proxy");
        let config = dir.path().join("bootstrap.yaml");
        std::fs::write(&config, bootstrap).expect("write the bootstrap");
        let log = File::create(dir.path().join("proxy.log")).expect("create the proxy log");
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&bin);
                command
            }
            None => Command::new(&bin),
        };
        let child = command
            .arg("-c")
            .arg(&config)
            .arg("--admin-address-path")
            .arg(dir.path().join("admin-address"))
            .args([
                "--disable-hot-restart",
                "--use-dynamic-base-id",
                "--log-level",
                "warn",
                "--concurrency",
                "1",
                "--drain-time-s",
                "1",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        Proxy {
            plane,
            child: Mutex::new(child),
            dir,
            admin: OnceLock::new(),
            http: local_client(),
        }
    }

    pub fn plane(&self) -> DataPlane {
        self.plane
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// True while the process has not exited.
    pub fn is_running(&self) -> bool {
        matches!(self.child.lock().unwrap().try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit by itself; its status, if it did.
    pub async fn wait_exit(&self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Everything the proxy has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let logs = self.logs();
        let lines: Vec<&str> = logs.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("proxy.log")
    }

    /// Panics with the log tail, saying which data plane and whether it is still running.
    pub fn fail(&self, what: &str) -> ! {
        let name = self.plane.as_str();
        let state = match self.child.lock().unwrap().try_wait() {
            Ok(Some(status)) => format!("{name} exited ({status})"),
            _ => format!("{name} is running"),
        };
        panic!(
            "[{name}] {what}; {state}; last lines of its log ({}):\n{}",
            self.log_path().display(),
            self.log_tail()
        );
    }

    /// `http://<admin address>` once the proxy has written it (waits up to 30 s).
    pub async fn admin_url(&self) -> &str {
        if let Some(url) = self.admin.get() {
            return url;
        }
        let path = self.dir.path().join("admin-address");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let written = std::fs::read_to_string(&path).unwrap_or_default();
            let addr = written.trim();
            if !addr.is_empty() {
                let addr = addr.replace("0.0.0.0", "127.0.0.1");
                return self.admin.get_or_init(|| format!("http://{addr}"));
            }
            self.check_alive_before(deadline, "the admin address file was never written");
            tokio::time::sleep(POLL).await;
        }
    }

    /// GET on the admin API: status and body (`None` when the request itself failed).
    pub async fn admin_get(&self, path: &str) -> Option<(StatusCode, String)> {
        let url = format!("{}{path}", self.admin_url().await);
        let resp = self.http.get(url).send().await.ok()?;
        let status = resp.status();
        Some((status, resp.text().await.ok()?))
    }

    /// Polls the admin `GET /ready` until it answers `200 LIVE` (the proxy has its initial
    /// configuration: with xDS, its first clusters and listeners).
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer");
        loop {
            if let Some((status, body)) = self.admin_get("/ready").await {
                if status == StatusCode::OK && body.trim() == "LIVE" {
                    return;
                }
                last = format!("{status} {}", body.trim());
            }
            self.check_alive_before(deadline, &format!("not ready (last: {last})"));
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls `GET /config_dump` until `condition` holds for it; returns that dump.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(dump) = self.config_dump().await
                && condition(&dump)
            {
                return dump;
            }
            self.check_alive_before(deadline, &format!("config_dump never showed {what}"));
            tokio::time::sleep(POLL).await;
        }
    }

    /// `GET /config_dump` as JSON, `None` if the admin API did not answer.
    pub async fn config_dump(&self) -> Option<Value> {
        let (status, body) = self.admin_get("/config_dump").await?;
        (status == StatusCode::OK)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    }

    /// Polls until a TCP connection to `127.0.0.1:port` succeeds (the listener is bound;
    /// whether it serves yet is for the caller's requests to find out).
    pub async fn listener_port_ready(&self, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            self.check_alive_before(deadline, &format!("nothing listens on 127.0.0.1:{port}"));
            tokio::time::sleep(POLL).await;
        }
    }

    /// `GET /stats?format=json`: `{"stats": [{"name": ..., "value": ...}, ...]}`.
    pub async fn stats(&self) -> Value {
        match self.admin_get("/stats?format=json").await {
            Some((StatusCode::OK, body)) => {
                serde_json::from_str(&body).unwrap_or_else(|e| self.fail(&format!("stats: {e}")))
            }
            other => self.fail(&format!("GET /stats?format=json answered {other:?}")),
        }
    }

    /// One counter or gauge from [`Proxy::stats`], by Envoy's name.
    pub async fn stat(&self, name: &str) -> Option<u64> {
        let stats = self.stats().await;
        stats["stats"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["value"].as_u64())
    }

    /// Polls [`Proxy::stat`] until `accept` holds for its value (absent reads as 0).
    pub async fn wait_stat(&self, name: &str, timeout: Duration, accept: impl Fn(u64) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.stat(name).await.unwrap_or(0);
            if accept(value) {
                return;
            }
            self.check_alive_before(deadline, &format!("stat {name} stayed at {value}"));
            tokio::time::sleep(POLL).await;
        }
    }

    /// `name: value` lines of the stats whose names contain one of `parts` and are not zero,
    /// for failure messages.
    pub async fn stats_matching(&self, parts: &[&str]) -> String {
        let stats = self.stats().await;
        let mut lines = Vec::new();
        for s in stats["stats"].as_array().into_iter().flatten() {
            let name = s["name"].as_str().unwrap_or_default();
            let value = &s["value"];
            if parts.iter().any(|p| name.contains(p)) && *value != 0 && !value.is_null() {
                lines.push(format!("{name}: {value}"));
            }
        }
        lines.join("\n")
    }

    /// Kills the process and waits for it.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The bootstrap file the proxy was started with.
    pub fn bootstrap_path(&self) -> PathBuf {
        self.dir.path().join("bootstrap.yaml")
    }

    fn check_alive_before(&self, deadline: Instant, what: &str) {
        if !self.is_running() {
            self.fail(&format!("{what}: the process exited"));
        }
        if Instant::now() > deadline {
            self.fail(&format!("timed out: {what}"));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The config dump's entry of one type (e.g. `"ListenersConfigDump"`), if present.
pub fn dump_section<'a>(dump: &'a Value, type_suffix: &str) -> Option<&'a Value> {
    dump["configs"].as_array()?.iter().find(|c| {
        c["@type"]
            .as_str()
            .is_some_and(|t| t.ends_with(type_suffix))
    })
}

/// Every access log in a config dump: the entries of each `access_log` list, wherever it is
/// (the HTTP connection managers of every listener and filter chain).
pub fn access_logs(dump: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![dump];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("access_log", Value::Array(logs)) => out.extend(logs.iter().cloned()),
                        _ => stack.push(value),
                    }
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}
