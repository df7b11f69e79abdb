//! Wires the server together: open the store, serve the admin API, drain on shutdown.

use std::{future::Future, io, path::PathBuf, sync::Arc};

use tokio::{net::TcpListener, sync::watch};

use crate::{
    api::{self, AppState},
    config::Config,
    store::{self, PostgresStore, SqliteStore, Store},
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not open the store: {0}")]
    Store(#[from] store::Error),
    #[error(
        "unsupported database URL scheme in '{0}': use postgres://… or sqlite://…, or omit it for the embedded file"
    )]
    DatabaseUrl(String),
    #[error("could not read the admin token file {path}: {source}")]
    TokenFile { path: PathBuf, source: io::Error },
    #[error("the admin token file {0} is empty: put the token in it")]
    EmptyToken(PathBuf),
    #[error("could not listen on {addr}: {source} (is another process using the port?)")]
    Bind {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("admin API server failed: {0}")]
    Serve(io::Error),
}

/// Opens the store `config` names: Postgres or SQLite by URL, else the embedded file.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, Error> {
    let poll = config.poll_interval.get();
    let store: Arc<dyn Store> = match config.database_url.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(PostgresStore::connect(url, poll).await?)
        }
        Some(url) if url.starts_with("sqlite:") => Arc::new(SqliteStore::connect(url, poll).await?),
        Some(url) => {
            let scheme = url.split(':').next().unwrap_or_default().to_string();
            return Err(Error::DatabaseUrl(scheme));
        }
        None => Arc::new(SqliteStore::open(&config.sqlite_file, poll).await?),
    };
    match config.database_url {
        Some(_) => tracing::info!(backend = store.backend(), "store ready (from database URL)"),
        None => tracing::info!(
            backend = store.backend(),
            file = %config.sqlite_file.display(),
            "store ready (embedded)"
        ),
    }
    Ok(store)
}

/// Reads the admin token; surrounding whitespace (a trailing newline) is not part of it.
fn read_token(path: &PathBuf) -> Result<Arc<str>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::TokenFile {
        path: path.clone(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::EmptyToken(path.clone()));
    }
    Ok(token.into())
}

/// Runs until `shutdown` resolves, then drains in-flight requests for up to the grace period.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let admin_token = config
        .admin_token_file
        .as_ref()
        .map(read_token)
        .transpose()?;
    let store = open_store(&config).await?;
    let state = AppState {
        admin_token,
        max_body_bytes: config.max_body_bytes,
        ..AppState::new(store)
    };
    let listener = TcpListener::bind(config.admin_addr)
        .await
        .map_err(|source| Error::Bind {
            addr: config.admin_addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(Error::Serve)?;
    tracing::info!(
        %addr,
        auth = if state.admin_token.is_some() { "bearer token" } else { "none" },
        "admin API listening on http://{addr}"
    );

    let (drain_tx, mut drain_rx) = watch::channel(false);
    let server = axum::serve(listener, api::router(state)).with_graceful_shutdown(async move {
        let _ = drain_rx.wait_for(|draining| *draining).await;
    });
    let server = server.into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(Error::Serve),
        () = shutdown => {}
    }
    let grace = config.shutdown_grace.get();
    tracing::info!(?grace, "shutting down: draining in-flight requests");
    let _ = drain_tx.send(true);
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.map_err(Error::Serve)?,
        Err(_) => tracing::warn!("grace period over: closing remaining connections"),
    }
    tracing::info!("stopped");
    Ok(())
}
