//! Circuit breakers (Envoy's default-priority thresholds): counts kept in the cluster's stats
//! gauges (`upstream_rq_active`, `upstream_rq_pending_active`, `upstream_cx_active`) plus
//! active retries, and RAII guards that release them whatever way a request ends.
//!
//! As in Envoy the checks are "is there room now" and the increments follow, so concurrent
//! requests may overshoot a limit by a few; Envoy's own counts are per-process atomics
//! checked the same way.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use crate::{
    config::CircuitBreakers,
    stats::{ClusterStats, Gauge},
};

use super::{Error, host::HostState};

/// A cluster's thresholds with the counts they apply to.
#[derive(Debug)]
pub(crate) struct Breakers {
    pub limits: CircuitBreakers,
    pub stats: Arc<ClusterStats>,
    /// Retries in flight (`max_retries`).
    retries: AtomicU64,
}

/// `open` is 1 while `count` is at or over `max` (Envoy's `circuit_breakers.default.*_open`).
fn set_open(open: &Gauge, count: u64, max: u32) {
    let v = u64::from(count >= u64::from(max));
    if open.get() != v {
        open.set(v);
    }
}

impl Breakers {
    pub fn new(limits: CircuitBreakers, stats: Arc<ClusterStats>) -> Breakers {
        Breakers {
            limits,
            stats,
            retries: AtomicU64::new(0),
        }
    }

    /// `max_connections`: may this cluster open another connection? A host with no
    /// connection may always open one (Envoy does the same, so that a host's pending requests
    /// are never stranded by other hosts' connections).
    pub fn may_connect(&self, host: &HostState) -> bool {
        self.stats.upstream_cx_active.get() < u64::from(self.limits.max_connections)
            || host.stats.cx_active.get() == 0
    }

    /// `max_retries`: a retry slot, or `None` (counted in `upstream_rq_retry_overflow`).
    pub fn try_retry(self: &Arc<Self>) -> Option<RetryGuard> {
        let max = u64::from(self.limits.max_retries);
        let taken = self
            .retries
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match taken {
            Ok(n) => {
                set_open(
                    &self.stats.circuit_breakers_rq_retry_open,
                    n + 1,
                    self.limits.max_retries,
                );
                Some(RetryGuard {
                    breakers: self.clone(),
                })
            }
            Err(_) => {
                self.stats.upstream_rq_retry_overflow.inc();
                set_open(
                    &self.stats.circuit_breakers_rq_retry_open,
                    max,
                    self.limits.max_retries,
                );
                None
            }
        }
    }
}

/// A retry in flight, counted against `max_retries` until dropped.
#[derive(Debug)]
pub struct RetryGuard {
    breakers: Arc<Breakers>,
}

impl Drop for RetryGuard {
    fn drop(&mut self) {
        let b = &self.breakers;
        let left = b.retries.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        set_open(
            &b.stats.circuit_breakers_rq_retry_open,
            left,
            b.limits.max_retries,
        );
    }
}

/// A request waiting for a connection, counted in `upstream_rq_pending_active` until dropped.
#[derive(Debug)]
pub(crate) struct Pending<'a> {
    breakers: &'a Breakers,
}

