//! The server under test: the real `xds-server` binary started as a child process (embedded
//! SQLite in a temporary directory, free ports on 127.0.0.1), or one already running.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::{admin::Admin, procfs};

/// How long the server may take to print its addresses and become ready.
const STARTUP: Duration = Duration::from_secs(30);

/// What went wrong starting the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no xds-server binary at {0}: build it (cargo build --release -p xds-server) or pass --server-bin"
    )]
    Missing(PathBuf),
    #[error("could not start {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not create a temporary directory for the server's database: {0}")]
    TempDir(std::io::Error),
    #[error(
        "xds-server did not print its listening addresses within {0:?} (it exited or logs differently; run it by hand to see why)"
    )]
    NoAddresses(Duration),
    #[error(transparent)]
    Admin(#[from] crate::admin::Error),
}

/// A server to load: where it listens, and its process when it can be measured.
#[derive(Debug)]
pub struct Server {
    pub xds_addr: SocketAddr,
    pub admin: Admin,
    /// The process id, for RSS and CPU readings (`None`: attached without `--server-pid`).
    pub pid: Option<u32>,
    /// Kept so the child is killed on drop, and its database removed after it.
    child: Option<(Child, tempfile::TempDir)>,
}

/// How to get a server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The xds-server binary to start (default: `xds-server` beside this binary).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Use an already-running server's xDS address instead of starting one (needs
    /// --admin-addr).
    #[arg(long, requires = "admin_addr")]
    pub xds_addr: Option<SocketAddr>,
    /// The already-running server's admin API.
    #[arg(long, requires = "xds_addr")]
    pub admin_addr: Option<SocketAddr>,
    /// The already-running server's process id, to read its memory and CPU time.
    #[arg(long, requires = "xds_addr")]
    pub server_pid: Option<u32>,
    /// A file holding the admin API bearer token (an attached server with auth).
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// `RUST_LOG` for a started server (`info` logs one line per stream connect/disconnect,
    /// as operators run it).
    #[arg(long, default_value = "info")]
    pub server_log: String,
}

impl Server {
    /// Starts or attaches, as `args` say, and waits until the admin API is ready.
    pub async fn get(args: &ServerArgs) -> Result<Server, Error> {
        let token = match &args.admin_token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|source| Error::Spawn {
                        path: p.clone(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let server = match (args.xds_addr, args.admin_addr) {
            (Some(xds_addr), Some(admin_addr)) => Server {
                xds_addr,
                admin: Admin::new(admin_addr, token),
                pid: args.server_pid,
                child: None,
            },
            _ => {
                let bin = match &args.server_bin {
                    Some(p) => p.clone(),
                    None => default_bin(),
                };
                start(&bin, &args.server_log, token).await?
            }
        };
        server.admin.wait_ready(STARTUP).await?;
        Ok(server)
    }

    pub fn rss_kb(&self) -> Option<u64> {
        self.pid.and_then(procfs::rss_kb)
    }

    pub fn cpu_time(&self) -> Option<Duration> {
        self.pid.and_then(procfs::cpu_time)
    }

    /// Stops a started server (an attached one is left running).
    pub async fn stop(mut self) {
        if let Some((mut child, _dir)) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// `xds-server` in the directory of this executable (both live in `target/release`).
fn default_bin() -> PathBuf {
    let me = std::env::current_exe().unwrap_or_default();
    me.parent().unwrap_or(Path::new(".")).join("xds-server")
}

async fn start(bin: &Path, log: &str, token: Option<String>) -> Result<Server, Error> {
    if !bin.is_file() {
        return Err(Error::Missing(bin.to_path_buf()));
    }
    let dir = tempfile::tempdir().map_err(Error::TempDir)?;
    let mut child = Command::new(bin)
        .args(["--xds-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .arg("--sqlite-file")
        .arg(dir.path().join("mesh.db"))
        .args(["--log-format", "json"])
        .env("RUST_LOG", log)
        .env_remove("DATABASE_URL")
        .env_remove("XDS_SERVER_ADMIN_TOKEN_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn {
            path: bin.to_path_buf(),
            source,
        })?;
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let (mut xds, mut admin) = (None, None);
    let found = tokio::time::timeout(STARTUP, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let fields = &v["fields"];
            if let Some(a) = fields["xds_addr"].as_str().and_then(|a| a.parse().ok()) {
                xds = Some(a);
            }
            let message = fields["message"].as_str().unwrap_or_default();
            if message.starts_with("admin API listening")
                && let Some(a) = fields["addr"].as_str().and_then(|a| a.parse().ok())
            {
                admin = Some(a);
            }
            if xds.is_some() && admin.is_some() {
                return true;
            }
        }
        false
    })
    .await;
    let (Ok(true), Some(xds_addr), Some(admin_addr)) = (found, xds, admin) else {
        return Err(Error::NoAddresses(STARTUP));
    };
    // Keep reading its log, so a full pipe never blocks the server.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server {
        xds_addr,
        admin: Admin::new(admin_addr, token),
        pid,
        child: Some((child, dir)),
    })
}
