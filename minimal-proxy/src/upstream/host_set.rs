//! The immutable picture a request picks from: every host, split by health into Envoy's
//! healthy / degraded / all tiers with their load balancers, the share of picks each tier
//! gets, panic mode, and the subsets. Rebuilt whole when endpoints or health change and
//! published with arc-swap; a pick never locks.
//!
//! Envoy's rules for one priority level (the only one implemented): health is
//! `min(100, 140 × healthy / hosts)` (overprovisioning factor 1.4), the same for degraded;
//! healthy hosts take that share of the load and degraded ones the rest; when fewer than 50 %
//! of the (non-draining) hosts are healthy or degraded, the cluster is in panic and every host
//! takes traffic whatever its health (`lb_healthy_panic`). With locality weights, a locality's
//! share is its weight scaled by `min(1, 1.4 × its available hosts / its hosts)`, then split
//! among its hosts by host weight.

use std::{collections::HashMap, sync::Arc};

use crate::{
    config::{ClusterConfig, LbPolicy, SubsetFallback},
    stats::ClusterStats,
};

use super::{
    LbContext,
    host::{Health, Host},
    lb::{Lb, random},
    subset::{Choice, Subsets},
};

/// Envoy's default overprovisioning factor, in percent.
const OVERPROVISIONING: u64 = 140;
/// Envoy's default `healthy_panic_threshold`, in percent.
const PANIC_THRESHOLD: f64 = 50.0;

/// Every host of the cluster, ready to pick from.
#[derive(Debug)]
pub(crate) struct HostSet {
    pub hosts: Vec<Arc<Host>>,
    main: Tiers,
    pub subsets: Option<Subsets>,
    pub healthy: usize,
    pub degraded: usize,
    pub excluded: usize,
}

impl HostSet {
    pub fn empty(config: &ClusterConfig) -> HostSet {
        HostSet::build(config, Vec::new())
    }

    pub fn build(config: &ClusterConfig, hosts: Vec<Arc<Host>>) -> HostSet {
        let main = Tiers::build(&config.lb_policy, &hosts, true);
        let subsets = config
            .subsets
            .as_ref()
            .map(|s| Subsets::build(s, &config.lb_policy, &hosts));
        let count = |h: Health| hosts.iter().filter(|x| x.health() == h).count();
        HostSet {
            healthy: count(Health::Healthy),
            degraded: count(Health::Degraded),
            excluded: hosts.iter().filter(|h| h.excluded()).count(),
            main,
            subsets,
            hosts,
        }
    }

    /// Picks a host for one request (see [`LbContext`]); `None` when there is none to pick.
    pub fn select(&self, ctx: &LbContext, stats: &ClusterStats) -> Option<Arc<Host>> {
        let tiers = match &self.subsets {
            None => &self.main,
            Some(subsets) => match subsets.choose(&ctx.metadata_match) {
                Choice::Subset(tiers) => {
                    stats.lb_subsets_selected.inc();
                    tiers
                }
                Choice::Fallback(SubsetFallback::AnyEndpoint) => {
                    stats.lb_subsets_fallback.inc();
                    &self.main
                }
                Choice::Fallback(SubsetFallback::NoFallback) => return None,
            },
        };
        if tiers.panic {
            stats.lb_healthy_panic.inc();
        }
        let mut host = tiers.pick(ctx.hash, 0)?;
        if ctx.previous.contains(&host.address) {
            // One more try for another host, as Envoy's host selection retry does.
            if let Some(other) = tiers.pick(ctx.hash, 1) {
                host = other;
            }
        }
        Some(host.clone())
    }
}

/// The load balancers of one host list (the cluster, or one subset) by health.
#[derive(Debug)]
pub(crate) struct Tiers {
    healthy: Lb,
    degraded: Lb,
    /// Every host: used in panic mode only.
    all: Lb,
    /// Percent of picks that go to the healthy tier (the rest to the degraded one).
    healthy_load: u64,
    panic: bool,
}

