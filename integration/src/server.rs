//! The real `xds-server` binary as a child process, on ephemeral ports.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// The binary cargo built beside this test executable (`cargo test --workspace` builds it).
pub fn binary() -> PathBuf {
    crate::target_binary("xds-server")
}

/// A running server. Killed on drop; [`Server::stop`] stops it the way an operator would.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`, the admin API.
    pub admin_url: String,
    logs: mpsc::Receiver<String>,
    /// Lines read so far, including those read while waiting for start-up.
    seen: Vec<String>,
}

impl Server {
    /// Starts the binary with `args` (plus an ephemeral admin port, an ephemeral xDS port
    /// unless `args` or `env` choose one, and JSON logs) and waits until it says where it
    /// listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let xds_chosen = args.iter().any(|a| a.starts_with("--xds-addr"))
            || env.iter().any(|(k, _)| *k == "XDS_SERVER_XDS_ADDR");
        let xds_default: &[&str] = if xds_chosen {
            &[]
        } else {
            &["--xds-addr", "127.0.0.1:0"]
        };
        let mut child = Command::new(binary())
            .args(["--admin-addr", "127.0.0.1:0", "--log-format", "json"])
            .args(xds_default)
            .args(args)
            .env_remove("XDS_SERVER_XDS_ADDR")
            .env_remove("DATABASE_URL")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn xds-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match logs.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "xds-server did not report its admin address; logs:\n{}",
                        seen.join("\n")
                    );
                }
            };
            let parsed: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            seen.push(line);
            // The admin API's line (other lines may carry an `addr` too, e.g. warnings).
            let admin_line = parsed["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("admin API listening"));
            if admin_line && let Some(addr) = parsed["fields"]["addr"].as_str() {
                let admin_url = format!("http://{addr}");
                return Server {
                    child,
                    admin_url,
                    logs,
                    seen,
                };
            }
        }
    }

    /// `admin_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_url)
    }

    /// Sends SIGTERM and waits (up to 30 s) for the process to exit; returns its status.
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for xds-server") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "xds-server ignored SIGTERM for 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log line printed so far (JSON), for assertions about what the server says.
    pub fn logs(&mut self) -> &[String] {
        self.seen.extend(self.logs.try_iter());
        &self.seen
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
