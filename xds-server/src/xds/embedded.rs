//! The xDS server in this process on an ephemeral 127.0.0.1 port, without the admin API: for
//! benchmarks, tests and embedding.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::task::JoinHandle;

use super::{Context, cache::Cache, limits::Limits, server};
use crate::{metrics::Metrics, status::Registry, store::Store};

/// A running xDS server; stops when dropped.
#[derive(Debug)]
pub struct Embedded {
    pub addr: SocketAddr,
    pub cache: Arc<Cache>,
    pub registry: Registry,
    pub metrics: Metrics,
    /// The golden metrics its MetricsService feeds (for an admin API beside it).
    pub telemetry: crate::telemetry::Telemetry,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Mesh(#[from] crate::watch::Error),
    #[error("could not listen on 127.0.0.1: {0}")]
    Bind(#[from] std::io::Error),
}

impl Embedded {
    /// Serves `store`'s mesh over xDS, coalescing changes within `window`, with the default
    /// [`Limits`].
    pub async fn start(store: Arc<dyn Store>, window: Duration) -> Result<Embedded, Error> {
        Self::start_with(store, window, Limits::default()).await
    }

    /// As [`Embedded::start`], with these limits.
    pub async fn start_with(
        store: Arc<dyn Store>,
        window: Duration,
        limits: Limits,
    ) -> Result<Embedded, Error> {
        Self::start_with_auth(store, window, limits, crate::proxy_auth::ProxyAuth::off()).await
    }

    /// As [`Embedded::start_with`], checking proxy tokens with `auth`.
    pub async fn start_with_auth(
        store: Arc<dyn Store>,
        window: Duration,
        limits: Limits,
        auth: crate::proxy_auth::ProxyAuth,
    ) -> Result<Embedded, Error> {
        Self::start_with_tls(store, window, limits, auth, None).await
    }

    /// As [`Embedded::start_with_auth`], over TLS when `tls` is given.
    pub async fn start_with_tls(
        store: Arc<dyn Store>,
        window: Duration,
        limits: Limits,
        auth: crate::proxy_auth::ProxyAuth,
        tls: Option<super::tls::XdsTls>,
    ) -> Result<Embedded, Error> {
        let metrics = Metrics::new();
        let (mesh, watcher) = crate::watch::spawn(store, window, |_| {}).await?;
        let cache = Cache::new(mesh);
        let registry = Registry::default();
        let mut ctx = Context::new(cache.clone(), registry.clone(), metrics.clone(), limits);
        ctx.auth = auth;
        let telemetry = ctx.telemetry.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            // Stopped by aborting the task when dropped, so no shutdown signal.
            if let Err(e) = server::serve_tls(ctx, listener, tls, std::future::pending()).await {
                tracing::error!(error = %e, "embedded xDS server failed");
            }
        });
        Ok(Embedded {
            addr,
            cache,
            registry,
            metrics,
            telemetry,
            tasks: vec![watcher, server],
        })
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
