//! The load steps, each run against every target in turn (floor, Envoy, minimal-proxy) before
//! the next step, so slow drifts of the shared machine touch all columns alike.

use super::{
    Options,
    bench::{Bench, GRPC_PATH, Target, measure, url},
    load::Tools,
    mesh,
    report::{Cell, Report},
    upstream,
};

const CLOSED_LOOP_CONNECTIONS: [usize; 4] = [1, 16, 64, 256];
/// Open-loop rates, in percent of the slower proxy's closed-loop peak.
const OPEN_LOOP_SHARES: [u64; 3] = [25, 50, 75];
const OPEN_LOOP_CONNECTIONS: usize = 64;
pub const H2_CONNECTIONS: usize = 16;
pub const H2_STREAMS: usize = 16;

/// wrk at 1, 16, 64 and 256 keep-alive connections, after a warm-up at the same count.
pub fn closed_loop(bench: &mut Bench, tools: &Tools, options: &Options, report: &mut Report) {
    for connections in CLOSED_LOOP_CONNECTIONS {
        let mut row = Vec::new();
        for target in &mut bench.targets {
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
}

/// oha at fixed rates: 25, 50 and 75 % of the slower proxy's closed-loop peak.
pub fn open_loop(bench: &mut Bench, tools: &Tools, options: &Options, report: &mut Report) {
    let slower = (1..bench.targets.len())
        .filter_map(|i| report.peak(i))
        .reduce(f64::min);
    let Some(slower) = slower else {
        return;
    };
    for share in OPEN_LOOP_SHARES {
        let rate = (slower * share as f64 / 100.0).round().max(1.0) as u64;
        let mut row = Vec::new();
        for target in &mut bench.targets {
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

/// h2load over h2c: plain HTTP/2 GETs, then gRPC unary calls.
pub fn http2(bench: &mut Bench, tools: &Tools, options: &Options, report: &mut Report) {
    let grpc = (upstream::GRPC_REQUEST, upstream::GRPC_RESPONSE.len());
    for (protocol, path, grpc) in [
        ("HTTP/2", mesh::H2_PREFIX, None),
        ("gRPC", GRPC_PATH, Some(grpc)),
    ] {
        let mut row = Vec::new();
        for target in &mut bench.targets {
            let run = |seconds| {
                move |port| {
                    let url = url(port, path);
                    tools.h2load(&url, H2_CONNECTIONS, H2_STREAMS, seconds, grpc)
                }
            };
            if options.warmup > 0 {
                let _ = measure(target, run(options.warmup));
            }
            let cell = measure(target, run(options.duration));
            progress(protocol, target, &cell);
            row.push(cell);
        }
        report.h2.push((protocol, row));
    }
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
