//! The load steps. Each step runs `--rounds` times against every target in turn (floor,
//! Envoy, minimal-proxy, floor, Envoy, …), so bursts of other work on the shared machine
//! touch all columns alike; the tables show each target's median run.

use super::{
    Options,
    bench::{Bench, GRPC_PATH, Target, measure, url},
    load::{Outcome, Tools},
    mesh,
    report::{Cell, Measured, Report},
    upstream,
};

const CLOSED_LOOP_CONNECTIONS: [usize; 4] = [1, 16, 64, 256];
/// Open-loop rates, in percent of the slower proxy's closed-loop peak.
const OPEN_LOOP_SHARES: [u64; 3] = [25, 50, 75];
const OPEN_LOOP_CONNECTIONS: usize = 64;
pub const H2_CONNECTIONS: usize = 16;
pub const H2_STREAMS: usize = 16;

/// wrk at 1, 16, 64 and 256 keep-alive connections, each target warmed up at the same count
/// first; the median run by req/s.
pub fn closed_loop(bench: &mut Bench, tools: &Tools, options: &Options, report: &mut Report) {
    for connections in CLOSED_LOOP_CONNECTIONS {
        let run = |seconds| move |port| tools.wrk(&url(port, "/"), connections, seconds);
        let what = format!("closed loop, {connections} connections");
        let row = rounds(bench, options, &what, run, |m| m.outcome.rps);
        report.closed.push((connections, row));
    }
}

/// oha at fixed rates: 25, 50 and 75 % of the slower proxy's closed-loop peak; the median
/// run by p99.
pub fn open_loop(bench: &mut Bench, tools: &Tools, options: &Options, report: &mut Report) {
    let slower = (1..bench.targets.len())
        .filter_map(|i| report.peak(i))
        .reduce(f64::min);
    let Some(slower) = slower else {
        return;
    };
    let options = Options {
        warmup: 0,
        ..*options
    };
    for share in OPEN_LOOP_SHARES {
        let rate = (slower * share as f64 / 100.0).round().max(1.0) as u64;
        let run =
            |seconds| move |port| tools.oha(&url(port, "/"), rate, OPEN_LOOP_CONNECTIONS, seconds);
        let what = format!("open loop, {rate} req/s");
        let row = rounds(bench, &options, &what, run, |m| {
            m.outcome.p99.unwrap_or(f64::MAX)
        });
        report.open.push((share, rate, row));
    }
}

/// h2load over h2c: plain HTTP/2 GETs, then gRPC unary calls; the median run by req/s.
pub fn http2(bench: &mut Bench, tools: &Tools, options: &Options, report: &mut Report) {
    let grpc = (upstream::GRPC_REQUEST, upstream::GRPC_RESPONSE.len());
    for (protocol, path, grpc) in [
        ("HTTP/2", mesh::H2_PREFIX, None),
        ("gRPC", GRPC_PATH, Some(grpc)),
    ] {
        let run = |seconds| {
            move |port| {
                let url = url(port, path);
                tools.h2load(&url, H2_CONNECTIONS, H2_STREAMS, seconds, grpc)
            }
        };
        let row = rounds(bench, options, protocol, run, |m| m.outcome.rps);
        report.h2.push((protocol, row));
    }
}

/// `options.rounds` rounds of `run(duration)` against every target in turn (after one
/// `run(warmup)` each, unmeasured, when `options.warmup` > 0); per target, the run whose
/// `key` is the median, with the errors of all its runs and the largest resident size seen.
fn rounds<R>(
    bench: &mut Bench,
    options: &Options,
    what: &str,
    run: impl Fn(u64) -> R,
    key: fn(&Measured) -> f64,
) -> Vec<Cell>
where
    R: FnOnce(u16) -> anyhow::Result<Outcome>,
{
    let mut runs: Vec<Vec<Cell>> = bench.targets.iter().map(|_| Vec::new()).collect();
    if options.warmup > 0 {
        for target in &mut bench.targets {
            let _ = measure(target, run(options.warmup));
        }
    }
    for round in 1..=options.rounds {
        for (target, runs) in bench.targets.iter_mut().zip(&mut runs) {
            let cell = measure(target, run(options.duration));
            progress(&format!("{what}, round {round}"), target, &cell);
            runs.push(cell);
        }
    }
    runs.into_iter().map(|runs| median(runs, key)).collect()
}

fn median(runs: Vec<Cell>, key: fn(&Measured) -> f64) -> Cell {
    let mut ok = Vec::new();
    let mut last_error = None;
    for run in runs {
        match run {
            Ok(m) => ok.push(m),
            Err(e) => last_error = Some(e),
        }
    }
    if ok.is_empty() {
        return Err(last_error.unwrap_or_else(|| "no run".into()));
    }
    let errors: u64 = ok.iter().map(|m| m.outcome.errors).sum();
    let rss = ok.iter().map(|m| m.rss_max_kib).max().unwrap_or(0);
    ok.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let mut middle = ok.swap_remove(ok.len() / 2);
    middle.outcome.errors = errors;
    middle.rss_max_kib = rss;
    Ok(middle)
}

fn progress(what: &str, target: &Target, cell: &Cell) {
    match cell {
        Ok(m) => eprintln!(
            "{what}: {}: {:.0} req/s, p99 {:.3} ms, {} errors, CPU {:.0} % (CPU 0 {:.0} % busy, CPU 1 {:.0} %)",
            target.name,
            m.outcome.rps,
            m.outcome.p99.unwrap_or(0.0) * 1e3,
            m.outcome.errors,
            m.cpu_share() * 100.0,
            m.cores_busy.first().unwrap_or(&0.0) * 100.0,
            m.cores_busy.get(1).unwrap_or(&0.0) * 100.0,
        ),
        Err(e) => eprintln!(
            "{what}: {}: failed: {}",
            target.name,
            e.lines().next().unwrap_or_default()
        ),
    }
}
