//! State-of-the-World over ADS: subscription order, ACK after apply, NACK naming each resource,
//! removals, and resuming after a reconnect.

use xds_core::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};

use super::*;
use crate::xds::warming::Phase;

/// A proxy that went through the whole initial exchange: `web` (EDS), listener `ingress` on
/// RDS `ingress`, every type ACKed once; nonces 1..=4.
fn initialised() -> Harness {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, None));
    h.connect();
    h.sotw(CLUSTER, "c1", vec![eds_cluster("web", "")]);
    h.sotw(ENDPOINT, "e1", vec![assignment("web", 8081)]);
    h.sotw(LISTENER, "l1", vec![listener("ingress", 10000, "ingress")]);
    h.sotw(ROUTE, "r1", vec![route("ingress", "web")]);
    assert!(h.engine.ready());
    h
}

#[test]
fn the_first_request_is_wildcard_cds_alone_listeners_wait_for_clusters() {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, None));
    assert_eq!(h.engine.wanted(), [TypeUrl::Cluster]);
    assert_eq!(h.connect(), ["CDS v= n= []"]);
    assert!(!h.engine.ready());
}

#[test]
fn a_cluster_subscribes_its_assignment_before_the_cds_ack() {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, None));
    h.connect();
    let (effects, out) = h.sotw(CLUSTER, "c1", vec![eds_cluster("web", "web-svc")]);
    assert_eq!(out, ["EDS v= n= [web-svc]", "CDS v=c1 n=1 []"]);
    assert!(
        !effects.publish,
        "a warming cluster is not in the runtime yet"
    );
    assert!(h.active_clusters().is_empty());
    assert_eq!(h.engine.phase(), Phase::Clusters);
}

#[test]
fn a_cluster_becomes_active_with_its_assignment_and_then_lds_starts() {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, None));
    h.connect();
    h.sotw(CLUSTER, "c1", vec![eds_cluster("web", "")]);
    let (effects, out) = h.sotw(ENDPOINT, "e1", vec![assignment("web", 8081)]);
    assert!(effects.publish);
    assert_eq!(h.active_clusters(), ["web"]);
    assert_eq!(out, ["EDS v=e1 n=2 [web]", "LDS v= n= []"]);
    assert_eq!(h.engine.phase(), Phase::Listeners);
}

#[test]
fn a_listener_is_applied_once_its_routes_arrive_and_then_the_proxy_is_ready() {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, None));
    h.connect();
    h.sotw(CLUSTER, "c1", vec![eds_cluster("web", "")]);
    h.sotw(ENDPOINT, "e1", vec![assignment("web", 8081)]);
    let (effects, out) = h.sotw(LISTENER, "l1", vec![listener("ingress", 10000, "ingress")]);
    assert!(
        effects.listeners.is_none(),
        "warming: not handed to the listener manager"
    );
    assert_eq!(out, ["RDS v= n= [ingress]", "LDS v=l1 n=3 []"]);
    assert!(!h.engine.ready());
    let (effects, out) = h.sotw(ROUTE, "r1", vec![route("ingress", "web")]);
    assert_eq!(names(&effects.listeners), Some(vec!["ingress".to_string()]));
    assert!(
        effects.publish,
        "the route configuration is published with the listener"
    );
    assert_eq!(out, ["RDS v=r1 n=4 [ingress]"]);
    assert!(h.engine.ready());
}

#[test]
fn a_partly_bad_response_applies_the_good_resources_and_nacks_naming_the_bad() {
    let mut h = initialised();
    let (_, out) = h.sotw(
        CLUSTER,
        "c2",
        vec![
            eds_cluster("web", ""),
            eds_cluster("api", ""),
            bad_cluster("broken"),
        ],
    );
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], "EDS v=e1 n=2 [api,web]");
    assert!(
        out[1].starts_with("CDS v=c1 n=5 [] NACK cluster 'broken': lb_policy"),
        "the NACK keeps the previous version and names the resource: {}",
        out[1]
    );
    assert_eq!(h.engine.version(&TypeUrl::Cluster), "c1");
    assert!(
        h.engine.store().clusters["api"].warming.is_some(),
        "the good one was taken"
    );
    assert!(h.engine.store().clusters["broken"].failure.is_some());
}

#[test]
fn a_cluster_absent_from_a_full_response_is_removed() {
    let mut h = initialised();
    let (effects, out) = h.sotw(CLUSTER, "c2", vec![]);
    assert!(effects.publish);
    assert!(h.active_clusters().is_empty());
    assert_eq!(out, ["EDS v=e1 n=2 []", "CDS v=c2 n=5 []"]);
}

#[test]
fn an_unchanged_cluster_does_not_warm_again() {
    let mut h = initialised();
    let (effects, out) = h.sotw(CLUSTER, "c2", vec![eds_cluster("web", "")]);
    assert!(!effects.publish, "the same cluster object keeps serving");
    assert_eq!(out, ["CDS v=c2 n=5 []"]);
    assert!(h.engine.store().clusters["web"].warming.is_none());
}

