//! The delta state machine fed fuzzer-chosen requests (subscribe and unsubscribe lists, `*`,
//! resumption with `initial_resource_versions`, ACKs, NACKs, old and unknown nonces) interleaved
//! with new resource sets and warming give-ups. After every step the responses are checked
//! against the xDS rules (docs/design.md) with a model of what the proxy subscribed to and holds.
//! An `Err` ends the stream, as it would in the server; a panic is a bug.

#![no_main]

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::Arc,
};

use arbitrary::Arbitrary;
use envoy_types::pb::{
    envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse},
    google::rpc::Status,
};
use libfuzzer_sys::fuzz_target;
use xds_core::{TypeUrl, type_url};
use xds_fuzz::xds::{
    Index, MAX_OPS, NameSel, NonceSel, Nonces, ResSel, Service, TypeSel, acks_and_nacks,
    check_push_order, check_sent, decoded, names, wildcard_capable,
};
use xds_server::{
    translate::{Resources, TypeResources, set_version},
    xds::{Feedback, Step, delta::Delta},
};

/// As the state machine: how many nonces per type a NACK may name.
const RECENT_NONCES: usize = 8;

#[derive(Arbitrary, Debug)]
struct Input {
    service: Service,
    initial: ResSel,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Request {
        ty: TypeSel,
        subscribe: Vec<NameSel>,
        unsubscribe: Vec<NameSel>,
        initial: Vec<(NameSel, InitialVersion)>,
        nonce: NonceSel,
        nack: bool,
    },
    Resources(ResSel),
    Release,
}

/// A version in `initial_resource_versions`.
#[derive(Arbitrary, Debug)]
enum InitialVersion {
    /// The resource's version now (what a proxy reconnecting after no change holds).
    Current,
    Raw(String),
}

/// What the proxy subscribed to and holds, per the rules (not read from the state machine).
#[derive(Debug, Default, Clone)]
struct TypeModel {
    type_url: String,
    subscribed: bool,
    wildcard: bool,
    names: BTreeSet<String>,
    /// name → version, as the proxy would hold it.
    known: BTreeMap<String, String>,
    recent_nonces: VecDeque<String>,
}

struct Harness {
    delta: Delta,
    only: Option<TypeUrl>,
    current: Arc<Resources>,
    index: Index,
    nonces: Nonces,
    types: BTreeMap<String, TypeModel>,
}

fuzz_target!(|input: Input| {
    let only = input.service.only();
    let aggregated = only.is_none();
    let current = input.initial.resources(aggregated);
    let mut index = Index::default();
    index.add(&current);
    let mut h = Harness {
        delta: Delta::new(only.clone(), current.clone()),
        only,
        current,
        index,
        nonces: Nonces::default(),
        types: BTreeMap::new(),
    };
    for op in input.ops.iter().take(MAX_OPS) {
        match op {
            Op::Request {
                ty,
                subscribe,
                unsubscribe,
                initial,
                nonce,
                nack,
            } => {
                let initial = initial
                    .iter()
                    .map(|(n, v)| (n.name(), v))
                    .collect::<Vec<_>>();
                let closed = !h.request(
                    ty,
                    &names(subscribe),
                    &names(unsubscribe),
                    &initial,
                    nonce,
                    *nack,
                );
                if closed {
                    break;
                }
            }
            Op::Resources(sel) => {
                let resources = sel.resources(aggregated);
                h.index.add(&resources);
                h.current = resources.clone();
                let step = decoded(h.delta.on_resources(resources));
                h.check_push(&step);
            }
            Op::Release => {
                let step = decoded(h.delta.release());
                assert!(h.delta.waiting().is_none(), "still waiting after release");
                h.check_push(&step);
            }
        }
    }
});

