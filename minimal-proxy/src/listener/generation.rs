//! One generation of a listener: an accept loop on a (possibly inherited) socket, serving each
//! connection with the generation's filter chains (the TLS inspector's verdict picks one;
//! its TLS, if any, handshakes first), and the drain that ends it: stop accepting, tell
//! every connection to drain, wait up to the drain time, cut what remains.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::{JoinHandle, JoinSet},
};
use xds_core::drain;

use crate::{
    config::{TransportProtocol, choose_chain},
    http::ConnectionManager,
    stats::{ConnectionGuard, ListenerStats},
    tcp::TcpProxyFilter,
    tls::{Io, inspect, server::Acceptor},
};

/// What serves a chain's connections.
#[derive(Debug, Clone)]
pub enum Filter {
    Http(Arc<ConnectionManager>),
    Tcp(Arc<TcpProxyFilter>),
}

/// One filter chain, ready to serve.
#[derive(Debug, Clone)]
pub struct Chain {
    /// `filter_chain_match.transport_protocol`.
    pub transport: TransportProtocol,
    /// The chain's TLS; `None`: plaintext.
    pub tls: Option<Acceptor>,
    pub filter: Filter,
}

/// A generation's filter chains.
#[derive(Debug)]
pub struct Chains {
    pub chains: Vec<Chain>,
    /// The TLS inspector runs first (else every connection is `raw_buffer`).
    pub inspector: bool,
    /// The chains' matches, in order, for [`choose_chain`].
    pub transports: Vec<TransportProtocol>,
}

impl Chains {
    pub fn new(chains: Vec<Chain>, inspector: bool) -> Chains {
        Chains {
            transports: chains.iter().map(|c| c.transport).collect(),
            chains,
            inspector,
        }
    }

    /// One connection: inspect, pick the chain, handshake, then its filter to the end.
    async fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        drain: drain::Watch,
        stats: Arc<ListenerStats>,
    ) {
        let seen = match self.inspector {
            true => match inspect::inspect(&tcp).await {
                Some(seen) => seen,
                None => return,
            },
            false => TransportProtocol::RawBuffer,
        };
        let Some(chain) = choose_chain(&self.transports, seen).map(|i| &self.chains[i]) else {
            tracing::debug!(%peer, ?seen, "no filter chain matches the connection; closing it");
            return;
        };
        let (io, peer_cert, local_uri) = match &chain.tls {
            Some(acceptor) => match acceptor.accept(tcp, &stats.ssl).await {
                Some(accepted) => (accepted.io, accepted.peer, accepted.local_uri),
                None => return,
            },
            None => (Io::Plain(tcp), None, None),
        };
        match chain.filter.clone() {
            Filter::Http(manager) => manager.serve(io, peer, peer_cert, local_uri, drain).await,
            Filter::Tcp(proxy) => proxy.serve(io, peer, peer_cert, drain).await,
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
        chains: Arc<Chains>,
        stats: Arc<ListenerStats>,
    ) -> Generation {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(socket, chains, stats, stopped));
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
    chains: Arc<Chains>,
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
                    let serve =
                        chains.clone().serve(stream, peer, watch.clone(), stats.clone());
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
