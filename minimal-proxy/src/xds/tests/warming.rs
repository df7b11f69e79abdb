//! Warming and initialisation: `initial_fetch_timeout` ends a wait that never ends otherwise;
//! per-type streams carry their own type; a proxy with only static resources is ready at once.

use xds_core::type_url::{CLUSTER, LISTENER};

use super::*;
use crate::xds::{StreamKey, routing, warming::Phase};

const FIFTEEN: Option<Duration> = Some(Duration::from_secs(15));

#[test]
fn without_a_cds_response_initialisation_moves_on_at_the_initial_fetch_timeout() {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, FIFTEEN));
    h.connect();
    assert_eq!(
        h.engine.next_deadline(),
        Some(h.now + Duration::from_secs(15))
    );
    let (_, out) = h.tick(Duration::from_secs(14));
    assert!(out.is_empty());
    let (_, out) = h.tick(Duration::from_secs(1));
    assert_eq!(out, ["LDS v= n= []"], "listeners start without clusters");
    assert_eq!(h.engine.phase(), Phase::Listeners);
}

#[test]
fn a_cluster_whose_assignment_never_comes_becomes_active_at_its_deadline() {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, FIFTEEN));
    h.connect();
    h.tick(Duration::from_secs(5));
    h.sotw(CLUSTER, "c1", vec![eds_cluster("web", "")]);
    assert_eq!(
        h.engine.next_deadline(),
        Some(h.now + Duration::from_secs(15))
    );
    let (effects, _) = h.tick(Duration::from_secs(10));
    assert!(!effects.publish && h.active_clusters().is_empty());
    let (effects, out) = h.tick(Duration::from_secs(5));
    assert!(effects.publish);
    assert_eq!(
        h.active_clusters(),
        ["web"],
        "active, with no endpoints yet"
    );
    assert_eq!(out, ["LDS v= n= []"]);
}

#[test]
fn a_listener_whose_routes_never_come_is_applied_at_its_deadline_and_the_proxy_is_ready() {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, FIFTEEN));
    h.connect();
    h.sotw(CLUSTER, "c1", vec![]);
    h.sotw(LISTENER, "l1", vec![listener("ingress", 10000, "ingress")]);
    assert!(!h.engine.ready());
    let (effects, _) = h.tick(Duration::from_secs(15));
    assert_eq!(names(&effects.listeners), Some(vec!["ingress".to_string()]));
    assert!(h.engine.ready());
}

#[test]
fn with_a_zero_timeout_warming_waits_for_ever() {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, None));
    h.connect();
    h.sotw(CLUSTER, "c1", vec![eds_cluster("web", "")]);
    assert_eq!(h.engine.next_deadline(), None);
    h.tick(Duration::from_secs(3600));
    assert!(h.active_clusters().is_empty());
    assert!(!h.engine.ready());
}

#[test]
fn a_proxy_without_dynamic_resources_is_ready_at_once() {
    let mut b = bootstrap(Protocol::Sotw, true, None);
    b.dynamic = None;
    let h = Harness::new(&b);
    assert!(h.engine.ready());
    assert!(h.engine.wanted().is_empty());
}

#[test]
fn per_type_streams_carry_one_type_each_and_ads_carries_all() {
    let ads = bootstrap(Protocol::Delta, true, None);
    let keys: Vec<StreamKey> = routing(ads.dynamic.as_ref().unwrap())
        .into_iter()
        .map(|(_, k, _)| k)
        .collect();
    // CDS, EDS, LDS, RDS and SDS (secrets only ever come over ADS).
    assert_eq!(keys, vec![StreamKey::Ads; 5]);
    let separate = bootstrap(Protocol::Sotw, false, None);
    let routes = routing(separate.dynamic.as_ref().unwrap());
    for (t, key, _) in &routes {
        assert_eq!(key, &StreamKey::Type(t.clone()));
    }
    // On its own stream, CDS's first request is the same wildcard request.
    let mut h = Harness::new(&separate);
    let out: Vec<String> = h
        .engine
        .on_connected(&[TypeUrl::Cluster])
        .iter()
        .map(show)
        .collect();
    assert_eq!(out, ["CDS v= n= []"]);
    let out: Vec<String> = h
        .engine
        .on_connected(&[TypeUrl::Listener])
        .iter()
        .map(show)
        .collect();
    assert!(
        out.is_empty(),
        "LDS waits for clusters on its own stream too"
    );
}
