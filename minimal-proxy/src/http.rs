//! The HTTP connection manager: serves one listener's downstream connections (HTTP/1.1 and
//! HTTP/2 prior knowledge), routes each request by the listener's route table and forwards it
//! through the router, as Envoy's `http_connection_manager` with the router filter.
//!
//! # Layout
//!
//! - [`ConnectionManager`] (here): one per listener generation, shared by its connections;
//!   finds the route table (inline, or RDS by name in the request's snapshot, compiled once
//!   per published version).
//! - `server`: one downstream connection (hyper, codec choice, drain) and the request's
//!   bookkeeping (stats, access log).
//! - [`route_table`]: virtual hosts and routes compiled for matching.
//! - `router`: cluster choice, header and path changes, attempts, retries, timeouts.
//! - `books`: one request's stats and access log record, closed exactly once.
//! - `retry`, `hash`, `headers`, `body`, `local_reply`: the router's parts.

mod body;
mod books;
mod hash;
mod headers;
mod local_reply;
mod retry;
pub mod route_table;
mod router;
mod server;
#[cfg(test)]
pub(crate) mod tests;

use std::{net::SocketAddr, sync::Arc, sync::atomic::AtomicBool, time::Duration};

use arc_swap::ArcSwapOption;
use hyper_util::{
    rt::{TokioExecutor, TokioTimer},
    server::conn::auto,
};

use crate::{
    access_log::AccessLogs,
    config::{Codec, ForwardClientCert, HttpConnectionManager, RouteConfig, RouteSource},
    rbac::RbacFilters,
    runtime::{Runtime, Snapshot},
    stats::HttpStats,
    tls::PeerCert,
};
use route_table::RouteTable;

/// One HTTP listener's connection manager (one per listener generation).
#[derive(Debug)]
pub struct ConnectionManager {
    runtime: Runtime,
    /// `http.<stat_prefix>.*`.
    stats: Arc<HttpStats>,
    routes: Routes,
    /// `None` when the listener writes no access log (nothing captured per request).
    logs: Option<Arc<AccessLogs>>,
    /// The codec configuration, shared by every connection.
    builder: auto::Builder<TokioExecutor>,
    /// Envoy's `stream_idle_timeout`: a stream with nothing moving that long is ended.
    stream_idle_timeout: Option<Duration>,
    /// What happens to `x-forwarded-client-cert`.
    forward_client_cert: ForwardClientCert,
    /// The RBAC filters before the router; `None` when there are none.
    rbac: Option<RbacFilters>,
}

/// Where the route table comes from.
#[derive(Debug)]
enum Routes {
    Inline(Arc<RouteTable>),
    /// RDS: looked up by name in each request's snapshot; the compiled table is cached per
    /// published `RouteConfig` (same `Arc`, same table).
    Rds {
        name: String,
        compiled: ArcSwapOption<Compiled>,
    },
}

#[derive(Debug)]
struct Compiled {
    source: Arc<RouteConfig>,
    table: Arc<RouteTable>,
}

/// One downstream connection, as its requests see it.
#[derive(Debug)]
pub struct Downstream {
    pub peer: SocketAddr,
    pub local: Option<SocketAddr>,
    /// The verified client certificate of a TLS connection that presented one (mTLS);
    /// `None` on plaintext. RBAC's `authenticated` principals match it.
    pub peer_cert: Option<Arc<PeerCert>>,
    /// The `x-forwarded-client-cert` this connection's requests carry upstream (SANITIZE_SET
    /// on mTLS); `None`: the header is removed.
    xfcc: Option<http::HeaderValue>,
    /// Set by the first request, which counts the connection as HTTP/1 or HTTP/2.
    counted: AtomicBool,
}

impl ConnectionManager {
    /// Builds the manager for one listener generation.
    pub fn new(
        config: &HttpConnectionManager,
        runtime: Runtime,
        logs: Option<Arc<AccessLogs>>,
    ) -> Arc<ConnectionManager> {
        let stats = runtime.stats.http(&config.stat_prefix);
        let routes = match &config.routes {
            RouteSource::Inline(route_config) => {
                Routes::Inline(Arc::new(RouteTable::new(route_config, &runtime.stats)))
            }
            RouteSource::Rds(name) => Routes::Rds {
                name: name.clone(),
                compiled: ArcSwapOption::empty(),
            },
        };
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // No header read timeout: hyper's would also close idle keep-alive connections after
        // 30 s (Envoy keeps them for its 1 h idle timeout) and costs a timer per request.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None);
        builder.http2().timer(TokioTimer::new());
        let builder = match config.codec {
            Codec::Auto => builder,
            Codec::Http1 => builder.http1_only(),
            Codec::Http2 => builder.http2_only(),
        };
        let rbac = RbacFilters::http(&config.rbac, &config.stat_prefix, &runtime.stats);
        Arc::new(ConnectionManager {
            runtime,
            stats,
            routes,
            logs,
            builder,
            stream_idle_timeout: config.stream_idle_timeout,
            forward_client_cert: config.forward_client_cert,
            rbac,
        })
    }

    /// The route table for a request under `snapshot`; `None` when the RDS configuration has
    /// not arrived (every request is then a 404, as in Envoy).
    fn route_table(&self, snapshot: &Snapshot) -> Option<Arc<RouteTable>> {
        match &self.routes {
            Routes::Inline(table) => Some(table.clone()),
            Routes::Rds { name, compiled } => {
                let source = snapshot.routes.get(name)?;
                if let Some(cached) = &*compiled.load()
                    && Arc::ptr_eq(&cached.source, source)
                {
                    return Some(cached.table.clone());
                }
                // A new version: compile it once; concurrent first requests may both compile.
                let table = Arc::new(RouteTable::new(source, &self.runtime.stats));
                compiled.store(Some(Arc::new(Compiled {
                    source: source.clone(),
                    table: table.clone(),
                })));
                Some(table)
            }
        }
    }
}
