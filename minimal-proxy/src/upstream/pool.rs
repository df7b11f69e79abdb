//! Per-host connection pools, kept in the host's state so they survive assignment changes.
//!
//! HTTP/1.1: a stack of idle keep-alive connections (the most recently used on top); a
//! request takes one, or opens one within the cluster's `max_connections`, or waits for one
//! to come back; a connection comes back when its response body has been read to the end
//! (the response body hands it back, see [`super::response::ResponseBody`]), and wakes one
//! waiting request.
//! HTTP/2 (prior knowledge): one shared connection per host, multiplexed; opened by the
//! first request that needs it while the others wait for it.
//!
//! # How long idle HTTP/1.1 connections stay
//!
//! Envoy keeps them up to its `idle_timeout` (1 h by default) with no count limit; each one
//! here holds a socket and hyper's read and write buffers (≈ 16 KiB), so after a burst of 256
//! concurrent requests 256 idle connections would hold their memory for an hour. Two bounds
//! release it while keeping connections reused under load:
//!
//! - at most [`MAX_IDLE`] (256) idle connections per host: a connection that comes back to a
//!   full stack closes the oldest idle one. The cap is deliberately not small: under load
//!   the idle stack holds every connection whose next request has not been read yet, which
//!   at N concurrent requests can approach N, and a cap below that closes and reopens
//!   connections at full load (Go's `MaxIdleConnsPerHost: 2` is the known example). 256
//!   keeps that churn away up to 256 concurrent requests per host and bounds what an idle
//!   host holds to a few MiB;
//! - an idle connection unused for [`IDLE_TIMEOUT`] (60 s, like Go's and hyper-util's
//!   90 s, far below Envoy's hour) is closed by a sweep that runs only while the host has
//!   idle connections. Under load a connection is idle for microseconds, so the timeout
//!   never costs a reconnect there; after the load every connection is closed within a
//!   minute.
//!
//! Why not hyper-util's pooled client: it keys pools by the URI's authority, so an HTTP/2
//! request could not carry the downstream `:authority` (as Envoy sends it) while going to
//! the host's address; and this pool knows the cluster's breakers and stats.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{net::TcpStream, sync::Notify, time::Instant};

use crate::tls::{Io, client::Connector};

use super::{
    Body, Error,
    circuit_breaker::{Breakers, ConnectionGuard},
    host::HostState,
};

/// Idle HTTP/1.1 connections kept per host (see the module's doc).
pub(crate) const MAX_IDLE: usize = 256;
/// How long an HTTP/1.1 connection may stay idle before it is closed (see the module's doc).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One host's pooled connections.
#[derive(Debug)]
pub(crate) struct HostPool {
    address: SocketAddr,
    /// Idle HTTP/1.1 connections, ready for a request; shared with the idle sweep (which
    /// holds it weakly, so it ends with the host).
    idle: Arc<Mutex<Idle>>,
    /// The shared HTTP/2 connection.
    h2: Mutex<Option<http2::SendRequest<Body>>>,
    /// Held while an HTTP/2 connection is being opened, so only one is.
    h2_connecting: tokio::sync::Mutex<()>,
    /// Woken (one waiter at a time) when a connection comes back idle or closes (a slot under
    /// `max_connections`): one connection serves one waiter.
    freed: Notify,
}

/// The idle HTTP/1.1 connections and their bounds.
#[derive(Debug)]
struct Idle {
    /// Oldest first; taken and returned at the back (most recently used).
    conns: VecDeque<IdleConn>,
    /// [`MAX_IDLE`], lowered by tests.
    max: usize,
    /// [`IDLE_TIMEOUT`], shortened by tests.
    timeout: Duration,
    /// Whether a sweep task is running for these connections.
    sweeping: bool,
}

#[derive(Debug)]
struct IdleConn {
    sender: http1::SendRequest<Body>,
    /// When it came back; closed [`Idle::timeout`] later if not taken.
    since: Instant,
}

