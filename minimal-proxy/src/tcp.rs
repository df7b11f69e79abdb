//! The TCP proxy (Envoy's `tcp_proxy` network filter): each downstream connection is joined to
//! a connection to a host of the cluster, bytes copied both ways until either side closes or
//! the connection stays idle past the idle timeout. No cluster or no host closes the
//! downstream at once. A draining listener leaves its TCP connections alone; they are cut at
//! the end of the drain time.

#[cfg(test)]
mod tests;

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use xds_core::drain;

use crate::{
    access_log::{AccessLogs, Record, ResponseFlags},
    config::TcpProxy,
    rbac::{Input, RbacFilters},
    runtime::Runtime,
    stats::TcpStats,
    tls::{Io, PeerCert},
    upstream::LbContext,
};

/// One TCP listener's proxy (one per listener generation).
#[derive(Debug)]
pub struct TcpProxyFilter {
    runtime: Runtime,
    cluster: String,
    idle_timeout: Option<Duration>,
    /// `tcp.<stat_prefix>.*`.
    stats: Arc<TcpStats>,
    logs: Option<Arc<AccessLogs>>,
    /// The network RBAC filters before the proxy; `None` when there are none.
    rbac: Option<RbacFilters>,
}

impl TcpProxyFilter {
    pub fn new(config: &TcpProxy, runtime: Runtime, logs: Option<Arc<AccessLogs>>) -> Arc<Self> {
        Arc::new(TcpProxyFilter {
            rbac: RbacFilters::network(&config.rbac, &runtime.stats),
            stats: runtime.stats.tcp(&config.stat_prefix),
            runtime,
            cluster: config.cluster.clone(),
            idle_timeout: config.idle_timeout,
            logs,
        })
    }

    /// Proxies one accepted connection to its end. The drain watch is held, not acted on:
    /// TCP has no way to ask the peer to go away, so the connection lives until the listener
    /// cuts it. `peer_cert` is the verified client certificate of an mTLS connection.
    pub async fn serve(
        self: Arc<Self>,
        downstream: Io,
        peer: SocketAddr,
        peer_cert: Option<Arc<PeerCert>>,
        _drain: drain::Watch,
    ) {
        let _ = downstream.tcp().set_nodelay(true);
        self.stats.downstream_cx_total.inc();
        let mut session = Session {
            counters: Arc::new(Counters {
                start: Instant::now(),
                activity_ms: AtomicU64::new(0),
                received: AtomicU64::new(0),
                sent: AtomicU64::new(0),
            }),
            record: self.logs.as_ref().map(|logs| {
                (
                    logs.clone(),
                    Box::new(Record::new(peer, downstream.tcp().local_addr().ok())),
                )
            }),
        };
        // Network RBAC decides before anything is sent upstream; a denied connection is
        // closed (and logged without an upstream).
        if let Some(rbac) = &self.rbac {
            let input = Input {
                peer_cert: peer_cert.as_deref(),
                request: None,
            };
            if let Err(denied) = rbac.check(&input) {
                tracing::debug!(%peer, details = %denied, "connection denied by RBAC");
                return;
            }
        }
        if let Err(flags) = self.proxy(downstream, &mut session).await
            && let Some((_, record)) = &mut session.record
        {
            record.flags.insert(flags);
        }
    }

    /// Connects upstream and copies; the error is the response flag of a failed connection.
    async fn proxy(&self, downstream: Io, session: &mut Session) -> Result<(), ResponseFlags> {
        let (cluster, host) = {
            let snapshot = self.runtime.load();
            let Some(cluster) = snapshot.clusters.get(&self.cluster).cloned() else {
                self.stats.downstream_cx_no_route.inc();
                return Err(ResponseFlags::NO_CLUSTER);
            };
            let host = cluster
                .select(&LbContext::default())
                .map_err(|_| ResponseFlags::NO_HEALTHY_UPSTREAM)?;
            (cluster, host)
        };
        if let Some((_, record)) = &mut session.record {
            record.upstream_cluster = Some(self.cluster.clone());
            record.upstream_host = Some(host.address);
        }
        let (upstream, _guard) = cluster.connect(&host).await.map_err(|e| match e {
            crate::upstream::Error::Overflow(_) => ResponseFlags::UPSTREAM_OVERFLOW,
            _ => ResponseFlags::UPSTREAM_CONNECT_FAILURE,
        })?;
        drop(cluster);
        let counters = &session.counters;
        let mut down = Counted {
            inner: downstream,
            counters: counters.clone(),
            stats: self.stats.clone(),
            downstream: true,
        };
        let mut up = Counted {
            inner: upstream,
            counters: counters.clone(),
            stats: self.stats.clone(),
            downstream: false,
        };
        let copy = tokio::io::copy_bidirectional(&mut down, &mut up);
        let result = match self.idle_timeout {
            Some(idle) => tokio::select! {
                r = copy => r.map(|_| ()),
                () = idle_watch(idle, counters) => {
                    self.stats.idle_timeout.inc();
                    Ok(())
                }
            },
            None => copy.await.map(|_| ()),
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "tcp proxy connection ended with an error");
        }
        Ok(())
    }
}

/// One connection's books; its access log line is written when it is dropped, so a
/// connection cut at the end of a drain is logged too.
#[derive(Debug)]
struct Session {
    counters: Arc<Counters>,
    record: Option<(Arc<AccessLogs>, Box<Record>)>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some((logs, mut record)) = self.record.take() {
            record.duration = self.counters.start.elapsed();
            record.bytes_received = self.counters.received.load(Ordering::Relaxed);
            record.bytes_sent = self.counters.sent.load(Ordering::Relaxed);
            logs.log(*record);
        }
    }
}

/// Byte counts and the time of the last read, shared by both directions.
#[derive(Debug)]
struct Counters {
    start: Instant,
    /// Milliseconds since `start` of the last read on either side.
    activity_ms: AtomicU64,
    /// From the downstream.
    received: AtomicU64,
    /// To the downstream (read from the upstream).
    sent: AtomicU64,
}

/// Resolves once nothing has been read on either side for `idle`.
async fn idle_watch(idle: Duration, counters: &Counters) {
    loop {
        let last =
            counters.start + Duration::from_millis(counters.activity_ms.load(Ordering::Relaxed));
        let until = last + idle;
        if Instant::now() >= until {
            return;
        }
        tokio::time::sleep_until(until.into()).await;
    }
}

/// A stream that counts what is read from it (into the session and the listener's stats)
/// and stamps the time of the last read, for the idle timeout.
#[derive(Debug)]
struct Counted {
    inner: Io,
    counters: Arc<Counters>,
    stats: Arc<TcpStats>,
    /// Which side this is: reads from the downstream are received bytes.
    downstream: bool,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            let c = &self.counters;
            if self.downstream {
                c.received.fetch_add(n, Ordering::Relaxed);
                self.stats.downstream_cx_rx_bytes_total.add(n);
            } else {
                c.sent.fetch_add(n, Ordering::Relaxed);
                self.stats.downstream_cx_tx_bytes_total.add(n);
            }
            let ms = c.start.elapsed().as_millis() as u64;
            c.activity_ms.store(ms, Ordering::Relaxed);
        }
        polled
    }
}
impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
