//! The plan's decisions, one rule per test.

use serde_json::json;

use super::*;
use crate::manifest::{Source, parse};

#[test]
fn only_body_fields_are_compared() {
    let current = json!({ "name": "web", "version": 3, "created_at": "a", "updated_at": "b",
                          "protocol": "http",
                          "status": { "proxies": 1, "received": 1, "accepted": 0,
                                      "rejected": [] } });
    let desired = json!({ "name": "web", "version": 4, "created_at": "a", "updated_at": "c",
                          "protocol": "http" });
    assert_eq!(decide(Some(&current), &desired), Action::Unchanged);
    assert_eq!(decide(None, &desired), Action::Create);
}

#[test]
fn endpoints_never_set_are_created() {
    let placeholder = json!({ "name": "web", "endpoints": [], "version": 0 });
    let desired = json!({ "name": "web", "endpoints": [], "version": 1 });
    assert_eq!(decide(Some(&placeholder), &desired), Action::Create);
}

#[test]
fn the_diff_names_each_changed_field() {
    let current = json!({ "hosts": ["*"], "rules": [{ "destinations": [
        { "service": "web", "weight": 80 }, { "service": "web", "weight": 20 }] }],
        "labels": { "app.kubernetes.io/part-of": "demo" } });
    let desired = json!({ "hosts": ["*", "web.example.com"], "rules": [{ "destinations": [
        { "service": "web", "weight": 90 }, { "service": "web", "weight": 20 }],
        "timeout": "5s" }], "labels": { "app.kubernetes.io/part-of": "mesh" } });
    let changes: Vec<String> = diff(&current, &desired)
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        changes,
        [
            "+ hosts[1]: \"web.example.com\"",
            "~ labels[\"app.kubernetes.io/part-of\"]: \"demo\" -> \"mesh\"",
            "~ rules[0].destinations[0].weight: 80 -> 90",
            "+ rules[0].timeout: \"5s\"",
        ]
    );
    let removed = diff(
        &json!({ "labels": { "a": "b" }, "port": 1 }),
        &json!({ "port": 1 }),
    );
    assert_eq!(
        removed[0].to_string(),
        "- labels: {\"a\":\"b\"}",
        "a whole field removed"
    );
    assert!(matches!(
        decide(Some(&json!({ "version": 1, "hosts": ["*"] })), &json!({ "hosts": [] })),
        Action::Configure(c) if c.len() == 1
    ));
}

#[test]
fn references_are_the_ones_the_server_checks() {
    let objects = parse(
        "m.yaml",
        "kind: route\nname: r\nhosts: ['*']\nrules:\n- destinations: [{service: a}, {service: b}]\n\
         - destinations: [{service: a}]\n---\n\
         kind: listener\nname: l\nport: 1\nprotocol: http\nroutes: [r, q]\n---\n\
         kind: listener\nname: t\nport: 2\nprotocol: tcp\nservice: db\n---\n\
         kind: endpoints\nname: a\nendpoints: []\n",
    )
    .unwrap();
    let refs: Vec<Vec<(Kind, String)>> = objects
        .iter()
        .map(|o| references(o.kind, &o.name, &o.body))
        .collect();
    let s = |n: &str| (Kind::Service, n.to_string());
    let r = |n: &str| (Kind::Route, n.to_string());
    assert_eq!(refs[0], [s("a"), s("b"), s("a")]);
    assert_eq!(refs[1], [r("r"), r("q")]);
    assert_eq!(refs[2], [s("db")]);
    assert_eq!(refs[3], [s("a")]);
}

#[test]
fn writes_go_in_dependency_order_keeping_file_order_within_a_kind() {
    let mut objects = parse(
        "m.yaml",
        "kind: listener\nname: l\nx: 1\n---\nkind: route\nname: r\nx: 1\n---\n\
         kind: service\nname: b\nx: 1\n---\nkind: envoy-resource\nname: e\nx: 1\n---\n\
         kind: endpoints\nname: b\nx: 1\n---\nkind: service\nname: a\nx: 1\n",
    )
    .unwrap();
    order(&mut objects);
    let ids: Vec<String> = objects.iter().map(|o| o.id()).collect();
    assert_eq!(
        ids,
        [
            "service/b",
            "service/a",
            "endpoints/b",
            "route/r",
            "listener/l",
            "envoy-resource/e"
        ]
    );
    assert_eq!(
        objects[0].source,
        Source {
            file: "m.yaml".into(),
            document: 3
        }
    );
}

#[test]
fn prune_deletes_only_what_the_files_no_longer_name_dependents_first() {
    let listed = [
        (Kind::Service, json!({ "name": "web", "version": 2 })),
        (Kind::Service, json!({ "name": "old", "version": 5 })),
        (Kind::Route, json!({ "name": "old", "version": 1 })),
        (Kind::Listener, json!({ "name": "edge", "version": 1 })),
    ];
    let named = HashSet::from([
        (Kind::Service, "web".to_string()),
        (Kind::Listener, "edge".to_string()),
    ]);
    let pruned = prune(&listed, &named);
    let ids: Vec<(Kind, &str, i64)> = pruned
        .iter()
        .map(|p| (p.kind, p.name.as_str(), p.version))
        .collect();
    assert_eq!(ids, [(Kind::Route, "old", 1), (Kind::Service, "old", 5)]);
}

#[test]
fn carries_checks_every_selector_pair() {
    let body = json!({ "labels": { "app": "demo", "tier": "edge" } });
    let body = body.as_object().unwrap();
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert!(carries(body, &[pair("app", "demo")]));
    assert!(!carries(body, &[pair("app", "demo"), pair("tier", "core")]));
    assert!(!carries(&Map::new(), &[pair("app", "demo")]));
}
