//! Everything running during a bench: the upstream, xds-server and the two proxies, each
//! proxy started on its bootstrap from xds-server and checked to serve before it is measured;
//! one [`Target`] per column of the tables, and [`Bench::measure`] around each load run.

use std::{
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    LARGE_LISTENERS, LOAD_CPU, PROXY_CPU,
    load::Outcome,
    mesh::{self, Rest},
    procs::{self, Proc, free_port, wait_listening},
    report::{Cell, Measured},
    upstream,
};

/// The gRPC method the gRPC row calls (any path under `upstream::GRPC_PREFIX` would do).
pub const GRPC_PATH: &str = "/grpc.health.v1.Health/Check";

/// The binaries the bench starts.
pub struct Binaries {
    pub xds_server: PathBuf,
    pub envoy: PathBuf,
    pub minimal_proxy: PathBuf,
}

/// One column of the tables: the upstream alone (the floor), or a proxy in front of it.
pub struct Target {
    pub name: &'static str,
    /// Where the load goes.
    pub port: u16,
    /// The process measured (the upstream for the floor).
    proc: Option<Proc>,
    /// Why this column has no figures, once it has failed.
    pub failed: Option<String>,
    /// Its xDS node id (proxies only).
    node_id: Option<&'static str>,
}

pub struct Bench {
    dir: PathBuf,
    rest: Rest,
    xds: Proc,
    upstream_port: u16,
    /// The floor first, then Envoy, then minimal-proxy: the order of every table's rows.
    pub targets: Vec<Target>,
}

