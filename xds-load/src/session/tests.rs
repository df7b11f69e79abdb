//! The session against hand-built responses: Envoy's subscription order, ACKs, and change
//! detection by content.

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::{
                Cluster,
                cluster::{ClusterDiscoveryType, DiscoveryType, EdsClusterConfig},
            },
            endpoint::v3::{ClusterLoadAssignment, LocalityLbEndpoints},
            listener::v3::{Filter, FilterChain, Listener, filter::ConfigType},
            route::v3::RouteConfiguration,
        },
        extensions::filters::network::http_connection_manager::v3::{
            HttpConnectionManager, Rds, http_connection_manager::RouteSpecifier,
        },
        service::discovery::v3::Resource,
    },
    google::protobuf::{Any, UInt32Value},
};

use super::*;

fn any(type_url: &str, value: Vec<u8>) -> Any {
    Any {
        type_url: type_url.to_string(),
        value,
    }
}

fn eds_cluster(name: &str) -> Any {
    let c = Cluster {
        name: name.to_string(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig::default()),
        ..Cluster::default()
    };
    any(type_url::CLUSTER, c.encode_to_vec())
}

fn assignment(name: &str, weight: u32) -> Any {
    let cla = ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            load_balancing_weight: Some(UInt32Value { value: weight }),
            ..LocalityLbEndpoints::default()
        }],
        ..ClusterLoadAssignment::default()
    };
    any(type_url::ENDPOINT, cla.encode_to_vec())
}

fn http_listener(name: &str, route: &str) -> Any {
    let hcm = HttpConnectionManager {
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: route.to_string(),
            ..Rds::default()
        })),
        ..HttpConnectionManager::default()
    };
    let filter = Filter {
        name: "envoy.filters.network.http_connection_manager".to_string(),
        config_type: Some(ConfigType::TypedConfig(any(
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            hcm.encode_to_vec(),
        ))),
    };
    let l = Listener {
        name: name.to_string(),
        filter_chains: vec![FilterChain {
            filters: vec![filter],
            ..FilterChain::default()
        }],
        ..Listener::default()
    };
    any(type_url::LISTENER, l.encode_to_vec())
}

fn route(name: &str) -> Any {
    let r = RouteConfiguration {
        name: name.to_string(),
        ..RouteConfiguration::default()
    };
    any(type_url::ROUTE, r.encode_to_vec())
}

fn sotw_resp(kind: Kind, version: &str, nonce: &str, resources: Vec<Any>) -> DiscoveryResponse {
    DiscoveryResponse {
        type_url: kind.url().to_string(),
        version_info: version.to_string(),
        nonce: nonce.to_string(),
        resources,
        ..DiscoveryResponse::default()
    }
}

fn sotw(r: &Request) -> &DiscoveryRequest {
    match r {
        Request::Sotw(r) => r,
        Request::Delta(_) => panic!("expected a SotW request"),
    }
}

fn delta(r: &Request) -> &DeltaDiscoveryRequest {
    match r {
        Request::Delta(r) => r,
        Request::Sotw(_) => panic!("expected a delta request"),
    }
}

fn node() -> Node {
    crate::stream::node("load-0".to_string(), "xds-load")
}

#[test]
fn sotw_follows_envoys_order_and_acks_every_response() {
    let mut s = Session::new(Variant::Sotw, node());
    let first = s.start();
    let first = sotw(&first);
    assert_eq!(first.type_url, type_url::CLUSTER);
    assert!(
        first.resource_names.is_empty(),
        "CDS is the legacy wildcard"
    );
    assert_eq!(first.node.as_ref().map(|n| n.id.as_str()), Some("load-0"));

    let (seen, out) = s.on_sotw(sotw_resp(
        Kind::Cluster,
        "c1",
        "n1",
        vec![eds_cluster("web")],
    ));
    assert_eq!((seen.kind, seen.synced_now), (Some(Kind::Cluster), false));
    assert_eq!(out.len(), 2, "the ACK, then EDS by name: {out:?}");
    let (ack, eds) = (sotw(&out[0]), sotw(&out[1]));
    assert_eq!(
        (ack.version_info.as_str(), ack.response_nonce.as_str()),
        ("c1", "n1")
    );
    assert!(
        ack.node.is_none(),
        "the node goes in the first request only"
    );
    assert_eq!(
        (eds.type_url.as_str(), eds.resource_names.clone()),
        (type_url::ENDPOINT, vec!["web".to_string()])
    );

    let (_, out) = s.on_sotw(sotw_resp(
        Kind::Endpoint,
        "e1",
        "n2",
        vec![assignment("web", 1)],
    ));
    assert_eq!(
        out.len(),
        2,
        "the ACK, then LDS once the cluster warmed: {out:?}"
    );
    assert_eq!(sotw(&out[0]).resource_names, vec!["web".to_string()]);
    assert_eq!(sotw(&out[1]).type_url, type_url::LISTENER);

    let (_, out) = s.on_sotw(sotw_resp(
        Kind::Listener,
        "l1",
        "n3",
        vec![http_listener("ingress", "ingress-routes")],
    ));
    assert_eq!(
        sotw(&out[1]).resource_names,
        vec!["ingress-routes".to_string()]
    );

    let (seen, out) = s.on_sotw(sotw_resp(
        Kind::Route,
        "r1",
        "n4",
        vec![route("ingress-routes")],
    ));
    assert!(seen.synced_now, "CDS, EDS, LDS and RDS all arrived");
    assert_eq!(out.len(), 1, "only the ACK");
    assert_eq!(sotw(&out[0]).response_nonce, "n4");
}

