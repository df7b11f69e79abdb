//! A PUT body of each kind through the REST API's own parse and validation
//! (`xds_server::fuzzing::parse_body`, then the checks `put_spec` makes). Whatever is accepted
//! must: serialise; read back from its stored form (as the watch layer reads it) to an equal,
//! still valid value; be accepted again when sent back as GET returned it; and translate, in a
//! mesh around it, into resources that decode against Envoy's descriptors. Nothing may panic.
//!
//! A service with `inbound`, and the service a traffic permission names, are also translated as
//! their own sidecar's (inbound listener, mTLS, RBAC filters) with the mesh CA on.
//!
//! Input: the first byte picks the kind, the rest is the body.

#![no_main]

use std::{collections::BTreeMap, fmt::Debug};

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use xds_core::json::any_to_json;
use xds_server::{
    fuzzing::parse_body,
    model::{
        ANY_CALLER, Endpoints, EnvoyResource, Listener, ListenerProtocol, Mesh, Route, Service,
        Spec, TrafficPermission, validate_name,
    },
    translate::{Delivery, Selection, translate},
};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 6 {
        0 => check::<Service>(body, |name, s| Mesh {
            services: BTreeMap::from([(name.to_string(), s)]),
            listeners: tcp_listener(name),
            ..Mesh::default()
        }),
        1 => check::<Endpoints>(body, |name, e| Mesh {
            services: services([name]),
            endpoints: BTreeMap::from([(name.to_string(), e)]),
            listeners: tcp_listener(name),
            ..Mesh::default()
        }),
        2 => check::<Route>(body, |name, r| {
            let used = r.rules.iter().flat_map(|rule| &rule.destinations);
            Mesh {
                services: services(used.map(|d| d.service.as_str())),
                routes: BTreeMap::from([(name.to_string(), r)]),
                listeners: http_listener(name),
                ..Mesh::default()
            }
        }),
        3 => check::<Listener>(body, |name, l| {
            let route = |r: &String| {
                let route = json!({ "hosts": ["*"], "rules": [ { "destinations": [
                    { "service": "web" } ] } ] });
                (
                    r.clone(),
                    serde_json::from_value(route).expect("a valid route"),
                )
            };
            Mesh {
                services: services(l.service.iter().map(String::as_str).chain(["web"])),
                routes: l.routes.iter().map(route).collect(),
                listeners: BTreeMap::from([(name.to_string(), l)]),
                ..Mesh::default()
            }
        }),
        4 => check::<EnvoyResource>(body, |name, r| Mesh {
            envoy_resources: BTreeMap::from([(name.to_string(), r)]),
            ..Mesh::default()
        }),
        _ => check::<TrafficPermission>(body, |name, p| {
            let callers = p.from.iter().filter(|f| f.as_str() != ANY_CALLER);
            let mut services = services(callers.map(String::as_str));
            let strict: Service = serde_json::from_value(json!({ "protocol": "http",
                "mtls": "strict", "inbound": { "port": 15006, "app_port": 8080 } }))
            .expect("a valid sidecar service");
            services.insert(p.to.clone(), strict);
            Mesh {
                services,
                traffic_permissions: BTreeMap::from([(name.to_string(), p)]),
                ..Mesh::default()
            }
        }),
    }
});

/// Parses and validates `body` as `PUT /api/v1/{kind}/{name}` does, the name being the body's
/// own (`web` when it names none); then checks what was accepted.
fn check<S: Spec + PartialEq + Debug>(body: &[u8], mesh: impl FnOnce(&str, S) -> Mesh) {
    let Ok((spec, body_name, _version)) = parse_body::<S>(body) else {
        return;
    };
    let name = body_name.unwrap_or_else(|| "web".to_string());
    if validate_name("name", &name).is_err() || spec.validate(&name).is_err() {
        return;
    }
    let _ = spec.references(&name);
    // Stored as the API stores it, read back as the watch layer reads it.
    let stored = serde_json::to_value(&spec).expect("an accepted spec serialises");
    let loaded = S::deserialize(&stored)
        .unwrap_or_else(|e| panic!("the stored form {stored} does not parse back: {e}"));
    assert_eq!(loaded, spec, "the stored form reads back different");
    if let Err(e) = loaded.validate(&name) {
        panic!("the stored form {stored} is no longer valid: {e}");
    }
    // Sent back as GET returned it (with the envelope fields), it is accepted unchanged.
    let mut got = stored.clone();
    if let Value::Object(fields) = &mut got {
        fields.insert("name".into(), name.clone().into());
        fields.insert("version".into(), 1.into());
        fields.insert("created_at".into(), "2026-01-01T00:00:00Z".into());
        fields.insert("updated_at".into(), "2026-01-01T00:00:00Z".into());
    }
    let text = serde_json::to_vec(&got).expect("JSON serialises");
    let (again, again_name, _) =
        parse_body::<S>(&text).unwrap_or_else(|e| panic!("the GET form {got} is refused: {e:?}"));
    assert_eq!(again_name.as_deref(), Some(name.as_str()));
    assert_eq!(again, spec, "the GET form parses to something else");
    if let Err(e) = again.validate(&name) {
        panic!("the GET form {got} is no longer valid: {e}");
    }
    // Translated in a mesh around it: every resource is a valid Envoy message, for a gateway
    // and for the sidecar of each service with an inbound side.
    let mut mesh = mesh(&name, spec);
    mesh.security.ca = true;
    let gateway = Selection {
        listeners: mesh.listeners.keys().cloned().collect(),
        envoy_resources: mesh.envoy_resources.keys().cloned().collect(),
        delivery: Delivery::Ads,
        ..Selection::default()
    };
    let sidecars = mesh
        .services
        .iter()
        .filter(|(_, s)| s.inbound.is_some())
        .map(|(n, _)| Selection {
            sidecar: Some(n.clone()),
            ..gateway.clone()
        });
    for selection in std::iter::once(gateway.clone()).chain(sidecars) {
        let resources = translate(&mesh, &selection);
        for (t, typed) in &resources.by_type {
            for (n, e) in typed {
                assert_eq!(&e.resource.type_url, t);
                if let Err(err) = any_to_json(&e.resource) {
                    panic!("{t} '{n}' does not decode as Envoy's message: {err}");
                }
            }
        }
    }
}

/// HTTP services of these names, each valid.
fn services<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, Service> {
    let http: Service = serde_json::from_value(json!({ "protocol": "http" })).expect("valid");
    names
        .into_iter()
        .map(|n| (n.to_string(), http.clone()))
        .collect()
}

fn tcp_listener(service: &str) -> BTreeMap<String, Listener> {
    BTreeMap::from([(
        "in".to_string(),
        Listener {
            address: "0.0.0.0".into(),
            port: 10000,
            protocol: ListenerProtocol::Tcp,
            routes: vec![],
            service: Some(service.to_string()),
            selector: Default::default(),
            labels: Default::default(),
        },
    )])
}

fn http_listener(route: &str) -> BTreeMap<String, Listener> {
    BTreeMap::from([(
        "in".to_string(),
        Listener {
            address: "0.0.0.0".into(),
            port: 10000,
            protocol: ListenerProtocol::Http,
            routes: vec![route.to_string()],
            service: None,
            selector: Default::default(),
            labels: Default::default(),
        },
    )])
}
