//! One generation of a listener: an accept loop on a (possibly inherited) socket, serving each
//! connection with the generation's filter, and the drain that ends it: stop accepting, tell
//! every connection to drain, wait up to the drain time, cut what remains.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::{JoinHandle, JoinSet},
};
use xds_core::drain;

use crate::{
    http::ConnectionManager,
    stats::{ConnectionGuard, ListenerStats},
    tcp::TcpProxyFilter,
};

/// What serves a generation's connections.
#[derive(Debug, Clone)]
pub enum Filter {
    Http(Arc<ConnectionManager>),
    Tcp(Arc<TcpProxyFilter>),
}

impl Filter {
    async fn serve(self, stream: TcpStream, peer: SocketAddr, drain: drain::Watch) {
        match self {
            Filter::Http(manager) => manager.serve(stream, peer, None, drain).await,
            Filter::Tcp(proxy) => proxy.serve(stream, peer, None, drain).await,
        }
    }
}

/// A running generation. Dropping it without [`Generation::drain`] cuts its connections at
/// once (the accept loop sees its stop channel closed).
#[derive(Debug)]
pub struct Generation {
    stop: oneshot::Sender<Duration>,
    task: JoinHandle<()>,
}

impl Generation {
    /// Starts accepting on `socket`.
    pub fn start(
        socket: Arc<TcpListener>,
        filter: Filter,
        stats: Arc<ListenerStats>,
    ) -> Generation {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(socket, filter, stats, stopped));
        Generation { stop, task }
    }

    /// Stops accepting now (no connection is accepted by this generation once this returns to
    /// the scheduler), drains its connections for up to `drain_time`, then cuts them. The
    /// handle resolves when the generation is gone.
    pub fn drain(self, drain_time: Duration) -> JoinHandle<()> {
        let _ = self.stop.send(drain_time);
        self.task
    }
}

/// The accept loop, then the drain.
async fn run(
    socket: Arc<TcpListener>,
    filter: Filter,
    stats: Arc<ListenerStats>,
    mut stop: oneshot::Receiver<Duration>,
) {
    let (trigger, watch) = drain::channel();
    let mut connections = JoinSet::new();
    let drain_time = loop {
        tokio::select! {
            // Stop first: once told, never accept again.
            biased;
            drain_time = &mut stop => break drain_time.unwrap_or(Duration::ZERO),
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    let guard = ConnectionGuard::new(stats.clone());
                    let serve = filter.clone().serve(stream, peer, watch.clone());
                    connections.spawn(async move {
                        serve.await;
                        drop(guard);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    };
    // Hand the socket back (a new generation may hold it already) and drain.
    drop(socket);
    drop(watch);
    trigger.start_drain();
    let drained = tokio::time::timeout(drain_time, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            remaining = connections.len(),
            "drain time over; cutting the remaining connections"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}
