//! The load tools, each run pinned to the load CPU and bounded in time, and what is read from
//! their output: wrk (closed loop, HTTP/1.1), oha (open loop at a fixed rate, latency measured
//! from each request's scheduled start, so a stalled proxy cannot hide its queueing) and
//! h2load (HTTP/2 and gRPC).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::Value;

use super::procs::{ended, pinned, started, which};

/// What one run of a load tool measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Requests answered successfully.
    pub requests: u64,
    /// Failed requests: non-2xx answers, socket errors, timeouts, gRPC calls without the
    /// upstream's message.
    pub errors: u64,
    /// Successful requests per second over the tool's measured window.
    pub rps: f64,
    /// Latency percentiles in seconds: p50, p99, p99.9 when the tool gives them.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    /// Mean latency in seconds (h2load gives no percentiles).
    pub mean: Option<f64>,
}

/// Where the load tools are.
pub struct Tools {
    wrk: PathBuf,
    oha: PathBuf,
    h2load: PathBuf,
    /// The CPU the tools are pinned to.
    cpu: usize,
    /// Scratch directory for the gRPC request body.
    dir: PathBuf,
}

impl Tools {
    /// Finds every tool, or says how to install the missing ones.
    pub fn find(cpu: usize, dir: &Path) -> anyhow::Result<Tools> {
        let oha = std::env::var_os("OHA_BIN")
            .map(PathBuf::from)
            .or_else(|| which("oha"));
        let found = (which("wrk"), oha, which("h2load"), which("taskset"));
        match found {
            (Some(wrk), Some(oha), Some(h2load), Some(_)) => Ok(Tools {
                wrk,
                oha,
                h2load,
                cpu,
                dir: dir.to_path_buf(),
            }),
            (wrk, oha, h2load, taskset) => {
                let mut missing = Vec::new();
                if wrk.is_none() {
                    missing.push("wrk (Debian: apt-get install wrk)");
                }
                if oha.is_none() {
                    missing.push(
                        "oha (cargo install oha --locked --root /opt/bench-tools, then put \
                         /opt/bench-tools/bin on PATH or set OHA_BIN)",
                    );
                }
                if h2load.is_none() {
                    missing.push("h2load (Debian: apt-get install nghttp2-client)");
                }
                if taskset.is_none() {
                    missing.push("taskset (Debian: apt-get install util-linux)");
                }
                bail!("missing load tools:\n  {}", missing.join("\n  "))
            }
        }
    }

    /// Closed loop: `connections` keep-alive HTTP/1.1 connections, each sending its next
    /// request when the previous one is answered, for `seconds`.
    pub fn wrk(&self, url: &str, connections: usize, seconds: u64) -> anyhow::Result<Outcome> {
        let mut command = self.pinned(&self.wrk);
        command
            .args(["-t1", "--latency", "--timeout", "5s"])
            .arg(format!("-c{connections}"))
            .arg(format!("-d{seconds}s"))
            .arg(url);
        let out = run(command, seconds)?;
        parse_wrk(&out).with_context(|| format!("unexpected wrk output:\n{out}"))
    }

    /// Open loop: `rate` requests per second in total over `connections` keep-alive
    /// HTTP/1.1 connections for `seconds`, latency counted from when each request was due.
    pub fn oha(
        &self,
        url: &str,
        rate: u64,
        connections: usize,
        seconds: u64,
    ) -> anyhow::Result<Outcome> {
        let mut command = self.pinned(&self.oha);
        command
            .args([
                "--no-tui",
                "--latency-correction",
                "--output-format",
                "json",
            ])
            .args(["-t", "5s"])
            .arg("-q")
            .arg(rate.to_string())
            .arg("-c")
            .arg(connections.to_string())
            .arg("-z")
            .arg(format!("{seconds}s"))
            .arg(url);
        let out = run(command, seconds)?;
        parse_oha(&out).with_context(|| format!("unexpected oha output:\n{out}"))
    }

    /// Closed loop over HTTP/2 (h2c, prior knowledge): `connections` connections with up to
    /// `streams` requests in flight each, for `seconds`. With `grpc = (message, response_len)`,
    /// each request is a gRPC unary call carrying `message`, and a call counts as a success
    /// only if the upstream's `response_len` bytes of response came back.
    pub fn h2load(
        &self,
        url: &str,
        connections: usize,
        streams: usize,
        seconds: u64,
        grpc: Option<(&[u8], usize)>,
    ) -> anyhow::Result<Outcome> {
        let mut command = self.pinned(&self.h2load);
        command
            .args(["-t1", "-T5"])
            .arg(format!("-c{connections}"))
            .arg(format!("-m{streams}"))
            .arg(format!("-D{seconds}"));
        if let Some((message, _)) = grpc {
            let body = self.dir.join("grpc-request.bin");
            std::fs::write(&body, message)?;
            command.arg("-d").arg(&body).args([
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
            ]);
        }
        command.arg(url);
        let out = run(command, seconds)?;
        parse_h2load(&out, grpc.map(|(_, bytes)| bytes))
            .with_context(|| format!("unexpected h2load output:\n{out}"))
    }

