//! Encoding checks: canonical bytes, and every generated resource decodes as the Envoy message
//! it claims to be, with nothing Envoy would not recognise.

use std::collections::BTreeMap;

use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, ReflectMessage, Value as PValue};
use serde_json::json;

use xds_core::{
    descriptors,
    json::{any_to_json, canonical_bytes},
    type_url,
};

use super::{edge_node, full_example, resources_for, tcp_grpc, with_raw};
use crate::{model::Endpoints, translate::endpoint};

#[test]
fn canonical_bytes_order_map_entries() {
    let labels: BTreeMap<String, String> =
        (0..8).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
    let eps = Endpoints {
        endpoints: vec![
            serde_json::from_value(json!({
            "address": "10.0.0.1", "port": 80, "labels": labels }))
            .unwrap(),
        ],
    };
    let encodings: Vec<Vec<u8>> = (0..16)
        .map(|_| endpoint::load_assignment("web", Some(&eps)).encode_to_vec())
        .collect();
    let canonical: Vec<Vec<u8>> = encodings
        .iter()
        .map(|b| canonical_bytes(type_url::ENDPOINT, b))
        .collect();
    assert!(canonical.windows(2).all(|w| w[0] == w[1]));
    let decoded = envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment::decode(
        &canonical[0][..],
    );
    assert_eq!(
        decoded.unwrap(),
        endpoint::load_assignment("web", Some(&eps))
    );
}

#[test]
fn every_generated_resource_decodes_without_unknown_fields() {
    let cases = [
        (full_example(), edge_node()),
        (tcp_grpc(), edge_node()),
        (with_raw(), edge_node()),
        (super::hash_policy::sticky(), edge_node()),
    ];
    for (m, n) in cases {
        for resources in resources_for(&m, &n).by_type.values() {
            for encoded in resources.values() {
                check_any(
                    &encoded.resource.type_url,
                    &encoded.resource.value,
                    &encoded.name,
                );
                // What the config API shows is valid proto3 JSON input again.
                let desc = descriptors::message(&encoded.resource.type_url).unwrap();
                let json = any_to_json(&encoded.resource).unwrap();
                let opts = DeserializeOptions::new().deny_unknown_fields(true);
                DynamicMessage::deserialize_with_options(desc, json, &opts).unwrap();
            }
        }
    }
}

/// Decodes `bytes` as `type_url`, walking nested messages (and the contents of `Any`s): no
/// unknown fields and no enum numbers outside the enum anywhere.
fn check_any(type_url: &str, bytes: &[u8], at: &str) {
    let full_name = type_url.rsplit('/').next().unwrap();
    let desc =
        descriptors::message(type_url).unwrap_or_else(|| panic!("{at}: unknown type {type_url}"));
    let message = DynamicMessage::decode(desc, bytes)
        .unwrap_or_else(|e| panic!("{at}: not a {full_name}: {e}"));
    check_message(&message, at);
}

fn check_message(message: &DynamicMessage, at: &str) {
    assert_eq!(message.unknown_fields().count(), 0, "{at}: unknown fields");
    if message.descriptor().full_name() == "google.protobuf.Any" {
        let url = message.get_field_by_name("type_url").unwrap();
        let value = message.get_field_by_name("value").unwrap();
        check_any(url.as_str().unwrap(), value.as_bytes().unwrap(), at);
        return;
    }
    for (field, value) in message.fields() {
        check_value(&field.kind(), value, &format!("{at}.{}", field.name()));
    }
}

fn check_value(kind: &prost_reflect::Kind, value: &PValue, at: &str) {
    match (kind, value) {
        (_, PValue::Message(m)) => check_message(m, at),
        (_, PValue::List(items)) => items.iter().for_each(|v| check_value(kind, v, at)),
        (prost_reflect::Kind::Message(entry), PValue::Map(map)) => {
            let value_kind = entry.map_entry_value_field().kind();
            map.values().for_each(|v| check_value(&value_kind, v, at));
        }
        (prost_reflect::Kind::Enum(e), PValue::EnumNumber(n)) => {
            assert!(e.get_value(*n).is_some(), "{at}: {n} is not a {}", e.name());
        }
        _ => {}
    }
}

/// Label maps are encoded in hash order, which differs between map instances: the versions of
/// assignments and of routes with subsets must not (every replica, every translation agrees),
/// and no descriptor pool is needed to get there.
#[test]
fn versions_of_label_maps_do_not_depend_on_hash_order() {
    let labels: BTreeMap<String, String> =
        (0..8).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
    let eps = Endpoints {
        endpoints: vec![
            serde_json::from_value(json!({
            "address": "10.0.0.1", "port": 80, "labels": labels }))
            .unwrap(),
        ],
    };
    let versions: std::collections::BTreeSet<String> = (0..16)
        .map(|_| {
            let cla = endpoint::load_assignment("web", Some(&eps));
            crate::translate::content_version(&endpoint::stable_bytes(&cla))
        })
        .collect();
    assert_eq!(versions.len(), 1);
    let encodings: std::collections::BTreeSet<Vec<u8>> = (0..16)
        .map(|_| endpoint::load_assignment("web", Some(&eps)).encode_to_vec())
        .collect();
    assert!(
        encodings.len() > 1,
        "the bytes do vary: the test would catch a regression"
    );
    // Whole translations, with subset routes: equal versions every time.
    let m = full_example();
    let n = edge_node();
    let first = resources_for(&m, &n);
    for _ in 0..8 {
        let again = resources_for(&m, &n);
        for (t, all) in &first.by_type {
            for (name, e) in all {
                assert_eq!(e.version, again.by_type[t][name].version, "{t} {name}");
            }
        }
    }
}
