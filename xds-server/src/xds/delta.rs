//! Incremental (delta) xDS as a pure state machine.
//!
//! Per type it tracks what the proxy holds (name → version): seeded from
//! `initial_resource_versions` on (re)connect, so nothing unchanged is sent again, and updated
//! with every response. Subscription changes arrive as differences and are applied even when
//! the request's nonce is stale (delta requests are not repeated in full). A NACK is recorded;
//! the rejected version is not re-sent until it changes. Deletions go in `removed_resources`,
//! after all additions on ADS (make-before-break).

#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::Arc,
};

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;

use super::{
    Error, Feedback, MAX_NAMES, Nonces, Step, resolve_type_url,
    type_map::{Held, NameSet, TypeMap},
    warming::{Wait, Warming},
    wire::DeltaResponse,
};
use xds_core::TypeUrl;

use crate::translate::{Encoded, Resources, set_version};

/// How many nonces per type are remembered for matching NACKs to responses.
const RECENT_NONCES: usize = 8;

#[derive(Debug)]
pub struct Delta {
    only: Option<TypeUrl>,
    types: TypeMap<TypeState>,
    resources: Arc<Resources>,
    /// Clusters new to the proxy whose assignments it has not acknowledged yet; listener and
    /// route updates wait meanwhile (see `Sotw` for why).
    hold: Warming,
    nonces: Nonces,
    /// After a cluster changes, its assignment is sent again (Envoy on ADS waits for it);
    /// off for a proxy that re-warms from the assignment it holds.
    rewarm_resend: bool,
}

#[derive(Debug, Default)]
struct TypeState {
    subscribed: bool,
    wildcard: bool,
    names: NameSet,
    /// What the proxy holds: name → version.
    known: Held,
    /// The last few responses sent for this type, oldest first: their nonces, and what they
    /// updated (name, version), so a NACK is pinned on what it rejected.
    recent: VecDeque<(String, Arc<[Arc<Encoded>]>)>,
    /// Versions the proxy rejected, by name: never sent again (not even by the forced
    /// assignment resend after a cluster push) until they change.
    rejected: BTreeMap<String, String>,
    /// A response went out for this type on this stream (a first wildcard subscription is
    /// answered even when empty, possibly only once a warming wait ends).
    answered: bool,
}

impl TypeState {
    fn rejected(&self, e: &Encoded) -> bool {
        self.rejected.get(&e.name) == Some(&e.version)
    }
}

/// What one response carries.
struct Change {
    updated: Vec<Arc<Encoded>>,
    removed: Vec<String>,
}

impl Delta {
    pub fn new(only: Option<TypeUrl>, resources: Arc<Resources>) -> Self {
        Self {
            only,
            types: TypeMap::default(),
            resources,
            hold: Warming::default(),
            nonces: Nonces::default(),
            rewarm_resend: true,
        }
    }

    /// For a proxy that re-warms a changed cluster from the assignment it holds
    /// ([`xds_core::node::REWARMS_FROM_HELD_ASSIGNMENTS`]): no second response per change.
    pub fn without_rewarm_resend(mut self) -> Self {
        self.rewarm_resend = false;
        self
    }

