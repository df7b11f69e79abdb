//! Unit tests for the delta state machine: per-resource versions, initial_resource_versions,
//! subscribe/unsubscribe, removals, ACK/NACK by nonce, and make-before-break ordering on ADS.

use std::{collections::HashMap, sync::Arc};

use envoy_types::pb::{
    envoy::{
        config::core::v3::Node,
        service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse},
    },
    google::rpc::Status,
};

use prost::Message;
use xds_core::TypeUrl;

use super::Delta;
use crate::{
    translate::{Resources, content_version},
    xds::{Error, Feedback, Step, fixtures::*, wire::DeltaResponse},
};

// === helpers ===

fn clusters(spec: &str) -> Arc<Resources> {
    resources(spec, "", "", "")
}

fn endpoints(spec: &str) -> Arc<Resources> {
    resources("", spec, "", "")
}

fn req(
    type_url: &str,
    subscribe: &[&str],
    unsubscribe: &[&str],
    nonce: &str,
) -> DeltaDiscoveryRequest {
    let strings = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
    DeltaDiscoveryRequest {
        type_url: type_url.to_string(),
        resource_names_subscribe: strings(subscribe),
        resource_names_unsubscribe: strings(unsubscribe),
        response_nonce: nonce.to_string(),
        node: Some(Node {
            id: "n1".to_string(),
            ..Node::default()
        }),
        ..DeltaDiscoveryRequest::default()
    }
}

/// Each response as `"CDS:a b -gone"`: the type, the names updated, then the names removed.
fn sent(step: &Step<DeltaDiscoveryResponse>) -> Vec<String> {
    let one = |r: &DeltaDiscoveryResponse| {
        let updated = r.resources.iter().map(|x| x.name.clone());
        let removed = r.removed_resources.iter().map(|n| format!("-{n}"));
        let all: Vec<String> = updated.chain(removed).collect();
        format!("{}:{}", short(&r.type_url), all.join(" "))
    };
    step.responses.iter().map(one).collect()
}

const NONE: [&str; 0] = [];

/// The feedback other than `Sent` (which [`Harness`] checks against the responses).
fn feedback(step: &Step<DeltaDiscoveryResponse>) -> Vec<Feedback> {
    let not_sent = |f: &&Feedback| !matches!(f, Feedback::Sent { .. } | Feedback::Verdict { .. });
    step.feedback.iter().filter(not_sent).cloned().collect()
}

/// A state machine plus checks common to every step: nonces fresh and increasing, each
/// resource's name and version matching its bytes, and one `Sent` feedback per response.
struct Harness {
    delta: Delta,
    last_nonce: u64,
}

impl Harness {
    fn new(only: Option<&str>, resources: Arc<Resources>) -> Self {
        let last_nonce = 0;
        let delta = Delta::new(only.map(TypeUrl::from), resources);
        Self { delta, last_nonce }
    }

    #[track_caller]
    fn request(&mut self, r: DeltaDiscoveryRequest) -> Step<DeltaDiscoveryResponse> {
        let step = self.delta.on_request(&r).expect("accepted");
        self.check(step)
    }

    #[track_caller]
    fn update(&mut self, resources: Arc<Resources>) -> Step<DeltaDiscoveryResponse> {
        let step = self.delta.on_resources(resources);
        self.check(step)
    }

    /// Subscribes, checks there is exactly one response, ACKs it and returns it.
    #[track_caller]
    fn subscribe(&mut self, type_url: &str, names: &[&str]) -> DeltaDiscoveryResponse {
        let step = self.request(req(type_url, names, &[], ""));
        assert_eq!(step.responses.len(), 1, "first request must be answered");
        let r = step.responses[0].clone();
        let step = self.request(req(type_url, &[], &[], &r.nonce));
        assert_eq!(sent(&step), NONE, "an ACK is not answered");
        let (type_url, version) = (r.type_url.clone(), r.system_version_info.clone());
        assert_eq!(feedback(&step), [Feedback::Ack { type_url, version }]);
        r
    }

