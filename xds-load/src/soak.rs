//! `xds-load soak`: a bounded churn run. Streams come and go (each lives a random time, then
//! reconnects as a new proxy on a new connection) while the mesh is written at a fixed rate;
//! every `--sample-s` the server's RSS, live streams, live tokio tasks and listed proxies are
//! sampled. At the end everything disconnects and the run waits (bounded) for the server to
//! return to its baseline. Verdict: RSS after warm-up flat within 10 %, streams, tasks and
//! proxies back to the baseline.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use rand::Rng;
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};

mod report;

use report::csv_line;
pub use report::{Report, Row};

use crate::{
    admin::Admin,
    server::{Server, ServerArgs},
    session::Variant,
    stream::{self, Event, What},
};

/// RSS after warm-up may vary by this much (max over min) and still count as flat.
const FLAT: f64 = 0.10;

#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Streams alive at any time.
    #[arg(long, default_value_t = 1000)]
    pub streams: u32,
    /// The ADS flavour; without it, even slots speak SotW and odd ones delta.
    #[arg(long, value_enum)]
    pub variant: Option<Variant>,
    /// Mesh writes per second through the REST API (an endpoint weight PUT each).
    #[arg(long, default_value_t = 2.0)]
    pub writes_per_s: f64,
    /// How long the churn runs, in seconds.
    #[arg(long, default_value_t = 1800)]
    pub duration_s: u64,
    /// A stream lives a uniformly random time between these, in seconds, then reconnects.
    #[arg(long, default_value_t = 5)]
    pub min_life_s: u64,
    #[arg(long, default_value_t = 60)]
    pub max_life_s: u64,
    #[arg(long, default_value_t = 10)]
    pub sample_s: u64,
    /// Samples before this (seconds) are warm-up: not part of the flatness verdict.
    #[arg(long, default_value_t = 300)]
    pub warmup_s: u64,
    /// How long the server may take to return to its baseline after the churn stops.
    #[arg(long, default_value_t = 120)]
    pub drain_timeout_s: u64,
    /// Writes the curve here as CSV (t,rss_kb,streams,tasks,proxies).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    #[arg(long, default_value = "xds-load")]
    pub node_cluster: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    synced: AtomicU64,
    ended: AtomicU64,
    connect_errors: AtomicU64,
    writes_ok: AtomicU64,
    writes_failed: AtomicU64,
    /// Why streams ended other than by the churn (at most 20 distinct reasons).
    end_reasons: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