    fn pinned(&self, tool: &Path) -> Command {
        pinned(self.cpu, tool)
    }
}

/// Runs a tool for about `seconds`, killing it (by its pid) if it overruns by 30 s; its
/// stdout, or an error with its stderr.
fn run(mut command: Command, seconds: u64) -> anyhow::Result<String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("start the load tool")?;
    // Output is read on threads so a full pipe never blocks the tool.
    let mut stdout = child.stdout.take().context("tool stdout")?;
    let mut stderr = child.stderr.take().context("tool stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    started(child.id());
    let status = wait_bounded(&mut child, seconds);
    ended(child.id());
    let status = status?;
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    if !status.success() {
        bail!("the load tool failed ({status}):\n{err}\n{out}");
    }
    Ok(out)
}

fn wait_bounded(child: &mut Child, seconds: u64) -> anyhow::Result<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(seconds + 30);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the load tool ran 30 s past its duration and was stopped");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `1.23ms`, `456.00us`, `2.00s`, `1.5m` → seconds.
fn duration(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = text.split_at(split);
    let value: f64 = value.parse().ok()?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return None,
    };
    Some(value * scale)
}

fn parse_wrk(out: &str) -> Option<Outcome> {
    let mut outcome = Outcome::default();
    let mut total = None;
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [n, "requests", "in", ..] => total = n.parse::<u64>().ok(),
            ["50%", v] => outcome.p50 = duration(v),
            ["99%", v] => outcome.p99 = duration(v),
            ["Requests/sec:", v] => outcome.rps = v.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => outcome.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect A, read B, write C, timeout D
                for n in rest.iter().skip(1).step_by(2) {
                    outcome.errors += n.trim_end_matches(',').parse::<u64>().ok()?;
                }
            }
            _ => {}
        }
    }
    let total = total?;
    // wrk's req/s counts every answer; count only the good ones.
    let good = total.saturating_sub(outcome.errors);
    outcome.rps *= good as f64 / total.max(1) as f64;
    outcome.requests = good;
    Some(outcome)
}

fn parse_oha(out: &str) -> Option<Outcome> {
    let json: Value = serde_json::from_str(out).ok()?;
    let mut outcome = Outcome::default();
    for (code, n) in json["statusCodeDistribution"].as_object()? {
        let n = n.as_u64()?;
        if code.starts_with('2') {
            outcome.requests += n;
        } else {
            outcome.errors += n;
        }
    }
    if let Some(errors) = json["errorDistribution"].as_object() {
        // Requests still in flight when the duration ends are "aborted due to deadline":
        // not failures.
        outcome.errors += errors
            .iter()
            .filter(|(what, _)| !what.contains("deadline"))
            .filter_map(|(_, n)| n.as_u64())
            .sum::<u64>();
    }
    let total_seconds = json["summary"]["total"].as_f64()?;
    outcome.rps = outcome.requests as f64 / total_seconds;
    let p = &json["latencyPercentiles"];
    outcome.p50 = p["p50"].as_f64();
    outcome.p99 = p["p99"].as_f64();
    outcome.p999 = p["p99.9"].as_f64();
    outcome.mean = json["summary"]["average"].as_f64();
    Some(outcome)
}

fn parse_h2load(out: &str, grpc_response_bytes: Option<usize>) -> Option<Outcome> {
    let mut outcome = Outcome::default();
    let (mut ok_status, mut data_bytes) = (None, None);
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        match words.as_slice() {
            ["finished", "in", _, rps, "req/s", ..] => outcome.rps = rps.parse().ok()?,
            [
                "requests:",
                _total,
                "total",
                _started,
                "started",
                _done,
                "done",
                rest @ ..,
            ] => {
                // … N succeeded, N failed, N errored, N timeout
                let count = |name: &str| -> u64 {
                    rest.windows(2)
                        .find(|w| w[1] == name)
                        .and_then(|w| w[0].parse().ok())
                        .unwrap_or(0)
                };
                outcome.errors += count("errored") + count("timeout");
            }
            ["status", "codes:", a, "2xx", _b, "3xx", c, "4xx", d, "5xx"] => {
                ok_status = a.parse::<u64>().ok();
                outcome.errors += c.parse::<u64>().ok()? + d.parse::<u64>().ok()?;
            }
            ["traffic:", ..] => {
                // traffic: X (n) total, Y (n) headers (space savings P%), Z (n) data
                let pos = words.iter().position(|w| *w == "data")?;
                data_bytes = words[pos - 1]
                    .trim_matches(|c| c == '(' || c == ')')
                    .parse::<u64>()
                    .ok();
            }
            ["time", "for", "request:", _min, _max, mean, ..] => outcome.mean = duration(mean),
            _ => {}
        }
    }
    let ok = ok_status?;
    outcome.requests = ok;
    if let Some(per_call) = grpc_response_bytes {
        // A proxy's own gRPC error is a 200 with a trailers-only answer: no data.
        let answered = data_bytes? / per_call as u64;
        if answered < ok {
            outcome.errors += ok - answered;
            outcome.rps *= answered as f64 / ok.max(1) as f64;
            outcome.requests = answered;
        }
    }
    Some(outcome)
}
