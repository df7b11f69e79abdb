//! The xDS client's state machine: subscriptions, the store of what the proxy holds, warming
//! and initialisation, driven by events (a stream came up or went away, a response arrived,
//! time passed) and answering with requests to send and effects to carry out. Pure: the glue
//! in `client.rs` does the I/O.
//!
//! A response is handled in two steps so the ACK follows the apply, as Envoy's does:
//! [`Engine::on_response`] records the resources and says what to publish (the runtime
//! snapshot, the listener set); the glue publishes and applies; then [`Engine::complete`]
//! returns the requests: subscription changes (EDS and RDS names) first, then the ACK or the
//! NACK naming every rejected resource (including listeners the listener manager refused),
//! then LDS's first request once clusters are initialised.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use xds_core::TypeUrl;

use super::{
    Outgoing, Update,
    handlers::{self, Context, Outcome, describe},
    store::{Entry, Failure, Store},
    subscription::Subscription,
    warming::{Init, Phase, settle},
};
use crate::{
    bootstrap::Bootstrap,
    config::{ListenerConfig, Rejection},
};

/// What the glue must do after an event, before it calls [`Engine::complete`].
#[derive(Debug, Default)]
pub struct Effects {
    /// Active clusters, assignments or routes changed: rebuild and publish the runtime snapshot.
    pub publish: bool,
    /// The active listeners changed: hand this whole set to the listener manager.
    pub listeners: Option<Vec<Arc<ListenerConfig>>>,
}

/// A response recorded by [`Engine::on_response`] and not yet answered.
#[derive(Debug)]
struct Pending {
    type_url: TypeUrl,
    nonce: String,
    version: String,
    outcome: Outcome,
}

#[derive(Debug)]
pub struct Engine {
    subs: BTreeMap<TypeUrl, Subscription>,
    store: Store,
    init: Init,
    /// How long clusters (CDS's `initial_fetch_timeout`) and listeners (LDS's) may warm.
    cluster_warming: Option<Duration>,
    listener_warming: Option<Duration>,
    pending: Option<Pending>,
    /// Listeners promoted since the last apply, with the versions they replaced.
    replaced: Vec<(String, Option<Entry<ListenerConfig>>)>,
    /// What the last effects reported, to report only changes (`None`: nothing yet).
    published: Option<Vec<usize>>,
    applied: Option<Vec<usize>>,
}

