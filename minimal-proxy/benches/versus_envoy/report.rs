//! The figures of one run and their Markdown tables: one row per target (the upstream alone,
//! Envoy, minimal-proxy) per step, then the comparison with the aims.

use std::fmt::Write;

use super::{Options, load::Outcome};

/// Column indexes: the floor, then the proxies in the order they were started.
const FLOOR: usize = 0;
const ENVOY: usize = 1;
const MINIMAL: usize = 2;

/// One run against one target, or why there is none.
pub type Cell = Result<Measured, String>;

pub struct Measured {
    pub outcome: Outcome,
    /// CPU time (all threads) the measured process used during the run, in user space and in
    /// the kernel (where, on loopback, a sender also pays for its peer's receive path).
    pub cpu_user: f64,
    pub cpu_system: f64,
    /// Wall time of the run, seconds.
    pub wall: f64,
    /// Largest resident size sampled during the run.
    pub rss_max_kib: u64,
    /// How busy each CPU was during the run (0.0–1.0), whoever used it.
    pub cores_busy: Vec<f64>,
}

impl Measured {
    /// CPU time over wall time: 1.0 is one core busy all along.
    pub fn cpu_share(&self) -> f64 {
        (self.cpu_user + self.cpu_system) / self.wall
    }

    fn cpu_per_1k(&self) -> Option<f64> {
        (self.outcome.requests > 0)
            .then(|| (self.cpu_user + self.cpu_system) / self.outcome.requests as f64 * 1000.0)
    }

    /// `CPU 0 % / CPU 1 %`.
    fn cores_busy_text(&self) -> String {
        let busy: Vec<String> = self
            .cores_busy
            .iter()
            .map(|b| format!("{:.0} %", b * 100.0))
            .collect();
        busy.join(" / ")
    }

    /// `total (user + system)` CPU seconds per 1,000 requests.
    fn cpu_per_1k_split(&self) -> String {
        let per_1k = |s: f64| s / self.outcome.requests as f64 * 1000.0;
        match self.cpu_per_1k() {
            Some(total) => format!(
                "{total:.3} ({:.3} + {:.3})",
                per_1k(self.cpu_user),
                per_1k(self.cpu_system)
            ),
            None => String::new(),
        }
    }
}