    #[track_caller]
    fn check(&mut self, step: Step<DeltaResponse>) -> Step<DeltaDiscoveryResponse> {
        // What goes on the wire, decoded as the Envoy message: checks the encoding too.
        let step = Step {
            responses: step
                .responses
                .iter()
                .map(|r| {
                    DeltaDiscoveryResponse::decode(r.encode_to_vec().as_slice()).expect("decodes")
                })
                .collect(),
            feedback: step.feedback,
        };
        let mut expected = Vec::new();
        for r in &step.responses {
            let nonce: u64 = r.nonce.parse().expect("numeric nonce");
            assert!(nonce > self.last_nonce, "nonces must increase");
            self.last_nonce = nonce;
            assert!(r.control_plane.is_some(), "no control plane identity");
            for x in &r.resources {
                let any = x.resource.as_ref().expect("resource body");
                assert_eq!(any.type_url, r.type_url);
                let text = String::from_utf8(any.value.clone()).expect("utf-8 test payload");
                assert_eq!(text.split('#').next(), Some(x.name.as_str()));
                assert_eq!(x.version, content_version(&any.value));
            }
            expected.push(Feedback::Sent {
                type_url: r.type_url.clone(),
                version: r.system_version_info.clone(),
                count: r.resources.len() + r.removed_resources.len(),
            });
        }
        let is_sent = |f: &&Feedback| matches!(f, Feedback::Sent { .. });
        let got: Vec<Feedback> = step.feedback.iter().filter(is_sent).cloned().collect();
        assert_eq!(got, expected, "Sent feedback must mirror the responses");
        step
    }
}

// === wildcard CDS and ACK ===

#[test]
fn wildcard_cds_sends_every_cluster_with_its_version_and_ack_gets_nothing() {
    let mut h = Harness::new(None, clusters("a:1 b:1"));
    let step = h.request(req(CDS, &[], &[], ""));
    assert_eq!(sent(&step), ["CDS:a b"]);
    assert_eq!(feedback(&step), []);
    let r = &step.responses[0];
    assert_eq!(r.resources[0].version, content_version(&payload("a", "1")));

    let step = h.request(req(CDS, &[], &[], &r.nonce));
    assert_eq!(sent(&step), NONE);
    let (type_url, version) = (CDS.to_string(), r.system_version_info.clone());
    assert_eq!(feedback(&step), [Feedback::Ack { type_url, version }]);
}

// === reconnect ===

