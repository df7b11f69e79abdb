//! The real Envoy binary (`ENVOY_BIN`, which `scripts/test.sh` exports) as a child process,
//! and its admin API. Every wait polls a condition until a deadline and, on timeout, panics
//! with the tail of Envoy's log.

use std::sync::atomic::{AtomicU32, Ordering};
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

/// Pause between two polls of a condition.
pub const POLL: Duration = Duration::from_millis(50);

/// How many lines of Envoy's log a failure message shows.
const LOG_TAIL: usize = 60;

/// The Envoy binary from `ENVOY_BIN`, or `None` after announcing the skip. Panics under
/// `CI=true`, where a missing Envoy is a failure.
pub fn envoy_bin() -> Option<PathBuf> {
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

/// A port that was free a moment ago on 127.0.0.1 (bound, read, released), for addresses
/// that must be known before the process that listens on them starts.
pub fn free_port() -> u16 {
    // Ports handed out here are picked now and bound later by another process (Envoy, the
    // server). Taking them below the kernel's ephemeral range (32768+) means no socket bound
    // to port 0 meanwhile can take them; a per-process start spreads concurrent test runs.
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(97) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN);
}

/// A plain HTTP client for 127.0.0.1: no proxy from the environment, bounded requests.
pub fn local_client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build an HTTP client")
}

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Mutex<Child>,
    dir: TempDir,
    admin: OnceLock<String>,
    http: Client,
}

impl Envoy {
    /// Writes `bootstrap` (YAML or JSON) to a temporary file and starts Envoy on it.
    ///
    /// The admin address is read from the file Envoy writes once its admin listener is up
    /// (`--admin-address-path`), so any admin port works, including 0. Hot restart is off and
    /// the base id is dynamic, so instances never share memory or sockets.
    ///
    /// # Panics
    /// Without `ENVOY_BIN` (call [`envoy_bin`] first to skip instead), or if Envoy cannot start.
    pub fn start(bootstrap: &str) -> Envoy {
        let bin = std::env::var_os("ENVOY_BIN").expect("ENVOY_BIN is not set: see envoy_bin()");
        let dir = tempfile::tempdir().expect("a temporary directory for Envoy");
        let config = dir.path().join("bootstrap.yaml");
        std::fs::write(&config, bootstrap).expect("write the Envoy bootstrap");
        let log = File::create(dir.path().join("envoy.log")).expect("create the Envoy log");
        let child = Command::new(bin)
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
            .expect("spawn envoy");
        Envoy {
            child: Mutex::new(child),
            dir,
            admin: OnceLock::new(),
            http: local_client(),
        }
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// True while the process has not exited.
    pub fn is_running(&self) -> bool {
        matches!(self.child.lock().unwrap().try_wait(), Ok(None))
    }

    /// Everything Envoy has logged so far.
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
        self.dir.path().join("envoy.log")
    }

    /// Panics with the log tail, saying whether Envoy is still running.
    pub fn fail(&self, what: &str) -> ! {
        let state = match self.child.lock().unwrap().try_wait() {
            Ok(Some(status)) => format!("Envoy exited ({status})"),
            _ => "Envoy is running".to_string(),
        };
        panic!(
            "{what}; {state}; last lines of its log ({}):\n{}",
            self.log_path().display(),
            self.log_tail()
        );
    }

    /// `http://<admin address>` once Envoy has written it (waits up to 30 s).
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
            if !self.is_running() {
                self.fail("Envoy exited before its admin listener came up");
            }
            if Instant::now() > deadline {
                self.fail("Envoy did not write its admin address within 30 s");
            }
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

    /// Polls the admin `GET /ready` until it answers `200 LIVE` (Envoy has its initial
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
            self.check_alive_before(deadline, &format!("Envoy not ready (last: {last})"));
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

    /// One counter or gauge from [`Envoy::stats`].
    pub async fn stat(&self, name: &str) -> Option<u64> {
        let stats = self.stats().await;
        stats["stats"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["value"].as_u64())
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

    /// The bootstrap file Envoy was started with.
    pub fn bootstrap_path(&self) -> PathBuf {
        self.dir.path().join("bootstrap.yaml")
    }

    fn check_alive_before(&self, deadline: Instant, what: &str) {
        if !self.is_running() {
            self.fail(&format!("{what}: Envoy exited"));
        }
        if Instant::now() > deadline {
            self.fail(&format!("timed out: {what}"));
        }
    }
}

impl Drop for Envoy {
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