impl Harness {
    /// Sends one request; false when the state machine refused it (the stream ends).
    fn request(
        &mut self,
        ty: &TypeSel,
        subscribe: &[String],
        unsubscribe: &[String],
        initial: &[(String, &InitialVersion)],
        nonce: &NonceSel,
        nack: bool,
    ) -> bool {
        let raw_type = ty.url();
        let t = match (&self.only, raw_type.as_str()) {
            (Some(only), "") => only.to_string(),
            _ => raw_type.clone(),
        };
        let nonce = self.nonces.pick(nonce, &t);
        let current_version = |name: &str| {
            self.current
                .of_type(&t)
                .and_then(|c| c.get(name))
                .map_or_else(|| "0000000000000000".to_string(), |e| e.version.clone())
        };
        let initial: BTreeMap<String, String> = initial
            .iter()
            .map(|(name, v)| {
                let version = match v {
                    InitialVersion::Current => current_version(name),
                    InitialVersion::Raw(s) => s.clone(),
                };
                (name.clone(), version)
            })
            .collect();
        let req = DeltaDiscoveryRequest {
            type_url: raw_type,
            resource_names_subscribe: subscribe.to_vec(),
            resource_names_unsubscribe: unsubscribe.to_vec(),
            initial_resource_versions: initial.clone().into_iter().collect(),
            response_nonce: nonce.clone(),
            error_detail: nack.then(|| Status {
                code: 3,
                message: "rejected by the fuzzer".into(),
                ..Status::default()
            }),
            ..DeltaDiscoveryRequest::default()
        };
        let Ok(step) = self.delta.on_request(&req) else {
            return false;
        };
        let step: Step<DeltaDiscoveryResponse> = decoded(step);
        // ACK by the latest nonce; NACK by any of the recent ones (rule 7 / rule 2).
        let first = !self.types.get(&t).is_some_and(|m| m.subscribed);
        let model = self.types.entry(t.clone()).or_insert_with(|| TypeModel {
            type_url: t.clone(),
            ..TypeModel::default()
        });
        let latest = model.recent_nonces.back() == Some(&nonce);
        let recent = model.recent_nonces.contains(&nonce);
        let expected = match (nack, latest, recent) {
            (true, _, true) => vec![Feedback::Nack {
                type_url: t.clone(),
                message: "rejected by the fuzzer".into(),
            }],
            (false, true, _) => vec![Feedback::Ack {
                type_url: t.clone(),
                version: known_version(&model.known),
            }],
            _ => vec![],
        };
        let got: Vec<Feedback> = acks_and_nacks(&step.feedback)
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(got, expected, "ACK/NACK feedback for {req:?}");
        let change = SubChange {
            first,
            initial: &initial,
            subscribe,
            unsubscribe,
        };
        // An ACK or NACK that ends a warming wait first sends what waited, under the
        // subscription as it was; the request's own answer, if any, is its type's last response.
        let n = step.responses.len();
        let own = n > 0 && step.responses[n - 1].type_url == t;
        let waited = if own { n - 1 } else { n };
        let mut summary = Vec::new();
        let mut rewarm = BTreeSet::new();
        for r in &step.responses[..waited] {
            self.check_one(r, &[], &mut rewarm, &mut summary, None);
        }
        let newly = if own {
            self.check_one(
                &step.responses[n - 1],
                &[],
                &mut rewarm,
                &mut summary,
                Some(&change),
            )
        } else {
            change.apply(self.types.get_mut(&t).expect("modelled"))
        };
        check_sent(&step.feedback, &summary);
        let model = &self.types[&t];
        let wildcard = model.wildcard;
        let ours: Vec<&DeltaDiscoveryResponse> =
            step.responses.iter().filter(|r| r.type_url == t).collect();
        // Listener and route updates wait while new clusters warm (make-before-break).
        let held = self.delta.waiting().is_some() && TypeUrl::from(t.as_str()).waits_for_warming();
        // A first wildcard request is answered even when there is nothing to send.
        if first && initial.is_empty() && wildcard && !held {
            assert!(
                !ours.is_empty(),
                "a first wildcard request to {t} was not answered"
            );
        }
        let current = self.current.of_type(&t);
        for name in &newly {
            match current.and_then(|c| c.get(name)) {
                // A newly named resource that does not exist is said to be absent; one the
                // proxy says it holds (a reconnect) is a removal, which waits while new
                // clusters warm (make-before-break).
                None => assert!(
                    ours.iter().any(|r| r.removed_resources.contains(name))
                        || (self.delta.waiting().is_some() && initial.contains_key(name)),
                    "newly subscribed '{name}' of {t} does not exist but was not reported"
                ),
                // One that exists is sent unless the proxy holds it at this version.
                Some(e) => {
                    let wanted = !held
                        && (wildcard || model.names.contains(name))
                        && model.known.get(name) != Some(&e.version);
                    assert!(!wanted, "newly subscribed '{name}' of {t} was not sent");
                }
            }
        }
        true
    }

