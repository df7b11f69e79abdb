//! State-of-the-World xDS as a pure state machine: a request or a new set of resources in,
//! responses and status feedback out. No I/O, no clocks.
//!
//! The rules it keeps (docs/design.md, "The xDS rules"):
//! - every response has a version and a fresh nonce; a request echoing an older nonce is stale
//!   and ignored entirely;
//! - a NACK is recorded and the rejected config is not sent again until something changes;
//! - LDS/CDS are wildcard when the first request names nothing; EDS/RDS send what is named;
//! - a changed subscription is answered even when no version changed;
//! - on ADS, additions go out CDS → EDS → LDS → RDS and removals the other way round (a
//!   removed cluster or listener stays in the first CDS/LDS response and goes in a second one);
//! - after a CDS push, EDS is answered again so re-warming clusters get their assignments;
//! - a proxy reconnecting after the mesh changed keeps the clusters it still routes through:
//!   its first cluster response waits for its assignment request (which names them) and
//!   holds them until its new routes are in place.

#[cfg(test)]
mod tests;

use std::{collections::BTreeSet, sync::Arc};

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;

use super::{
    Error, Feedback, MAX_NAMES, Nonces, Step, resolve_type_url,
    type_map::{NameSet, TypeMap},
    warming::{Wait, Warming},
    wire::SotwResponse,
};
use xds_core::TypeUrl;

use crate::translate::{Encoded, Resources, set_version};

/// One stream's SotW state.
#[derive(Debug)]
pub struct Sotw {
    /// `Some` on a per-type service (CDS, EDS, ...): the one type it serves.
    only: Option<TypeUrl>,
    types: TypeMap<TypeState>,
    resources: Arc<Resources>,
    /// Clusters new to the proxy whose assignments it has not acknowledged yet. While set,
    /// listener and route updates (and removals) wait, so no route points at a cluster that
    /// is still warming.
    hold: Warming,
    nonces: Nonces,
    /// After a cluster changes, its assignment is sent again (Envoy on ADS waits for it);
    /// off for a proxy that re-warms from the assignment it holds.
    rewarm_resend: bool,
    /// A proxy reconnected with clusters other than ours: its first cluster request is not
    /// answered until it says which clusters it holds (its assignment request names them),
    /// because a SotW response without them would remove them while its routes still use
    /// them. Listener and route updates wait meanwhile.
    resuming: bool,
}

#[derive(Debug, Default)]
struct TypeState {
    /// A request for this type has arrived.
    subscribed: bool,
    wildcard: bool,
    /// The wildcard was asked for with an explicit `*` (not the legacy empty first request):
    /// a later request naming nothing then unsubscribes from everything.
    explicit_wildcard: bool,
    names: NameSet,
    sent: Option<Sent>,
    /// The version the proxy last rejected: never sent again (not even by the forced
    /// assignment resend after a cluster push) until the content or subscription changes.
    rejected: Option<String>,
}

impl TypeState {
    fn in_scope(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }
}

#[derive(Debug)]
struct Sent {
    version: String,
    nonce: String,
    /// What the response held: a make-before-break response keeps these while they go away.
    /// In name order; shared with the status feedback (no per-stream copy of names).
    items: Arc<[Arc<Encoded>]>,
}

impl Sotw {
    pub fn new(only: Option<TypeUrl>, resources: Arc<Resources>) -> Self {
        Self {
            only,
            types: TypeMap::default(),
            resources,
            hold: Warming::default(),
            nonces: Nonces::default(),
            rewarm_resend: true,
            resuming: false,
        }
    }

    /// For a proxy that re-warms a changed cluster from the assignment it holds
    /// ([`xds_core::node::REWARMS_FROM_HELD_ASSIGNMENTS`]): no second response per change.
    pub fn without_rewarm_resend(mut self) -> Self {
        self.rewarm_resend = false;
        self
    }

