//! A cluster's shared core: its current [`HostSet`] (read lock-free by every request) and the
//! membership behind it (hosts by address with their kept state and health-check tasks),
//! changed under one lock by EDS/DNS assignments, health-check transitions and outlier
//! ejections, each of which rebuilds the host set and republishes it.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, atomic::Ordering},
};

use arc_swap::ArcSwap;
use tokio::{sync::watch, task::AbortHandle};

use crate::{
    config::{ClusterConfig, EndpointAddress, LoadAssignment},
    stats::ClusterStats,
};

use super::{
    circuit_breaker::Breakers,
    health,
    host::{Host, HostState},
    host_set::HostSet,
    outlier::{self, Detector},
};

/// Aborts a background task when dropped (the task dies with what owns it).
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Spawns `task` on the current Tokio runtime; without one (a cluster built outside the
/// proxy's runtime, in a synchronous test) background work is skipped with a warning.
pub(crate) fn spawn<F>(what: &str, task: F) -> Option<AbortOnDrop>
where
    F: Future<Output = ()> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Some(AbortOnDrop(handle.spawn(task).abort_handle())),
        Err(_) => {
            tracing::warn!("no Tokio runtime: {what} not started");
            None
        }
    }
}

/// What the cluster's requests and background tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Arc<ClusterConfig>,
    pub stats: Arc<ClusterStats>,
    pub breakers: Arc<Breakers>,
    pub host_set: ArcSwap<HostSet>,
    pub detector: Option<Detector>,
    /// The cluster's TLS (`UpstreamTlsContext`); `None`: plaintext.
    pub tls: Option<crate::tls::client::Connector>,
    membership: Mutex<Membership>,
    /// True once the endpoints are known and every one had its first health check.
    ready: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct Membership {
    hosts: Vec<Arc<Host>>,
    members: HashMap<SocketAddr, Member>,
    /// An assignment has been applied (EDS delivered, DNS answered, or static).
    assigned: bool,
    /// Hosts whose first health check has not completed.
    awaiting_first_check: HashSet<SocketAddr>,
}

/// One address's kept state and its health-check task (stopped when the member goes).
#[derive(Debug)]
struct Member {
    state: Arc<HostState>,
    _health_check: Option<AbortOnDrop>,
}