    /// Checks one response, records its nonce and applies it to the model. With `change`,
    /// the response answers a request with that subscription change: it is checked as sent
    /// after the change, or, failing that, as a waiting push sent before it (the change is
    /// applied either way). Returns the names the change newly subscribed to.
    fn check_one(
        &mut self,
        r: &DeltaDiscoveryResponse,
        newly: &[String],
        rewarm: &mut BTreeSet<String>,
        summary: &mut Vec<(String, String, usize)>,
        change: Option<&SubChange>,
    ) -> Vec<String> {
        let t = r.type_url.as_str();
        if let Some(only) = &self.only {
            assert_eq!(t, only.as_str(), "a per-type service sent another type");
        }
        self.nonces.record(t, &r.nonce);
        assert!(
            r.control_plane.is_some(),
            "a response without the control plane"
        );
        let current = self.current.of_type(t);
        let model = self
            .types
            .get_mut(t)
            .unwrap_or_else(|| panic!("a response of {t}, which nobody asked for"));
        let mut added = Vec::new();
        let result = match change {
            None => check_response(r, current, &self.index, model, newly, rewarm),
            Some(change) => {
                let mut after = model.clone();
                added = change.apply(&mut after);
                match check_response(r, current, &self.index, &mut after, &added, rewarm) {
                    Ok(()) => {
                        *model = after;
                        Ok(())
                    }
                    Err(e) => {
                        let r = check_response(r, current, &self.index, model, &[], rewarm);
                        change.apply(model);
                        r.map_err(|_| e)
                    }
                }
            }
        };
        if let Err(e) = result {
            panic!("{e}");
        }
        if t == type_url::CLUSTER {
            rewarm.extend(r.resources.iter().map(|x| x.name.clone()));
        }
        let count = r.resources.len() + r.removed_resources.len();
        summary.push((t.to_string(), r.system_version_info.clone(), count));
        added
    }

    /// Checks a step caused by new resources or a warming give-up: no ACKs, push order,
    /// removals after every update, nothing for listeners, routes or removals while warming.
    fn check_push(&mut self, step: &Step<DeltaDiscoveryResponse>) {
        assert!(
            acks_and_nacks(&step.feedback).is_empty(),
            "feedback without a request"
        );
        self.check_step(step, &[]);
        if self.only.is_some() {
            return;
        }
        // (A response with neither answers a first wildcard request that waited.)
        let removal_from = step
            .responses
            .iter()
            .position(|r| r.resources.is_empty() && !r.removed_resources.is_empty())
            .unwrap_or(step.responses.len());
        for (i, r) in step.responses.iter().enumerate() {
            if i < removal_from {
                assert!(
                    r.removed_resources.is_empty(),
                    "ADS removals before all updates"
                );
            } else {
                assert!(r.resources.is_empty(), "an update after ADS removals began");
            }
        }
        let ranks: Vec<(usize, String)> = step
            .responses
            .iter()
            .map(|r| {
                let t = TypeUrl::from(r.type_url.as_str());
                (t.ads_rank(), r.type_url.clone())
            })
            .collect();
        check_push_order(&ranks, removal_from);
        if self.delta.waiting().is_some() {
            for r in &step.responses {
                assert!(
                    !TypeUrl::from(r.type_url.as_str()).waits_for_warming(),
                    "{} pushed while new clusters warm",
                    r.type_url
                );
                assert!(
                    r.removed_resources.is_empty(),
                    "a removal pushed while new clusters warm"
                );
            }
        }
    }

    /// Checks every response of a step and applies it to the model.
    fn check_step(&mut self, step: &Step<DeltaDiscoveryResponse>, newly: &[String]) {
        let mut summary = Vec::new();
        // Clusters updated earlier in the step: their assignments may be re-sent unchanged
        // (Envoy re-warms a changed cluster and waits for its assignment again).
        let mut rewarm = BTreeSet::new();
        for r in &step.responses {
            self.check_one(r, newly, &mut rewarm, &mut summary, None);
        }
        check_sent(&step.feedback, &summary);
    }
}