impl HostPool {
    pub fn new(address: SocketAddr) -> HostPool {
        HostPool {
            address,
            idle: Arc::new(Mutex::new(Idle {
                conns: VecDeque::new(),
                max: MAX_IDLE,
                timeout: IDLE_TIMEOUT,
                sweeping: false,
            })),
            h2: Mutex::new(None),
            h2_connecting: tokio::sync::Mutex::new(()),
            freed: Notify::new(),
        }
    }

    /// Wakes one request waiting for a connection of this host (one came back or closed).
    pub fn wake(&self) {
        self.freed.notify_one();
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection ready for a request (the most recently used); closed ones met on
    /// the way are dropped.
    pub fn take_idle(&self) -> Option<http1::SendRequest<Body>> {
        let mut idle = self.lock_idle();
        while let Some(conn) = idle.conns.pop_back() {
            if conn.sender.is_ready() {
                return Some(conn.sender);
            }
        }
        None
    }

    /// Puts a connection back once its response is over (the caller has released the
    /// request's `max_requests` slot first, as Envoy frees a request's slot before its
    /// connection takes the next pending request: the waiter woken here then finds room).
    ///
    /// A connection hyper has not yet marked ready for the next request (its connection task
    /// has not run since the response ended) is handed back from a task once it is; a closed
    /// one is dropped. A full stack closes its oldest connection.
    pub fn give_back(host: &Arc<HostState>, sender: http1::SendRequest<Body>) {
        if sender.is_ready() {
            host.pool.put_idle(sender);
        } else if !sender.is_closed() {
            let (host, mut sender) = (host.clone(), sender);
            tokio::spawn(async move {
                if sender.ready().await.is_ok() {
                    host.pool.put_idle(sender);
                }
            });
        }
    }

    fn put_idle(&self, sender: http1::SendRequest<Body>) {
        let mut idle = self.lock_idle();
        // Closed after the lock is released.
        let oldest = if idle.conns.len() >= idle.max {
            idle.conns.pop_front()
        } else {
            None
        };
        let mut sweep = None;
        if idle.max > 0 {
            idle.conns.push_back(IdleConn {
                sender,
                since: Instant::now(),
            });
            if !idle.sweeping {
                sweep = tokio::runtime::Handle::try_current().ok();
                idle.sweeping = sweep.is_some();
            }
        }
        drop(idle);
        drop(oldest);
        if let Some(runtime) = sweep {
            runtime.spawn(sweep_idle(Arc::downgrade(&self.idle)));
        }
        self.wake();
    }

    /// Idle HTTP/1.1 connections now (for tests).
    #[cfg(test)]
    pub fn idle_count(&self) -> usize {
        self.lock_idle().conns.len()
    }

    /// Sets the idle bounds (tests use small ones).
    #[cfg(test)]
    pub fn set_idle_limits(&self, max: usize, timeout: Duration) {
        let mut idle = self.lock_idle();
        idle.max = max;
        idle.timeout = timeout;
    }

    /// An HTTP/1.1 connection for one request: an idle one, a new one within the breakers, or
    /// the next one to come back.
    pub async fn h1(
        &self,
        breakers: &Arc<Breakers>,
        host: &Arc<HostState>,
        connect_timeout: Duration,
        tls: Option<&Connector>,
    ) -> Result<http1::SendRequest<Body>, Error> {
        // `upstream_cx_overflow` counts a request that had to wait, once: a wake-up may be
        // one stored by `notify_one` while nobody waited, and find nothing.
        let mut overflowed = false;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a connection freed meanwhile is not missed.
            freed.as_mut().enable();
            if let Some(sender) = self.take_idle() {
                return Ok(sender);
            }
            if breakers.may_connect(host) {
                let (stream, guard) =
                    connect(self.address, connect_timeout, breakers, host, tls).await?;
                breakers.stats.upstream_cx_http1_total.inc();
                let (sender, conn) = http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| Error::ConnectFailure(e.to_string()))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(guard);
                });
                return Ok(sender);
            }
            if !overflowed {
                overflowed = true;
                breakers.stats.upstream_cx_overflow.inc();
            }
            freed.await;
        }
    }

    /// The host's HTTP/2 connection, opened if there is none (or it closed).
    pub async fn h2(
        &self,
        breakers: &Arc<Breakers>,
        host: &Arc<HostState>,
        connect_timeout: Duration,
        tls: Option<&Connector>,
    ) -> Result<http2::SendRequest<Body>, Error> {
        if let Some(sender) = self.shared_h2() {
            return Ok(sender);
        }
        let _connecting = self.h2_connecting.lock().await;
        if let Some(sender) = self.shared_h2() {
            return Ok(sender);
        }
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if breakers.may_connect(host) {
                break;
            }
            breakers.stats.upstream_cx_overflow.inc();
            freed.await;
        }
        let (stream, guard) = connect(self.address, connect_timeout, breakers, host, tls).await?;
        breakers.stats.upstream_cx_http2_total.inc();
        let handshake = http2::Builder::new(TokioExecutor::new()).handshake(TokioIo::new(stream));
        let (sender, conn) = tokio::time::timeout(connect_timeout, handshake)
            .await
            .map_err(|_| Error::ConnectTimeout)?
            .map_err(|e| Error::ConnectFailure(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
            drop(guard);
        });
        *self.h2.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
        Ok(sender)
    }

    pub fn shared_h2(&self) -> Option<http2::SendRequest<Body>> {
        let mut h2 = self.h2.lock().unwrap_or_else(|e| e.into_inner());
        match h2.as_ref() {
            Some(sender) if !sender.is_closed() => Some(sender.clone()),
            Some(_) => {
                *h2 = None;
                None
            }
            None => None,
        }
    }

    /// Forgets the shared HTTP/2 connection (after it failed a request), so the next request
    /// opens a fresh one.
    pub fn drop_h2(&self) {
        *self.h2.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A TCP connection to `address` with `TCP_NODELAY`, with the cluster's TLS handshake when it
/// has one (both within `timeout`), counted from the attempt on (as Envoy counts
/// `upstream_cx_total`); failures counted in `upstream_cx_connect_fail` (and
/// `upstream_cx_connect_timeout`) and the host's `cx_connect_fail`; handshakes in `ssl.*`.
pub(crate) async fn connect(
    address: SocketAddr,
    timeout: Duration,
    breakers: &Arc<Breakers>,
    host: &Arc<HostState>,
    tls: Option<&Connector>,
) -> Result<(Io, ConnectionGuard), Error> {
    let guard = ConnectionGuard::new(breakers, host);
    let stats = &breakers.stats;
    let open = async {
        let stream = TcpStream::connect(address).await?;
        // Best effort: a socket that refuses the option still carries traffic.
        let _ = stream.set_nodelay(true);
        match tls {
            Some(connector) => connector.connect(stream, &stats.ssl).await,
            None => Ok(Io::Plain(stream)),
        }
    };
    let result = tokio::time::timeout(timeout, open).await;
    let error = match result {
        Ok(Ok(stream)) => return Ok((stream, guard)),
        Ok(Err(e)) => Error::ConnectFailure(e.to_string()),
        Err(_) => {
            stats.upstream_cx_connect_timeout.inc();
            Error::ConnectTimeout
        }
    };
    stats.upstream_cx_connect_fail.inc();
    host.stats.cx_connect_fail.inc();
    Err(error)
}

/// Closes the idle connections of one host as they pass their timeout; ends when none is
/// left idle (the next one to come back starts another) or the host is gone.
async fn sweep_idle(idle: Weak<Mutex<Idle>>) {
    loop {
        let next = {
            let Some(idle) = idle.upgrade() else { return };
            let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let timeout = idle.timeout;
            while idle.conns.front().is_some_and(|c| c.since + timeout <= now) {
                idle.conns.pop_front();
            }
            match idle.conns.front() {
                Some(oldest) => oldest.since + timeout,
                None => {
                    idle.sweeping = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(next).await;
    }
}
