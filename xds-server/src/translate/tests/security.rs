//! Sidecars, mTLS modes and traffic permissions: golden files for what a sidecar receives in
//! each mode, assertions for the rules around them (who is a sidecar, deny wins, shadow,
//! gateways without identity), and Envoy's own `--mode validate` on the generated config when
//! `ENVOY_BIN` is set.

use envoy_types::pb::envoy::{
    config::listener::v3::Listener,
    extensions::filters::network::http_connection_manager::v3::HttpConnectionManager,
};
use prost::Message;
use serde_json::{Value, json};

use super::{golden, mesh, node, resources_for};
use crate::{
    model::{Mesh, MtlsMode, PermissionsDefault},
    translate::{resources_to_json, select, type_url},
};

// === inputs ===

/// `web` (http) and `db` (tcp) have sidecars, `api` (http) too and calls `web` through its
/// outbound listener; `legacy` has none. `ingress` is a gateway: its node cluster names no
/// service.
fn sidecars(web_mtls: Option<&str>, permissions: Value) -> Mesh {
    let mut web = json!({ "protocol": "http",
        "inbound": { "port": 15006, "app_port": 8080 } });
    if let Some(mode) = web_mtls {
        web["mtls"] = json!(mode);
    }
    let mut m = mesh(json!({
        "services": {
            "web": web,
            "api": { "protocol": "http",
                     "inbound": { "port": 15006, "app_address": "127.0.0.2", "app_port": 9090 } },
            "db": { "protocol": "tcp", "inbound": { "port": 15432, "app_port": 5432 } },
            "legacy": { "protocol": "http" }
        },
        "endpoints": {
            "web": { "endpoints": [ { "address": "10.0.0.1", "port": 15006 } ] },
            "legacy": { "endpoints": [ { "address": "10.0.0.9", "port": 80 } ] }
        },
        "routes": { "to-web": { "hosts": ["web"], "rules": [
            { "destinations": [ { "service": "web" } ] } ] },
                    "to-legacy": { "hosts": ["legacy"], "rules": [
            { "destinations": [ { "service": "legacy" } ] } ] } },
        "listeners": {
            "outbound": { "address": "127.0.0.1", "port": 15001, "protocol": "http",
                          "routes": ["to-web", "to-legacy"],
                          "selector": { "node_cluster": "api" } },
            "edge": { "port": 10000, "protocol": "http", "routes": ["to-web"],
                      "selector": { "node_cluster": "ingress" } }
        },
        "traffic_permissions": permissions
    }));
    // The server runs with a CA (`--ca`); `no_ca_*` below take it away.
    m.security.ca = true;
    m
}

fn with_defaults(mut m: Mesh, mtls: MtlsMode, permissions: PermissionsDefault) -> Mesh {
    m.security.mtls_default = mtls;
    m.security.permissions_default = permissions;
    m
}

/// Permissions to `web`: `api` may not POST under /admin, anyone's DELETE is shadow-denied,
/// `api` is allowed, and `db` is allowed but also denied everything (deny wins).
fn web_permissions() -> Value {
    json!({
        "no-admin-writes": { "from": ["api"], "to": "web", "action": "deny",
                             "paths": ["/admin"], "methods": ["POST"] },
        "try-no-deletes": { "from": ["*"], "to": "web", "action": "deny",
                            "methods": ["DELETE"], "shadow": true },
        "api-to-web": { "from": ["api", "db"], "to": "web", "action": "allow" },
        "db-never": { "from": ["db"], "to": "web", "action": "deny" },
        "api-to-db": { "from": ["api"], "to": "db", "action": "allow" }
    })
}

fn sidecar_of(service: &str) -> crate::translate::NodeInfo {
    node(&format!("{service}-1"), service, &[])
}

fn gateway() -> crate::translate::NodeInfo {
    node("ingress-1", "ingress", &[])
}

fn listener(r: &super::Resources, name: &str) -> Listener {
    let l = &r.of_type(type_url::LISTENER).unwrap()[name];
    Listener::decode(l.resource.value.as_slice()).unwrap()
}

