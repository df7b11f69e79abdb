//! Validation of sidecars (`inbound`), mTLS modes and traffic permissions, bad input included.

use serde_json::json;

use super::{ok, rejects, serde_err};
use crate::model::{
    Kind, MeshSecurity, MtlsMode, PermissionAction, Reference, Service, Spec, TrafficPermission,
};

// === inbound ===

#[test]
fn inbound_defaults_to_any_address_and_a_loopback_application() {
    let s: Service = ok(
        json!({ "protocol": "http", "inbound": { "port": 15006, "app_port": 8080 } }),
        "web",
    );
    let inbound = s.inbound.unwrap();
    assert_eq!(
        (inbound.address.as_str(), inbound.app_address.as_str()),
        ("0.0.0.0", "127.0.0.1")
    );
    assert_eq!(s.mtls, None);
}

#[test]
fn inbound_rejects_bad_ports_and_addresses() {
    let svc = |inbound: serde_json::Value| json!({ "protocol": "http", "inbound": inbound });
    for (inbound, field) in [
        (json!({ "port": 0, "app_port": 8080 }), "inbound.port"),
        (json!({ "port": 65536, "app_port": 8080 }), "inbound.port"),
        (json!({ "port": 15006, "app_port": 0 }), "inbound.app_port"),
        (
            json!({ "port": 15006, "app_port": 70000 }),
            "inbound.app_port",
        ),
        (
            json!({ "port": 15006, "app_port": 8080, "address": "localhost" }),
            "inbound.address",
        ),
        (
            json!({ "port": 15006, "app_port": 8080, "app_address": "10.0.0.300" }),
            "inbound.app_address",
        ),
        (
            json!({ "port": 15006, "app_port": 8080, "app_address": "0.0.0.0" }),
            "inbound.app_address",
        ),
        // Forwarding to its own port would loop.
        (
            json!({ "port": 8080, "app_port": 8080 }),
            "inbound.app_port",
        ),
    ] {
        rejects::<Service>("web", svc(inbound), field);
    }
    // The application on another host may use the same port number.
    ok::<Service>(
        svc(
            json!({ "port": 8080, "address": "10.0.0.1", "app_address": "10.0.0.2",
                    "app_port": 8080 }),
        ),
        "web",
    );
    assert!(
        serde_err::<Service>(svc(json!({ "port": 1, "app_port": 2, "app": 3 })))
            .contains("unknown field")
    );
    assert!(serde_err::<Service>(svc(json!({ "app_port": 2 }))).contains("port"));
}

// === mTLS ===

#[test]
fn mtls_modes_parse_and_need_inbound() {
    for (text, mode) in [
        ("strict", MtlsMode::Strict),
        ("permissive", MtlsMode::Permissive),
        ("off", MtlsMode::Off),
    ] {
        let s: Service = ok(
            json!({ "protocol": "tcp", "mtls": text,
                    "inbound": { "port": 15006, "app_port": 8080 } }),
            "db",
        );
        assert_eq!(s.mtls, Some(mode));
    }
    rejects::<Service>(
        "web",
        json!({ "protocol": "http", "mtls": "strict" }),
        "mtls",
    );
    assert!(
        serde_err::<Service>(json!({ "protocol": "http", "mtls": "on",
            "inbound": { "port": 15006, "app_port": 8080 } }))
        .contains("unknown variant")
    );
}

#[test]
fn identities_are_spiffe_ids_in_the_trust_domain() {
    let security = MeshSecurity::default();
    assert_eq!(security.spiffe_id("web"), "spiffe://mesh.local/service/web");
    assert_eq!(
        security.mtls_default,
        MtlsMode::Off,
        "off unless the operator asks"
    );
}

// === traffic permissions ===

fn permission(patch: serde_json::Value) -> serde_json::Value {
    let mut p = json!({ "from": ["web"], "to": "api", "action": "deny" });
    for (k, v) in patch.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[test]
fn a_permission_names_its_services_as_references() {
    let p: TrafficPermission = ok(
        permission(json!({ "from": ["web", "*", "jobs"], "paths": ["/admin"],
                           "methods": ["POST", "DELETE"] })),
        "no-admin",
    );
    assert_eq!(p.action, PermissionAction::Deny);
    assert!(p.from_any());
    assert_eq!(p.from_services().collect::<Vec<_>>(), ["web", "jobs"]);
    assert_eq!(
        p.references("no-admin"),
        [
            Reference::to(Kind::Service, "api", "to"),
            Reference::to(Kind::Service, "web", "from[0]"),
            Reference::to(Kind::Service, "jobs", "from[2]"),
        ]
    );
    let shadow: TrafficPermission = ok(permission(json!({ "shadow": true })), "try");
    assert!(shadow.shadow);
}

#[test]
fn a_permission_rejects_bad_input_naming_the_field() {
    for (patch, field) in [
        (json!({ "from": [] }), "from"),
        (json!({ "from": ["Web"] }), "from[0]"),
        (json!({ "from": ["web", "web"] }), "from[1]"),
        (json!({ "from": ["*", "*"] }), "from[1]"),
        (json!({ "to": "" }), "to"),
        (json!({ "to": "*" }), "to"),
        (json!({ "paths": ["admin"] }), "paths[0]"),
        (json!({ "paths": ["/a b"] }), "paths[0]"),
        (json!({ "methods": ["get"] }), "methods[0]"),
        (json!({ "methods": ["GET", "GET"] }), "methods[1]"),
        (json!({ "action": "allow", "shadow": true }), "shadow"),
        (json!({ "labels": { "-bad": "x" } }), "labels"),
    ] {
        let e = super::err::<TrafficPermission>(permission(patch.clone()), "p");
        assert!(
            e.field.starts_with(field),
            "{patch} gave {e}, wanted field {field}"
        );
        assert!(!e.message.is_empty());
    }
    assert!(
        serde_err::<TrafficPermission>(permission(json!({ "action": "reject" })))
            .contains("unknown variant")
    );
    assert!(
        serde_err::<TrafficPermission>(json!({ "from": ["web"], "action": "deny" }))
            .contains("missing field `to`")
    );
    assert!(
        serde_err::<TrafficPermission>(permission(json!({ "ports": [80] })))
            .contains("unknown field")
    );
}

#[test]
fn the_kind_is_named_once() {
    assert_eq!(TrafficPermission::KIND.collection(), "traffic-permissions");
    assert_eq!(
        crate::model::noun(Kind::TrafficPermission),
        "traffic permission"
    );
    assert_eq!("tp".parse::<Kind>(), Ok(Kind::TrafficPermission));
}

#[test]
fn the_mesh_defaults_come_from_the_flags_and_keep_todays_behaviour_unset() {
    use clap::Parser;
    let config = crate::config::Config::try_parse_from(["xds-server"]).unwrap();
    assert_eq!(config.mesh_security(), MeshSecurity::default());
    let config = crate::config::Config::try_parse_from([
        "xds-server",
        "--mtls-default",
        "strict",
        "--permissions-default",
        "deny",
    ])
    .unwrap();
    let security = config.mesh_security();
    assert_eq!(security.mtls_default, MtlsMode::Strict);
    assert_eq!(
        security.permissions_default,
        crate::model::PermissionsDefault::Deny
    );
    let bad = crate::config::Config::try_parse_from(["xds-server", "--mtls-default", "on"]);
    assert!(bad.unwrap_err().to_string().contains("strict"));
}
