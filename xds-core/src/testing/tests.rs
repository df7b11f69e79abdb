//! The test client's protocol half, without tonic: what Envoy would send for each
//! subscription and response, in both variants.

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::{
                Cluster,
                cluster::{ClusterDiscoveryType, DiscoveryType},
            },
            endpoint::v3::ClusterLoadAssignment,
            listener::v3::{Filter, FilterChain, Listener, filter::ConfigType},
        },
        extensions::filters::network::http_connection_manager::v3::{
            HttpConnectionManager, Rds, http_connection_manager::RouteSpecifier,
        },
        service::discovery::v3::{
            DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
            Resource,
        },
    },
    google::protobuf::Any,
};
use prost::{Message, Name};

use super::{Variant, node, session::Request, session::Session};
use crate::TypeUrl;

// === helpers ===

fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

fn eds_cluster(name: &str) -> Any {
    any(&Cluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        ..Cluster::default()
    })
}

fn static_cluster(name: &str) -> Any {
    any(&Cluster {
        name: name.into(),
        ..Cluster::default()
    })
}

fn assignment(name: &str) -> Any {
    any(&ClusterLoadAssignment {
        cluster_name: name.into(),
        ..ClusterLoadAssignment::default()
    })
}

/// A listener whose HTTP connection manager fetches `route` over RDS.
fn http_listener(name: &str, route: &str) -> Any {
    let hcm = HttpConnectionManager {
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: route.into(),
            ..Rds::default()
        })),
        ..HttpConnectionManager::default()
    };
    let filter = Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(ConfigType::TypedConfig(any(&hcm))),
    };
    any(&Listener {
        name: name.into(),
        filter_chains: vec![FilterChain {
            filters: vec![filter],
            ..FilterChain::default()
        }],
        ..Listener::default()
    })
}

fn sotw(r: Option<Request>) -> DiscoveryRequest {
    match r {
        Some(Request::Sotw(r)) => r,
        other => panic!("expected a SotW request, got {other:?}"),
    }
}

fn delta(r: Option<Request>) -> DeltaDiscoveryRequest {
    match r {
        Some(Request::Delta(r)) => r,
        other => panic!("expected a delta request, got {other:?}"),
    }
}

fn sotw_response(
    t: &TypeUrl,
    version: &str,
    nonce: &str,
    resources: Vec<Any>,
) -> DiscoveryResponse {
    DiscoveryResponse {
        type_url: t.to_string(),
        version_info: version.into(),
        nonce: nonce.into(),
        resources,
        ..DiscoveryResponse::default()
    }
}

