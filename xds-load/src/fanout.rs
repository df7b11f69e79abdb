//! `xds-load fanout`: N Envoy-like ADS streams over C connections; once all are synced, K
//! rounds of a one-PUT change, each measured from just before the PUT is sent to each
//! stream's receipt of the response carrying the change. Reports per-stream receipt latency,
//! the time until the last stream, responses per stream per change, the server's memory per
//! stream, and both processes' CPU time.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::{sync::mpsc, task::JoinSet};

mod report;

pub use report::{GeneratorFigures, Report, Round, ServerFigures};

use crate::{
    admin::Change,
    server::{Server, ServerArgs},
    session::Variant,
    stats::{Summary, histogram, millis},
    stream::{self, Event, What},
};

#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// ADS streams to open, each with its own node id (`load-<i>`).
    #[arg(long, default_value_t = 1000)]
    pub streams: u32,
    /// HTTP/2 connections the streams are spread over (default: one per 100 streams; the
    /// server's HTTP/2 stack allows 200 streams per connection by default).
    #[arg(long)]
    pub connections: Option<u32>,
    #[arg(long, value_enum, default_value_t = Variant::Sotw)]
    pub variant: Variant,
    /// What each round changes (one PUT, one Envoy resource).
    #[arg(long, value_enum, default_value_t = Change::EndpointWeight)]
    pub change: Change,
    /// Changes to make and measure, one at a time.
    #[arg(long, default_value_t = 10)]
    pub rounds: u32,
    /// The node cluster every stream announces.
    #[arg(long, default_value = "xds-load")]
    pub node_cluster: String,
    /// Pause before each change, in ms (beyond the server's 50 ms coalescing window, so
    /// every change is an isolated one).
    #[arg(long, default_value_t = 250)]
    pub gap_ms: u64,
    /// A round ends once every stream got the change and then nothing arrived for this
    /// long, in ms (so late extra responses are counted).
    #[arg(long, default_value_t = 500)]
    pub quiet_ms: u64,
    /// Opens streams at this many per second (default: all at once, as after a server
    /// restart). Slower shows what a stream costs without the burst.
    #[arg(long)]
    pub connect_rate: Option<f64>,
    /// How long one round may take before the streams still waiting are counted as missed.
    #[arg(long, default_value_t = 60)]
    pub round_timeout_s: u64,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs the whole measurement against `server`.