#[test]
fn a_change_is_detected_by_content_not_by_version() {
    let mut s = Session::new(Variant::Sotw, node());
    s.start();
    s.on_sotw(sotw_resp(
        Kind::Cluster,
        "c1",
        "n1",
        vec![eds_cluster("web")],
    ));
    s.on_sotw(sotw_resp(
        Kind::Endpoint,
        "e1",
        "n2",
        vec![assignment("web", 1)],
    ));
    // The same cluster and assignment again, under new versions: nothing changed.
    let (seen, _) = s.on_sotw(sotw_resp(
        Kind::Cluster,
        "c2",
        "n3",
        vec![eds_cluster("web")],
    ));
    assert!(!seen.changed);
    let (seen, _) = s.on_sotw(sotw_resp(
        Kind::Endpoint,
        "e2",
        "n4",
        vec![assignment("web", 1)],
    ));
    assert!(!seen.changed);
    let (seen, _) = s.on_sotw(sotw_resp(
        Kind::Endpoint,
        "e3",
        "n5",
        vec![assignment("web", 2)],
    ));
    assert!(seen.changed, "the weight changed");
    // A cluster gone from a SotW CDS response is a change, and EDS stops asking for it.
    let (seen, out) = s.on_sotw(sotw_resp(Kind::Cluster, "c3", "n6", vec![]));
    assert!(seen.changed);
    assert!(
        out.iter()
            .any(|r| sotw(r).type_url == type_url::ENDPOINT && sotw(r).resource_names.is_empty())
    );
}

#[test]
fn delta_subscribes_by_difference_and_sees_removals() {
    let mut s = Session::new(Variant::Delta, node());
    let first = s.start();
    assert!(
        delta(&first).resource_names_subscribe.is_empty(),
        "legacy wildcard"
    );
    let resp = |kind: Kind, nonce: &str, resources: Vec<(&str, Any)>, removed: Vec<&str>| {
        DeltaDiscoveryResponse {
            type_url: kind.url().to_string(),
            nonce: nonce.to_string(),
            resources: resources
                .into_iter()
                .map(|(name, any)| Resource {
                    name: name.to_string(),
                    version: "v".to_string(),
                    resource: Some(any),
                    ..Resource::default()
                })
                .collect(),
            removed_resources: removed.into_iter().map(String::from).collect(),
            ..DeltaDiscoveryResponse::default()
        }
    };
    let (_, out) = s.on_delta(resp(
        Kind::Cluster,
        "n1",
        vec![("web", eds_cluster("web"))],
        vec![],
    ));
    assert_eq!(delta(&out[0]).response_nonce, "n1");
    assert_eq!(
        delta(&out[1]).resource_names_subscribe,
        vec!["web".to_string()]
    );
    // A second cluster arrives alone: only it is added to the EDS subscription.
    let (_, out) = s.on_delta(resp(
        Kind::Cluster,
        "n2",
        vec![("api", eds_cluster("api"))],
        vec![],
    ));
    assert_eq!(
        delta(&out[1]).resource_names_subscribe,
        vec!["api".to_string()]
    );
    assert!(delta(&out[1]).resource_names_unsubscribe.is_empty());
    let (seen, _) = s.on_delta(resp(
        Kind::Endpoint,
        "n3",
        vec![("web", assignment("web", 1)), ("api", assignment("api", 1))],
        vec![],
    ));
    assert!(seen.changed);
    let (seen, out) = s.on_delta(resp(Kind::Cluster, "n4", vec![], vec!["api"]));
    assert!(seen.changed, "a removal is a change");
    assert_eq!(
        delta(&out[1]).resource_names_unsubscribe,
        vec!["api".to_string()]
    );
}