impl<'a> Pending<'a> {
    /// `max_pending_requests`: refuses to queue another request while that many wait.
    pub fn try_new(breakers: &'a Breakers) -> Result<Pending<'a>, Error> {
        let stats = &breakers.stats;
        let max = breakers.limits.max_pending_requests;
        if stats.upstream_rq_pending_active.get() >= u64::from(max) {
            stats.upstream_rq_pending_overflow.inc();
            set_open(&stats.circuit_breakers_rq_pending_open, 1, 1);
            return Err(Error::Overflow("max_pending_requests"));
        }
        stats.upstream_rq_pending_total.inc();
        stats.upstream_rq_pending_active.inc();
        set_open(
            &stats.circuit_breakers_rq_pending_open,
            stats.upstream_rq_pending_active.get(),
            max,
        );
        Ok(Pending { breakers })
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let stats = &self.breakers.stats;
        stats.upstream_rq_pending_active.dec();
        set_open(
            &stats.circuit_breakers_rq_pending_open,
            stats.upstream_rq_pending_active.get(),
            self.breakers.limits.max_pending_requests,
        );
    }
}

/// A request attached to a connection: `upstream_rq_total` and the host's `rq_total` are
/// counted at creation, `upstream_rq_active` and the host's `rq_active` until dropped.
#[derive(Debug)]
pub(crate) struct Active {
    breakers: Arc<Breakers>,
    host: Arc<HostState>,
}

impl Active {
    /// `max_requests`: attaches a request to the connection it got, or refuses it while that
    /// many are active (counted in `upstream_rq_pending_overflow`, as Envoy counts it).
    ///
    /// Envoy checks this limit when a request is attached to a connection, not when it
    /// arrives: a request that finds no free connection first waits as pending (within
    /// `max_pending_requests`) and is checked once a connection takes it. Checked on
    /// arrival, a request waiting for the one connection of `max_connections: 1` would be
    /// refused although Envoy queues it.
    pub fn attach(breakers: &Arc<Breakers>, host: &Arc<HostState>) -> Result<Active, Error> {
        let stats = &breakers.stats;
        if stats.upstream_rq_active.get() >= u64::from(breakers.limits.max_requests) {
            stats.upstream_rq_pending_overflow.inc();
            set_open(&stats.circuit_breakers_rq_open, 1, 1);
            return Err(Error::Overflow("max_requests"));
        }
        Ok(Active::new(breakers, host))
    }

    /// Counts a request without checking `max_requests` (the TCP proxy's connection, which
    /// `max_connections` already bounds).
    pub fn new(breakers: &Arc<Breakers>, host: &Arc<HostState>) -> Active {
        let stats = &breakers.stats;
        stats.upstream_rq_total.inc();
        stats.upstream_rq_active.inc();
        host.stats.rq_total.inc();
        host.stats.rq_active.inc();
        set_open(
            &stats.circuit_breakers_rq_open,
            stats.upstream_rq_active.get(),
            breakers.limits.max_requests,
        );
        Active {
            breakers: breakers.clone(),
            host: host.clone(),
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let stats = &self.breakers.stats;
        stats.upstream_rq_active.dec();
        self.host.stats.rq_active.dec();
        set_open(
            &stats.circuit_breakers_rq_open,
            stats.upstream_rq_active.get(),
            self.breakers.limits.max_requests,
        );
    }
}

/// Counts an open upstream connection against `max_connections` until dropped.
#[derive(Debug)]
pub struct ConnectionGuard {
    breakers: Arc<Breakers>,
    host: Arc<HostState>,
    /// The TCP proxy's connection also counts as an active request (as in Envoy's TCP pool).
    _request: Option<Active>,
}

impl ConnectionGuard {
    /// Counts a connection being opened (`upstream_cx_total`, `upstream_cx_active`, and the
    /// host's `cx_total`, `cx_active`).
    pub(crate) fn new(breakers: &Arc<Breakers>, host: &Arc<HostState>) -> ConnectionGuard {
        let stats = &breakers.stats;
        stats.upstream_cx_total.inc();
        stats.upstream_cx_active.inc();
        host.stats.cx_total.inc();
        host.stats.cx_active.inc();
        set_open(
            &stats.circuit_breakers_cx_open,
            stats.upstream_cx_active.get(),
            breakers.limits.max_connections,
        );
        ConnectionGuard {
            breakers: breakers.clone(),
            host: host.clone(),
            _request: None,
        }
    }

    /// Also holds `request` active for as long as the connection.
    pub(crate) fn with_request(mut self, request: Active) -> ConnectionGuard {
        self._request = Some(request);
        self
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let stats = &self.breakers.stats;
        stats.upstream_cx_active.dec();
        stats.upstream_cx_destroy.inc();
        self.host.stats.cx_active.dec();
        set_open(
            &stats.circuit_breakers_cx_open,
            stats.upstream_cx_active.get(),
            self.breakers.limits.max_connections,
        );
        // A slot is free: requests of this host waiting for a connection may open one.
        self.host.pool.wake();
    }
}