/// A request's change to its type's subscription.
struct SubChange<'a> {
    first: bool,
    initial: &'a BTreeMap<String, String>,
    subscribe: &'a [String],
    unsubscribe: &'a [String],
}

impl SubChange<'_> {
    /// Applies the change as the rules say; returns the names newly subscribed to.
    fn apply(&self, model: &mut TypeModel) -> Vec<String> {
        if self.first {
            model.subscribed = true;
            model.known.extend(self.initial.clone());
            model.wildcard = self.subscribe.is_empty() && wildcard_capable_model(model);
        }
        let mut newly = Vec::new();
        for name in self.subscribe {
            if name == "*" {
                model.wildcard = true;
                continue;
            }
            if !self.first {
                // Asked for again: the proxy may have dropped it, so it is sent again.
                model.known.remove(name);
            }
            if model.names.insert(name.clone()) {
                newly.push(name.clone());
            }
        }
        for name in self.unsubscribe {
            if name == "*" {
                model.wildcard = false;
            } else {
                model.names.remove(name);
                model.known.remove(name);
            }
        }
        newly
    }
}

fn wildcard_capable_model(model: &TypeModel) -> bool {
    wildcard_capable(&model.type_url)
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Checks one response against the model and applies it. `newly`: names the request being
/// answered subscribed to for the first time; `rewarm`: clusters updated earlier in the step.
fn check_response(
    r: &DeltaDiscoveryResponse,
    current: Option<&TypeResources>,
    index: &Index,
    model: &mut TypeModel,
    newly: &[String],
    rewarm: &BTreeSet<String>,
) -> Result<(), String> {
    let t = r.type_url.as_str();
    ensure!(
        model.subscribed,
        "a response of {t}, which nobody asked for"
    );
    let mut updated = BTreeSet::new();
    for x in &r.resources {
        let name = &x.name;
        ensure!(
            updated.insert(name.clone()),
            "{t} '{name}' sent twice in one response"
        );
        let any = x.resource.as_ref().expect("an update without its resource");
        ensure!(
            any.type_url == t,
            "a resource of another type in a {t} response"
        );
        ensure!(index.name(any) == name, "a resource under another name");
        let e = current.and_then(|c| c.get(name));
        ensure!(e.is_some(), "{t} '{name}' sent though it does not exist");
        let e = e.expect("checked");
        ensure!(any.value == e.resource.value, "{t} '{name}' sent stale");
        ensure!(
            x.version == e.version,
            "{t} '{name}' sent with another version"
        );
        ensure!(
            model.wildcard || model.names.contains(name),
            "{t} '{name}' sent but not subscribed to"
        );
        // Rule 7: nothing the proxy already holds at this version.
        let forced = t == type_url::ENDPOINT && rewarm.contains(name);
        ensure!(
            forced || model.known.get(name) != Some(&x.version),
            "{t} '{name}' sent again at the version the proxy holds"
        );
    }
    let mut removed = BTreeSet::new();
    for name in &r.removed_resources {
        ensure!(
            removed.insert(name.clone()),
            "{t} '{name}' removed twice in one response"
        );
        ensure!(
            !updated.contains(name),
            "{t} '{name}' both updated and removed"
        );
        let exists = current.is_some_and(|c| c.contains_key(name));
        let wanted = exists && (model.wildcard || model.names.contains(name));
        ensure!(
            !wanted,
            "{t} '{name}' removed though it exists and is subscribed to"
        );
        ensure!(
            model.known.contains_key(name) || newly.contains(name),
            "{t} '{name}' removed though the proxy does not hold it and did not ask for it"
        );
    }
    for x in &r.resources {
        model.known.insert(x.name.clone(), x.version.clone());
    }
    for name in &r.removed_resources {
        model.known.remove(name);
    }
    ensure!(
        r.system_version_info == known_version(&model.known),
        "{t} system version is not the version of what the proxy now holds"
    );
    if model.recent_nonces.len() == RECENT_NONCES {
        model.recent_nonces.pop_front();
    }
    model.recent_nonces.push_back(r.nonce.clone());
    Ok(())
}

/// The version of everything the proxy holds of one type.
fn known_version(known: &BTreeMap<String, String>) -> String {
    set_version(known.iter().map(|(n, v)| (n.as_str(), v.as_str())))
}
