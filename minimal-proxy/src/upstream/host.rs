//! One endpoint of a cluster: what the assignment says about it ([`Host`], replaced when the
//! assignment changes) and what the proxy learns about it ([`HostState`]: health-check result,
//! outlier state, counters, pooled connections), kept for as long as its address stays.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use crate::{
    config::EndpointHealth,
    stats::{Counter, Gauge},
};

use super::{outlier::OutlierState, pool::HostPool};

/// One endpoint of a cluster, with its live state (health, outlier ejection, active requests).
#[derive(Debug)]
pub struct Host {
    pub address: SocketAddr,
    /// The locality's zone (admin `/clusters`).
    pub(crate) zone: String,
    /// Index of the locality in the assignment: groups hosts for locality-weighted picks.
    pub(crate) locality: usize,
    /// The locality's weight, when the assignment gives it one and the cluster balances by
    /// locality weight (`None` otherwise).
    pub(crate) locality_weight: Option<u32>,
    /// The endpoint's load-balancing weight (at least 1).
    pub(crate) weight: u32,
    /// `envoy.lb` labels, for subsets.
    pub(crate) labels: BTreeMap<String, String>,
    /// What the control plane says of the endpoint's health.
    pub(crate) eds_health: EndpointHealth,
    /// Gone from the assignment but kept while it passes active health checks (Envoy's
    /// `pending_dynamic_removal`).
    pub(crate) pending_removal: bool,
    pub(crate) state: Arc<HostState>,
}

/// Envoy's coarse health of a host: what load balancing sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Host {
    pub fn zone(&self) -> &str {
        &self.zone
    }

    pub fn weight(&self) -> u32 {
        self.weight
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The same host, flagged as gone from the assignment.
    pub(crate) fn pending_removal(&self) -> Host {
        Host {
            address: self.address,
            zone: self.zone.clone(),
            locality: self.locality,
            locality_weight: self.locality_weight,
            weight: self.weight,
            labels: self.labels.clone(),
            eds_health: self.eds_health,
            pending_removal: true,
            state: self.state.clone(),
        }
    }

    /// Unhealthy when the control plane says so (or drains it), when active health checks
    /// fail, or while outlier detection ejects it; degraded when the control plane says so.
    pub(crate) fn health(&self) -> Health {
        let failed = self.state.failed_active_hc.load(Ordering::Relaxed)
            || self.state.outlier.is_ejected()
            || matches!(
                self.eds_health,
                EndpointHealth::Unhealthy | EndpointHealth::Draining
            );
        if failed {
            Health::Unhealthy
        } else if self.eds_health == EndpointHealth::Degraded {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }

    /// Draining hosts do not count when deciding whether the cluster is in panic (Envoy's
    /// "excluded" hosts).
    pub(crate) fn excluded(&self) -> bool {
        self.eds_health == EndpointHealth::Draining
    }

    /// Requests in flight to this host (least-request balancing).
    pub(crate) fn active_requests(&self) -> u64 {
        self.state.stats.rq_active.get()
    }

    pub(crate) fn status(&self) -> HostStatus {
        let s = &self.state.stats;
        HostStatus {
            address: self.address,
            zone: self.zone.clone(),
            weight: self.weight,
            eds_health: self.eds_health,
            failed_active_health_check: self.state.failed_active_hc.load(Ordering::Relaxed),
            outlier_ejected: self.state.outlier.is_ejected(),
            pending_dynamic_removal: self.pending_removal,
            rq_active: s.rq_active.get(),
            rq_total: s.rq_total.get(),
            rq_error: s.rq_error.get(),
            rq_success: s.rq_success.get(),
            rq_timeout: s.rq_timeout.get(),
            cx_active: s.cx_active.get(),
            cx_total: s.cx_total.get(),
            cx_connect_fail: s.cx_connect_fail.get(),
        }
    }
}

/// What the proxy knows of an address, kept across assignment changes while the address stays.
#[derive(Debug)]
pub(crate) struct HostState {
    /// Set while active health checks say the host is down (and from the start, until its
    /// first check passes, as Envoy does).
    pub failed_active_hc: AtomicBool,
    pub outlier: OutlierState,
    pub stats: HostStats,
    pub pool: HostPool,
}

impl HostState {
    pub fn new(address: SocketAddr, health_checked: bool) -> HostState {
        HostState {
            failed_active_hc: AtomicBool::new(health_checked),
            outlier: OutlierState::default(),
            stats: HostStats::default(),
            pool: HostPool::new(address),
        }
    }
}

/// Envoy's per-host counters (admin `/clusters`).
#[derive(Debug, Default)]
pub(crate) struct HostStats {
    pub rq_active: Gauge,
    pub rq_total: Counter,
    pub rq_error: Counter,
    pub rq_success: Counter,
    pub rq_timeout: Counter,
    pub cx_active: Gauge,
    pub cx_total: Counter,
    pub cx_connect_fail: Counter,
}

/// One host as the admin `/clusters` page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    pub address: SocketAddr,
    pub zone: String,
    pub weight: u32,
    pub eds_health: EndpointHealth,
    pub failed_active_health_check: bool,
    pub outlier_ejected: bool,
    /// Gone from the assignment, kept while it passes active health checks.
    pub pending_dynamic_removal: bool,
    pub rq_active: u64,
    pub rq_total: u64,
    pub rq_error: u64,
    pub rq_success: u64,
    pub rq_timeout: u64,
    pub cx_active: u64,
    pub cx_total: u64,
    pub cx_connect_fail: u64,
}

impl HostStatus {
    /// The `health_flags` value Envoy's `/clusters` prints: `healthy`, or the failing flags in
    /// Envoy's order (`/failed_active_hc/failed_outlier_check/failed_eds_health/...`).
    pub fn health_flags(&self) -> String {
        let mut flags = String::new();
        if self.failed_active_health_check {
            flags.push_str("/failed_active_hc");
        }
        if self.outlier_ejected {
            flags.push_str("/failed_outlier_check");
        }
        match self.eds_health {
            EndpointHealth::Unhealthy => flags.push_str("/failed_eds_health"),
            EndpointHealth::Degraded => flags.push_str("/degraded_eds_health"),
            EndpointHealth::Draining | EndpointHealth::Healthy => {}
        }
        if self.pending_dynamic_removal {
            flags.push_str("/pending_dynamic_removal");
        }
        if self.eds_health == EndpointHealth::Draining {
            flags.push_str("/eds_status_draining");
        }
        if flags.is_empty() {
            flags.push_str("healthy");
        }
        flags
    }
}