    pub fn on_request(
        &mut self,
        req: &DeltaDiscoveryRequest,
    ) -> Result<Step<DeltaResponse>, Error> {
        let type_url = resolve_type_url(&req.type_url, self.only.as_ref())?;
        let mut step = Step::default();
        let state = self.types.entry(type_url.clone());
        let position = state
            .recent
            .iter()
            .position(|(n, _)| *n == req.response_nonce);
        let latest = position.is_some() && position == state.recent.len().checked_sub(1);
        match (&req.error_detail, position) {
            // One step may send a type twice (updates, then removals): a NACK of the earlier
            // response counts as much as one of the latest.
            (Some(status), Some(i)) => {
                let (_, updated) = &state.recent[i];
                let pins = updated.iter().map(|e| (e.name.clone(), e.version.clone()));
                state.rejected.extend(pins);
                step.feedback.push(Feedback::Nack {
                    type_url: type_url.to_string(),
                    message: status.message.clone(),
                });
                step.feedback.push(Feedback::Verdict {
                    type_url: type_url.to_string(),
                    items: updated.clone(),
                    rejected: Some(status.message.clone()),
                });
            }
            (None, Some(i)) if latest => {
                step.feedback.push(Feedback::Ack {
                    type_url: type_url.to_string(),
                    version: known_version(&state.known),
                });
                step.feedback.push(Feedback::Verdict {
                    type_url: type_url.to_string(),
                    items: state.recent[i].1.clone(),
                    rejected: None,
                });
            }
            // The ACK of an earlier response: the latest is still unanswered.
            _ => {}
        }
        // The ACK or NACK is about what was sent before this request: settle warming first.
        if let Some(f) = step.feedback.first().cloned() {
            self.maybe_release(&f, &mut step);
        }
        let state = self.types.entry(type_url.clone());
        let first = !state.subscribed;
        let resumed = first && !req.initial_resource_versions.is_empty();
        if first {
            state.subscribed = true;
            state.known.extend(req.initial_resource_versions.clone());
            state.wildcard = req.resource_names_subscribe.is_empty() && type_url.wildcard_capable();
        }
        let mut newly = BTreeSet::new();
        let mut capped = false;
        for name in &req.resource_names_subscribe {
            if name == "*" {
                state.wildcard = true;
                continue;
            }
            if !first {
                // Asked for again: the proxy may have dropped it, so it is sent even though we
                // think it holds it (a first request's `initial_resource_versions` says what
                // it really holds).
                state.known.remove(name);
            }
            if state.names.contains(name) {
                continue;
            }
            if state.names.len() >= MAX_NAMES {
                capped = true;
                continue;
            }
            state.names.insert(name.clone());
            newly.insert(name.clone());
        }
        if capped {
            step.feedback.push(Feedback::Capped {
                type_url: type_url.to_string(),
                asked: state.names.len() + req.resource_names_subscribe.len() - newly.len(),
            });
        }
        for name in &req.resource_names_unsubscribe {
            if name == "*" {
                state.wildcard = false;
            } else {
                state.names.remove(name);
                state.known.remove(name);
            }
        }
        let mut change = diff(&self.resources, &type_url, state, &BTreeSet::new());
        if type_url == TypeUrl::Cluster && self.only.is_none() {
            // Clusters new to the proxy warm, including on a first request (a new proxy, or a
            // reconnect after the mesh changed: `known` holds what it reported). Decided
            // before anything is sent, so this very response already defers its removals.
            let added = new_warming(&self.resources, &change.updated, &state.known);
            self.hold.wait_for(added);
        }
        if self.hold.active() {
            // While new clusters warm, removals wait (a removed assignment of a cluster that
            // routes still use would fail requests), and so do listener and route updates,
            // even newly asked for ones: they go out when the wait ends.
            change.removed.clear();
            if type_url.waits_for_warming() {
                change.updated.clear();
            }
        }
        // A newly named resource that does not exist: say so, so the proxy stops waiting. One
        // the proxy holds (a reconnect) is a removal, and waits like the others.
        let all = self.resources.of_type(type_url.as_str());
        let state = &self.types[&type_url];
        let mut removed: BTreeSet<String> = change.removed.iter().cloned().collect();
        for name in newly {
            let held = self.hold.active() && state.known.contains_key(&name);
            if !held && all.is_none_or(|a| !a.contains_key(&name)) && removed.insert(name.clone()) {
                change.removed.push(name);
            }
        }
        let nothing = change.updated.is_empty() && change.removed.is_empty();
        let state = &self.types[&type_url];
        // A first wildcard request is answered even when there is nothing: Envoy waits for
        // that answer (up to its initial fetch timeout) before it is ready. While new clusters
        // warm, listeners and routes wait, and so does that answer.
        let answer_empty = first && !resumed && state.wildcard && !self.hold.holds(&type_url);
        if !nothing || answer_empty {
            let r = self.respond(&type_url, change, &mut step.feedback);
            step.responses.push(r);
        } else if resumed {
            let version = known_version(&state.known);
            step.feedback.push(Feedback::Resumed {
                type_url: type_url.to_string(),
                version,
            });
        }
        Ok(step)
    }

    pub fn on_resources(&mut self, resources: Arc<Resources>) -> Step<DeltaResponse> {
        self.resources = resources;
        let mut step = Step::default();
        self.sync(&mut step);
        step
    }

    /// What listener and route updates wait for, if anything (a delta proxy says what it
    /// holds when it reconnects, so only new clusters warming).
    pub fn waiting(&self) -> Option<Wait> {
        self.hold.active().then_some(Wait::Warm)
    }

    /// Stops waiting for new clusters to warm and sends what was held back.
    pub fn release(&mut self) -> Step<DeltaResponse> {
        let mut step = Step::default();
        if self.hold.give_up() {
            self.sync(&mut step);
        }
        step
    }