    /// Handles one request from the proxy.
    pub fn on_request(&mut self, req: &DiscoveryRequest) -> Result<Step<SotwResponse>, Error> {
        let type_url = resolve_type_url(&req.type_url, self.only.as_ref())?;
        let mut step = Step::default();
        let state = self.types.entry(type_url.clone());
        if !req.response_nonce.is_empty() {
            match &state.sent {
                Some(sent) if sent.nonce == req.response_nonce => match &req.error_detail {
                    Some(status) => {
                        state.rejected = Some(sent.version.clone());
                        step.feedback.push(Feedback::Nack {
                            type_url: type_url.to_string(),
                            message: status.message.clone(),
                        });
                        step.feedback.push(Feedback::Verdict {
                            type_url: type_url.to_string(),
                            items: sent.items.clone(),
                            rejected: Some(status.message.clone()),
                        });
                    }
                    None if req.version_info == sent.version => {
                        step.feedback.push(Feedback::Ack {
                            type_url: type_url.to_string(),
                            version: sent.version.clone(),
                        });
                        step.feedback.push(Feedback::Verdict {
                            type_url: type_url.to_string(),
                            items: sent.items.clone(),
                            rejected: None,
                        });
                    }
                    // After a NACK the proxy repeats its older version: not an ACK.
                    None => {}
                },
                // Stale: the proxy has not seen our latest response yet; it will repeat its
                // whole subscription when it does.
                _ => return Ok(step),
            }
        }
        // The ACK or NACK is about what was sent before this request: settle warming first.
        if let Some(f) = step.feedback.first().cloned() {
            self.maybe_release(&f, &mut step);
        }
        let (names, capped) = subscribed_names(&req.resource_names);
        if capped {
            step.feedback.push(Feedback::Capped {
                type_url: type_url.to_string(),
                asked: req.resource_names.len(),
            });
        }
        let state = self.types.entry(type_url.clone());
        let star = req.resource_names.iter().any(|n| n == "*");
        // Legacy wildcard: a first request naming nothing, and every later one while it lasts.
        // After an explicit `*`, naming nothing means no resources at all.
        let legacy = !star
            && type_url.wildcard_capable()
            && req.resource_names.is_empty()
            && (!state.subscribed || (state.wildcard && !state.explicit_wildcard));
        let wildcard = star || legacy;
        let changed = !state.subscribed || wildcard != state.wildcard || names != state.names;
        state.subscribed = true;
        state.wildcard = wildcard;
        state.explicit_wildcard = star;
        state.names = names;
        if self.resuming && type_url == TypeUrl::Endpoint {
            // The reconnecting proxy names the clusters it holds: its cluster request is
            // answered, keeping them, and then this one (and whatever else may go).
            self.resume(&mut step);
            return Ok(step);
        }
        if self.waits(&type_url) {
            // While new clusters warm, listeners and routes do not move: a changed subscription
            // is answered with what the proxy was sent before, narrowed to what it now asks
            // for; what it newly asks for goes out when the wait ends.
            let state = &self.types[&type_url];
            if let (true, Some(sent)) = (changed, &state.sent) {
                let items: Vec<Arc<Encoded>> = sent
                    .items
                    .iter()
                    .filter(|e| state.in_scope(&e.name))
                    .cloned()
                    .collect();
                let version = version_of(&items);
                if version != sent.version {
                    let r = self.respond(&type_url, version, items.into(), &mut step.feedback);
                    step.responses.push(r);
                }
            }
            return Ok(step);
        }
        let state = &self.types[&type_url];
        let (version, items) = view(&self.resources, &type_url, state);
        let outdated = state.sent.as_ref().is_none_or(|s| s.version != version);
        let rejected = state.rejected.as_ref() == Some(&version);
        // While new clusters warm, only changed subscriptions are answered: anything merely
        // outdated (held routes, deferred removals) goes out when the wait ends.
        if changed || (outdated && !rejected && !self.hold.active()) {
            if type_url == TypeUrl::Cluster && self.only.is_none() && state.sent.is_none() {
                if req.version_info.is_empty() {
                    // A new proxy: every cluster is new to it.
                    let added = new_warming(&self.resources, &items, &[]);
                    self.hold.wait_for(added);
                } else if req.version_info != version {
                    // A proxy reconnecting after the mesh changed.
                    self.resuming = true;
                    if self
                        .types
                        .get(&TypeUrl::Endpoint)
                        .is_some_and(|s| s.subscribed)
                    {
                        self.resume(&mut step);
                    }
                    return Ok(step);
                }
            }
            let r = self.respond(&type_url, version, items, &mut step.feedback);
            step.responses.push(r);
        }
        Ok(step)
    }

