//! The `minimal-proxy` binary: Envoy's command line (the subset that matters here, so one test
//! harness starts either binary the same way), logging, the Tokio runtime, then
//! [`minimal_proxy::app`].

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use minimal_proxy::{app, bootstrap::Overrides};

/// A small, fast data plane: takes Envoy's bootstrap, speaks Envoy's xDS.
#[derive(Debug, Parser)]
#[command(name = "minimal-proxy", version, about)]
struct Cli {
    /// The bootstrap file (YAML, or JSON when it ends in .json), as Envoy's.
    #[arg(short = 'c', long = "config-path", value_name = "PATH")]
    config_path: PathBuf,

    /// Worker threads (Envoy's worker count); default: the number of CPUs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Option<u32>,

    /// Log level, with Envoy's names (`critical` logs errors; `RUST_LOG` refines it).
    #[arg(short = 'l', long = "log-level", value_enum, default_value = "info")]
    log_level: LogLevel,

    /// On SIGTERM/SIGINT, how long listeners drain before the process exits (Envoy: 600).
    #[arg(long = "drain-time-s", value_name = "SECONDS", default_value_t = 600)]
    drain_time_s: u64,

    /// Overrides the bootstrap's `node.id`.
    #[arg(long = "service-node", value_name = "ID")]
    service_node: Option<String>,

    /// Overrides the bootstrap's `node.cluster`.
    #[arg(long = "service-cluster", value_name = "CLUSTER")]
    service_cluster: Option<String>,

    /// Writes the admin API's address (`127.0.0.1:9901`) to this file once it listens.
    #[arg(long = "admin-address-path", value_name = "PATH")]
    admin_address_path: Option<PathBuf>,

    /// `serve` runs; `validate` checks the bootstrap and exits (0 when it would run).
    #[arg(long, value_enum, default_value = "serve")]
    mode: Mode,

    /// Accepted for Envoy's command line; a no-op (there is no hot restart here).
    #[arg(long = "disable-hot-restart")]
    disable_hot_restart: bool,

    /// Accepted for Envoy's command line; a no-op (there is no hot restart here).
    #[arg(long = "use-dynamic-base-id")]
    use_dynamic_base_id: bool,

    /// Accepted for Envoy's command line; a no-op (there is no shared memory to name).
    #[arg(long = "base-id", value_name = "N")]
    base_id: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogLevel {
    Trace,
    Debug,
    Info,
    /// Envoy also accepts `warning`.
    #[value(alias = "warning")]
    Warn,
    Error,
    Critical,
    Off,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Serve,
    Validate,
}

impl LogLevel {
    /// The `tracing` filter for this level (`critical` has no equivalent: errors).
    fn filter(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error | LogLevel::Critical => "error",
            LogLevel::Off => "off",
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line with every cause, as Envoy prints its fatal errors.
            eprintln!("minimal-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.log_level.filter()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let _ = (
        cli.disable_hot_restart,
        cli.use_dynamic_base_id,
        cli.base_id,
    );

    let overrides = Overrides {
        node_id: cli.service_node,
        node_cluster: cli.service_cluster,
    };
    let bootstrap = minimal_proxy::bootstrap::load(&cli.config_path, &overrides)
        .with_context(|| format!("bootstrap {} refused", cli.config_path.display()))?;
    if let Mode::Validate = cli.mode {
        println!("configuration '{}' OK", cli.config_path.display());
        return Ok(());
    }

    let workers = cli
        .concurrency
        .map(|n| n as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // One worker (Envoy's `--concurrency 1`: one worker thread serves every connection): a
    // current-thread runtime, everything on this thread. The multi-thread scheduler with one
    // worker still pays for work stealing, cross-thread wake-ups and a second thread
    // (`block_on` runs on this one, tasks on the worker): ~5 % of user time in a profile of
    // the HTTP/1.1 path. More workers: the multi-thread scheduler.
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")?;
    let options = app::Options {
        bootstrap,
        drain_time: Duration::from_secs(cli.drain_time_s),
        admin_address_path: cli.admin_address_path,
    };
    runtime.block_on(app::run(options))?;
    Ok(())
}