#[test]
fn a_changed_cluster_keeps_serving_its_old_version_until_the_new_one_warms() {
    let mut h = initialised();
    let before = h.engine.store().clusters["web"]
        .active
        .clone()
        .expect("active");
    let (effects, out) = h.sotw(CLUSTER, "c2", vec![eds_cluster("web", "web-v2")]);
    assert!(!effects.publish);
    assert_eq!(out, ["EDS v=e1 n=2 [web,web-v2]", "CDS v=c2 n=5 []"]);
    let slot = &h.engine.store().clusters["web"];
    assert_eq!(
        slot.active.as_ref().map(|e| &e.version),
        Some(&before.version)
    );
    let (effects, out) = h.sotw(
        ENDPOINT,
        "e2",
        vec![assignment("web", 8081), assignment("web-v2", 8082)],
    );
    assert!(effects.publish);
    assert_eq!(
        out,
        ["EDS v=e2 n=6 [web-v2]"],
        "the old assignment is released"
    );
    assert_eq!(
        h.engine.store().clusters["web"]
            .active
            .as_ref()
            .unwrap()
            .version,
        "c2"
    );
}

#[test]
fn an_assignment_update_for_an_active_cluster_is_published() {
    let mut h = initialised();
    let (effects, out) = h.sotw(ENDPOINT, "e2", vec![assignment("web", 9090)]);
    assert!(effects.publish);
    assert_eq!(out, ["EDS v=e2 n=5 [web]"]);
}

#[test]
fn a_listener_refused_by_the_listener_manager_is_nacked_and_put_back() {
    let mut h = initialised();
    let update = Update::from_sotw(DiscoveryResponse {
        version_info: "l2".into(),
        resources: vec![listener("ingress", 10001, "ingress")],
        type_url: LISTENER.into(),
        nonce: "5".into(),
        ..Default::default()
    });
    let refused = vec![crate::config::Rejection {
        resource: "listener 'ingress'".into(),
        field: "address".into(),
        reason: "cannot bind 127.0.0.1:10001: address in use".into(),
    }];
    let (_, out) = h.step(update, refused);
    assert_eq!(
        out,
        [
            "LDS v=l1 n=5 [] NACK listener 'ingress': address: cannot bind 127.0.0.1:10001: address in use"
        ]
    );
    let slot = &h.engine.store().listeners["ingress"];
    assert_eq!(
        slot.active.as_ref().unwrap().version,
        "l1",
        "the previous version is back"
    );
    assert!(slot.failure.is_some());
}

#[test]
fn a_reconnect_resumes_every_type_with_its_last_version() {
    let mut h = initialised();
    h.engine.on_disconnected(&TypeUrl::ADS_ORDER);
    assert_eq!(
        h.connect(),
        [
            "CDS v=c1 n= []",
            "EDS v=e1 n= [web]",
            "LDS v=l1 n= []",
            "RDS v=r1 n= [ingress]"
        ]
    );
    assert!(
        h.engine.ready(),
        "the last good configuration keeps serving"
    );
    assert_eq!(h.active_listeners(), ["ingress"]);
}

#[test]
fn a_static_cluster_cannot_be_replaced_over_cds() {
    let mut b = bootstrap(Protocol::Sotw, true, None);
    let static_cluster = crate::bootstrap::parse(
        r#"{"static_resources": {"clusters": [{"name": "web", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "web", "endpoints": []}}]}}"#,
        true,
        &Default::default(),
    )
    .expect("a valid static cluster");
    b.clusters = static_cluster.clusters;
    let mut h = Harness::new(&b);
    assert_eq!(h.active_clusters(), ["web"]);
    h.connect();
    let (_, out) = h.sotw(CLUSTER, "c1", vec![eds_cluster("web", "")]);
    assert!(
        out[0].contains("NACK cluster 'web': name: is a static resource"),
        "{out:?}"
    );
    assert_eq!(h.active_clusters(), ["web"]);
}

#[test]
fn a_listener_refused_once_its_routes_arrive_is_nacked_again_on_lds() {
    let mut h = initialised();
    h.sotw(
        LISTENER,
        "l2",
        vec![
            listener("ingress", 10000, "ingress"),
            listener("admin", 9000, "admin"),
        ],
    );
    let update = Update::from_sotw(DiscoveryResponse {
        version_info: "r2".into(),
        resources: vec![route("admin", "web")],
        type_url: ROUTE.into(),
        nonce: "6".into(),
        ..Default::default()
    });
    let refused = vec![crate::config::Rejection {
        resource: "listener 'admin'".into(),
        field: "address".into(),
        reason: "cannot bind".into(),
    }];
    let (_, out) = h.step(update, refused);
    // Nothing refers to the `admin` routes any more: the RDS ACK drops the name.
    assert_eq!(
        out,
        [
            "RDS v=r2 n=6 [ingress]",
            "LDS v=l2 n=5 [] NACK listener 'admin': address: cannot bind"
        ]
    );
    assert_eq!(h.active_listeners(), ["ingress"]);
}
