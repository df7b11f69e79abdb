//! Wires the proxy for `main.rs`: the runtime, the listener manager, the xDS client, the
//! telemetry (metrics sink, gRPC access loggers) and the admin API, all from one checked bootstrap; then waits for SIGTERM, SIGINT or `POST
//! /quitquitquit`, drains the listeners (up to `--drain-time-s`) and returns.

use std::{path::PathBuf, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::Notify};
use xds_core::drain;

use crate::{
    admin,
    bootstrap::Bootstrap,
    config::{ListenerConfig, Rejection},
    listener,
    runtime::Runtime,
    telemetry::{self, GrpcLoggers},
    xds::{self, ListenerSink, engine::Engine},
};

/// What `main.rs` decided from the command line.
#[derive(Debug)]
pub struct Options {
    pub bootstrap: Bootstrap,
    /// How long listeners drain on shutdown (`--drain-time-s`).
    pub drain_time: Duration,
    /// Where to write the admin address once it listens (`--admin-address-path`).
    pub admin_address_path: Option<PathBuf>,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot listen for the admin API on {address}: {source}; is another process using the port? (set admin.address in the bootstrap)"
    )]
    AdminBind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write the admin address to {path}: {source}; check --admin-address-path")]
    AdminAddressPath {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Runs the proxy until a shutdown signal, then drains and returns.
pub async fn run(options: Options) -> Result<(), Error> {
    let bootstrap = Arc::new(options.bootstrap);
    let runtime = Runtime::new();
    let node = xds::node_proto(&bootstrap.node);
    let loggers = GrpcLoggers::new(
        node.clone(),
        bootstrap.grpc_targets.clone(),
        runtime.stats.grpc_logs.clone(),
    );
    let listeners = Arc::new(
        listener::Manager::new(runtime.clone(), options.drain_time).with_grpc_loggers(loggers),
    );
    let handle = xds::Handle::new(Engine::new(&bootstrap, std::time::Instant::now()));
    let quit = Arc::new(Notify::new());
    let (admin_drain, admin_watch) = drain::channel();

    if let Some(address) = bootstrap.admin {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| Error::AdminBind { address, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| Error::AdminBind { address, source })?;
        if let Some(path) = &options.admin_address_path {
            write_admin_address(path, &local.to_string())?;
        }
        tracing::info!(address = %local, "admin API listening");
        let state = admin::State {
            bootstrap: bootstrap.clone(),
            xds: handle.clone(),
            runtime: runtime.clone(),
            quit: quit.clone(),
            started: std::time::Instant::now(),
        };
        tokio::spawn(admin::serve(listener, state, admin_watch));
    } else {
        drop(admin_watch);
    }

    let sink = bootstrap
        .metrics_sink
        .clone()
        .map(|sink| telemetry::metrics::spawn(sink, node, runtime.stats.clone()));

    let client = tokio::spawn(xds::run(
        bootstrap.clone(),
        handle.clone(),
        runtime.clone(),
        listeners.clone(),
    ));

    wait_for_shutdown(&quit).await?;
    tracing::info!(drain_time = ?options.drain_time, "shutting down: draining listeners");
    client.abort();
    if let Some(sink) = sink {
        sink.abort();
    }
    listeners.drain_all(options.drain_time).await;
    admin_drain.start_drain();
    Ok(())
}

/// Envoy writes the address alone, without a newline; written whole then renamed, so a
/// reader polling for the file never sees half of it.
fn write_admin_address(path: &std::path::Path, address: &str) -> Result<(), Error> {
    let err = |source| Error::AdminAddressPath {
        path: path.display().to_string(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, address).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

async fn wait_for_shutdown(quit: &Notify) -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
        () = quit.notified() => tracing::info!("/quitquitquit"),
    }
    Ok(())
}

// === the listener manager, as the xDS client sees it ===

impl ListenerSink for listener::Manager {
    async fn apply(&self, listeners: Vec<ListenerConfig>) -> Vec<Rejection> {
        listener::Manager::apply(self, listeners).await
    }
}