#[test]
fn initial_resource_versions_skip_what_the_proxy_already_has() {
    let mut h = Harness::new(None, clusters("a:1 b:2"));
    let initial: HashMap<String, String> = [
        ("a", content_version(&payload("a", "1"))),
        ("b", content_version(&payload("b", "1"))),
        ("gone", "whatever".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let step = h.request(DeltaDiscoveryRequest {
        initial_resource_versions: initial,
        ..req(CDS, &[], &[], "")
    });
    assert_eq!(sent(&step), ["CDS:b -gone"]);
}

#[test]
fn initial_resource_versions_on_named_eds() {
    let mut h = Harness::new(None, endpoints("a:1 b:1"));
    let initial = [("a".to_string(), content_version(&payload("a", "1")))];
    let step = h.request(DeltaDiscoveryRequest {
        initial_resource_versions: initial.into(),
        ..req(EDS, &["a", "b"], &[], "")
    });
    assert_eq!(sent(&step), ["EDS:b"]);
}

#[test]
fn a_proxy_that_already_holds_everything_is_resumed_not_sent_to() {
    let mut h = Harness::new(None, clusters("a:1"));
    let initial = [("a".to_string(), content_version(&payload("a", "1")))];
    let step = h.request(DeltaDiscoveryRequest {
        initial_resource_versions: initial.into(),
        ..req(CDS, &[], &[], "")
    });
    assert_eq!(sent(&step), NONE);
    match feedback(&step).as_slice() {
        [Feedback::Resumed { type_url, version }] => {
            assert_eq!(type_url, CDS);
            assert!(!version.is_empty());
        }
        other => panic!("expected one Resumed, got {other:?}"),
    }
    // A fresh connection without initial versions is sent to as usual, never "resumed".
    let mut fresh = Harness::new(None, clusters("a:1"));
    let step = fresh.request(req(CDS, &[], &[], ""));
    assert_eq!(sent(&step), ["CDS:a"]);
    assert_eq!(feedback(&step), []);
}

// === subscriptions ===

#[test]
fn eds_subscribe_and_unsubscribe() {
    let mut h = Harness::new(None, endpoints("a:1 b:1"));
    let r = h.subscribe(EDS, &["a"]);
    assert_eq!(r.resources.len(), 1);

    let step = h.request(req(EDS, &["b"], &[], &r.nonce));
    assert_eq!(sent(&step), ["EDS:b"]);
    let r = step.responses[0].clone();
    assert_eq!(sent(&h.request(req(EDS, &[], &["a"], &r.nonce))), NONE);

    // a is no longer subscribed: its changes are not sent; b's are.
    assert_eq!(sent(&h.update(endpoints("a:2 b:1"))), NONE);
    let step = h.update(endpoints("a:3 b:2"));
    assert_eq!(sent(&step), ["EDS:b"]);

    // Subscribing again sends it again (the proxy dropped it on unsubscribe).
    let step = h.request(req(EDS, &["a"], &[], &step.responses[0].nonce));
    assert_eq!(sent(&step), ["EDS:a"]);
}

#[test]
fn subscribing_to_a_missing_name_reports_it_removed() {
    let mut h = Harness::new(None, endpoints("a:1"));
    let step = h.request(req(EDS, &["a", "missing"], &[], ""));
    assert_eq!(sent(&step), ["EDS:a -missing"]);
    let step = h.request(req(EDS, &["other"], &[], &step.responses[0].nonce));
    assert_eq!(sent(&step), ["EDS:-other"]);
    // Once it appears, it is sent.
    assert_eq!(sent(&h.update(endpoints("a:1 other:1"))), ["EDS:other"]);
}

#[test]
fn star_turns_wildcard_on_and_off() {
    let mut h = Harness::new(None, clusters("a:1 b:1"));
    let r = h.subscribe(CDS, &["a"]);
    assert_eq!(r.resources.len(), 1, "explicit names: not wildcard");

    let step = h.request(req(CDS, &["*"], &[], &r.nonce));
    assert_eq!(sent(&step), ["CDS:b"]);
    let step = h.update(clusters("a:1 b:1 c:1"));
    assert_eq!(sent(&step), ["CDS:c"]);

    // Off again: whatever comes back must not remove or resend the explicitly named a.
    let step = h.request(req(CDS, &[], &["*"], &step.responses[0].nonce));
    for r in &step.responses {
        assert!(r.resources.is_empty(), "{:?}", sent(&step));
        assert!(!r.removed_resources.contains(&"a".to_string()));
    }
    assert_eq!(sent(&h.update(clusters("a:1 b:2 c:1 d:1"))), NONE);
    assert_eq!(sent(&h.update(clusters("a:2 b:2 c:1 d:1"))), ["CDS:a"]);
}

/// Unsubscribing a name while wildcard still covers it: the proxy dropped its copy and expects
/// the current state again (as go-control-plane does, its issue #558).
#[test]
fn unsubscribing_a_name_still_covered_by_wildcard_resends_it() {
    let mut h = Harness::new(None, clusters("a:1 b:1"));
    let r = h.subscribe(CDS, &["*", "a"]);
    assert_eq!(sent(&h.request(req(CDS, &[], &["a"], &r.nonce))), ["CDS:a"]);
}

// === nonces ===

#[test]
fn stale_nonce_still_applies_the_subscription_without_feedback() {
    let mut h = Harness::new(None, endpoints("a:1 b:1"));
    let first = h.subscribe(EDS, &["a"]);
    assert_eq!(sent(&h.update(endpoints("a:2 b:1"))), ["EDS:a"]);

    let step = h.request(req(EDS, &["b"], &[], &first.nonce));
    assert_eq!(sent(&step), ["EDS:b"]);
    assert_eq!(feedback(&step), []);
}

#[test]
fn nack_is_recorded_and_the_rejected_version_not_resent() {
    let mut h = Harness::new(None, clusters("a:1 b:1"));
    let r = h.request(req(CDS, &[], &[], "")).responses[0].clone();
    let status = Status {
        code: 3,
        message: "bad cluster b".to_string(),
        ..Status::default()
    };
    let step = h.request(DeltaDiscoveryRequest {
        error_detail: Some(status),
        ..req(CDS, &[], &[], &r.nonce)
    });
    assert_eq!(sent(&step), NONE);
    let (type_url, message) = (CDS.to_string(), "bad cluster b".to_string());
    assert_eq!(feedback(&step), [Feedback::Nack { type_url, message }]);

    assert_eq!(sent(&h.update(clusters("a:1 b:1"))), NONE);
    assert_eq!(sent(&h.update(clusters("a:1 b:2"))), ["CDS:b"]);
}

// === on_resources ordering ===

#[test]
fn ads_updates_in_order_then_removals_in_reverse() {
    let mut h = Harness::new(None, resources("a:1 b:1", "a:1 b:1", "l:1", "r1:1 r2:1"));
    h.subscribe(CDS, &[]);
    h.subscribe(EDS, &["a", "b"]);
    h.subscribe(LDS, &[]);
    h.subscribe(RDS, &["r1", "r2"]);

    // a changes (its endpoints do not), b goes, l and r1 change, r2 goes.
    let after = || resources("a:2", "a:1", "l:2", "r1:2");
    let step = h.update(after());
    let expected = [
        "CDS:a", "EDS:a", // unchanged, but re-warming a waits for it
        "LDS:l", "RDS:r1", "RDS:-r2", // removals after every update, in reverse order
        "EDS:-b", "CDS:-b",
    ];
    assert_eq!(sent(&step), expected);
    assert_eq!(sent(&h.update(after())), NONE, "nothing left over");
}

#[test]
fn new_cluster_gets_its_endpoints_after_it() {
    let mut h = Harness::new(None, resources("a:1", "a:1", "", ""));
    h.subscribe(CDS, &[]);
    let r = h.subscribe(EDS, &["a"]);
    assert_eq!(
        sent(&h.request(req(EDS, &["b"], &[], &r.nonce))),
        ["EDS:-b"]
    );
    let step = h.update(resources("a:1 b:1", "a:1 b:1", "", ""));
    assert_eq!(sent(&step), ["CDS:b", "EDS:b"]);
}

#[test]
fn per_type_service_sends_updates_and_removals_together() {
    let mut h = Harness::new(Some(CDS), clusters("a:1 b:1"));
    let r = h.subscribe("", &[]);
    assert_eq!(r.type_url, CDS);
    assert_eq!(sent(&h.update(clusters("a:2"))), ["CDS:a -b"]);

    let err = h.delta.on_request(&req(LDS, &[], &[], "")).unwrap_err();
    let got = LDS.to_string();
    assert_eq!(
        err,
        Error::WrongType {
            expected: TypeUrl::Cluster,
            got
        }
    );
    let mut ads = Harness::new(None, clusters("a:1"));
    let err = ads.delta.on_request(&req("foo", &[], &[], "")).unwrap_err();
    assert_eq!(err, Error::BadTypeUrl("foo".to_string()));
}

// === new clusters warm before routes move ===

#[test]
fn routes_to_a_new_cluster_wait_until_its_assignment_is_acked() {
    let mut h = Harness::new(None, resources("a:1 b:1", "a:1 b:1", "l:1", "r:1"));
    h.subscribe(CDS, &[]);
    h.subscribe(EDS, &["a", "b"]);
    h.subscribe(LDS, &[]);
    h.subscribe(RDS, &["r"]);
    // The route moves to a new cluster c and b goes away.
    let step = h.update(resources("a:1 c:1", "a:1 c:1", "l:1", "r:2"));
    assert_eq!(sent(&step), ["CDS:c"], "routes and removals wait");
    assert!(h.delta.waiting().is_some());
    let cds = step.responses[0].clone();
    h.request(req(CDS, &[], &[], &cds.nonce));

    // Envoy subscribes to c's assignment: sent, without b's removal yet.
    let step = h.request(req(EDS, &["c"], &[], ""));
    assert_eq!(sent(&step), ["EDS:c"]);
    let eds = step.responses[0].clone();

    // Acknowledged: the route goes out, then the removals in reverse order.
    let step = h.request(req(EDS, &[], &[], &eds.nonce));
    assert_eq!(sent(&step), ["RDS:r", "EDS:-b", "CDS:-b"]);
    assert!(h.delta.waiting().is_none());
}

#[test]
fn a_rejected_cluster_releases_the_routes() {
    let mut h = Harness::new(None, resources("a:1", "a:1", "l:1", "r:1"));
    h.subscribe(CDS, &[]);
    h.subscribe(EDS, &["a"]);
    h.subscribe(RDS, &["r"]);
    let step = h.update(resources("a:1 c:1", "a:1 c:1", "l:1", "r:2"));
    assert_eq!(sent(&step), ["CDS:c"]);
    let nonce = step.responses[0].nonce.clone();
    let step = h.request(DeltaDiscoveryRequest {
        error_detail: Some(Status {
            code: 3,
            message: "bad cluster".into(),
            ..Status::default()
        }),
        ..req(CDS, &[], &[], &nonce)
    });
    assert_eq!(sent(&step), ["RDS:r"]);
}

#[test]
fn a_nack_of_an_earlier_response_in_the_same_step_counts() {
    let mut h = Harness::new(None, resources("a:1 b:1", "a:1 b:1", "l:1", "r:1"));
    h.subscribe(CDS, &[]);
    h.subscribe(EDS, &["a", "b"]);
    h.subscribe(RDS, &["r"]);
    // b goes and a changes: CDS updates, then (after the route) CDS removals.
    let step = h.update(resources("a:2", "a:1", "l:1", "r:2"));
    let cds: Vec<_> = step
        .responses
        .iter()
        .filter(|r| r.type_url == CDS)
        .cloned()
        .collect();
    assert_eq!(cds.len(), 2, "{:?}", sent(&step));
    let step = h.request(DeltaDiscoveryRequest {
        error_detail: Some(Status {
            code: 3,
            message: "bad a".into(),
            ..Status::default()
        }),
        ..req(CDS, &[], &[], &cds[0].nonce)
    });
    let nack = Feedback::Nack {
        type_url: CDS.to_string(),
        message: "bad a".into(),
    };
    assert_eq!(feedback(&step), [nack]);
    // An ACK of the earlier response is not an ACK of the latest.
    let step = h.request(req(CDS, &[], &[], &cds[0].nonce));
    assert_eq!(feedback(&step), []);
}

// === protocol edges ===

fn nack(type_url: &str, nonce: &str, message: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        error_detail: Some(Status {
            code: 3,
            message: message.into(),
            ..Status::default()
        }),
        ..req(type_url, &[], &[], nonce)
    }
}

/// The protocol says a server must answer a subscription to a name the client already has
/// (it may have dropped it, e.g. when a cluster was re-created).
#[test]
fn a_resubscribe_to_a_held_name_is_answered() {
    let mut h = Harness::new(None, endpoints("a:1 b:1"));
    let r = h.subscribe(EDS, &["a", "b"]);
    let step = h.request(req(EDS, &["a"], &[], &r.nonce));
    assert_eq!(sent(&step), ["EDS:a"]);
}

#[test]
fn the_first_eds_cluster_holds_routes_before_any_eds_subscription() {
    let mut h = Harness::new(None, resources("s:1", "", "l:1", "r:1"));
    h.subscribe(CDS, &[]);
    h.subscribe(LDS, &[]);
    h.subscribe(RDS, &["r"]);
    let step = h.update(resources("s:1 web:1", "web:1", "l:1", "r:2"));
    assert_eq!(sent(&step), ["CDS:web"], "the route to web waits");
    assert!(h.delta.waiting().is_some());
    let step = h.request(req(EDS, &["web"], &[], ""));
    assert_eq!(sent(&step), ["EDS:web"]);
    let eds = step.responses[0].clone();
    let step = h.request(req(EDS, &[], &[], &eds.nonce));
    assert_eq!(sent(&step), ["RDS:r"]);
}

/// A reconnecting proxy reports what it holds; clusters it lacks warm before its listeners
/// and routes move, and a first wildcard LDS request waits for that too.
#[test]
fn a_reconnect_after_the_mesh_changed_holds_listeners_until_clusters_warm() {
    let res = resources("a:1 new:1", "a:1 new:1", "l:2", "");
    let mut h = Harness::new(None, res);
    let initial = HashMap::from([("a".to_string(), content_version(&payload("a", "1")))]);
    let step = h.request(DeltaDiscoveryRequest {
        initial_resource_versions: initial,
        ..req(CDS, &[], &[], "")
    });
    assert_eq!(sent(&step), ["CDS:new"]);
    assert!(h.delta.waiting().is_some());
    let step = h.request(req(LDS, &[], &[], ""));
    assert_eq!(
        sent(&step),
        NONE,
        "the listener may route to `new`: it waits"
    );
    let step = h.request(req(EDS, &["a", "new"], &[], ""));
    let eds = step.responses[0].clone();
    let step = h.request(req(EDS, &[], &[], &eds.nonce));
    assert_eq!(sent(&step), ["LDS:l"]);

    // A first wildcard request that waited is answered even when there is nothing to send.
    let mut h2 = Harness::new(None, resources("new:1", "new:1", "", ""));
    h2.request(req(CDS, &[], &[], ""));
    assert_eq!(sent(&h2.request(req(LDS, &[], &[], ""))), NONE);
    assert!(h2.delta.waiting().is_some());
    let step = h2.delta.release();
    let step = h2.check(step);
    assert_eq!(sent(&step), ["LDS:"]);
}

/// A proxy reconnecting with a cluster the mesh no longer routes it to (`old`) keeps it, and
/// its assignment, until its routes moved to the new cluster: its first responses add `new`
/// and remove nothing; the removals go last.
#[test]
fn a_reconnect_removes_what_the_proxy_holds_only_after_its_routes_moved() {
    let mut h = Harness::new(None, resources("new:1", "new:1", "l:1", "r:2"));
    let held = |name: &str, tag: &str| (name.to_string(), content_version(&payload(name, tag)));
    let step = h.request(DeltaDiscoveryRequest {
        initial_resource_versions: HashMap::from([held("old", "1")]),
        ..req(CDS, &[], &[], "")
    });
    assert_eq!(sent(&step), ["CDS:new"], "`old` is not removed yet");
    let step = h.request(DeltaDiscoveryRequest {
        initial_resource_versions: HashMap::from([held("old", "1")]),
        ..req(EDS, &["old"], &[], "")
    });
    assert_eq!(sent(&step), NONE, "nor its assignment");
    let step = h.request(DeltaDiscoveryRequest {
        initial_resource_versions: HashMap::from([held("r", "1")]),
        ..req(RDS, &["r"], &[], "")
    });
    assert_eq!(sent(&step), NONE, "the route moves once `new` warmed");
    let step = h.request(req(EDS, &["new"], &[], ""));
    assert_eq!(sent(&step), ["EDS:new"]);
    let eds = step.responses[0].clone();
    let step = h.request(req(EDS, &[], &[], &eds.nonce));
    assert_eq!(sent(&step), ["RDS:r", "EDS:-old", "CDS:-old"]);
    assert_eq!(h.delta.waiting(), None);
}

#[test]
fn newly_asked_routes_wait_while_clusters_warm() {
    let mut h = Harness::new(None, resources("a:1", "a:1", "l:1", "r:1 r2:1"));
    h.subscribe(CDS, &[]);
    h.subscribe(EDS, &["a"]);
    h.subscribe(RDS, &["r"]);
    h.update(resources("a:1 c:1", "a:1 c:1", "l:1", "r:2 r2:1"));
    assert!(h.delta.waiting().is_some());
    let step = h.request(req(RDS, &["r2"], &[], ""));
    assert_eq!(sent(&step), NONE, "r2 may route to c: it waits");
    let step = h.request(req(EDS, &["c"], &[], ""));
    let eds = step.responses[0].clone();
    let step = h.request(req(EDS, &[], &[], &eds.nonce));
    assert_eq!(sent(&step), ["RDS:r r2"]);
}

#[test]
fn the_forced_assignment_resend_skips_a_rejected_assignment() {
    let mut h = Harness::new(None, resources("a:1", "a:1", "", ""));
    h.subscribe(CDS, &[]);
    h.subscribe(EDS, &["a"]);
    let step = h.update(resources("a:1", "a:2", "", ""));
    assert_eq!(sent(&step), ["EDS:a"]);
    h.request(nack(EDS, &step.responses[0].nonce, "bad assignment"));
    // a changes and re-warms; the assignment it rejected is not sent again.
    assert_eq!(sent(&h.update(resources("a:2", "a:2", "", ""))), ["CDS:a"]);
    // Once the assignment changes, it goes out again.
    assert_eq!(sent(&h.update(resources("a:2", "a:3", "", ""))), ["EDS:a"]);
}

#[test]
fn more_names_than_the_cap_are_served_up_to_it_and_reported() {
    let mut h = Harness::new(None, endpoints("n0:1"));
    let many: Vec<String> = (0..=super::MAX_NAMES).map(|i| format!("n{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let step = h.request(req(EDS, &many, &[], ""));
    assert!(
        sent(&step)[0].starts_with("EDS:n0"),
        "the stream stays up and is answered"
    );
    let capped = feedback(&step)
        .into_iter()
        .any(|f| matches!(f, Feedback::Capped { asked, .. } if asked == super::MAX_NAMES + 1));
    assert!(capped, "{:?}", feedback(&step));
}

/// See the SotW test of the same name.
#[test]
fn no_assignment_resend_for_a_proxy_that_rewarms_from_what_it_holds() {
    let mut h = Harness::new(None, resources("a:1", "a:1", "", ""));
    h.delta = h.delta.without_rewarm_resend();
    h.subscribe(CDS, &[]);
    h.subscribe(EDS, &["a"]);
    assert_eq!(sent(&h.update(resources("a:2", "a:1", "", ""))), ["CDS:a"]);
}