fn delta_response(
    t: &TypeUrl,
    nonce: &str,
    resources: Vec<(&str, Any)>,
    removed: &[&str],
) -> DeltaDiscoveryResponse {
    DeltaDiscoveryResponse {
        type_url: t.to_string(),
        system_version_info: format!("v-{nonce}"),
        nonce: nonce.into(),
        resources: resources
            .into_iter()
            .map(|(name, any)| Resource {
                name: name.into(),
                version: "1".into(),
                resource: Some(any),
                ..Resource::default()
            })
            .collect(),
        removed_resources: removed.iter().map(|n| n.to_string()).collect(),
        ..DeltaDiscoveryResponse::default()
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

// === SotW ===

#[test]
fn sotw_acks_with_version_and_nonce_then_asks_for_the_eds_clusters_assignments() {
    let mut s = Session::new(Variant::Sotw, Some(node("n1", "c1")), true);
    let first = sotw(s.subscribe(TypeUrl::Cluster, &[]));
    assert_eq!(first.node.as_ref().map(|n| n.id.as_str()), Some("n1"));
    assert_eq!(first.type_url, TypeUrl::Cluster.as_str());
    assert!(
        first.resource_names.is_empty(),
        "the legacy wildcard names nothing"
    );

    let clusters = vec![eds_cluster("a"), static_cluster("s"), eds_cluster("b")];
    let (received, requests) = s.on_sotw(sotw_response(&TypeUrl::Cluster, "v1", "1", clusters));
    assert_eq!(
        received.resources.keys().collect::<Vec<_>>(),
        ["a", "b", "s"]
    );
    assert_eq!(received.rejected, None);
    let [ack, eds] = &requests[..] else {
        panic!("an ACK, then the EDS subscription: {requests:?}")
    };
    let ack = sotw(Some(ack.clone()));
    assert_eq!(
        (ack.version_info.as_str(), ack.response_nonce.as_str()),
        ("v1", "1")
    );
    assert!(ack.node.is_none() && ack.error_detail.is_none());
    let eds = sotw(Some(eds.clone()));
    assert_eq!(eds.type_url, TypeUrl::Endpoint.as_str());
    assert_eq!(
        eds.resource_names,
        strings(&["a", "b"]),
        "static clusters need none"
    );

    // The same clusters again: ACKed, and the EDS subscription stands.
    let again = vec![eds_cluster("a"), eds_cluster("b")];
    let (_, requests) = s.on_sotw(sotw_response(&TypeUrl::Cluster, "v2", "2", again));
    assert_eq!(requests.len(), 1);

    // Assignments: held, and ACKed with the subscribed names repeated.
    let eds = sotw_response(&TypeUrl::Endpoint, "e1", "3", vec![assignment("a")]);
    let (_, requests) = s.on_sotw(eds);
    let ack = sotw(requests.into_iter().next());
    assert_eq!(ack.resource_names, strings(&["a", "b"]));
    assert_eq!(s.accepted(&TypeUrl::Endpoint), Some("e1"));
    assert!(s.held(&TypeUrl::Endpoint).unwrap().contains_key("a"));
}

#[test]
fn sotw_nack_repeats_the_accepted_version_and_keeps_what_was_held() {
    let mut s = Session::new(Variant::Sotw, Some(node("n1", "c1")), false);
    s.subscribe(TypeUrl::Cluster, &[]);
    s.on_sotw(sotw_response(
        &TypeUrl::Cluster,
        "v1",
        "1",
        vec![eds_cluster("a")],
    ));

    s.nack_next(TypeUrl::Cluster, "bad cluster b".into());
    let (received, requests) = s.on_sotw(sotw_response(
        &TypeUrl::Cluster,
        "v2",
        "2",
        vec![eds_cluster("b")],
    ));
    assert_eq!(received.rejected.as_deref(), Some("bad cluster b"));
    let nack = sotw(requests.into_iter().next());
    assert_eq!(
        (nack.version_info.as_str(), nack.response_nonce.as_str()),
        ("v1", "2")
    );
    assert_eq!(nack.error_detail.unwrap().message, "bad cluster b");
    assert_eq!(s.accepted(&TypeUrl::Cluster), Some("v1"));
    assert!(s.held(&TypeUrl::Cluster).unwrap().contains_key("a"));

    // Only the next one: the one after is accepted.
    let (received, _) = s.on_sotw(sotw_response(
        &TypeUrl::Cluster,
        "v3",
        "3",
        vec![eds_cluster("b")],
    ));
    assert_eq!(received.rejected, None);
    assert_eq!(s.accepted(&TypeUrl::Cluster), Some("v3"));
    assert!(
        !s.held(&TypeUrl::Cluster).unwrap().contains_key("a"),
        "CDS is the whole set"
    );
}

#[test]
fn a_resource_that_does_not_decode_is_nacked_as_envoy_would() {
    let mut s = Session::new(Variant::Sotw, Some(node("n1", "c1")), false);
    s.subscribe(TypeUrl::Cluster, &[]);
    let garbage = Any {
        type_url: TypeUrl::Cluster.to_string(),
        value: vec![0xff, 0xff, 0xff],
    };
    let (received, requests) =
        s.on_sotw(sotw_response(&TypeUrl::Cluster, "v1", "1", vec![garbage]));
    let reason = received.rejected.expect("rejected");
    assert!(reason.contains("does not decode"), "{reason}");
    assert!(sotw(requests.into_iter().next()).error_detail.is_some());
    assert_eq!(s.accepted(&TypeUrl::Cluster), None);
}

#[test]
fn sotw_subscription_changes_repeat_the_latest_nonce_and_say_star_explicitly() {
    let mut s = Session::new(Variant::Sotw, Some(node("n1", "c1")), false);
    s.subscribe(TypeUrl::Endpoint, &strings(&["a"]));
    s.on_sotw(sotw_response(
        &TypeUrl::Endpoint,
        "e1",
        "7",
        vec![assignment("a")],
    ));
    let change = sotw(s.subscribe(TypeUrl::Endpoint, &strings(&["a", "b"])));
    assert_eq!(change.response_nonce, "7");
    assert_eq!(change.version_info, "e1");
    assert!(
        s.subscribe(TypeUrl::Endpoint, &strings(&["b", "a"]))
            .is_none(),
        "unchanged"
    );
    let star = sotw(s.subscribe(TypeUrl::Endpoint, &strings(&["*"])));
    assert_eq!(
        star.resource_names,
        strings(&["*"]),
        "EDS has no legacy wildcard"
    );
    let dropped = sotw(s.subscribe(TypeUrl::Endpoint, &strings(&["b"])));
    assert_eq!(dropped.resource_names, strings(&["b"]));
    assert!(
        s.held(&TypeUrl::Endpoint).unwrap().is_empty(),
        "a was unsubscribed"
    );
}

// === delta ===

#[test]
fn delta_applies_updates_and_removals_and_follows_clusters_and_listeners() {
    let mut s = Session::new(Variant::Delta, Some(node("n1", "c1")), true);
    let first = delta(s.subscribe(TypeUrl::Cluster, &[]));
    assert!(first.node.is_some() && first.resource_names_subscribe.is_empty());

    let clusters = vec![("a", eds_cluster("a")), ("b", eds_cluster("b"))];
    let (_, requests) = s.on_delta(delta_response(&TypeUrl::Cluster, "1", clusters, &[]));
    let [ack, eds] = &requests[..] else {
        panic!("an ACK, then the EDS subscription: {requests:?}")
    };
    let ack = delta(Some(ack.clone()));
    assert_eq!(ack.response_nonce, "1");
    assert!(ack.resource_names_subscribe.is_empty() && ack.error_detail.is_none());
    let eds = delta(Some(eds.clone()));
    assert_eq!(eds.resource_names_subscribe, strings(&["a", "b"]));
    assert!(
        eds.response_nonce.is_empty(),
        "a subscription change is not an ACK"
    );

    // b goes away: its assignment is unsubscribed.
    let (received, requests) = s.on_delta(delta_response(&TypeUrl::Cluster, "2", vec![], &["b"]));
    assert_eq!(received.removed, ["b"]);
    assert_eq!(
        s.held(&TypeUrl::Cluster)
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["a"]
    );
    let eds = delta(requests.into_iter().nth(1));
    assert_eq!(eds.resource_names_unsubscribe, strings(&["b"]));

    // A listener naming route `r`: RDS follows.
    s.subscribe(TypeUrl::Listener, &[]);
    let listeners = vec![("l", http_listener("l", "r"))];
    let (_, requests) = s.on_delta(delta_response(&TypeUrl::Listener, "3", listeners, &[]));
    let rds = delta(requests.into_iter().nth(1));
    assert_eq!(rds.type_url, TypeUrl::Route.as_str());
    assert_eq!(rds.resource_names_subscribe, strings(&["r"]));
}

#[test]
fn delta_nack_carries_the_nonce_and_an_error_and_applies_nothing() {
    let mut s = Session::new(Variant::Delta, Some(node("n1", "c1")), false);
    s.subscribe(TypeUrl::Cluster, &[]);
    s.nack_next(TypeUrl::Cluster, "no".into());
    let clusters = vec![("a", eds_cluster("a"))];
    let (received, requests) = s.on_delta(delta_response(&TypeUrl::Cluster, "1", clusters, &[]));
    assert_eq!(received.rejected.as_deref(), Some("no"));
    let nack = delta(requests.into_iter().next());
    assert_eq!(nack.response_nonce, "1");
    assert_eq!(nack.error_detail.unwrap().message, "no");
    assert!(s.held(&TypeUrl::Cluster).unwrap().is_empty());
}

#[test]
fn delta_wildcard_changes_are_spelled_with_star() {
    let mut s = Session::new(Variant::Delta, Some(node("n1", "c1")), false);
    let first = delta(s.subscribe(TypeUrl::Endpoint, &strings(&["a"])));
    assert_eq!(first.resource_names_subscribe, strings(&["a"]));
    let star = delta(s.subscribe(TypeUrl::Endpoint, &strings(&["*", "a"])));
    assert_eq!(star.resource_names_subscribe, strings(&["*"]));
    let back = delta(s.subscribe(TypeUrl::Endpoint, &strings(&["b"])));
    assert_eq!(back.resource_names_subscribe, strings(&["b"]));
    assert_eq!(back.resource_names_unsubscribe, strings(&["*", "a"]));
    assert!(
        back.node.is_none(),
        "the node goes in the first request only"
    );
}