#[derive(Default)]
pub struct Report {
    duration: u64,
    rounds: usize,
    command: String,
    machine: Vec<(String, String)>,
    pub names: Vec<&'static str>,
    pub rss_idle: Vec<Option<u64>>,
    /// Per connection count, one cell per target.
    pub closed: Vec<(usize, Vec<Cell>)>,
    /// Per share of the slower peak: the rate offered and one cell per target.
    pub open: Vec<(u64, u64, Vec<Cell>)>,
    pub h2: Vec<(&'static str, Vec<Cell>)>,
    pub rss_after: Vec<Option<u64>>,
    pub large_count: usize,
    pub rss_large: Vec<Option<u64>>,
    /// Targets that failed, and why.
    pub failures: Vec<(&'static str, String)>,
}

impl Report {
    pub fn new(options: &Options, args: &[String], machine: Vec<(String, String)>) -> Report {
        let mut command = "cargo bench -p minimal-proxy --bench versus_envoy".to_string();
        if !args.is_empty() {
            command += " -- ";
            command += &args.join(" ");
        }
        Report {
            duration: options.duration,
            rounds: options.rounds,
            command,
            machine,
            ..Report::default()
        }
    }

    /// Adds the load average at the end of the run to the machine's description.
    pub fn finish_machine(&mut self) {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        self.machine
            .push(("load average at end".into(), load.join(" ")));
    }

    /// The best closed-loop req/s of target `i`.
    pub fn peak(&self, i: usize) -> Option<f64> {
        self.closed
            .iter()
            .filter_map(|(_, row)| row.get(i)?.as_ref().ok())
            .map(|m| m.outcome.rps)
            .reduce(f64::max)
    }

    /// The largest resident size sampled during the closed-loop runs of target `i`.
    fn rss_peak(&self, i: usize) -> Option<u64> {
        self.closed
            .iter()
            .filter_map(|(_, row)| row.get(i)?.as_ref().ok())
            .map(|m| m.rss_max_kib)
            .max()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        self.render_closed(&mut out);
        self.render_open(&mut out);
        self.render_h2(&mut out);
        self.render_memory(&mut out);
        self.render_aims(&mut out);
        if !self.failures.is_empty() {
            let _ = writeln!(out, "\nFailures:");
            for (name, why) in &self.failures {
                let _ = writeln!(out, "- {name}: {why}");
            }
        }
        out
    }

    fn render_header(&self, out: &mut String) {
        let _ = writeln!(out, "\n## minimal-proxy vs Envoy, one worker each\n");
        let _ = writeln!(out, "```sh\n{}\n```\n", self.command);
        let machine: Vec<String> = self
            .machine
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(out, "{}.\n", machine.join("; "));
        let _ = writeln!(
            out,
            "Each measured run lasts {} s; each step runs {} rounds, the targets in turn, and \
             the tables show each target's median run (by req/s; in the open loop by p99), \
             with the errors of all its rounds and the largest RSS seen. Proxies (and nothing \
             else of the bench) on CPU 1; load tools, upstream and xds-server on CPU 0. CPU \
             and memory are of the whole process; for the floor, of the upstream. \"CPU 0 / 1 \
             busy\" is how busy each core was during the run, whoever used it: other work on \
             the machine shows there.",
            self.duration, self.rounds
        );
    }

    fn render_closed(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n### Closed loop: HTTP/1.1 keep-alive (wrk), requests/s\n\n\
             p50/p99 here are wrk's (closed loop: not corrected for coordinated omission).\n\n\
             | connections | target | req/s | vs Envoy | p50 | p99 | CPU used | CPU s / 1k req (user + sys) | CPU 0 / 1 busy | RSS max | errors |\n\
             |---|---|---|---|---|---|---|---|---|---|---|"
        );
        for (connections, row) in &self.closed {
            for (i, cell) in row.iter().enumerate() {
                let cols = match cell {
                    Ok(m) => [
                        format!("{:.0}", m.outcome.rps),
                        self.vs_envoy(row, i),
                        ms(m.outcome.p50),
                        ms(m.outcome.p99),
                        format!("{:.0} %", m.cpu_share() * 100.0),
                        m.cpu_per_1k_split(),
                        m.cores_busy_text(),
                        mib(Some(m.rss_max_kib)),
                        m.outcome.errors.to_string(),
                    ]
                    .join(" | "),
                    Err(_) => failed(9),
                };
                let _ = writeln!(out, "| {connections} | {} | {cols} |", self.names[i]);
            }
        }
    }

    fn render_open(&self, out: &mut String) {
        if self.open.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n### Open loop: HTTP/1.1 at a fixed rate (oha -q, --latency-correction, 64 connections)\n\n\
             Rates are shares of the slower proxy's closed-loop peak; \"added\" is the proxy's \
             percentile minus the floor's at the same rate.\n\n\
             | offered req/s | target | achieved req/s | p50 | p99 | p99.9 | added p50 | added p99 | added p99.9 | CPU s / 1k req (user + sys) | errors |\n\
             |---|---|---|---|---|---|---|---|---|---|---|"
        );
        for (share, rate, row) in &self.open {
            let floor = row[FLOOR].as_ref().ok().map(|m| &m.outcome);
            for (i, cell) in row.iter().enumerate() {
                let cols = match cell {
                    Ok(m) => {
                        let o = &m.outcome;
                        let added = |p: fn(&Outcome) -> Option<f64>| match (i, floor) {
                            (FLOOR, _) | (_, None) => "".to_string(),
                            (_, Some(f)) => ms(p(o).zip(p(f)).map(|(a, b)| a - b)),
                        };
                        [
                            format!("{:.0}", o.rps),
                            ms(o.p50),
                            ms(o.p99),
                            ms(o.p999),
                            added(|o| o.p50),
                            added(|o| o.p99),
                            added(|o| o.p999),
                            m.cpu_per_1k_split(),
                            o.errors.to_string(),
                        ]
                        .join(" | ")
                    }
                    Err(_) => failed(9),
                };
                let _ = writeln!(out, "| {rate} ({share} %) | {} | {cols} |", self.names[i]);
            }
        }
    }