impl Tiers {
    /// `localities`: whether the hosts' locality weights apply (subsets ignore them, as
    /// Envoy's do without `locality_weight_aware`, which the proxy refuses).
    pub fn build(policy: &LbPolicy, hosts: &[Arc<Host>], localities: bool) -> Tiers {
        let of = |h: Health| -> Vec<Arc<Host>> {
            hosts.iter().filter(|x| x.health() == h).cloned().collect()
        };
        let (healthy, degraded) = (of(Health::Healthy), of(Health::Degraded));
        let counted = (hosts.len() - hosts.iter().filter(|h| h.excluded()).count()) as u64;
        let availability = |n: usize| {
            (OVERPROVISIONING * n as u64)
                .checked_div(counted)
                .map_or(0, |a| a.min(100))
        };
        let (h_avail, d_avail) = (availability(healthy.len()), availability(degraded.len()));
        let normalized = (h_avail + d_avail).min(100);
        let percent = |n: usize| {
            if counted == 0 {
                0.0
            } else {
                100.0 * n as f64 / counted as f64
            }
        };
        let panic =
            normalized != 100 && percent(healthy.len()) + percent(degraded.len()) < PANIC_THRESHOLD;
        let healthy_load = healthy_share(h_avail, d_avail);
        let empty = || Lb::new(policy, Vec::new());
        if panic {
            let all = hosts
                .iter()
                .map(|h| (h.clone(), f64::from(h.weight)))
                .collect();
            return Tiers {
                healthy: empty(),
                degraded: empty(),
                all: Lb::new(policy, all),
                healthy_load,
                panic,
            };
        }
        let lb = |eligible: &[Arc<Host>], load: bool| {
            if load {
                Lb::new(policy, weighted(hosts, eligible, localities))
            } else {
                empty()
            }
        };
        Tiers {
            healthy: lb(&healthy, healthy_load > 0),
            degraded: lb(&degraded, healthy_load < 100),
            all: empty(),
            healthy_load,
            panic,
        }
    }

    fn pick(&self, hash: Option<u64>, attempt: u32) -> Option<&Arc<Host>> {
        if self.panic {
            return self.all.pick(hash, attempt);
        }
        let healthy = match self.healthy_load {
            100.. => true,
            0 => false,
            load => hash.unwrap_or_else(random) % 100 < load,
        };
        if healthy {
            self.healthy.pick(hash, attempt)
        } else {
            self.degraded.pick(hash, attempt)
        }
    }
}

/// The percent of picks for healthy hosts given the healthy and degraded availabilities
/// (Envoy's load split for one priority: shares normalised to the total availability, the
/// rounding remainder to the healthy hosts when there are any).
fn healthy_share(healthy: u64, degraded: u64) -> u64 {
    let normalized = (healthy + degraded).min(100);
    let Some(h) = (healthy * 100).checked_div(normalized) else {
        return 100;
    };
    let h = h.min(100);
    let d = (degraded * 100 / normalized).min(100 - h);
    if healthy > 0 { 100 - d } else { h }
}

/// Effective weights of `eligible` (a subset of `hosts`): the host weight, or with locality
/// weights (when `localities`) the locality's availability-scaled share split by host weight.
fn weighted(
    hosts: &[Arc<Host>],
    eligible: &[Arc<Host>],
    localities: bool,
) -> Vec<(Arc<Host>, f64)> {
    let plain = || {
        eligible
            .iter()
            .map(|h| (h.clone(), f64::from(h.weight)))
            .collect()
    };
    if !localities || !hosts.iter().any(|h| h.locality_weight.is_some()) {
        return plain();
    }
    // Per locality: (hosts, eligible hosts, eligible weight sum, locality weight).
    let mut localities: HashMap<usize, (usize, usize, f64, f64)> = HashMap::new();
    for h in hosts {
        let entry = localities.entry(h.locality).or_default();
        entry.0 += 1;
        entry.3 = f64::from(h.locality_weight.unwrap_or(0));
    }
    for h in eligible {
        let entry = localities.entry(h.locality).or_default();
        entry.1 += 1;
        entry.2 += f64::from(h.weight);
    }
    let share = |l: &(usize, usize, f64, f64)| {
        let availability = (OVERPROVISIONING as f64 / 100.0 * l.1 as f64 / l.0 as f64).min(1.0);
        l.3 * availability
    };
    if localities.values().map(share).sum::<f64>() <= 0.0 {
        // No locality may take traffic: Envoy then balances over the hosts alone.
        return plain();
    }
    eligible
        .iter()
        .map(|h| {
            let l = &localities[&h.locality];
            (h.clone(), share(l) * f64::from(h.weight) / l.2)
        })
        .collect()
}
