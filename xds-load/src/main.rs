//! `xds-load`: a load generator and churn soak for an xDS control plane. It starts the real
//! `xds-server` binary (or attaches to a running server), builds a mesh through the REST
//! admin API, and drives many Envoy-like ADS streams from one lean process.
//!
//! # Layout
//!
//! - [`session`]: one ADS session without I/O (subscriptions, ACKs, change detection).
//! - [`stream`]: the tonic glue that runs a session and reports events.
//! - [`server`]: the server under test (child process or attached), [`admin`] its REST API,
//!   [`procfs`] its memory and CPU readings.
//! - [`fanout`] and [`soak`]: the two programs; [`stats`] their summaries.

#![forbid(unsafe_code)]

mod admin;
mod fanout;
mod procfs;
mod server;
mod session;
mod soak;
mod stats;
mod stream;

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "xds-load",
    version,
    about = "Load an xDS control plane with Envoy-like ADS streams"
)]
struct Cli {
    /// Worker threads of this process's runtime (the machine's cores by default).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Gives up (and stops the server it started) after this many seconds (default: 300 for
    /// fanout; for soak, its duration and drain timeout plus 300).
    #[arg(long, global = true)]
    timeout_s: Option<u64>,
    /// Prints the result as one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One change to N connected streams, K times: receipt latency, responses per change,
    /// server memory per stream.
    Fanout(fanout::FanoutArgs),
    /// Streams connecting and disconnecting under steady writes: the server's memory, streams,
    /// tasks and proxies every 10 s, then whether they return to the baseline.
    Soak(soak::SoakArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(async {
        let secs = cli.timeout_s.unwrap_or(match &cli.command {
            Command::Fanout(_) => 300,
            Command::Soak(a) => a.duration_s + a.drain_timeout_s + 300,
        });
        tokio::time::timeout(Duration::from_secs(secs), run(&cli, threads))
            .await
            .with_context(|| format!("did not finish within {secs} s (--timeout-s)"))?
    })
}

async fn run(cli: &Cli, threads: usize) -> anyhow::Result<()> {
    let server_args = match &cli.command {
        Command::Fanout(a) => &a.server,
        Command::Soak(a) => &a.server,
    };
    let server = server::Server::get(server_args)
        .await
        .context("getting the server under test")?;
    let result = match &cli.command {
        Command::Fanout(args) => fanout::run(args, &server, threads).await.map(|report| {
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialises")
                );
            } else {
                println!("{report}");
            }
        }),
        Command::Soak(args) => soak::run(args, &server).await.map(|report| {
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialises")
                );
            } else {
                println!("{report}");
            }
        }),
    };
    server.stop().await;
    result
}