    fn render_h2(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n### HTTP/2 and gRPC unary (h2load, 16 connections × 16 streams, h2c)\n\n\
             | protocol | target | req/s | vs Envoy | mean latency | CPU used | CPU s / 1k req (user + sys) | RSS max | errors |\n\
             |---|---|---|---|---|---|---|---|---|"
        );
        for (protocol, row) in &self.h2 {
            for (i, cell) in row.iter().enumerate() {
                let cols = match cell {
                    Ok(m) => [
                        format!("{:.0}", m.outcome.rps),
                        self.vs_envoy(row, i),
                        ms(m.outcome.mean),
                        format!("{:.0} %", m.cpu_share() * 100.0),
                        m.cpu_per_1k_split(),
                        mib(Some(m.rss_max_kib)),
                        m.outcome.errors.to_string(),
                    ]
                    .join(" | "),
                    Err(_) => failed(7),
                };
                let _ = writeln!(out, "| {protocol} | {} | {cols} |", self.names[i]);
            }
        }
    }

    fn render_memory(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n### Resident memory (VmRSS)\n\n\
             | target | idle | at peak (max in closed loop) | 5 s after the load | with {n} more clusters and {n} more routes |\n\
             |---|---|---|---|---|",
            n = self.large_count
        );
        for (i, name) in self.names.iter().enumerate() {
            let large = if i == FLOOR {
                "".to_string()
            } else {
                mib(self.rss_large.get(i).copied().flatten())
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {large} |",
                mib(self.rss_idle.get(i).copied().flatten()),
                mib(self.rss_peak(i)),
                mib(self.rss_after.get(i).copied().flatten()),
            );
        }
    }

    fn render_aims(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n### Against the aims (minimal-proxy ÷ Envoy)\n\n\
             | measure | Envoy | minimal-proxy | ratio | aim | met | orion, measured the same way |\n\
             |---|---|---|---|---|---|---|"
        );
        let mut row = |what: &str, e: Option<f64>, m: Option<f64>, unit: Unit, aim: Aim| {
            let ratio = e.zip(m).map(|(e, m)| m / e);
            let show = |v: Option<f64>| v.map(|v| unit.show(v)).unwrap_or_else(|| "—".into());
            let (aim_text, met, orion) = match aim {
                Aim::AtLeast(a, orion) => (format!("≥ {a}"), ratio.map(|r| r >= a), orion),
                Aim::AtMost(a, orion) => (format!("≤ {a}"), ratio.map(|r| r <= a), orion),
                Aim::Below(a, orion) => (format!("< {a}"), ratio.map(|r| r < a), orion),
                Aim::None => (String::new(), None, ""),
            };
            let met = match met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let ratio = ratio
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "—".into());
            let _ = writeln!(
                out,
                "| {what} | {} | {} | {ratio} | {aim_text} | {met} | {orion} |",
                show(e),
                show(m)
            );
        };
        row(
            "peak req/s (best closed-loop row)",
            self.peak(ENVOY),
            self.peak(MINIMAL),
            Unit::Rps,
            Aim::AtLeast(2.0, "≈ 1.9"),
        );
        for (share, rate, cells) in &self.open {
            let p99 = |i: usize| cells.get(i)?.as_ref().ok()?.outcome.p99;
            row(
                &format!("p99 at {rate} req/s ({share} %)"),
                p99(ENVOY),
                p99(MINIMAL),
                Unit::Seconds,
                Aim::AtMost(0.5, "0.35–0.46"),
            );
        }
        for (share, rate, cells) in &self.open {
            let cpu = |i: usize| cells.get(i)?.as_ref().ok()?.cpu_per_1k();
            row(
                &format!("CPU s per 1k req at {rate} req/s ({share} %)"),
                cpu(ENVOY),
                cpu(MINIMAL),
                Unit::CpuSeconds,
                Aim::None,
            );
        }
        for (protocol, cells) in &self.h2 {
            let rps = |i: usize| Some(cells.get(i)?.as_ref().ok()?.outcome.rps);
            row(
                &format!("{protocol} req/s"),
                rps(ENVOY),
                rps(MINIMAL),
                Unit::Rps,
                Aim::None,
            );
        }
        let kib = |v: &[Option<u64>], i: usize| v.get(i).copied().flatten().map(|k| k as f64);
        let peak = |i| self.rss_peak(i).map(|k| k as f64);
        let memory = [
            (
                "RSS idle",
                kib(&self.rss_idle, ENVOY),
                kib(&self.rss_idle, MINIMAL),
            ),
            ("RSS at peak", peak(ENVOY), peak(MINIMAL)),
            (
                "RSS after the load",
                kib(&self.rss_after, ENVOY),
                kib(&self.rss_after, MINIMAL),
            ),
            (
                &format!("RSS with {n} clusters + {n} routes", n = self.large_count),
                kib(&self.rss_large, ENVOY),
                kib(&self.rss_large, MINIMAL),
            ),
        ];
        for (what, e, m) in memory {
            row(what, e, m, Unit::KiB, Aim::Below(0.25, "≈ 0.9"));
        }
    }

    /// `req/s ÷ Envoy's req/s` in the same row.
    fn vs_envoy(&self, row: &[Cell], i: usize) -> String {
        match (row.get(ENVOY), row.get(i)) {
            (Some(Ok(e)), Some(Ok(m))) if e.outcome.rps > 0.0 => {
                format!("{:.2}×", m.outcome.rps / e.outcome.rps)
            }
            _ => "".into(),
        }
    }
}

/// What minimal-proxy ÷ Envoy should be, and what orion reached measured the same way.
enum Aim {
    AtLeast(f64, &'static str),
    AtMost(f64, &'static str),
    Below(f64, &'static str),
    None,
}

#[derive(Clone, Copy)]
enum Unit {
    Rps,
    Seconds,
    CpuSeconds,
    KiB,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::Rps => format!("{v:.0} req/s"),
            Unit::Seconds => format!("{:.3} ms", v * 1e3),
            Unit::CpuSeconds => format!("{v:.3} s"),
            Unit::KiB => format!("{:.1} MiB", v / 1024.0),
        }
    }
}

fn failed(columns: usize) -> String {
    let mut cols = vec!["—"; columns];
    cols[0] = "failed (below)";
    cols.join(" | ")
}

fn ms(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) => format!("{:.3} ms", s * 1e3),
        None => "".into(),
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "—".into())
}
