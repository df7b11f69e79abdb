//! The test Postgres server: `XDS_TEST_POSTGRES_URL` (or `DATABASE_URL`) names a server where
//! tests may create databases; each test gets its own. A test that must stop and restart
//! Postgres starts a private [`Cluster`] instead (the shared server is never stopped).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use tempfile::TempDir;

use sqlx::{Connection, PgConnection};

/// The server's URL, or `None` after announcing the skip. Panics under `CI=true`.
pub fn server() -> Option<String> {
    let url = std::env::var("XDS_TEST_POSTGRES_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| u.starts_with("postgres"));
    if url.is_none() {
        assert!(
            !crate::in_ci(),
            "CI=true but no Postgres: set XDS_TEST_POSTGRES_URL (scripts/test.sh does)"
        );
        crate::announce_skip(
            "Postgres case",
            "no XDS_TEST_POSTGRES_URL; run scripts/test.sh to include it",
        );
    }
    url
}

/// Creates an empty database on `server` and returns its URL.
pub async fn fresh_database(server: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "xds_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = PgConnection::connect(server)
        .await
        .expect("connect to the test Postgres server");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await
        .expect("drop a leftover test database");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    conn.close().await.ok();
    let (base, _) = server
        .rsplit_once('/')
        .expect("the Postgres URL ends in /database");
    format!("{base}/{name}")
}

// === impl Cluster ===

/// A private PostgreSQL cluster for one test, which it may stop and start: `initdb` in a
/// temporary directory, `pg_ctl` on a free port of 127.0.0.1 (run as the `postgres` user when
/// the test runs as root, as `scripts/test.sh` does). Stopped at once and removed on drop.
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// `runuser -u postgres --` when running as root (initdb and postgres refuse root).
    as_user: Vec<String>,
    _dir: TempDir,
}

impl Cluster {
    /// Creates and starts a cluster; `None` (skip announced) without the server binaries.
    ///
    /// # Panics
    /// Under `CI=true` without the binaries, or when initdb or the first start fails.
    pub fn start() -> Option<Cluster> {
        let Some(bin) = pg_bin() else {
            assert!(
                !crate::in_ci(),
                "CI=true but no PostgreSQL server binaries (initdb, pg_ctl): install Debian's \
                 postgresql package (scripts/test.sh does)"
            );
            crate::announce_skip(
                "private Postgres cluster",
                "no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin",
            );
            return None;
        };
        // Under the system temp dir: the postgres user must reach it (see scripts/test.sh).
        let dir = tempfile::Builder::new()
            .prefix("xds-pg-cluster.")
            .tempdir()
            .expect("a temporary directory for the cluster");
        let data = dir.path().join("pg");
        std::fs::create_dir(&data).expect("create the data directory");
        let as_user = if is_root() {
            ensure_postgres_user();
            run("chmod", &["755", &dir.path().display().to_string()]);
            run("chown", &["-R", "postgres", &data.display().to_string()]);
            ["runuser", "-u", "postgres", "--"]
                .map(String::from)
                .to_vec()
        } else {
            Vec::new()
        };
        let cluster = Cluster {
            bin,
            data,
            port: crate::net::free_port(),
            as_user,
            _dir: dir,
        };
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data_str(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        cluster.start_again();
        Some(cluster)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`: a server where tests may CREATE DATABASE
    /// (pass it to [`fresh_database`]).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.data_str()
        );
        let log = self.log().display().to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data_str(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
                "-o",
                &options,
            ],
        );
    }

    /// `pg_ctl restart -m fast`: sessions are cut (open transactions roll back), the server
    /// checkpoints, stops and starts again; waits until it accepts connections.
    pub fn restart_fast(&self) {
        self.pg_ctl_fast("restart");
    }

    /// `pg_ctl stop -m fast`: waits until the server is down.
    pub fn stop_fast(&self) {
        self.pg_ctl_fast("stop");
    }

    /// `pg_ctl <action> -m fast`, waiting (up to 60 s) for it to finish.
    fn pg_ctl_fast(&self, action: &str) {
        let data = self.data_str();
        let args = ["-D", &data, "-m", "fast", "-w", "-t", "60", action];
        self.pg("pg_ctl", &args);
    }

    /// `tool` from the server binaries, as the postgres user when root.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        match self.as_user.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn data_str(&self) -> String {
        self.data.display().to_string()
    }

    /// Runs one of the server binaries (as the postgres user when root); panics with its output
    /// and the server log when it fails. Its output goes to a file, not a pipe: the server
    /// `pg_ctl` starts inherits it and would hold a pipe open for as long as it runs.
    fn pg(&self, tool: &str, args: &[&str]) {
        let out_path = self.data.with_file_name(format!("{tool}.out"));
        let out = std::fs::File::create(&out_path).expect("create the tool's output file");
        let status = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone the output file handle"))
            .stderr(out)
            .status()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        if !status.success() {
            let output = std::fs::read_to_string(&out_path).unwrap_or_default();
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            panic!("{tool} {args:?} failed ({status}):\n{output}\nserver log:\n{log}");
        }
    }

    /// The server's log, inside the data directory (the postgres user writes it).
    fn log(&self) -> PathBuf {
        self.data.join("server.log")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data_str();
        // Already stopped is fine: a test may end with the server down.
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.as_str(), "-m", "immediate", "stop"])
            .output();
    }
}

/// Where initdb and pg_ctl are: on PATH, else the newest `/usr/lib/postgresql/*/bin`.
fn pg_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("pg_ctl").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The account the server runs as when the test runs as root.
fn ensure_postgres_user() {
    let exists = Command::new("id")
        .arg("postgres")
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        run("useradd", &["--system", "--no-create-home", "postgres"]);
    }
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed: {status}");
}