impl Engine {
    pub fn new(bootstrap: &Bootstrap, now: Instant) -> Engine {
        let dynamic = bootstrap.dynamic.as_ref();
        let cds = dynamic.and_then(|d| d.cds.as_ref());
        let lds = dynamic.and_then(|d| d.lds.as_ref());
        let mut subs = BTreeMap::new();
        if let Some(cds) = cds {
            for t in [TypeUrl::Cluster, TypeUrl::Endpoint] {
                subs.insert(t.clone(), Subscription::new(t, cds.channel.protocol, true));
            }
        }
        if let Some(lds) = lds {
            // LDS waits for clusters to initialise; RDS follows the listeners' names.
            subs.insert(
                TypeUrl::Listener,
                Subscription::new(TypeUrl::Listener, lds.channel.protocol, false),
            );
            subs.insert(
                TypeUrl::Route,
                Subscription::new(TypeUrl::Route, lds.channel.protocol, true),
            );
        }
        // SDS over ADS: the secrets TLS contexts name (`sds_config: {ads: {}}`).
        if let Some(ads) = [cds, lds]
            .into_iter()
            .flatten()
            .find(|s| s.channel.aggregated)
        {
            subs.insert(
                TypeUrl::Secret,
                Subscription::new(TypeUrl::Secret, ads.channel.protocol, true),
            );
        }
        let cluster_warming = cds.and_then(|s| s.initial_fetch_timeout);
        let listener_warming = lds.and_then(|s| s.initial_fetch_timeout);
        let store = Store::with_statics(
            &bootstrap.clusters,
            &bootstrap.listeners,
            listener_warming.map(|t| now + t),
        );
        let init = Init::new(
            cds.map(|s| s.initial_fetch_timeout),
            lds.map(|s| s.initial_fetch_timeout),
            now,
        );
        Engine {
            subs,
            store,
            init,
            cluster_warming,
            listener_warming,
            pending: None,
            replaced: Vec::new(),
            published: None,
            applied: None,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `/ready`: initialised (clusters, then listeners, fetched and warmed, or timed out).
    pub fn ready(&self) -> bool {
        self.init.ready()
    }

    pub fn phase(&self) -> Phase {
        self.init.phase()
    }

    /// The last accepted SotW version of a type (empty for Delta and before any).
    pub fn version(&self, type_url: &TypeUrl) -> &str {
        self.subs.get(type_url).map_or("", Subscription::version)
    }

    /// The types that have something to ask for, so their streams should be open.
    pub fn wanted(&self) -> Vec<TypeUrl> {
        let wanted = self.subs.values().filter(|s| s.wants_stream());
        wanted.map(|s| s.type_url().clone()).collect()
    }

    /// When [`Engine::on_tick`] should next run.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.store.next_deadline(), self.init.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The first effects: publish the static clusters, apply the static listeners.
    pub fn start(&mut self, now: Instant) -> Effects {
        self.on_tick(now)
    }

    /// A stream carrying `types` came up: their first requests, in ADS order.
    pub fn on_connected(&mut self, types: &[TypeUrl]) -> Vec<Outgoing> {
        let order = TypeUrl::push_order(types.iter().cloned());
        order
            .iter()
            .filter_map(|t| self.subs.get_mut(t)?.connected())
            .collect()
    }

    /// A stream carrying `types` went away.
    pub fn on_disconnected(&mut self, types: &[TypeUrl]) {
        for t in types {
            if let Some(s) = self.subs.get_mut(t) {
                s.disconnected();
            }
        }
    }

    /// Records a response; the glue carries out the effects, then calls [`Engine::complete`].
    pub fn on_response(&mut self, update: Update, now: Instant) -> Effects {
        if !self.subs.contains_key(&update.type_url) {
            // Not asked for (a server sending an unrelated type on ADS): nothing to answer
            // with, as no subscription exists to carry a NACK's version.
            tracing::warn!(type_url = %update.type_url, "ignoring a response for a type not subscribed to");
            return Effects::default();
        }
        let warming = match update.type_url {
            TypeUrl::Listener | TypeUrl::Route => self.listener_warming,
            _ => self.cluster_warming,
        };
        let cx = Context {
            now,
            wall: SystemTime::now(),
            warming,
        };
        let outcome = handlers::apply(&mut self.store, &update, &cx);
        match update.type_url {
            TypeUrl::Cluster => self.init.fetched(Phase::Clusters),
            TypeUrl::Listener => self.init.fetched(Phase::Listeners),
            _ => {}
        }
        self.pending = Some(Pending {
            type_url: update.type_url,
            nonce: update.nonce,
            version: update.version,
            outcome,
        });
        self.on_tick(now)
    }

    /// Time passed: promotes what finished warming or timed out. Then call
    /// [`Engine::complete`] as after a response.
    pub fn on_tick(&mut self, now: Instant) -> Effects {
        self.replaced.extend(settle(&mut self.store, now));
        self.store.prune();
        let runtime = self.store.runtime_fingerprint();
        let listeners = self.store.listener_fingerprint();
        let publish = self.published.as_ref() != Some(&runtime);
        let apply = self.applied.as_ref() != Some(&listeners);
        self.published = Some(runtime);
        self.applied = Some(listeners);
        Effects {
            publish,
            listeners: apply.then(|| self.store.active_listeners()),
        }
    }

    /// After the effects were carried out: the requests to send. `refused` are the listener
    /// manager's rejections of the listeners just applied; each is put back to its previous
    /// version and, when the response being answered is LDS, named in its NACK.
    pub fn complete(&mut self, refused: Vec<Rejection>, now: Instant) -> Vec<Outgoing> {
        let mut refused = self.restore(refused);
        let mut out = self.refresh_names();
        if let Some(p) = self.pending.take() {
            // A change of this type's names rides on its answer (one request, fresh nonce).
            let mut riders = Vec::new();
            out.retain(|o| {
                let same = o.type_url() == p.type_url;
                if same {
                    riders.push(o.clone());
                }
                !same
            });
            let mut rejected = p.outcome.rejected;
            if p.type_url == TypeUrl::Listener {
                rejected.append(&mut refused);
            }
            if let Some(sub) = self.subs.get_mut(&p.type_url) {
                let (accepted, removed) = (&p.outcome.accepted, &p.outcome.removed);
                let mut answer = if rejected.is_empty() {
                    sub.ack(&p.nonce, &p.version, accepted, removed)
                } else {
                    let message = describe(&rejected);
                    tracing::warn!(type_url = %p.type_url, %message, "rejecting xDS update");
                    sub.nack(&p.nonce, &message, accepted, removed)
                };
                riders.iter().for_each(|r| answer.absorb(r));
                out.push(answer);
            }
        }
        if !refused.is_empty() {
            // Found after LDS was accepted (a listener that warmed, then could not bind):
            // rejected again on LDS's last nonce, so the server shows it as Envoy's bind
            // failure is shown.
            let message = describe(&refused);
            tracing::warn!(%message, "listeners refused by the listener manager");
            if let Some(lds) = self.subs.get_mut(&TypeUrl::Listener) {
                out.extend(lds.nack_last(&message));
            }
        }
        if self.init.advance(&self.store, now)
            && let Some(lds) = self.subs.get_mut(&TypeUrl::Listener)
        {
            out.extend(lds.enable());
        }
        out
    }

    /// Puts refused listeners back to the version they replaced, with the failure recorded.
    fn restore(&mut self, refused: Vec<Rejection>) -> Vec<Rejection> {
        let replaced = std::mem::take(&mut self.replaced);
        for r in &refused {
            let named = |name: &String| r.resource == format!("listener '{name}'");
            let Some((name, previous)) = replaced.iter().find(|(n, _)| named(n)) else {
                continue;
            };
            if let Some(slot) = self.store.listeners.get_mut(name) {
                let failed = std::mem::replace(&mut slot.active, previous.clone());
                slot.failure = Some(Failure {
                    version: failed
                        .as_ref()
                        .map(|e| e.version.clone())
                        .unwrap_or_default(),
                    resource: failed.map(|e| e.resource),
                    details: describe(std::slice::from_ref(r)),
                    when: SystemTime::now(),
                });
            }
        }
        refused
    }

    /// EDS, RDS and SDS follow the clusters' and listeners' names.
    fn refresh_names(&mut self) -> Vec<Outgoing> {
        let mut out = Vec::new();
        if let Some(eds) = self.subs.get_mut(&TypeUrl::Endpoint) {
            out.extend(eds.set_names(self.store.eds_names()));
        }
        if let Some(rds) = self.subs.get_mut(&TypeUrl::Route) {
            out.extend(rds.set_names(self.store.rds_names()));
        }
        if let Some(sds) = self.subs.get_mut(&TypeUrl::Secret) {
            out.extend(sds.set_names(self.store.sds_names()));
        }
        out
    }
}