impl Bench {
    /// Starts the upstream and xds-server, writes the mesh, starts both proxies and waits
    /// until they serve. A proxy that does not start keeps its column, with the error;
    /// without a serving Envoy there is nothing to compare with, so that is an error.
    pub fn start(bins: &Binaries, dir: &Path, envoy_only: bool) -> anyhow::Result<Bench> {
        let upstream_port = free_port()?;
        let mut upstream = Proc::spawn(
            "upstream",
            LOAD_CPU,
            &std::env::current_exe()?,
            [upstream::ARG.to_string(), upstream_port.to_string()],
            dir,
        )?;
        wait_listening(&mut upstream, upstream_port, Duration::from_secs(10))?;
        let (admin_port, xds_port) = (free_port()?, free_port()?);
        let xds = Proc::spawn(
            "xds-server",
            LOAD_CPU,
            &bins.xds_server,
            [
                "--admin-addr".to_string(),
                format!("127.0.0.1:{admin_port}"),
                "--xds-addr".to_string(),
                format!("127.0.0.1:{xds_port}"),
                "--sqlite-file".to_string(),
                dir.join("mesh.db").display().to_string(),
            ],
            dir,
        )?;
        let rest = Rest::new(admin_port)?;
        rest.wait_ready(Duration::from_secs(30))
            .with_context(|| xds.log_tail())?;
        let floor = Target {
            name: "upstream (floor)",
            port: upstream_port,
            proc: Some(upstream),
            failed: None,
            node_id: None,
        };
        let mut bench = Bench {
            dir: dir.to_path_buf(),
            rest,
            xds,
            upstream_port,
            targets: vec![floor],
        };

        let proxies = [
            ("Envoy", "bench-envoy", &bins.envoy),
            ("minimal-proxy", "bench-minimal", &bins.minimal_proxy),
        ];
        let listeners: Vec<(&str, u16)> = proxies
            .iter()
            .map(|(_, node, _)| Ok((*node, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        mesh::configure(&bench.rest, upstream_port, &listeners)?;
        for ((name, node_id, bin), (_, port)) in proxies.into_iter().zip(&listeners) {
            let mut target = Target {
                name,
                port: *port,
                proc: None,
                failed: None,
                node_id: Some(node_id),
            };
            if envoy_only && name != "Envoy" {
                target.failed = Some("skipped (--envoy-only)".into());
            } else {
                match bench.start_proxy(node_id, *port, bin) {
                    Ok(proc) => target.proc = Some(proc),
                    Err(e) => {
                        eprintln!("{name} does not serve: {e:#}");
                        target.failed = Some(format!("{e:#}"));
                    }
                }
            }
            bench.targets.push(target);
        }
        bench.xds.check_running()?;
        if let Some(failed) = &bench.targets[1].failed {
            bail!("Envoy does not serve, so there is nothing to compare with: {failed}");
        }
        Ok(bench)
    }

    /// Writes the bootstrap, starts the proxy pinned to [`PROXY_CPU`] with Envoy's command
    /// line, waits until it is `SYNCED` and serves HTTP/1.1, HTTP/2 and gRPC on `port`.
    fn start_proxy(&self, node_id: &str, port: u16, bin: &Path) -> anyhow::Result<Proc> {
        if !bin.is_file() {
            bail!(
                "no binary at {}: run `cargo build --release -p minimal-proxy`",
                bin.display()
            );
        }
        let bootstrap = self.dir.join(format!("{node_id}.yaml"));
        std::fs::write(&bootstrap, self.rest.bootstrap(node_id, free_port()?)?)?;
        let args = [
            "-c",
            &bootstrap.display().to_string(),
            "--disable-hot-restart",
            "--use-dynamic-base-id",
            "--log-level",
            "warn",
            "--concurrency",
            "1",
        ]
        .map(String::from);
        let mut proc = Proc::spawn(node_id, PROXY_CPU, bin, args, &self.dir)?;
        self.rest
            .wait_synced(node_id, Duration::from_secs(30), || proc.check_running())?;
        wait_listening(&mut proc, port, Duration::from_secs(10))?;
        let served = (|| {
            self.rest.probe(port, "/", None)?;
            self.rest
                .probe(port, &format!("{}probe", mesh::H2_PREFIX), None)?;
            self.rest.grpc_probe(&url(port, GRPC_PATH))
        })();
        served.with_context(|| format!("last lines of its log:\n{}", proc.log_tail()))?;
        Ok(proc)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.targets.iter().map(|t| t.name).collect()
    }

    /// Each target's resident memory now (none for a failed one).
    pub fn rss(&self) -> Vec<Option<u64>> {
        self.targets.iter().map(rss).collect()
    }

    /// Why each failed target failed.
    pub fn failures(&mut self) -> anyhow::Result<Vec<(&'static str, String)>> {
        self.xds.check_running()?;
        Ok(self
            .targets
            .iter()
            .filter_map(|t| Some((t.name, t.failed.clone()?)))
            .collect())
    }

    /// Adds `count` services and routes (10 listeners of 100 routes per proxy at most),
    /// waits until each running proxy serves the last route and is `SYNCED`, lets it settle
    /// and reads its resident memory.
    pub fn large_config(&mut self, count: usize) -> anyhow::Result<Vec<Option<u64>>> {
        let listeners = count
            .div_ceil(mesh::ROUTES_PER_LISTENER)
            .min(LARGE_LISTENERS);
        let count = count.min(listeners * mesh::ROUTES_PER_LISTENER);
        let mut ports = Vec::new();
        for node_id in self.targets.iter().filter_map(|t| t.node_id) {
            let p: Vec<u16> = (0..listeners)
                .map(|_| free_port())
                .collect::<anyhow::Result<_>>()?;
            ports.push((node_id, p));
        }
        let start = Instant::now();
        mesh::add_large_config(&self.rest, count, self.upstream_port, &ports)?;
        eprintln!(
            "large configuration: {count} services, {count} routes, {listeners} listeners per proxy written in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        let last_host = format!("r-{:04}.bench", count - 1);
        for ((node_id, ports), target) in ports.iter().zip(&mut self.targets[1..]) {
            let (Some(proc), None) = (&mut target.proc, &target.failed) else {
                continue;
            };
            let port = *ports.last().context("a listener per proxy")?;
            // Serving the last route of the last listener means the whole configuration is in.
            let deadline = Instant::now() + Duration::from_secs(120);
            let served = loop {
                if let Err(e) = proc.check_running() {
                    break Err(e);
                }
                match self.rest.probe(port, "/", Some(&last_host)) {
                    Ok(()) => break Ok(()),
                    Err(e) if Instant::now() > deadline => break Err(e),
                    Err(_) => thread::sleep(Duration::from_millis(200)),
                }
            };
            let synced = served.and_then(|()| {
                self.rest
                    .wait_synced(node_id, Duration::from_secs(60), || Ok(()))
            });
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
        let mut rss = self.rss();
        rss[0] = None;
        Ok(rss)
    }
}

/// Runs one load against `target`, reading its process's CPU time around it and sampling its
/// resident memory during it. A process that died takes its column out of later runs.
pub fn measure(target: &mut Target, run: impl FnOnce(u16) -> anyhow::Result<Outcome>) -> Cell {
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
        let ticks = procs::cpu_ticks();
        let start = Instant::now();
        let outcome = run(port);
        let cores_busy = procs::cores_busy(&ticks, &procs::cpu_ticks());
        let rss_max_kib = sampler.finish();
        let wall = start.elapsed().as_secs_f64();
        proc.check_running()?;
        let cpu_after = proc.cpu_seconds()?;
        Ok(Measured {
            outcome: outcome?,
            cpu_user: cpu_after.0 - cpu_before.0,
            cpu_system: cpu_after.1 - cpu_before.1,
            wall,
            rss_max_kib,
            cores_busy,
        })
    })();
    result.map_err(|e: anyhow::Error| {
        if proc.check_running().is_err() {
            target.failed = Some(format!("{e:#}"));
        }
        format!("{e:#}")
    })
}

fn rss(target: &Target) -> Option<u64> {
    target.failed.is_none().then_some(())?;
    target.proc.as_ref()?.rss_kib().ok()
}

pub fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}