/// The HTTP filter names of the listener's chain `chain`.
fn http_filters(l: &Listener, chain: usize) -> Vec<String> {
    let any = match &l.filter_chains[chain].filters[0].config_type {
        Some(envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(a)) => a,
        _ => panic!("typed config"),
    };
    let hcm = HttpConnectionManager::decode(any.value.as_slice()).unwrap();
    hcm.http_filters.into_iter().map(|f| f.name).collect()
}

// === sidecars ===

#[test]
fn a_sidecar_gets_its_inbound_listener_and_cluster_beside_its_outbound_ones() {
    let m = sidecars(None, json!({}));
    let api = resources_for(&m, &sidecar_of("api"));
    golden("sidecar_http", &api);
    assert!(api.warnings.is_empty(), "{:?}", api.warnings);
    let db = resources_for(&m, &sidecar_of("db"));
    golden("sidecar_tcp", &db);
}

#[test]
fn only_a_service_that_declares_inbound_has_sidecars() {
    let m = sidecars(None, json!({}));
    assert_eq!(select(&m, &sidecar_of("legacy")).sidecar, None);
    assert_eq!(select(&m, &gateway()).sidecar, None);
    assert_eq!(
        select(&m, &sidecar_of("web")).sidecar.as_deref(),
        Some("web")
    );
    let legacy = resources_for(&m, &sidecar_of("legacy"));
    assert!(legacy.by_type.is_empty(), "no inbound, nothing selected");
}

#[test]
fn a_mesh_without_security_keeps_its_groups() {
    // A node whose cluster names a service without inbound, in a mesh without mTLS, is in
    // the same group as before sidecars existed.
    let m = mesh(json!({ "services": { "web": { "protocol": "http" } } }));
    assert_eq!(select(&m, &sidecar_of("web")).sidecar, None);
}

#[test]
fn the_inbound_listener_keeps_its_port_against_a_selected_listener() {
    let mut m = sidecars(None, json!({}));
    let clash = serde_json::from_value(json!({ "port": 15006, "protocol": "http",
        "routes": ["to-web"], "selector": { "node_cluster": "web" } }))
    .unwrap();
    m.listeners.insert("clash".into(), clash);
    let r = resources_for(&m, &sidecar_of("web"));
    assert!(
        r.of_type(type_url::LISTENER)
            .unwrap()
            .contains_key("inbound|web")
    );
    assert!(!r.of_type(type_url::LISTENER).unwrap().contains_key("clash"));
    assert!(
        r.warnings.iter().any(|w| w.contains("'clash' left out")),
        "{:?}",
        r.warnings
    );
}

// === mTLS ===

#[test]
fn strict_inbound_requires_a_mesh_certificate_and_callers_verify_the_spiffe_id() {
    let m = sidecars(Some("strict"), json!({}));
    golden("strict_server", &resources_for(&m, &sidecar_of("web")));
    let client = resources_for(&m, &sidecar_of("api"));
    golden("strict_client", &client);
    let legacy = &client.of_type(type_url::CLUSTER).unwrap()["legacy"];
    let text = resources_to_json(&client).to_string();
    assert!(text.contains("spiffe://mesh.local/service/web"));
    assert!(
        !format!("{:?}", legacy.resource.value).is_empty()
            && envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(
                legacy.resource.value.as_slice()
            )
            .unwrap()
            .transport_socket
            .is_none(),
        "a service without sidecars is called in plaintext"
    );
}

#[test]
fn a_gateway_has_no_identity_so_strict_services_warn_and_permissive_ones_do_not() {
    let strict = sidecars(Some("strict"), json!({}));
    let r = resources_for(&strict, &gateway());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("'web' is strict mTLS")),
        "{:?}",
        r.warnings
    );
    let cluster = &r.of_type(type_url::CLUSTER).unwrap()["web"];
    let cluster = envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(
        cluster.resource.value.as_slice(),
    )
    .unwrap();
    assert!(cluster.transport_socket.is_none());
    let permissive = sidecars(Some("permissive"), json!({}));
    assert!(resources_for(&permissive, &gateway()).warnings.is_empty());
}

