//! What meshctl's end-to-end tests share: the real `xds-server` binary on a fresh SQLite file
//! (the integration harness's `Server`), the real `meshctl` binary run in an environment of
//! its own (no config file, no `MESHCTL_*` from the caller), and plain REST reads to check
//! what meshctl did without trusting meshctl.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use integration::{net::POLL, server::Server};
use serde_json::Value;
use tempfile::TempDir;

/// How long a test waits for a condition before failing.
pub const WAIT: Duration = Duration::from_secs(30);

/// The repository's root (for `demo/mesh.yaml`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("meshctl/ sits in the workspace root")
        .to_path_buf()
}

/// A real server on a fresh database, and a directory for the files a test writes.
pub struct Env {
    pub server: Server,
    pub dir: TempDir,
    http: reqwest::Client,
}

impl Env {
    /// The server with these extra flags (e.g. `--admin-token-file`).
    pub fn start_with(args: &[&str]) -> Env {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("mesh.db").display().to_string();
        let mut all = vec!["--sqlite-file", db.as_str()];
        all.extend_from_slice(args);
        let server = Server::start(&all, &[]);
        Env {
            server,
            dir,
            http: integration::net::local_client(),
        }
    }

    pub fn start() -> Env {
        Self::start_with(&[])
    }

    /// `meshctl --server <this server> args…`.
    pub fn meshctl(&self, args: &[&str]) -> Run {
        let mut all = vec!["--server", self.server.admin_url.as_str()];
        all.extend_from_slice(args);
        meshctl(&all, &[], self.dir.path())
    }

    /// The same, with `input` on standard input.
    pub fn meshctl_stdin(&self, args: &[&str], input: &str) -> Run {
        let mut all = vec!["--server", self.server.admin_url.as_str()];
        all.extend_from_slice(args);
        run(command(&all, &[], self.dir.path()), Some(input))
    }

    /// Writes `text` to `name` in the test's directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a test file");
        path.display().to_string()
    }

    /// `GET path` straight from the REST API: `None` on 404.
    pub async fn rest(&self, path: &str) -> Option<Value> {
        let resp = self
            .http
            .get(self.server.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        Some(resp.json().await.expect("JSON"))
    }

    /// `(path, version)` of every object of the demo mesh, read over REST.
    pub async fn demo_versions(&self) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for path in [
            "/api/v1/services/web",
            "/api/v1/services/web/endpoints",
            "/api/v1/routes/web",
            "/api/v1/listeners/ingress",
        ] {
            let object = self
                .rest(path)
                .await
                .unwrap_or_else(|| panic!("{path} is missing"));
            out.push((path.to_string(), object["version"].as_i64().unwrap_or(-1)));
        }
        out
    }

    /// Polls `meshctl args…` until `accept` holds for its output, failing after [`WAIT`].
    pub fn wait_for(&self, args: &[&str], what: &str, accept: impl Fn(&Run) -> bool) -> Run {
        let deadline = Instant::now() + WAIT;
        loop {
            let run = self.meshctl(args);
            if accept(&run) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; last `meshctl {}`:\n{run}",
                args.join(" ")
            );
            std::thread::sleep(POLL);
        }
    }
}

/// What one run of meshctl printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Asserts the exit code, showing everything printed when it differs.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "{self}");
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.code(0)
    }

    /// stdout's lines, for exact comparisons.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs the meshctl binary with only `env` set among meshctl's variables, `HOME` and
/// `XDG_CONFIG_HOME` pointing at `home` (so no config file of the caller's is read), and no
/// HTTP proxy.
pub fn meshctl(args: &[&str], env: &[(&str, &str)], home: &Path) -> Run {
    run(command(args, env, home), None)
}

/// The meshctl command [`meshctl`] runs, for a test that runs it in the background.
pub fn command(args: &[&str], env: &[(&str, &str)], home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshctl"));
    cmd.args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"));
    for var in [
        "MESHCTL_SERVER",
        "MESHCTL_TOKEN_FILE",
        "MESHCTL_CONFIG",
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

fn run(mut cmd: Command, input: Option<&str>) -> Run {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run meshctl");
    let mut stdin = child.stdin.take().expect("piped stdin");
    if let Some(input) = input {
        stdin
            .write_all(input.as_bytes())
            .expect("write meshctl's stdin");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait for meshctl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
