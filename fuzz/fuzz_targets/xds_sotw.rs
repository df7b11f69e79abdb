//! The SotW state machine fed fuzzer-chosen requests (subscriptions, ACKs, NACKs, stale
//! nonces, bad type URLs) interleaved with new resource sets and warming give-ups. After
//! every step the responses are checked against the xDS rules (docs/design.md) with a small
//! model of what the proxy subscribed to and was sent. An `Err` ends the stream, as it would
//! in the server; a panic is a bug.

#![no_main]

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use arbitrary::Arbitrary;
use envoy_types::pb::{
    envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse},
    google::rpc::Status,
};
use libfuzzer_sys::fuzz_target;
use xds_core::TypeUrl;
use xds_fuzz::xds::{
    Index, MAX_OPS, NameSel, NonceSel, Nonces, ResSel, Service, TypeSel, VersionSel,
    acks_and_nacks, check_push_order, check_sent, decoded, names, wildcard_capable,
};
use xds_server::{
    translate::Resources,
    xds::{Feedback, Step, Wait, sotw::Sotw},
};

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
        names: Vec<NameSel>,
        nonce: NonceSel,
        version: VersionSel,
        nack: bool,
    },
    Resources(ResSel),
    Release,
}

/// What the proxy subscribed to, per the rules (not read from the state machine).
#[derive(Debug, Clone)]
struct Sub {
    wildcard: bool,
    /// Asked for with an explicit `*`: a later request naming nothing then means nothing.
    explicit: bool,
    names: BTreeSet<String>,
}

struct Harness {
    sotw: Sotw,
    only: Option<TypeUrl>,
    current: Arc<Resources>,
    index: Index,
    nonces: Nonces,
    subs: BTreeMap<String, Sub>,
    /// While a request's responses are checked: the subscription it replaced.
    replaced: Option<(String, Sub)>,
    /// The step being checked answers a reconnect's deferred cluster request first.
    answering_resume: bool,
    /// Per type: the version and items (name → bytes) of the latest response.
    sent: BTreeMap<String, (String, BTreeMap<String, Vec<u8>>)>,
    /// Every version sent, with what it held: equal versions must mean equal content.
    versions: HashMap<(String, String), Vec<(String, Vec<u8>)>>,
}