#[test]
fn permissive_inbound_serves_tls_and_plaintext_on_one_port() {
    let m = sidecars(Some("permissive"), json!({}));
    let web = resources_for(&m, &sidecar_of("web"));
    golden("permissive", &web);
    let l = listener(&web, "inbound|web");
    assert_eq!(
        l.listener_filters[0].name,
        "envoy.filters.listener.tls_inspector"
    );
    let chains: Vec<&str> = l.filter_chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(chains, ["inbound|web|mtls", "inbound|web|plaintext"]);
    assert!(
        !l.continue_on_listener_filters_timeout,
        "http clients speak first"
    );
    // A TCP service may be server-first: a silent client is plaintext after the timeout.
    let tcp = with_defaults(m, MtlsMode::Permissive, PermissionsDefault::Allow);
    let db = listener(&resources_for(&tcp, &sidecar_of("db")), "inbound|db");
    assert!(db.continue_on_listener_filters_timeout);
}

#[test]
fn the_mesh_default_applies_to_services_with_sidecars_only() {
    let m = with_defaults(
        sidecars(None, json!({})),
        MtlsMode::Strict,
        PermissionsDefault::Allow,
    );
    let db = listener(&resources_for(&m, &sidecar_of("db")), "inbound|db");
    assert!(
        db.filter_chains[0].transport_socket.is_some(),
        "db is strict"
    );
    let legacy = sidecars(Some("off"), json!({}));
    let web = listener(&resources_for(&legacy, &sidecar_of("web")), "inbound|web");
    assert!(
        web.filter_chains[0].transport_socket.is_none(),
        "its own off wins"
    );
}

// === permissions ===

#[test]
fn permissions_become_rbac_filters_deny_first_then_shadow_then_the_default_deny() {
    let m = with_defaults(
        sidecars(Some("strict"), web_permissions()),
        MtlsMode::Off,
        PermissionsDefault::Deny,
    );
    let web = resources_for(&m, &sidecar_of("web"));
    golden("permissions", &web);
    assert_eq!(
        http_filters(&listener(&web, "inbound|web"), 0),
        [
            "rbac|deny|db-never",
            "rbac|deny|no-admin-writes",
            "rbac|shadow|try-no-deletes",
            "rbac|default-deny",
            "envoy.filters.http.router"
        ]
    );
    // The listener names each permission that shaped it.
    let origins: Vec<String> = web.of_type(type_url::LISTENER).unwrap()["inbound|web"]
        .origins
        .iter()
        .map(|o| o.object.to_string())
        .collect();
    assert_eq!(
        origins,
        [
            "services/web",
            "traffic-permissions/db-never",
            "traffic-permissions/no-admin-writes",
            "traffic-permissions/try-no-deletes",
            "traffic-permissions/api-to-web"
        ]
    );
    let db = resources_for(&m, &sidecar_of("db"));
    golden("permissions_tcp", &db);
}

#[test]
fn under_the_default_allow_allow_permissions_add_no_filter() {
    let m = sidecars(Some("strict"), web_permissions());
    let web = resources_for(&m, &sidecar_of("web"));
    let filters = http_filters(&listener(&web, "inbound|web"), 0);
    assert!(
        !filters.iter().any(|f| f == "rbac|default-deny"),
        "{filters:?}"
    );
    // No permission, default allow: no RBAC at all, as before permissions existed.
    let api = resources_for(&m, &sidecar_of("api"));
    assert_eq!(
        http_filters(&listener(&api, "inbound|api"), 0),
        ["envoy.filters.http.router"]
    );
}

#[test]
fn a_default_deny_without_allows_denies_everything_and_warns_when_mtls_is_off() {
    let m = with_defaults(
        sidecars(None, json!({})),
        MtlsMode::Off,
        PermissionsDefault::Deny,
    );
    let web = resources_for(&m, &sidecar_of("web"));
    assert!(
        web.warnings.iter().any(|w| w.contains("mTLS is off")),
        "{:?}",
        web.warnings
    );
    let json = resources_to_json(&web).to_string();
    assert!(json.contains("rbac|default-deny"));
}

