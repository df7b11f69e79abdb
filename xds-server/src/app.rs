//! Wires the server together: open the store, serve the admin API, drain on shutdown.

use std::{future::Future, io, path::PathBuf, sync::Arc};

use tokio::net::TcpListener;
use xds_core::drain;

use crate::{
    api::{self, AppState},
    config::Config,
    metrics::Metrics,
    status::Registry,
    store::{self, PostgresStore, SqliteStore, Store},
    xds::{Context, cache::Cache, server},
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
    #[error("the reader token file {0} holds no token: put one token per line in it")]
    EmptyReaderTokens(PathBuf),
    #[error(
        "--reader-token-file needs --admin-token-file: without an admin token the API is open to everyone"
    )]
    ReadersWithoutAdmin,
    #[error(
        "--mtls-default {0} needs the mesh CA for the certificates: add --ca builtin (or --ca files), or keep --mtls-default off"
    )]
    MtlsWithoutCa(&'static str),
    #[error("could not listen on {addr}: {source} (is another process using the port?)")]
    Bind {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("admin API server failed: {0}")]
    Serve(io::Error),
    #[error("xDS server failed: {0}")]
    Xds(#[from] tonic::transport::Error),
    #[error(transparent)]
    Mesh(#[from] crate::watch::Error),
    #[error("mesh CA: {0}")]
    Ca(#[from] crate::ca::Error),
    #[error("xDS TLS: {0}")]
    XdsTls(#[from] crate::xds::tls::Error),
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

/// Reads the reader tokens: one per non-empty line, `#` lines are comments.
fn read_reader_tokens(paths: &[PathBuf]) -> Result<Arc<[Arc<str>]>, Error> {
    let mut tokens = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| Error::TokenFile {
            path: path.clone(),
            source,
        })?;
        let before = tokens.len();
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(Arc::<str>::from),
        );
        if tokens.len() == before {
            return Err(Error::EmptyReaderTokens(path.clone()));
        }
    }
    Ok(tokens.into())
}

/// Runs until `shutdown` resolves, then drains in-flight requests for up to the grace period.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let admin_token = config
        .admin_token_file
        .as_ref()
        .map(read_token)
        .transpose()?;
    let reader_tokens = read_reader_tokens(&config.reader_token_file)?;
    if admin_token.is_none() && !reader_tokens.is_empty() {
        return Err(Error::ReadersWithoutAdmin);
    }
    if config.ca.ca_mode == crate::ca::CaMode::Off {
        match config.mtls_default {
            crate::model::MtlsMode::Off => {}
            crate::model::MtlsMode::Strict => return Err(Error::MtlsWithoutCa("strict")),
            crate::model::MtlsMode::Permissive => return Err(Error::MtlsWithoutCa("permissive")),
        }
    }
    let metrics = Metrics::new();
    let store: Arc<dyn Store> = Arc::new(store::Measured::new(
        open_store(&config).await?,
        metrics.store(),
    ));
    // Checked before anything else starts: a bad CA input stops startup with nothing written.
    let authority = crate::ca::load_or_create(store.as_ref(), &config.ca)
        .await?
        .map(Arc::new);
    let xds_tls = crate::xds::tls::setup(&config.xds_tls, authority.as_ref(), config.xds_addr)?;
    let registry = Registry::default();
    let rebuilds = metrics.clone();
    let (mesh, mesh_task) = crate::watch::spawn_with_security(
        store.clone(),
        config.coalesce_window.get(),
        config.mesh_security(),
        move |d| rebuilds.rebuild(d.as_secs_f64()),
    )
    .await?;
    // Taps opening and closing republish the mesh, so the proxies they select gain and lose
    // their access logs at once.
    let taps = crate::tap::Taps::with_metrics(config.tap.clone(), metrics.tap());
    // With proxy tokens required, tapped proxies authenticate their access logs with a
    // credential pushed along with the access-log config (the port is known before binding).
    let taps = if config.xds_auth.required_on(config.xds_addr) {
        taps.requiring_credentials()
    } else {
        taps
    };
    let mesh = taps.attach(mesh);
    // With a CA, each snapshot also carries the workload certificates (renewed on a timer).
    let mesh = match &authority {
        Some(a) => crate::ca::spawn_issuer(a.clone(), mesh),
        None => mesh,
    };
    let cache = Cache::new(mesh);
    cache.verdicts().set_enabled(config.last_known_good);

    let xds_listener = bind(config.xds_addr).await?;
    let xds_addr = xds_listener.local_addr().map_err(Error::Serve)?;
    let admin_listener = bind(config.admin_addr).await?;
    let admin_addr = admin_listener.local_addr().map_err(Error::Serve)?;
    let proxy_auth = if config.xds_auth.required_on(xds_addr) {
        crate::proxy_auth::ProxyAuth::required(store.clone()).await?
    } else {
        if !xds_addr.ip().is_loopback() {
            tracing::warn!(
                %xds_addr,
                "the xDS port is reachable beyond this host WITHOUT proxy tokens (--xds-auth off): anyone who can reach it can read the mesh's configuration and pose as any proxy"
            );
        }
        crate::proxy_auth::ProxyAuth::off()
    };
    tracing::info!(required = proxy_auth.is_required(), "xDS proxy tokens");
    if proxy_auth.is_required() && xds_tls.is_none() && !xds_addr.ip().is_loopback() {
        tracing::warn!(
            %xds_addr,
            "proxy tokens cross the network to the xDS port in plaintext: turn on --xds-tls builtin (with --ca) or --xds-tls files"
        );
    }
    let state = AppState {
        admin_token,
        reader_tokens,
        proxy_auth: proxy_auth.clone(),
        max_body_bytes: config.max_body_bytes,
        registry: registry.clone(),
        metrics: metrics.clone(),
        xds_addr,
        xds_tls_ca: xds_tls.as_ref().map(|t| t.trusted_ca_pem.clone()),
        ca: authority,
        taps: taps.clone(),
        ..AppState::new(store)
    };
    if state.admin_token.is_none() && !admin_addr.ip().is_loopback() {
        tracing::warn!(
            %admin_addr,
            "the admin API is reachable beyond this host WITHOUT a token: anyone who can reach it can change the mesh; set --admin-token-file"
        );
    }
    let transport = if xds_tls.is_some() {
        "TLS"
    } else {
        "plaintext"
    };
    tracing::info!(%xds_addr, transport, "xDS server listening on {xds_addr} ({transport}; ADS, CDS, EDS, LDS, RDS; SotW and delta)");
    tracing::info!(
        addr = %admin_addr,
        auth = if state.admin_token.is_some() { "bearer token" } else { "none" },
        reader_tokens = state.reader_tokens.len(),
        "admin API listening on http://{admin_addr}"
    );

    let (drain, watch) = drain::channel();
    let draining = move || {
        let mut watch = watch.clone();
        async move { watch.signaled().await }
    };
    let mut ctx = Context::new(cache, registry, metrics, config.xds_limits.limits());
    ctx.taps = taps.clone();
    ctx.auth = proxy_auth;
    let state = AppState {
        telemetry: ctx.telemetry.clone(),
        ..state
    };
    let xds_server = server::serve_tls(ctx, xds_listener, xds_tls, draining());
    let admin_server = axum::serve(admin_listener, api::router(state))
        .with_graceful_shutdown(draining())
        .into_future();
    // Either server failing stops the process (and the other server with it).
    let servers = async {
        tokio::try_join!(async { xds_server.await.map_err(Error::from) }, async {
            admin_server.await.map_err(Error::Serve)
        },)
        .map(|_| ())
    };
    tokio::pin!(servers);
    tokio::select! {
        result = &mut servers => return result,
        () = shutdown => {}
    }
    let grace = config.shutdown_grace.get();
    tracing::info!(
        ?grace,
        "shutting down: closing xDS streams, draining in-flight requests"
    );
    // Ending the mesh watch ends every xDS stream; proxies keep their config and reconnect.
    mesh_task.abort();
    taps.close_all(); // open SSE streams end, so they do not hold the admin server open
    drain.start_drain();
    match tokio::time::timeout(grace, servers).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!("grace period over: closing remaining connections"),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}
