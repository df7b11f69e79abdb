//! The `xds-server` binary: flags, logging, signals; everything else is in the library.

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use xds_server::config::{Config, LogFormat};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    heap::spawn_trimmer(config.heap_trim_interval.get());
    xds_server::app::run(config, shutdown_signal())
        .await
        .context("xds-server stopped with an error")
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

/// Handing freed memory back to the OS. glibc returns only the top of each arena; the rest of
/// what streams free stays resident, scattered between live allocations, so under churn the
/// process's resident memory creeps up while its live heap stays flat (BENCHMARKS.md, "Churn
/// soak": a heap profile of the soak shows the live heap flat and glibc's arenas 40 % free).
/// `malloc_trim` releases the free pages inside the arenas too.
mod heap {
    use std::time::Duration;

    /// Every `every`, if xDS streams ended since the last trim, trims on a blocking thread
    /// (tokio workers must not run it). A trim holds each arena's lock while it walks it
    /// (measured 0.5-130 ms on a loaded 2-core machine at 1,000 churning streams), so
    /// allocations on that arena wait: a stable fleet, which frees nothing scattered, is
    /// never made to. Nothing when `every` is zero.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    pub fn spawn_trimmer(every: Duration) {
        if every.is_zero() {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut ended = xds_server::xds::streams_ended();
            loop {
                tick.tick().await;
                let now = xds_server::xds::streams_ended();
                if now == ended {
                    continue;
                }
                ended = now;
                let started = std::time::Instant::now();
                let _ = tokio::task::spawn_blocking(trim).await;
                tracing::debug!(
                    took_us = started.elapsed().as_micros() as u64,
                    "heap trimmed"
                );
            }
        });
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    fn trim() {
        // SAFETY: `malloc_trim` takes no pointers and only returns free memory to the OS,
        // under glibc's own arena locks; it is safe to call from any thread at any time.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub fn spawn_trimmer(_every: Duration) {}
}