pub async fn run(args: &FanoutArgs, server: &Server, threads: usize) -> anyhow::Result<Report> {
    let n = args.streams as usize;
    if n == 0 || args.rounds == 0 {
        bail!("--streams and --rounds must be at least 1");
    }
    let connections = args
        .connections
        .unwrap_or(args.streams.div_ceil(100))
        .max(1);
    server
        .admin
        .create_mesh()
        .await
        .context("creating the mesh")?;
    // Let the server load and translate the mesh before the baseline reading.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut figures = ServerFigures {
        rss_kb_before_streams: server.rss_kb(),
        ..ServerFigures::default()
    };
    let mut channels = Vec::new();
    for _ in 0..connections {
        let ch = stream::connect(server.xds_addr).await;
        channels.push(ch.with_context(|| format!("connecting to {}", server.xds_addr))?);
    }

    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let mut tasks = JoinSet::new();
    let spawn = |tasks: &mut JoinSet<stream::Outcome>, i: u32| {
        let channel = channels[i as usize % channels.len()].clone();
        let node = stream::node(format!("load-{i}"), &args.node_cluster);
        let fut = stream::run(
            channel,
            args.variant,
            node,
            i,
            tx.clone(),
            std::future::pending(),
        );
        tasks.spawn(fut);
    };
    let sync_deadline = Instant::now() + Duration::from_secs(args.round_timeout_s.max(60));
    // One stream first: what the server spends once (for the first proxy) is kept apart from
    // what each further stream costs.
    spawn(&mut tasks, 0);
    wait_synced(&mut rx, &[0], sync_deadline).await?;
    settle(
        &mut rx,
        Duration::from_millis(300),
        Instant::now() + Duration::from_secs(10),
    )
    .await?;
    figures.rss_kb_first_stream = server.rss_kb();

    let (gen_cpu0, srv_cpu0) = (crate::procfs::own_cpu_time(), server.cpu_time());
    let started = Instant::now();
    let mut pace = args
        .connect_rate
        .map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(1.0))));
    for i in 1..args.streams {
        if let Some(p) = pace.as_mut() {
            p.tick().await;
        }
        spawn(&mut tasks, i);
    }
    drop(tx);
    let rest: Vec<u32> = (1..args.streams).collect();
    wait_synced(&mut rx, &rest, sync_deadline).await?;
    let connect = started.elapsed();
    let quiet = Duration::from_millis(args.quiet_ms);
    settle(&mut rx, quiet, Instant::now() + Duration::from_secs(30)).await?;
    figures.rss_kb_connected = server.rss_kb();
    let (gen_cpu1, srv_cpu1) = (crate::procfs::own_cpu_time(), server.cpu_time());

    let rounds_started = Instant::now();
    let mut per_round = Vec::new();
    let mut all_latencies = Vec::new();
    let mut all_counts = Vec::new();
    for r in 0..args.rounds {
        tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
        settle(&mut rx, Duration::ZERO, Instant::now()).await?;
        let (round, latencies, counts) = round(args, server, &mut rx, r + 1).await?;
        all_latencies.extend(latencies);
        all_counts.extend(counts);
        per_round.push(round);
    }
    let wall_rounds = rounds_started.elapsed();
    figures.rss_kb_after_rounds = server.rss_kb();
    let (gen_cpu2, srv_cpu2) = (crate::procfs::own_cpu_time(), server.cpu_time());
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}

    let secs = |a: Option<Duration>, b: Option<Duration>| Some((b? - a?).as_secs_f64());
    figures.cpu_connect_s = secs(srv_cpu0, srv_cpu1);
    figures.cpu_rounds_s = secs(srv_cpu1, srv_cpu2);
    let stream_changes = (n as f64) * f64::from(args.rounds);
    figures.cpu_us_per_stream_change = figures.cpu_rounds_s.map(|c| c * 1e6 / stream_changes);
    if let (Some(a), Some(b)) = (figures.rss_kb_first_stream, figures.rss_kb_connected) {
        figures.kb_per_stream = Some((b as f64 - a as f64) / (n.max(2) - 1) as f64);
    }
    if let (Some(a), Some(b)) = (figures.rss_kb_before_streams, figures.rss_kb_first_stream) {
        figures.one_time_kb = Some(b.saturating_sub(a));
    }
    let put: Vec<Duration> = per_round.iter().map(|r| ms(r.put_ms)).collect();
    let last: Vec<Duration> = per_round.iter().map(|r| ms(r.last_ms)).collect();
    let missed = per_round.iter().map(|r| r.missed).sum();
    Ok(Report {
        variant: args.variant,
        streams: args.streams,
        connections,
        rounds: args.rounds,
        change: args.change,
        connect_ms: millis(connect),
        latency: Summary::of(&all_latencies),
        last_stream: Summary::of(&last),
        put: Summary::of(&put),
        responses_per_change_mean: mean(&all_counts),
        responses_per_change: histogram(&all_counts),
        missed,
        server: figures,
        generator: GeneratorFigures {
            threads,
            cpu_connect_s: (gen_cpu1 - gen_cpu0).as_secs_f64(),
            cpu_rounds_s: (gen_cpu2 - gen_cpu1).as_secs_f64(),
            wall_rounds_s: wall_rounds.as_secs_f64(),
            cpu_total_s: gen_cpu2.as_secs_f64(),
            cpu_us_per_response: (gen_cpu2 - gen_cpu1).as_secs_f64() * 1e6
                / all_counts
                    .iter()
                    .map(|&c| f64::from(c))
                    .sum::<f64>()
                    .max(1.0),
        },
        per_round,
    })
}

