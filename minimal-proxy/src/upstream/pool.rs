//! Per-host connection pools, kept in the host's state so they survive assignment changes.
//!
//! HTTP/1.1: a stack of idle keep-alive connections (the most recently used first); a
//! request takes one, or opens one within the cluster's `max_connections`, or waits for one
//! to come back; a connection comes back when its response body has been read to the end.
//! HTTP/2 (prior knowledge): one shared connection per host, multiplexed; opened by the
//! first request that needs it while the others wait for it.
//!
//! Why not hyper-util's pooled client: it keys pools by the URI's authority, so an HTTP/2
//! request could not carry the downstream `:authority` (as Envoy sends it) while going to
//! the host's address; and this pool knows the cluster's breakers and stats.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{net::TcpStream, sync::Notify};

use super::{
    Body, Error,
    circuit_breaker::{Active, Breakers, ConnectionGuard},
    host::HostState,
};

/// One host's pooled connections.
#[derive(Debug)]
pub(crate) struct HostPool {
    address: SocketAddr,
    /// Idle HTTP/1.1 connections, ready for a request.
    idle: Mutex<Vec<http1::SendRequest<Body>>>,
    /// The shared HTTP/2 connection.
    h2: Mutex<Option<http2::SendRequest<Body>>>,
    /// Held while an HTTP/2 connection is being opened, so only one is.
    h2_connecting: tokio::sync::Mutex<()>,
    /// Woken when a connection comes back idle or closes (a slot under `max_connections`).
    freed: Notify,
}

impl HostPool {
    pub fn new(address: SocketAddr) -> HostPool {
        HostPool {
            address,
            idle: Mutex::new(Vec::new()),
            h2: Mutex::new(None),
            h2_connecting: tokio::sync::Mutex::new(()),
            freed: Notify::new(),
        }
    }

    /// Wakes the requests waiting for a connection of this host.
    pub fn wake(&self) {
        self.freed.notify_waiters();
    }

    /// An idle connection ready for a request; closed ones met on the way are dropped.
    pub fn take_idle(&self) -> Option<http1::SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(sender) = idle.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    /// Puts a connection back once its response is over, or drops it if it closed. The
    /// request it carried (`active`) is released first, as Envoy frees a request's slot
    /// before its connection takes the next pending request: a waiter woken here then finds
    /// room under `max_requests`.
    pub async fn give_back(&self, mut sender: http1::SendRequest<Body>, active: Option<Active>) {
        let ready = sender.ready().await.is_ok();
        drop(active);
        if ready {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sender);
            self.wake();
        }
    }

    /// An HTTP/1.1 connection for one request: an idle one, a new one within the breakers, or
    /// the next one to come back.
    pub async fn h1(
        &self,
        breakers: &Arc<Breakers>,
        host: &Arc<HostState>,
        connect_timeout: Duration,
    ) -> Result<http1::SendRequest<Body>, Error> {
        let mut yielded = false;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a connection freed meanwhile is not missed.
            freed.as_mut().enable();
            if let Some(sender) = self.take_idle() {
                return Ok(sender);
            }
            if !yielded {
                // A response just read to the end frees its connection in a task that may
                // not have run yet (a client sending back to back): let it, then look again,
                // rather than open a connection too many.
                yielded = true;
                tokio::task::yield_now().await;
                continue;
            }
            if breakers.may_connect(host) {
                let (stream, guard) =
                    connect(self.address, connect_timeout, breakers, host).await?;
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
            breakers.stats.upstream_cx_overflow.inc();
            freed.await;
        }
    }

    /// The host's HTTP/2 connection, opened if there is none (or it closed).
    pub async fn h2(
        &self,
        breakers: &Arc<Breakers>,
        host: &Arc<HostState>,
        connect_timeout: Duration,
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
        let (stream, guard) = connect(self.address, connect_timeout, breakers, host).await?;
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

/// A TCP connection to `address` with `TCP_NODELAY`, counted from the attempt on (as Envoy
/// counts `upstream_cx_total`); failures counted in `upstream_cx_connect_fail` (and
/// `upstream_cx_connect_timeout`) and the host's `cx_connect_fail`.
pub(crate) async fn connect(
    address: SocketAddr,
    timeout: Duration,
    breakers: &Arc<Breakers>,
    host: &Arc<HostState>,
) -> Result<(TcpStream, ConnectionGuard), Error> {
    let guard = ConnectionGuard::new(breakers, host);
    let stats = &breakers.stats;
    let result = tokio::time::timeout(timeout, TcpStream::connect(address)).await;
    let error = match result {
        Ok(Ok(stream)) => {
            // Best effort: a socket that refuses the option still carries traffic.
            let _ = stream.set_nodelay(true);
            return Ok((stream, guard));
        }
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