    /// Answers a reconnecting proxy's cluster request (see `resuming`): the clusters it holds
    /// (those it asks assignments for) stay until its new listeners and routes are in place;
    /// the others warm first. Then sends whatever else can go.
    fn resume(&mut self, step: &mut Step<SotwResponse>) {
        self.resuming = false;
        let Some(state) = self.types.get(&TypeUrl::Cluster) else {
            return;
        };
        let (version, items) = view(&self.resources, &TypeUrl::Cluster, state);
        let held: Vec<&str> = self
            .types
            .get(&TypeUrl::Endpoint)
            .filter(|s| s.subscribed)
            .map(|s| s.names.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let added = items
            .iter()
            .filter(|e| !held.contains(&e.name.as_str()) && self.resources.warms(&e.name))
            .map(|e| e.name.clone())
            .collect();
        self.hold.wait_for(added);
        let spare: Vec<Arc<Encoded>> = held
            .iter()
            .filter(|n| find(&items, n).is_none())
            .filter_map(|n| self.resources.spare_cluster(n))
            .collect();
        let response = if spare.is_empty() {
            self.respond(&TypeUrl::Cluster, version, items, &mut step.feedback)
        } else {
            let mut union = items.to_vec();
            union.extend(spare);
            union.sort_by(|a, b| a.name.cmp(&b.name));
            let version = version_of(&union);
            self.respond(&TypeUrl::Cluster, version, union.into(), &mut step.feedback)
        };
        step.responses.insert(0, response);
        // What waited (routes, once nothing warms) and the spare clusters' removal.
        self.sync(step);
    }

    /// Whether updates of `type_url` wait now (see [`Wait`]).
    fn waits(&self, type_url: &TypeUrl) -> bool {
        self.hold.holds(type_url) || (self.resuming && type_url.waits_for_warming())
    }

    /// Takes a new set of resources and sends what changed, make-before-break.
    pub fn on_resources(&mut self, resources: Arc<Resources>) -> Step<SotwResponse> {
        self.resources = resources;
        let mut step = Step::default();
        if !self.resuming {
            self.sync(&mut step);
        }
        step
    }

    /// What listener and route updates wait for, if anything.
    pub fn waiting(&self) -> Option<Wait> {
        if self.resuming {
            Some(Wait::Resume)
        } else {
            self.hold.active().then_some(Wait::Warm)
        }
    }

    /// Stops waiting (the proxy never named the clusters it holds, or never asked for the new
    /// clusters' assignments) and sends what was held back.
    pub fn release(&mut self) -> Step<SotwResponse> {
        let mut step = Step::default();
        if self.resuming {
            self.resume(&mut step);
        } else if self.hold.give_up() {
            self.sync(&mut step);
        }
        step
    }

    /// Sends every subscribed type whose view differs from what was sent, in ADS order, with
    /// removals of clusters and listeners deferred to the end. While new clusters warm,
    /// listeners, routes and removals wait (see `warming.rs`).
    fn sync(&mut self, step: &mut Step<SotwResponse>) {
        let aggregated = self.only.is_none();
        let resources = &self.resources;
        self.hold.prune(|c| resources.warms(c));
        let order = TypeUrl::push_order(self.types.keys().cloned());
        let mut deferred = Vec::new();
        let mut rewarm = BTreeSet::new();
        for t in &order {
            if self.hold.holds(t) {
                continue;
            }
            let Some(state) = self.types.get(t).filter(|s| s.subscribed) else {
                continue;
            };
            let (version, items) = view(&self.resources, t, state);
            let sent = state.sent.as_ref();
            // Re-warming clusters wait for their assignments: send them again, unless the proxy
            // rejected exactly these.
            let forced = *t == TypeUrl::Endpoint
                && self.rewarm_resend
                && items.iter().any(|e| rewarm.contains(&e.name))
                && state.rejected.as_ref() != Some(&version);
            if sent.is_some_and(|s| s.version == version) && !forced {
                continue;
            }
            let before: Option<&[Arc<Encoded>]> = sent.map(|s| &*s.items);
            let removed: Vec<Arc<Encoded>> = before
                .unwrap_or_default()
                .iter()
                .filter(|e| find(&items, &e.name).is_none())
                .cloned()
                .collect();
            if *t == TypeUrl::Cluster && aggregated {
                // Clusters new to the proxy warm until their assignments arrive (even its first
                // EDS cluster, before it subscribes to any assignment); hold routes until then,
                // or requests routed to them fail.
                let added = new_warming(&self.resources, &items, before.unwrap_or_default());
                self.hold.wait_for(added);
                // Envoy rebuilds (and re-warms) only the clusters whose content changed.
                rewarm = items
                    .iter()
                    .filter(|e| {
                        before
                            .and_then(|b| find(b, &e.name))
                            .is_some_and(|o| o.version != e.version)
                    })
                    .map(|e| e.name.clone())
                    .collect();
            }
            let response = if aggregated && !removed.is_empty() && t.wildcard_capable() {
                // Make: keep what is going away until everything else has moved off it.
                deferred.push(t.clone());
                let mut union = items.to_vec();
                union.extend(removed);
                union.sort_by(|a, b| a.name.cmp(&b.name));
                let union_version = version_of(&union);
                if sent.is_some_and(|s| s.version == union_version) {
                    continue; // the proxy already has the union (sent before a warming wait)
                }
                self.respond(t, union_version, union.into(), &mut step.feedback)
            } else {
                self.respond(t, version, items, &mut step.feedback)
            };
            step.responses.push(response);
        }
        if self.hold.active() {
            return; // removals go out with the held updates
        }
        // Break: removals in reverse order (RDS, LDS, EDS, CDS).
        for t in deferred.iter().rev() {
            let state = &self.types[t];
            let (version, items) = view(&self.resources, t, state);
            let response = self.respond(t, version, items, &mut step.feedback);
            step.responses.push(response);
        }
    }

    /// Called on an EDS ACK or a CDS NACK: ends the hold when every held cluster's assignment
    /// was acknowledged (or the clusters were refused), and sends what waited.
    fn maybe_release(&mut self, feedback: &Feedback, step: &mut Step<SotwResponse>) {
        let types = &self.types;
        if self.hold.settle(feedback, |names| {
            types[&TypeUrl::Endpoint]
                .sent
                .as_ref()
                .is_some_and(|s| names.iter().all(|n| find(&s.items, n).is_some()))
        }) {
            self.sync(step);
        }
    }

    fn respond(
        &mut self,
        type_url: &TypeUrl,
        version: String,
        items: Arc<[Arc<Encoded>]>,
        feedback: &mut Vec<Feedback>,
    ) -> SotwResponse {
        let nonce = self.nonces.next();
        feedback.push(Feedback::Sent {
            type_url: type_url.to_string(),
            version: version.clone(),
            count: items.len(),
        });
        let state = self.types.entry(type_url.clone());
        state.sent = Some(Sent {
            version: version.clone(),
            nonce: nonce.clone(),
            items: items.clone(),
        });
        SotwResponse {
            version_info: version,
            resources: items,
            type_url: type_url.to_string(),
            nonce,
        }
    }
}

/// The names a request subscribes to (without `*`), at most [`MAX_NAMES`] (the first in name
/// order); true when more were asked for (the rest are not served, and the status says so,
/// rather than ending the stream and making the proxy reconnect in a loop).
fn subscribed_names(requested: &[String]) -> (NameSet, bool) {
    NameSet::capped(requested.iter().filter(|n| *n != "*"), MAX_NAMES)
}

/// The clusters in `items` that warm and that the proxy was not sent (`before`).
fn new_warming(
    resources: &Resources,
    items: &[Arc<Encoded>],
    before: &[Arc<Encoded>],
) -> BTreeSet<String> {
    items
        .iter()
        .filter(|e| find(before, &e.name).is_none() && resources.warms(&e.name))
        .map(|e| e.name.clone())
        .collect()
}

/// The item named `name` in `items` (in name order).
fn find<'a>(items: &'a [Arc<Encoded>], name: &str) -> Option<&'a Arc<Encoded>> {
    items
        .binary_search_by(|e| e.name.as_str().cmp(name))
        .ok()
        .map(|i| &items[i])
}

/// What a subscription should hold now, in name order, and its version.
/// A wildcard view is the same for every stream of the group: it comes computed once from
/// the resources ([`Resources::whole`]), so a change costs each stream no work proportional
/// to the whole config.
fn view(
    resources: &Resources,
    type_url: &TypeUrl,
    state: &TypeState,
) -> (String, Arc<[Arc<Encoded>]>) {
    if state.wildcard {
        let whole = resources.whole(type_url.as_str());
        return (whole.version.clone(), whole.items.clone());
    }
    let Some(all) = resources.of_type(type_url.as_str()) else {
        return (version_of(&[]), Arc::new([]));
    };
    let items: Vec<Arc<Encoded>> = state
        .names
        .iter()
        .filter_map(|n| all.get(n).cloned())
        .collect();
    (version_of(&items), items.into())
}

/// The version of a response: a hash of its resources' names and versions.
pub(crate) fn version_of(items: &[Arc<Encoded>]) -> String {
    set_version(items.iter().map(|e| (e.name.as_str(), e.version.as_str())))
}
