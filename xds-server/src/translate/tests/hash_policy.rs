//! Hash policies: each entry becomes one `RouteAction.hash_policy` in order, with its
//! `terminal` flag; a policy no destination can use (no consistent-hash service) is served
//! anyway, with a warning.

use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration,
    route::Action,
    route_action::hash_policy::{ConnectionProperties, PolicySpecifier},
};
use prost::Message;
use serde_json::json;

use super::{edge_node, golden, mesh, resources_for};
use crate::{model::Mesh, translate::type_url};

/// `sticky` balances by ring hash and its rule hashes a header (terminal), a cookie the proxy
/// sets for an hour, and the client address; `plain` balances round robin, so its rule's
/// cookie hash does nothing.
pub(super) fn sticky() -> Mesh {
    mesh(json!({
        "services": { "sticky": { "protocol": "http", "lb_policy": "ring_hash" },
                      "plain": { "protocol": "http" } },
        "routes": { "web": { "hosts": ["*"], "rules": [
            { "match": { "path": { "prefix": "/cart/" } },
              "destinations": [ { "service": "sticky" } ],
              "hash_policy": [ { "header": "x-user", "terminal": true },
                               { "cookie": "session", "ttl": "1h" },
                               { "source_ip": true } ] },
            { "destinations": [ { "service": "plain" } ],
              "hash_policy": [ { "cookie": "session" } ] } ] } },
        "listeners": { "edge": { "port": 8080, "protocol": "http", "routes": ["web"] } }
    }))
}

#[test]
fn hash_policies_are_translated_in_order_with_their_terminal_flag() {
    let r = resources_for(&sticky(), &edge_node());
    let config = &r.of_type(type_url::ROUTE).unwrap()["edge"];
    let config = RouteConfiguration::decode(config.resource.value.as_slice()).unwrap();
    let routes = &config.virtual_hosts[0].routes;
    let Some(Action::Route(action)) = &routes[0].action else {
        panic!("a route action");
    };
    let terminal: Vec<bool> = action.hash_policy.iter().map(|h| h.terminal).collect();
    assert_eq!(terminal, [true, false, false]);
    match &action.hash_policy[0].policy_specifier {
        Some(PolicySpecifier::Header(h)) => assert_eq!(h.header_name, "x-user"),
        other => panic!("a header hash first, got {other:?}"),
    }
    match &action.hash_policy[1].policy_specifier {
        Some(PolicySpecifier::Cookie(c)) => {
            assert_eq!(c.name, "session");
            assert_eq!(c.ttl.map(|t| t.seconds), Some(3600));
        }
        other => panic!("a cookie hash second, got {other:?}"),
    }
    let source_ip = PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip: true });
    assert_eq!(action.hash_policy[2].policy_specifier, Some(source_ip));

    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("route 'web': rules[1].hash_policy has no effect"),
        "{}",
        r.warnings[0]
    );
    golden("hash_policy", &r);
}

#[test]
fn rules_without_hash_policy_have_none() {
    let mut m = sticky();
    for rule in &mut m.routes.get_mut("web").unwrap().rules {
        rule.hash_policy.clear();
    }
    let r = resources_for(&m, &edge_node());
    let config = &r.of_type(type_url::ROUTE).unwrap()["edge"];
    let config = RouteConfiguration::decode(config.resource.value.as_slice()).unwrap();
    for route in &config.virtual_hosts[0].routes {
        let Some(Action::Route(action)) = &route.action else {
            panic!("a route action");
        };
        assert!(action.hash_policy.is_empty());
    }
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}