/// One change: PUT, then collect until every stream got it and the streams fell quiet.
async fn round(
    args: &FanoutArgs,
    server: &Server,
    rx: &mut mpsc::UnboundedReceiver<Event>,
    number: u32,
) -> anyhow::Result<(Round, Vec<Duration>, Vec<u32>)> {
    let n = args.streams as usize;
    let mut got: Vec<Option<Duration>> = vec![None; n];
    let mut counts = vec![0u32; n];
    let mut left = n;
    let t0 = Instant::now();
    server
        .admin
        .change(args.change, number)
        .await
        .context("the round's PUT")?;
    let put = t0.elapsed();
    let deadline = t0 + Duration::from_secs(args.round_timeout_s);
    let quiet = Duration::from_millis(args.quiet_ms);
    let mut quiet_until: Option<Instant> = None;
    loop {
        let until = quiet_until.map_or(deadline, |q| q.min(deadline));
        let Some(ev) = next(rx, until).await else {
            break; // quiet (or out of time)
        };
        ended(&ev)?;
        let What::Response { changed, .. } = ev.what else {
            continue;
        };
        let i = ev.stream as usize;
        counts[i] += 1;
        if changed && got[i].is_none() {
            got[i] = Some(ev.at.saturating_duration_since(t0));
            left -= 1;
        }
        if left == 0 {
            quiet_until = Some(Instant::now() + quiet);
        }
    }
    let latencies: Vec<Duration> = got.iter().flatten().copied().collect();
    let summary = Summary::of(&latencies);
    let round = Round {
        n: number,
        put_ms: millis(put),
        last_ms: summary.max_ms,
        latency: summary,
        responses_mean: mean(&counts),
        missed: left,
    };
    Ok((round, latencies, counts))
}

/// Waits until every stream in `which` holds its first full configuration.
async fn wait_synced(
    rx: &mut mpsc::UnboundedReceiver<Event>,
    which: &[u32],
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut waiting: std::collections::HashSet<u32> = which.iter().copied().collect();
    while !waiting.is_empty() {
        let Some(ev) = next(rx, deadline).await else {
            bail!(
                "{} of {} streams did not get CDS, EDS, LDS and RDS in time",
                waiting.len(),
                which.len()
            );
        };
        ended(&ev)?;
        if ev.what == What::Synced {
            waiting.remove(&ev.stream);
        }
    }
    Ok(())
}

/// The next event, or `None` at `deadline`.
async fn next(rx: &mut mpsc::UnboundedReceiver<Event>, deadline: Instant) -> Option<Event> {
    tokio::time::timeout_at(deadline.into(), rx.recv())
        .await
        .ok()
        .flatten()
}

/// Reads events until none arrived for `quiet` (or `deadline` passed); fails on a stream
/// that ended.
async fn settle(
    rx: &mut mpsc::UnboundedReceiver<Event>,
    quiet: Duration,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        let until = (Instant::now() + quiet).min(deadline.max(Instant::now()));
        match next(rx, until).await {
            Some(ev) => ended(&ev)?,
            None => return Ok(()),
        }
    }
}

fn ended(ev: &Event) -> anyhow::Result<()> {
    match ev.what {
        What::Ended { error } => bail!(
            "stream {} (node load-{}) was {} by the server: the measurement is void",
            ev.stream,
            ev.stream,
            if error { "failed" } else { "closed" }
        ),
        _ => Ok(()),
    }
}

fn mean(counts: &[u32]) -> f64 {
    if counts.is_empty() {
        return 0.0;
    }
    counts.iter().map(|&c| c as f64).sum::<f64>() / counts.len() as f64
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v / 1e3)
}
