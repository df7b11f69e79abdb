//! Warming and initialisation, as Envoy does them. Pure: the time is passed in.
//!
//! - A new or changed cluster becomes active once its assignment is there, a listener once
//!   its route configurations are, and either once the secrets its TLS names are; either becomes active anyway at its deadline
//!   (`initial_fetch_timeout`). Until then the previous version, if any, keeps serving.
//! - Initialisation (what `/ready` waits for) goes as Envoy's init manager: clusters first
//!   (the first CDS response, or its timeout, and every cluster warmed), then listeners (LDS
//!   is only subscribed then; its first response, or its timeout, and every listener warmed).

use std::time::{Duration, Instant};

use super::store::{
    Entry, Store, cluster_secret_names, eds_name, listener_secret_names, rds_names,
};
use crate::config::ListenerConfig;

/// Promotes every warming cluster and listener whose dependency arrived or whose deadline
/// passed. Returns the listeners replaced (name, previous active version), so a listener the
/// listener manager then refuses can be put back.
pub fn settle(store: &mut Store, now: Instant) -> Vec<(String, Option<Entry<ListenerConfig>>)> {
    let due = |deadline: Option<Instant>| deadline.is_some_and(|d| d <= now);
    let assignments = &store.assignments;
    let secrets = &store.secrets;
    for slot in store.clusters.values_mut() {
        let Some(w) = &slot.warming else { continue };
        let ready = eds_name(&w.entry.config).is_none_or(|n| assignments.contains_key(&n))
            && cluster_secret_names(&w.entry.config).all(|n| secrets.contains_key(n));
        if ready || due(w.deadline) {
            slot.active = slot.warming.take().map(|w| w.entry);
        }
    }
    let routes = &store.routes;
    let mut replaced = Vec::new();
    for (name, slot) in store.listeners.iter_mut() {
        let Some(w) = &slot.warming else { continue };
        let ready = rds_names(&w.entry.config).all(|n| routes.contains_key(n))
            && listener_secret_names(&w.entry.config).all(|n| secrets.contains_key(n));
        if ready || due(w.deadline) {
            let previous =
                std::mem::replace(&mut slot.active, slot.warming.take().map(|w| w.entry));
            replaced.push((name.clone(), previous));
        }
    }
    replaced
}

/// Where initialisation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the first CDS response and its clusters to warm.
    Clusters,
    /// Waiting for the first LDS response and its listeners to warm.
    Listeners,
    /// Initialised: `/ready` answers `LIVE`.
    Done,
}

/// The proxy's initialisation.
#[derive(Debug)]
pub struct Init {
    phase: Phase,
    /// The current phase's first response arrived (or it has none to wait for).
    fetched: bool,
    /// When the current phase stops waiting for its first response.
    deadline: Option<Instant>,
    /// LDS's `initial_fetch_timeout`, when LDS is configured.
    lds: Option<Option<Duration>>,
}

impl Init {
    /// `cds`/`lds`: `Some(timeout)` when the type is configured (`timeout` `None`: forever).
    pub fn new(cds: Option<Option<Duration>>, lds: Option<Option<Duration>>, now: Instant) -> Init {
        let mut init = Init {
            phase: Phase::Clusters,
            fetched: cds.is_none(),
            deadline: cds.flatten().map(|t| now + t),
            lds,
        };
        if cds.is_none() {
            init.enter_listeners(now);
        }
        init
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn ready(&self) -> bool {
        self.phase == Phase::Done
    }

    /// When the current phase gives up waiting for its first response.
    pub fn deadline(&self) -> Option<Instant> {
        if self.fetched { None } else { self.deadline }
    }

    /// A response (accepted or not, as in Envoy) arrived for `phase`'s type.
    pub fn fetched(&mut self, phase: Phase) {
        if self.phase == phase {
            self.fetched = true;
        }
    }

    /// Moves on as far as the store allows. Returns true when the listeners phase began with
    /// LDS configured: the caller then subscribes to LDS.
    pub fn advance(&mut self, store: &Store, now: Instant) -> bool {
        let mut start_lds = false;
        loop {
            let waited = self.fetched || self.deadline.is_some_and(|d| d <= now);
            let warm = match self.phase {
                Phase::Clusters => !store.clusters_warming(),
                Phase::Listeners => !store.listeners_warming(),
                Phase::Done => return start_lds,
            };
            if !(waited && warm) {
                return start_lds;
            }
            match self.phase {
                Phase::Clusters => start_lds |= self.enter_listeners(now),
                Phase::Listeners | Phase::Done => self.phase = Phase::Done,
            }
        }
    }

    fn enter_listeners(&mut self, now: Instant) -> bool {
        self.phase = Phase::Listeners;
        self.fetched = self.lds.is_none();
        self.deadline = self.lds.flatten().map(|t| now + t);
        self.lds.is_some()
    }
}