fuzz_target!(|input: Input| {
    let only = input.service.only();
    let aggregated = only.is_none();
    let current = input.initial.resources(aggregated);
    let mut index = Index::default();
    index.add(&current);
    let mut h = Harness {
        sotw: Sotw::new(only.clone(), current.clone()),
        only,
        current,
        index,
        nonces: Nonces::default(),
        subs: BTreeMap::new(),
        replaced: None,
        answering_resume: false,
        sent: BTreeMap::new(),
        versions: HashMap::new(),
    };
    for op in input.ops.iter().take(MAX_OPS) {
        match op {
            Op::Request {
                ty,
                names: n,
                nonce,
                version,
                nack,
            } => {
                if !h.request(ty, &names(n), nonce, version, *nack) {
                    break; // the stream was closed with an error status
                }
            }
            Op::Resources(sel) => {
                let resources = sel.resources(aggregated);
                h.index.add(&resources);
                h.current = resources.clone();
                let step = decoded(h.sotw.on_resources(resources));
                h.check_push(&step);
            }
            Op::Release => {
                let before = h.sotw.waiting();
                let step = decoded(h.sotw.release());
                let after = h.sotw.waiting();
                if before == Some(Wait::Resume) {
                    assert_eq!(
                        step.responses
                            .first()
                            .map(|r: &DiscoveryResponse| r.type_url.as_str()),
                        Some(xds_core::type_url::CLUSTER),
                        "giving up a reconnect's wait answers its cluster request first"
                    );
                    // That answer is the stream's first cluster response: it brings the
                    // clusters, so it goes first even when it holds fewer than the proxy had
                    // (a SotW proxy that named none cannot keep what it did not name).
                    h.answering_resume = true;
                }
                // Giving up ends the wait; ending a reconnect's wait may start warming the
                // clusters its answer brings.
                assert!(
                    after.is_none() || (before == Some(Wait::Resume) && after == Some(Wait::Warm)),
                    "still waiting after release: {before:?} -> {after:?}"
                );
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
        names: &[String],
        nonce: &NonceSel,
        version: &VersionSel,
        nack: bool,
    ) -> bool {
        let raw_type = ty.url();
        let type_url = match (&self.only, raw_type.as_str()) {
            (Some(t), "") => t.to_string(),
            _ => raw_type.clone(),
        };
        let nonce = self.nonces.pick(nonce, &type_url);
        let latest_version = self.sent.get(&type_url).map(|(v, _)| v.clone());
        let version = match version {
            VersionSel::Empty => String::new(),
            VersionSel::Latest => latest_version.clone().unwrap_or_default(),
            VersionSel::Raw(s) => s.clone(),
        };
        let req = DiscoveryRequest {
            type_url: raw_type,
            resource_names: names.to_vec(),
            response_nonce: nonce.clone(),
            version_info: version.clone(),
            error_detail: nack.then(|| Status {
                code: 3,
                message: "rejected by the fuzzer".into(),
                ..Status::default()
            }),
            ..DiscoveryRequest::default()
        };
        let was_resuming = self.sotw.waiting() == Some(Wait::Resume);
        let Ok(step) = self.sotw.on_request(&req) else {
            return false;
        };
        let step: Step<DiscoveryResponse> = decoded(step);
        let resuming = self.sotw.waiting() == Some(Wait::Resume);
        // A reconnecting proxy's first cluster request waits for its assignment request (or
        // the wait's end); then it is answered first.
        if was_resuming && !resuming {
            assert_eq!(
                step.responses
                    .first()
                    .map(|r: &DiscoveryResponse| r.type_url.as_str()),
                Some(xds_core::type_url::CLUSTER),
                "the reconnect's cluster request was not answered first"
            );
        }
        let latest_nonce = self.nonces.latest.get(&type_url);
        let stale = !nonce.is_empty() && latest_nonce != Some(&nonce);
        if stale {
            // Rule 3: ignored entirely.
            assert!(step.responses.is_empty(), "a stale request was answered");
            assert!(step.feedback.is_empty(), "a stale request gave feedback");
            return true;
        }
        // Rule 2: ACK and NACK by the latest nonce only.
        let expected = if nonce.is_empty() {
            vec![]
        } else if nack {
            vec![Feedback::Nack {
                type_url: type_url.clone(),
                message: "rejected by the fuzzer".into(),
            }]
        } else if Some(&version) == latest_version.as_ref() {
            vec![Feedback::Ack {
                type_url: type_url.clone(),
                version: version.clone(),
            }]
        } else {
            vec![]
        };
        let got: Vec<Feedback> = acks_and_nacks(&step.feedback)
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(got, expected, "ACK/NACK feedback for {req:?}");
        // Rule 4: LDS/CDS are wildcard when the first request names nothing (and stay so
        // while requests name nothing, unless the wildcard was an explicit `*`).
        let star = names.iter().any(|n| n == "*");
        let set: BTreeSet<String> = names.iter().filter(|n| *n != "*").cloned().collect();
        let before = self.subs.get(&type_url).cloned();
        let legacy = wildcard_capable(&type_url)
            && names.is_empty()
            && before.as_ref().is_none_or(|s| s.wildcard && !s.explicit);
        let sub = Sub {
            wildcard: star || legacy,
            explicit: star,
            names: set,
        };
        let changed = before
            .as_ref()
            .is_none_or(|b| b.wildcard != sub.wildcard || b.names != sub.names);
        self.subs.insert(type_url.clone(), sub);
        let held = self.held(&type_url);
        // An ACK or NACK that ends a warming wait sends what waited before the request's own
        // subscription is applied: those responses follow the subscription it replaces.
        self.replaced = before.map(|b| (type_url.clone(), b));
        self.check_step(&step);
        self.replaced = None;
        // Rule 5: a changed subscription is answered even when no version changed (while new
        // clusters warm, listeners and routes answer only when what they hold narrows).
        let deferred = resuming && type_url == xds_core::type_url::CLUSTER;
        if changed && !held && !deferred {
            assert!(
                step.responses.iter().any(|r| r.type_url == type_url),
                "a changed subscription to {type_url} was not answered"
            );
        }
        // Rule 2: a NACKed version is not sent again in reply to the NACK.
        if nack && !nonce.is_empty() && !changed {
            let rejected = latest_version.expect("a NACK of something sent");
            assert!(
                !step
                    .responses
                    .iter()
                    .any(|r| r.type_url == type_url && r.version_info == rejected),
                "the NACKed version {rejected} of {type_url} was sent again"
            );
        }
        true
    }

    /// Checks a step caused by new resources or a warming give-up: no ACKs, push order.
    fn check_push(&mut self, step: &Step<DiscoveryResponse>) {
        assert!(
            acks_and_nacks(&step.feedback).is_empty(),
            "feedback without a request"
        );
        let mut grew = self.check_step(step);
        if std::mem::take(&mut self.answering_resume)
            && let Some(first) = grew.first_mut()
        {
            *first = true;
        }
        if self.only.is_some() {
            return;
        }
        // Rule 6: what adds or changes resources goes out CDS, EDS, LDS, RDS; clusters and
        // listeners that only go away (the "break" of make-before-break) go out after all of
        // it, listeners before clusters. (A shrinking EDS or RDS response is not deferred.)
        let rank = |t: &str| (TypeUrl::from(t).ads_rank(), t.to_string());
        let grows: Vec<_> = step
            .responses
            .iter()
            .zip(&grew)
            .filter(|(_, g)| **g)
            .map(|(r, _)| rank(&r.type_url))
            .collect();
        let breaks: Vec<_> = step
            .responses
            .iter()
            .zip(&grew)
            .filter(|(r, g)| !**g && wildcard_capable(&r.type_url))
            .map(|(r, _)| rank(&r.type_url))
            .collect();
        let last_grow = grew.iter().rposition(|g| *g);
        let first_break = step
            .responses
            .iter()
            .zip(&grew)
            .position(|(r, g)| !*g && wildcard_capable(&r.type_url));
        if let (Some(g), Some(b)) = (last_grow, first_break) {
            assert!(
                g < b,
                "a removal went out before an update in {ranks:?}",
                ranks = grows
            );
        }
        let mut order = grows.clone();
        order.extend(breaks);
        check_push_order(&order, grows.len());
        if self.sotw.waiting().is_some() {
            // Routes and listeners wait until new clusters have their assignments.
            for r in &step.responses {
                assert!(
                    !TypeUrl::from(r.type_url.as_str()).waits_for_warming(),
                    "{} pushed while new clusters warm",
                    r.type_url
                );
            }
        }
    }

    /// Whether updates of `type_url` wait for new clusters to warm now (make-before-break).
    fn held(&self, type_url: &str) -> bool {
        self.sotw.waiting().is_some() && TypeUrl::from(type_url).waits_for_warming()
    }

    /// Checks every response of a step and records it. Returns, per response, whether it
    /// added or changed anything the proxy was sent before.
    fn check_step(&mut self, step: &Step<DiscoveryResponse>) -> Vec<bool> {
        let mut summary = Vec::new();
        let mut grew = Vec::new();
        for r in &step.responses {
            let before = self.sent.get(&r.type_url).map(|(_, items)| items.clone());
            self.check_response(r);
            let now = &self.sent[&r.type_url].1;
            grew.push(before.is_none_or(|b| now.iter().any(|(n, v)| b.get(n) != Some(v))));
            summary.push((
                r.type_url.clone(),
                r.version_info.clone(),
                r.resources.len(),
            ));
        }
        check_sent(&step.feedback, &summary);
        grew
    }

    fn check_response(&mut self, r: &DiscoveryResponse) {
        let t = r.type_url.as_str();
        if let Some(only) = &self.only {
            assert_eq!(t, only.as_str(), "a per-type service sent another type");
        }
        let sub = self
            .subs
            .get(t)
            .unwrap_or_else(|| panic!("a response of {t}, which nobody asked for"));
        let mut subs = vec![sub];
        subs.extend(self.replaced.iter().filter(|(r, _)| r == t).map(|(_, s)| s));
        let in_scope = |s: &Sub, name: &String| s.wildcard || s.names.contains(name);
        self.nonces.record(t, &r.nonce);
        assert!(!r.version_info.is_empty(), "a response without a version");
        assert!(
            r.control_plane.is_some(),
            "a response without the control plane"
        );
        let items: Vec<(String, Vec<u8>)> = r
            .resources
            .iter()
            .map(|a| {
                assert_eq!(
                    a.type_url, t,
                    "a resource of another type in a {t} response"
                );
                (self.index.name(a).to_string(), a.value.clone())
            })
            .collect();
        // Named, sorted, each once.
        assert!(
            items.windows(2).all(|w| w[0].0 < w[1].0),
            "{t} response not sorted by name or names twice: {:?}",
            items.iter().map(|i| &i.0).collect::<Vec<_>>()
        );
        let current = self.current.of_type(t);
        let previous = self.sent.get(t).map(|(_, items)| items);
        let held = self.held(t);
        for (name, bytes) in &items {
            let was_sent = previous.and_then(|p| p.get(name)) == Some(bytes);
            match current.and_then(|c| c.get(name)) {
                // What exists goes out as it is now, unless listeners and routes wait for
                // new clusters to warm: then they keep what the proxy has.
                Some(e) => assert!(
                    &e.resource.value == bytes || (held && was_sent),
                    "{t} '{name}' sent stale"
                ),
                // What is gone may stay only while the proxy moves off it (make-before-break).
                None => assert!(was_sent, "{t} '{name}' sent though it does not exist"),
            }
            assert!(
                subs.iter().any(|s| in_scope(s, name)),
                "{t} '{name}' sent but not subscribed to"
            );
        }
        // Rule 4: the full set (wildcard) or every named resource that exists.
        if let Some(current) = current.filter(|_| !held) {
            let omits = |s: &Sub| {
                current
                    .keys()
                    .find(|name| in_scope(s, name) && !items.iter().any(|(n, _)| n == *name))
            };
            if subs.iter().all(|s| omits(s).is_some()) {
                panic!("{t} response omits subscribed '{}'", omits(sub).unwrap());
            }
        }
        // Equal versions, equal content.
        let key = (t.to_string(), r.version_info.clone());
        let held = self.versions.entry(key).or_insert_with(|| items.clone());
        assert_eq!(
            held, &items,
            "{t} version {} names two contents",
            r.version_info
        );
        self.sent.insert(
            t.to_string(),
            (r.version_info.clone(), items.into_iter().collect()),
        );
    }
}