pub async fn run(args: &SoakArgs, server: &Server) -> anyhow::Result<Report> {
    anyhow::ensure!(
        args.min_life_s >= 1 && args.min_life_s <= args.max_life_s,
        "--min-life-s must be at least 1 and at most --max-life-s"
    );
    anyhow::ensure!(args.writes_per_s > 0.0, "--writes-per-s must be positive");
    server
        .admin
        .create_mesh()
        .await
        .context("creating the mesh")?;
    // Sampling and writing get clients of their own, so the baseline's admin connections are
    // the same ones that are open at the end.
    let sampler = server.admin.fresh();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = sample(&sampler, server, 0).await?;
    eprintln!("t,rss_kb,streams,tasks,proxies");
    eprintln!("{}", csv_line(&baseline));

    let counters = Arc::new(Counters::default());
    let (stop_tx, stop) = watch::channel(false);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel::<Event>();
    let collector = tokio::spawn(collect(ev_rx, counters.clone()));
    let mut slots = JoinSet::new();
    for i in 0..args.streams {
        let variant = args.variant.unwrap_or(if i % 2 == 0 {
            Variant::Sotw
        } else {
            Variant::Delta
        });
        let slot = Slot {
            index: i,
            variant,
            addr: server.xds_addr,
            node_cluster: args.node_cluster.clone(),
            life: (args.min_life_s, args.max_life_s),
        };
        slots.spawn(slot.run(ev_tx.clone(), stop.clone(), counters.clone()));
    }
    drop(ev_tx);
    let writer = tokio::spawn(write(
        server.admin.fresh(),
        args.writes_per_s,
        stop.clone(),
        counters.clone(),
    ));

    let started = Instant::now();
    let mut rows = vec![baseline];
    let end = started + Duration::from_secs(args.duration_s);
    let mut tick = tokio::time::interval_at(
        (started + Duration::from_secs(args.sample_s)).into(),
        Duration::from_secs(args.sample_s),
    );
    while Instant::now() + Duration::from_millis(1) < end {
        tokio::select! {
            _ = tick.tick() => {}
            () = tokio::time::sleep_until(end.into()) => break,
        }
        let row = sample(&sampler, server, started.elapsed().as_secs()).await?;
        eprintln!("{}", csv_line(&row));
        rows.push(row);
    }

    // Stop the churn and the writes; wait for the server to let go of everything.
    let _ = stop_tx.send(true);
    while slots.join_next().await.is_some() {}
    let _ = writer.await;
    let _ = collector.await;
    let stopped = Instant::now();
    let drain_deadline = stopped + Duration::from_secs(args.drain_timeout_s);
    let (drained, drain_s) = loop {
        let row = sample(&sampler, server, started.elapsed().as_secs()).await?;
        let back = row.streams <= baseline.streams
            && row.proxies <= baseline.proxies
            && tasks_back(&baseline, &row) != Some(false);
        if back {
            break (row, Some(stopped.elapsed().as_secs_f64()));
        }
        if Instant::now() >= drain_deadline {
            break (row, None);
        }
        eprintln!("{} (draining)", csv_line(&row));
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("{}", csv_line(&drained));
    rows.push(drained);

    let warm: Vec<u64> = rows[1..rows.len() - 1]
        .iter()
        .filter(|r| r.t >= args.warmup_s)
        .filter_map(|r| r.rss_kb)
        .collect();
    let rss_spread = match (warm.iter().min(), warm.iter().max()) {
        (Some(&lo), Some(&hi)) if lo > 0 => Some(hi as f64 / lo as f64),
        _ => None,
    };
    let rss_flat = rss_spread.map(|s| s <= 1.0 + FLAT);
    // Growth rather than noise: the mean of the last quarter of the post-warm-up samples
    // over the mean of the first quarter (information; not part of the verdict).
    let quarter = warm.len() / 4;
    let avg = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len() as f64;
    let rss_trend =
        (quarter > 0).then(|| avg(&warm[warm.len() - quarter..]) / avg(&warm[..quarter]));
    let streams_back = drained.streams <= baseline.streams;
    let proxies_back = drained.proxies <= baseline.proxies;
    let tasks_back = tasks_back(&baseline, &drained);
    let pass = rss_flat == Some(true) && streams_back && proxies_back && tasks_back != Some(false);
    let report = Report {
        rows,
        baseline,
        drained,
        drain_s,
        rss_spread,
        rss_trend,
        rss_flat,
        streams_back,
        tasks_back,
        proxies_back,
        pass,
        opened: counters.opened.load(Relaxed),
        synced: counters.synced.load(Relaxed),
        ended_by_server: counters.ended.load(Relaxed),
        connect_errors: counters.connect_errors.load(Relaxed),
        writes_ok: counters.writes_ok.load(Relaxed),
        writes_failed: counters.writes_failed.load(Relaxed),
        end_reasons: std::mem::take(&mut *counters.end_reasons.lock().expect("not poisoned")),
    };
    if let Some(path) = &args.csv {
        std::fs::write(path, report.csv())
            .with_context(|| format!("writing the curve to {}", path.display()))?;
    }
    Ok(report)
}

fn tasks_back(baseline: &Row, row: &Row) -> Option<bool> {
    Some(row.tasks? <= baseline.tasks?)
}

/// The memory first: read after the two admin calls, it would show the server answering them
/// (listing 1,000 proxies briefly takes memory of its own), not the server under churn.
async fn sample(admin: &Admin, server: &Server, t: u64) -> anyhow::Result<Row> {
    let rss_kb = server.rss_kb();
    let scrape = admin.scrape().await.context("sampling /metrics")?;
    let proxies = admin.proxies().await.context("sampling /api/v1/proxies")?;
    Ok(Row {
        t,
        rss_kb,
        streams: scrape.streams,
        tasks: scrape.tasks,
        proxies,
    })
}

/// One place in the population: a proxy that lives a while, goes away and comes back new.
struct Slot {
    index: u32,
    variant: Variant,
    addr: std::net::SocketAddr,
    node_cluster: String,
    life: (u64, u64),
}

impl Slot {
    async fn run(
        self,
        events: mpsc::UnboundedSender<Event>,
        stop: watch::Receiver<bool>,
        counters: Arc<Counters>,
    ) {
        for generation in 0u64.. {
            if *stop.borrow() {
                return;
            }
            let life = {
                let mut rng = rand::rng();
                Duration::from_millis(rng.random_range(self.life.0 * 1000..=self.life.1 * 1000))
            };
            // A proxy that comes back opens a new connection, as Envoy does.
            let channel = match stream::connect(self.addr).await {
                Ok(c) => c,
                Err(_) => {
                    counters.connect_errors.fetch_add(1, Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            counters.opened.fetch_add(1, Relaxed);
            let node = stream::node(
                format!("soak-{}-{generation}", self.index),
                &self.node_cluster,
            );
            let mut stopping = stop.clone();
            let until = async move {
                tokio::select! {
                    () = tokio::time::sleep(life) => {}
                    _ = stopping.wait_for(|s| *s) => {}
                }
            };
            let outcome = stream::run(
                channel,
                self.variant,
                node,
                self.index,
                events.clone(),
                until,
            )
            .await;
            let why = match outcome {
                stream::Outcome::Stopped => None,
                stream::Outcome::Closed => Some("closed by the server".to_string()),
                stream::Outcome::Failed(s) => Some(format!("{:?}: {}", s.code(), s.message())),
            };
            if let Some(why) = why {
                let mut seen = counters.end_reasons.lock().expect("not poisoned");
                if seen.len() < 20 || seen.contains_key(&why) {
                    *seen.entry(why).or_default() += 1;
                }
            }
            if stop.has_changed().is_err() {
                return;
            }
        }
    }
}

/// Counts what the streams report (the events themselves are not kept).
async fn collect(mut events: mpsc::UnboundedReceiver<Event>, counters: Arc<Counters>) {
    while let Some(ev) = events.recv().await {
        match ev.what {
            What::Synced => {
                counters.synced.fetch_add(1, Relaxed);
            }
            What::Ended { .. } => {
                counters.ended.fetch_add(1, Relaxed);
            }
            What::Response { .. } => {}
        }
    }
}

/// Writes the endpoint's weight at a fixed rate until told to stop.
async fn write(admin: Admin, per_s: f64, mut stop: watch::Receiver<bool>, counters: Arc<Counters>) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u32.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match admin.set_weight(2 + n % 9998).await {
            Ok(()) => counters.writes_ok.fetch_add(1, Relaxed),
            Err(_) => counters.writes_failed.fetch_add(1, Relaxed),
        };
    }
}
