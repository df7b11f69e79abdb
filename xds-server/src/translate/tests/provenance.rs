//! Provenance: which mesh objects each resource came from (golden file
//! `testdata/provenance.json`), how a route's or the endpoints' part of a shared resource
//! moves alone, and what a proxy fetches of each type (`Resources::fetched`).

use super::*;

/// `{"<type_url>": {"<name>": ["<kind>/<name>", ...]}, "fetched": {"<type_url>": [names]}}`.
fn render(r: &Resources) -> Value {
    let mut out = serde_json::Map::new();
    let mut fetched = serde_json::Map::new();
    for (type_url, all) in &r.by_type {
        let from: serde_json::Map<String, Value> = all
            .iter()
            .map(|(name, e)| {
                let objects: Vec<String> = e.origins.iter().map(|o| o.object.to_string()).collect();
                (name.clone(), json!(objects))
            })
            .collect();
        out.insert(type_url.clone(), Value::Object(from));
        let names: Vec<&str> = r
            .fetched(type_url)
            .items
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        fetched.insert(type_url.clone(), json!(names));
    }
    out.insert("fetched".into(), Value::Object(fetched));
    Value::Object(out)
}

/// Every kind of origin: an HTTP listener with two routes and one left without a host, a TCP
/// listener, a service with endpoints and one without, a raw cluster replacing a generated
/// one (whose assignment nobody fetches any more), a raw cluster of its own and a raw route
/// configuration nobody names.
fn everything() -> Mesh {
    let raw = |name: &str| {
        let mut c = raw_cluster();
        c["name"] = name.into();
        c["load_assignment"]["cluster_name"] = name.into();
        json!({ "type_url": type_url::CLUSTER, "resource": c, "selector": {} })
    };
    mesh(json!({
        "services": { "web": { "protocol": "http" }, "api": { "protocol": "http" },
                      "postgres": { "protocol": "tcp" } },
        "endpoints": { "web": { "endpoints": [ { "address": "10.0.0.1", "port": 80 } ] } },
        "routes": {
            "web": { "hosts": ["web.example.com"],
                     "rules": [ { "destinations": [ { "service": "web" } ] } ] },
            "api": { "hosts": ["api.example.com"],
                     "rules": [ { "destinations": [ { "service": "api" } ] } ] },
            "shadowed": { "hosts": ["web.example.com"],
                          "rules": [ { "destinations": [ { "service": "web" } ] } ] } },
        "listeners": {
            "ingress": { "port": 10000, "protocol": "http",
                         "routes": ["web", "api", "shadowed"] },
            "db": { "port": 15432, "protocol": "tcp", "service": "postgres" } },
        "envoy_resources": {
            "api": raw("api"),
            "extra-cluster": raw("extra-cluster"),
            "unnamed-routes": { "type_url": type_url::ROUTE,
                                "resource": { "name": "unnamed-routes" }, "selector": {} } }
    }))
}

#[test]
fn golden_provenance() {
    let r = resources_for(&everything(), &edge_node());
    golden_json("provenance.json", &render(&r));
}

/// The parts of `name`'s route configuration, by object.
fn parts(r: &Resources, name: &str) -> BTreeMap<String, Option<u64>> {
    r.of_type(type_url::ROUTE).unwrap()[name]
        .origins
        .iter()
        .map(|o| (o.object.to_string(), o.part))
        .collect()
}

#[test]
fn a_route_change_moves_only_that_routes_part() {
    let m = everything();
    let before = resources_for(&m, &edge_node());
    let mut changed = m.clone();
    changed.routes.get_mut("api").unwrap().rules[0].timeout = Some("7s".parse().unwrap());
    let after = resources_for(&changed, &edge_node());
    let (was, now) = (parts(&before, "ingress"), parts(&after, "ingress"));
    assert_eq!(
        was.keys().collect::<Vec<_>>(),
        ["listeners/ingress", "routes/api", "routes/web"]
    );
    for (object, part) in &was {
        assert!(
            part.is_some(),
            "{object}: several objects make it, each a part"
        );
        let moved = now[object] != *part;
        assert_eq!(moved, object == "routes/api", "{object}");
    }
    // The blame of a rejection of the new version, with the old one served instead.
    let rejected = &after.of_type(type_url::ROUTE).unwrap()["ingress"].origins;
    let serving = &before.of_type(type_url::ROUTE).unwrap()["ingress"].origins;
    let culprits: Vec<String> = blame(rejected, Some(serving))
        .into_iter()
        .filter(|(_, c)| *c)
        .map(|(o, _)| o.to_string())
        .collect();
    assert_eq!(culprits, ["routes/api"]);
}

#[test]
fn an_endpoint_change_is_the_endpoints_part_of_the_assignment() {
    let m = everything();
    let before = resources_for(&m, &edge_node());
    let mut changed = m.clone();
    changed.endpoints.get_mut("web").unwrap().endpoints[0].port = 81;
    let after = resources_for(&changed, &edge_node());
    let origins = |r: &Resources| {
        r.of_type(type_url::ENDPOINT).unwrap()["web"]
            .origins
            .clone()
    };
    let culprits: Vec<String> = blame(&origins(&after), Some(&origins(&before)))
        .into_iter()
        .filter(|(_, c)| *c)
        .map(|(o, _)| o.to_string())
        .collect();
    assert_eq!(culprits, ["endpoints/web"], "the service only names it");
}

#[test]
fn fetched_versions_are_what_a_stream_reports() {
    let r = resources_for(&everything(), &edge_node());
    for (type_url, all) in &r.by_type {
        let view = r.fetched(type_url);
        let expected = set_version(
            view.items
                .iter()
                .map(|e| (e.name.as_str(), e.version.as_str())),
        );
        assert_eq!(view.version, expected, "{type_url}");
        if type_url == type_url::CLUSTER || type_url == type_url::LISTENER {
            assert_eq!(view.version, r.whole(type_url).version, "fetched whole");
            assert_eq!(view.items.len(), all.len());
        }
    }
    assert!(
        r.fetched("type.googleapis.com/nothing.Here")
            .items
            .is_empty(),
        "a type with nothing"
    );
}