impl Shared {
    pub fn new(
        config: Arc<ClusterConfig>,
        stats: Arc<ClusterStats>,
        tls: Option<crate::tls::client::Connector>,
    ) -> Shared {
        Shared {
            tls,
            breakers: Arc::new(Breakers::new(config.circuit_breakers, stats.clone())),
            host_set: ArcSwap::from_pointee(HostSet::empty(&config)),
            detector: config.outlier_detection.map(Detector::new),
            membership: Mutex::new(Membership::default()),
            ready: watch::Sender::new(false),
            config,
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Membership> {
        self.membership.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the endpoints. Hosts whose address stays keep their state (health-check
    /// result, outlier state, counters, connections); new ones start health checks; removed
    /// ones stop them. Host names (only STRICT_DNS assignments carry them) are skipped: the
    /// DNS task resolves them first.
    pub fn apply_assignment(self: &Arc<Self>, assignment: &LoadAssignment) {
        let mut m = self.lock();
        let mut old = std::mem::take(&mut m.members);
        let mut members: HashMap<SocketAddr, Member> = HashMap::new();
        let mut hosts = Vec::new();
        for (locality, l) in assignment.localities.iter().enumerate() {
            for e in &l.endpoints {
                let EndpointAddress::Socket(address) = e.address else {
                    continue;
                };
                let member = members.entry(address).or_insert_with(|| {
                    old.remove(&address)
                        .unwrap_or_else(|| self.new_member(address, &mut m.awaiting_first_check))
                });
                hosts.push(Arc::new(Host {
                    address,
                    zone: l.zone.clone(),
                    locality,
                    // Envoy ignores locality weights without locality-weighted balancing.
                    locality_weight: l.weight.filter(|_| self.config.locality_weighted),
                    weight: e.weight.max(1),
                    labels: e.labels.clone(),
                    eds_health: e.health,
                    pending_removal: false,
                    state: member.state.clone(),
                }));
            }
        }
        // What is left in `old` is gone from the assignment. As in Envoy, a host still
        // passing active health checks stays, flagged, until it fails one.
        let health_checked = !self.config.health_checks.is_empty();
        for (address, member) in old {
            let passing = health_checked && !member.state.failed_active_hc.load(Ordering::Relaxed);
            match m.hosts.iter().find(|h| h.address == address) {
                Some(previous) if passing => {
                    hosts.push(Arc::new(previous.pending_removal()));
                    members.insert(address, member);
                }
                _ => {
                    m.awaiting_first_check.remove(&address);
                }
            }
        }
        let membership_changed = hosts.len() != m.hosts.len()
            || hosts
                .iter()
                .zip(&m.hosts)
                .any(|(a, b)| a.address != b.address);
        if membership_changed {
            self.stats.membership_change.inc();
        }
        m.members = members;
        m.hosts = hosts;
        m.assigned = true;
        self.rebuild(&m);
        self.check_ready(&m);
    }

    fn new_member(
        self: &Arc<Self>,
        address: SocketAddr,
        awaiting: &mut HashSet<SocketAddr>,
    ) -> Member {
        let check = self.config.health_checks.first();
        let state = Arc::new(HostState::new(address, check.is_some()));
        let task = check.and_then(|check| {
            awaiting.insert(address);
            health::spawn_session(Arc::downgrade(self), address, state.clone(), check.clone())
        });
        Member {
            state,
            _health_check: task,
        }
    }

    /// Rebuilds and publishes the host set, and recounts the membership gauges.
    fn rebuild(&self, m: &Membership) {
        let set = HostSet::build(&self.config, m.hosts.clone());
        let stats = &self.stats;
        stats.membership_total.set(set.hosts.len() as u64);
        stats.membership_healthy.set(set.healthy as u64);
        stats.membership_degraded.set(set.degraded as u64);
        stats.membership_excluded.set(set.excluded as u64);
        let states = || m.members.values().map(|member| &member.state);
        stats
            .outlier_detection_ejections_active
            .set(states().filter(|s| s.outlier.is_ejected()).count() as u64);
        if !self.config.health_checks.is_empty() {
            let passing = states().filter(|s| !s.failed_active_hc.load(Ordering::Relaxed));
            stats.health_check_healthy.set(passing.count() as u64);
        }
        if let Some(subsets) = &set.subsets {
            let old = self.host_set.load();
            let old_keys: HashSet<_> = old.subsets.iter().flat_map(|s| s.keys()).collect();
            let new_keys: HashSet<_> = subsets.keys().collect();
            let created = new_keys.difference(&old_keys).count();
            let removed = old_keys.difference(&new_keys).count();
            stats.lb_subsets_created.add(created as u64);
            stats.lb_subsets_removed.add(removed as u64);
            stats.lb_subsets_active.set(new_keys.len() as u64);
        }
        self.host_set.store(Arc::new(set));
    }

    fn check_ready(&self, m: &Membership) {
        if m.assigned && m.awaiting_first_check.is_empty() {
            self.ready
                .send_if_modified(|ready| !std::mem::replace(ready, true));
        }
    }

    /// Resolves once the endpoints are known and each had its first health check.
    pub async fn ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// A host's health-check session finished a check: `changed` when the host's state
    /// flipped, `passed` when this check passed.
    pub fn health_checked(
        &self,
        address: SocketAddr,
        state: &Arc<HostState>,
        changed: bool,
        passed: bool,
    ) {
        let mut m = self.lock();
        let member = m
            .members
            .get(&address)
            .is_some_and(|member| Arc::ptr_eq(&member.state, state));
        if !member {
            return;
        }
        m.awaiting_first_check.remove(&address);
        let failed = state.failed_active_hc.load(Ordering::Relaxed);
        if changed
            && failed
            && m.hosts
                .iter()
                .any(|h| h.address == address && h.pending_removal)
        {
            // Gone from the assignment and now failing: removed at last.
            m.hosts.retain(|h| h.address != address);
            m.members.remove(&address);
            self.stats.membership_change.inc();
        }
        // A passing active check returns a host that outlier detection ejected (Envoy's
        // `successful_active_health_check_uneject_host`, true by default).
        let unejected = passed && outlier::uneject(&state.outlier);
        if changed || unejected {
            self.rebuild(&m);
        }
        self.check_ready(&m);
    }

    /// A host reached its run of consecutive 5xx: eject it if the cluster allows.
    pub fn on_consecutive_5xx(&self, host: &Host) {
        let Some(detector) = &self.detector else {
            return;
        };
        let m = self.lock();
        let member = m
            .members
            .get(&host.address)
            .is_some_and(|member| Arc::ptr_eq(&member.state, &host.state));
        if !member {
            return;
        }
        let ejected = m
            .members
            .values()
            .filter(|member| member.state.outlier.is_ejected())
            .count();
        if detector.on_consecutive_5xx(&host.state.outlier, ejected, m.members.len(), &self.stats) {
            self.rebuild(&m);
        }
    }

    /// Outlier detection's periodic sweep: returns hosts whose ejection is over.
    pub fn outlier_sweep(&self) {
        let Some(detector) = &self.detector else {
            return;
        };
        let m = self.lock();
        if detector.sweep(m.members.values().map(|member| &member.state.outlier)) {
            self.rebuild(&m);
        }
    }

    /// Every host as the admin `/clusters` page shows it.
    pub fn host_statuses(&self) -> Vec<super::HostStatus> {
        self.host_set
            .load()
            .hosts
            .iter()
            .map(|h| h.status())
            .collect()
    }
}