    /// Sends what each subscribed type lacks, in ADS order, removals last in reverse order.
    /// While new clusters warm, listeners, routes and removals wait.
    fn sync(&mut self, step: &mut Step<DeltaResponse>) {
        let aggregated = self.only.is_none();
        let resources = &self.resources;
        self.hold.prune(|c| resources.warms(c));
        let order = TypeUrl::push_order(self.types.keys().cloned());
        let mut removals = Vec::new();
        // Clusters updated in this step: their assignments are sent again so re-warming
        // clusters do not wait.
        let mut rewarm = BTreeSet::new();
        for t in &order {
            if self.hold.holds(t) {
                continue;
            }
            let Some(state) = self.types.get(t).filter(|s| s.subscribed) else {
                continue;
            };
            let force = if *t == TypeUrl::Endpoint && self.rewarm_resend {
                &rewarm
            } else {
                &BTreeSet::new()
            };
            let mut change = diff(&self.resources, t, state, force);
            // A first wildcard subscription that waited for clusters to warm is answered now,
            // even when there is nothing to send.
            let unanswered = !state.answered && state.wildcard && state.known.is_empty();
            if aggregated && !change.removed.is_empty() {
                removals.push((t.clone(), std::mem::take(&mut change.removed)));
            }
            if *t == TypeUrl::Cluster {
                // Envoy rebuilds (and re-warms) the clusters whose content changed.
                rewarm = change
                    .updated
                    .iter()
                    .filter(|e| state.known.contains_key(&e.name))
                    .map(|e| e.name.clone())
                    .collect();
                if aggregated {
                    // Clusters new to the proxy warm until their assignments arrive, even its
                    // first EDS cluster (before it subscribes to any assignment).
                    let added = new_warming(&self.resources, &change.updated, &state.known);
                    self.hold.wait_for(added);
                }
            }
            if !change.updated.is_empty() || !change.removed.is_empty() || unanswered {
                let r = self.respond(t, change, &mut step.feedback);
                step.responses.push(r);
            }
        }
        if self.hold.active() {
            return; // removals go out with the held updates
        }
        for (t, removed) in removals.into_iter().rev() {
            let change = Change {
                updated: Vec::new(),
                removed,
            };
            let r = self.respond(&t, change, &mut step.feedback);
            step.responses.push(r);
        }
    }

    /// Called on an EDS ACK or a CDS NACK: ends the hold when the proxy has acknowledged every
    /// held cluster's assignment (or refused the clusters), and sends what waited.
    fn maybe_release(&mut self, feedback: &Feedback, step: &mut Step<DeltaResponse>) {
        let types = &self.types;
        if self.hold.settle(feedback, |names| {
            names
                .iter()
                .all(|n| types[&TypeUrl::Endpoint].known.contains_key(n))
        }) {
            self.sync(step);
        }
    }

    fn respond(
        &mut self,
        type_url: &TypeUrl,
        change: Change,
        feedback: &mut Vec<Feedback>,
    ) -> DeltaResponse {
        let nonce = self.nonces.next();
        let state = self.types.entry(type_url.clone());
        for e in &change.updated {
            state.known.insert(e.name.clone(), e.version.clone());
        }
        for name in &change.removed {
            state.known.remove(name);
        }
        for e in &change.updated {
            state.rejected.remove(&e.name);
        }
        if state.recent.len() == RECENT_NONCES {
            state.recent.pop_front();
        }
        state
            .recent
            .push_back((nonce.clone(), change.updated.clone().into()));
        state.answered = true;
        let version = known_version(&state.known);
        feedback.push(Feedback::Sent {
            type_url: type_url.to_string(),
            version: version.clone(),
            count: change.updated.len() + change.removed.len(),
        });
        DeltaResponse {
            system_version_info: version,
            resources: change.updated,
            type_url: type_url.to_string(),
            removed_resources: change.removed,
            nonce,
        }
    }
}

/// What the proxy lacks (or holds at another version) and what it holds that is gone.
/// Names in `force` are sent even at the version the proxy has.
fn diff(
    resources: &Resources,
    type_url: &TypeUrl,
    state: &TypeState,
    force: &BTreeSet<String>,
) -> Change {
    let empty = BTreeMap::new();
    let all = resources.of_type(type_url.as_str()).unwrap_or(&empty);
    let in_scope = |name: &String| state.wildcard || state.names.contains(name);
    let updated = all
        .iter()
        .filter(|(name, _)| in_scope(name))
        .filter(|(name, e)| {
            let forced = force.contains(*name) && !state.rejected(e);
            forced || state.known.get(name) != Some(&e.version)
        })
        .map(|(_, e)| e.clone())
        .collect();
    let removed = state
        .known
        .keys()
        .filter(|name| !all.contains_key(*name) || !in_scope(name))
        .cloned()
        .collect();
    Change { updated, removed }
}

/// The clusters in `updated` that warm and that the proxy does not hold (`known`).
fn new_warming(resources: &Resources, updated: &[Arc<Encoded>], known: &Held) -> BTreeSet<String> {
    updated
        .iter()
        .filter(|e| !known.contains_key(&e.name) && resources.warms(&e.name))
        .map(|e| e.name.clone())
        .collect()
}

/// A version for status: a hash of everything the proxy holds of one type.
fn known_version(known: &Held) -> String {
    set_version(known.iter().map(|(n, v)| (n.as_str(), v.as_str())))
}
