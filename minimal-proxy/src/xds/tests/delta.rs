//! Delta xDS: per-resource versions, subscribe and unsubscribe by name, `removed_resources`,
//! partial NACKs, and `initial_resource_versions` on reconnect.

use xds_core::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};

use super::*;

fn started() -> Harness {
    let mut h = Harness::new(&bootstrap(Protocol::Delta, true, None));
    assert_eq!(h.connect(), ["CDS +[] -[] n="], "wildcard: no names");
    h
}

/// Clusters `web` and `api` (EDS), both assigned; listener and route; nonces 1..=4.
fn initialised() -> Harness {
    let mut h = started();
    h.delta(
        CLUSTER,
        vec![
            ("web", "w1", eds_cluster("web", "")),
            ("api", "a1", eds_cluster("api", "")),
        ],
        &[],
    );
    h.delta(
        ENDPOINT,
        vec![
            ("web", "we1", assignment("web", 8081)),
            ("api", "ae1", assignment("api", 8082)),
        ],
        &[],
    );
    h.delta(
        LISTENER,
        vec![("ingress", "i1", listener("ingress", 10000, "ingress"))],
        &[],
    );
    h.delta(ROUTE, vec![("ingress", "r1", route("ingress", "web"))], &[]);
    assert!(h.engine.ready());
    h
}

#[test]
fn clusters_subscribe_their_assignments_by_name_and_are_acked_by_nonce() {
    let mut h = started();
    let (_, out) = h.delta(CLUSTER, vec![("web", "w1", eds_cluster("web", ""))], &[]);
    assert_eq!(out, ["EDS +[web] -[] n=", "CDS +[] -[] n=1"]);
    let (effects, out) = h.delta(ENDPOINT, vec![("web", "we1", assignment("web", 8081))], &[]);
    assert!(effects.publish);
    assert_eq!(out, ["EDS +[] -[] n=2", "LDS +[] -[] n="]);
}

#[test]
fn a_removed_cluster_is_dropped_and_its_assignment_unsubscribed() {
    let mut h = initialised();
    let (effects, out) = h.delta(CLUSTER, vec![], &["api"]);
    assert!(effects.publish);
    assert_eq!(h.active_clusters(), ["web"]);
    assert_eq!(out, ["EDS +[] -[api] n=", "CDS +[] -[] n=5"]);
}

#[test]
fn a_bad_resource_is_nacked_by_name_while_the_good_ones_are_taken() {
    let mut h = initialised();
    let (_, out) = h.delta(
        CLUSTER,
        vec![
            ("db", "d1", eds_cluster("db", "")),
            ("broken", "b1", bad_cluster("broken")),
        ],
        &[],
    );
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], "EDS +[db] -[] n=");
    assert!(
        out[1].starts_with("CDS +[] -[] n=5 NACK cluster 'broken': lb_policy"),
        "{}",
        out[1]
    );
    // The good one is held at its version: a reconnect says so; the bad one is not.
    h.engine.on_disconnected(&TypeUrl::ADS_ORDER);
    let first = &h.connect()[0];
    assert_eq!(first, "CDS +[] -[] n= initial[api=a1,db=d1,web=w1]");
}

#[test]
fn a_name_inside_that_differs_from_the_delta_name_is_refused() {
    let mut h = initialised();
    let (_, out) = h.delta(CLUSTER, vec![("other", "o1", eds_cluster("web", ""))], &[]);
    assert!(
        out[0].contains("NACK cluster 'other': name: the resource inside is named 'web'"),
        "{out:?}"
    );
}

#[test]
fn a_reconnect_sends_what_the_proxy_holds_as_initial_resource_versions() {
    let mut h = initialised();
    h.engine.on_disconnected(&TypeUrl::ADS_ORDER);
    assert_eq!(
        h.connect(),
        [
            "CDS +[] -[] n= initial[api=a1,web=w1]",
            "EDS +[api,web] -[] n= initial[api=ae1,web=we1]",
            "LDS +[] -[] n= initial[ingress=i1]",
            "RDS +[ingress] -[] n= initial[ingress=r1]",
        ]
    );
}

#[test]
fn a_removed_assignment_ends_the_warming_of_its_cluster_with_no_endpoints() {
    let mut h = initialised();
    h.delta(CLUSTER, vec![("db", "d1", eds_cluster("db", ""))], &[]);
    assert!(!h.active_clusters().contains(&"db".to_string()));
    // The server has no such assignment: it says so in removed_resources.
    let (effects, out) = h.delta(ENDPOINT, vec![], &["db"]);
    assert!(effects.publish);
    assert!(h.active_clusters().contains(&"db".to_string()));
    assert_eq!(out, ["EDS +[] -[] n=6"]);
}

#[test]
fn the_node_metadata_and_user_agent_go_out_as_the_bootstrap_says() {
    let mut node = crate::bootstrap::Node {
        id: "n1".into(),
        cluster: "c1".into(),
        ..Default::default()
    };
    node.metadata.insert("role".into(), "edge".into());
    let proto = crate::xds::node_proto(&node);
    assert_eq!(proto.user_agent_name, "minimal-proxy");
    let metadata = xds_core::node::struct_to_json(&proto.metadata.expect("metadata"));
    assert_eq!(metadata, json!({ "role": "edge" }));
}