#[test]
fn a_tcp_service_leaves_out_permissions_it_cannot_check() {
    let m = sidecars(
        Some("strict"),
        json!({ "db-paths": { "from": ["api"], "to": "db", "action": "deny",
                              "paths": ["/x"] } }),
    );
    let m = with_defaults(m, MtlsMode::Strict, PermissionsDefault::Allow);
    let db = resources_for(&m, &sidecar_of("db"));
    assert!(
        db.warnings
            .iter()
            .any(|w| w.contains("'db-paths' left out")),
        "{:?}",
        db.warnings
    );
}

// === Envoy's own check ===

/// Every listener and cluster of `r` in a bootstrap's static resources, with an ADS source
/// for the SDS secrets and EDS assignments they name.
fn bootstrap(r: &super::Resources, cluster: &str) -> Value {
    let all = resources_to_json(r);
    let of = |t: &str| -> Vec<Value> {
        all.get(t)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(_, v)| v["resource"].clone())
            .collect()
    };
    let mut clusters = of(type_url::CLUSTER);
    clusters.push(json!({
        "name": "xds", "type": "STATIC", "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} } } },
        "load_assignment": { "cluster_name": "xds", "endpoints": [ { "lb_endpoints": [ {
            "endpoint": { "address": { "socket_address": {
                "address": "127.0.0.1", "port_value": 1 } } } } ] } ] }
    }));
    json!({
        "node": { "id": "validate", "cluster": cluster },
        "static_resources": { "listeners": of(type_url::LISTENER), "clusters": clusters },
        "dynamic_resources": { "ads_config": { "api_type": "GRPC", "transport_api_version": "V3",
            "grpc_services": [ { "envoy_grpc": { "cluster_name": "xds" } } ] } }
    })
}

#[test]
fn envoy_accepts_every_sidecar_config() {
    let Ok(envoy) = std::env::var("ENVOY_BIN") else {
        eprintln!("skipped: set ENVOY_BIN to check the config with envoy --mode validate");
        return;
    };
    let strict = with_defaults(
        sidecars(Some("strict"), web_permissions()),
        MtlsMode::Permissive,
        PermissionsDefault::Deny,
    );
    let permissive = sidecars(Some("permissive"), web_permissions());
    let cases = [
        ("strict-web", &strict, sidecar_of("web")),
        ("strict-api", &strict, sidecar_of("api")),
        ("permissive-db", &strict, sidecar_of("db")),
        ("permissive-web", &permissive, sidecar_of("web")),
        ("gateway", &strict, gateway()),
    ];
    let dir = std::env::temp_dir().join(format!("sidecar-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, m, node) in cases {
        let r = resources_for(m, &node);
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, bootstrap(&r, &node.cluster).to_string()).unwrap();
        let out = std::process::Command::new(&envoy)
            .args(["--mode", "validate", "--log-level", "error", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "envoy --mode validate refused {name}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn mtls_without_a_ca_is_said_on_every_proxy_it_concerns() {
    let mut m = sidecars(Some("strict"), json!({}));
    m.security.ca = false;
    let web = resources_for(&m, &sidecar_of("web"));
    assert!(
        web.warnings
            .iter()
            .any(|w| w.contains("'web' wants mTLS but xds-server runs without a mesh CA")),
        "{:?}",
        web.warnings
    );
    let api = resources_for(&m, &sidecar_of("api"));
    assert!(
        api.warnings
            .iter()
            .any(|w| w.contains("--ca builtin") && w.contains("set mtls: off on 'web'")),
        "{:?}",
        api.warnings
    );
    // With the CA, neither says it.
    m.security.ca = true;
    for node in ["web", "api"] {
        let out = resources_for(&m, &sidecar_of(node));
        assert!(
            !out.warnings.iter().any(|w| w.contains("without a mesh CA")),
            "{:?}",
            out.warnings
        );
    }
}
