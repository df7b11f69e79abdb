//! The raw Envoy resource path, decoded through Envoy's descriptor pool. The first byte picks
//! one of the accepted resource types and the mode:
//!
//! - even: the rest is the `resource` of an `envoy-resources` PUT body, parsed and validated as
//!   the API does. What is accepted must translate without a warning (it was validated, so it
//!   encodes), render as proto3 JSON (`any_to_json`, the config dump's form), and that rendering
//!   must be accepted back and encode to the same bytes (the dump can be PUT back).
//! - odd: the rest is protobuf bytes of that type, as a proxy or a store could hand them over:
//!   `canonical_bytes` (content hashing) and `any_to_json` must not panic; canonical bytes are a
//!   fixed point, and bytes that decode still decode, to the same message, once canonical.
//!
//! Nothing may panic.

#![no_main]

use std::collections::BTreeMap;

use envoy_types::pb::google::protobuf::Any;
use libfuzzer_sys::fuzz_target;
use prost_reflect::DynamicMessage;
use serde_json::Value;
use xds_core::{
    descriptors,
    json::{any_to_json, canonical_bytes},
};
use xds_server::{
    fuzzing::parse_body,
    model::{EnvoyResource, Mesh, Spec, envoy_type_urls, validate_name},
    translate::{Delivery, Selection, translate},
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let urls: Vec<String> = envoy_type_urls().collect();
    let type_url = &urls[(selector as usize >> 1) % urls.len()];
    if selector & 1 == 0 {
        json_body(type_url, rest);
    } else {
        wire_bytes(type_url, rest);
    }
});

fn json_body(type_url: &str, resource: &[u8]) {
    let mut body = format!("{{\"type_url\":\"{type_url}\",\"resource\":").into_bytes();
    body.extend_from_slice(resource);
    body.push(b'}');
    let Ok((spec, _, _)) = parse_body::<EnvoyResource>(&body) else {
        return;
    };
    // Decoding runs before the name check: validate under the resource's own name so the
    // fuzzer reaches the accepted path too.
    let own = ["name", "cluster_name"]
        .iter()
        .find_map(|f| spec.resource.get(f).and_then(Value::as_str))
        .unwrap_or("web")
        .to_string();
    if spec.validate(&own).is_err() || validate_name("name", &own).is_err() {
        return;
    }
    let mesh = Mesh {
        envoy_resources: BTreeMap::from([(own.clone(), spec.clone())]),
        ..Mesh::default()
    };
    let selection = Selection {
        listeners: vec![],
        envoy_resources: vec![own.clone()],
        delivery: Delivery::Ads,
        ..Selection::default()
    };
    let resources = translate(&mesh, &selection);
    assert!(
        resources.warnings.is_empty(),
        "a validated resource did not translate: {:?}",
        resources.warnings
    );
    let encoded = &resources.of_type(type_url).expect("its type")[&own];
    let rendered = any_to_json(&encoded.resource)
        .unwrap_or_else(|e| panic!("translated bytes do not decode: {e}"));
    // The config dump's form, PUT back: accepted, and the same content.
    let back = EnvoyResource {
        type_url: type_url.to_string(),
        resource: rendered.clone(),
        selector: Default::default(),
        labels: Default::default(),
    };
    if let Err(e) = back.validate(&own) {
        panic!("the rendering {rendered} of an accepted resource is refused: {e}");
    }
    let mesh = Mesh {
        envoy_resources: BTreeMap::from([(own.clone(), back)]),
        ..Mesh::default()
    };
    let again = translate(&mesh, &selection);
    let encoded_again = &again.of_type(type_url).expect("its type")[&own];
    assert_eq!(
        encoded.resource.value, encoded_again.resource.value,
        "the rendering {rendered} encodes to other bytes"
    );
}

fn wire_bytes(type_url: &str, bytes: &[u8]) {
    let canonical = canonical_bytes(type_url, bytes);
    assert_eq!(
        canonical_bytes(type_url, &canonical),
        canonical,
        "canonical bytes are not a fixed point"
    );
    let any = Any {
        type_url: type_url.to_string(),
        value: bytes.to_vec(),
    };
    let _ = any_to_json(&any);
    let descriptor = descriptors::message(type_url).expect("a known type");
    // Only encodings as prost and prost-reflect write them reach `canonical_bytes` in the
    // server (translated and raw resources), so the decode checks are for inputs that are such
    // an encoding up to field and map order. (Arbitrary bytes, e.g. with an over-long varint or
    // a known field under another wire type, may decode and not decode once canonical: see
    // the report of the first fuzzing run.) Compared as canonical bytes: maps re-encode in
    // hash order, and NaN is not equal to itself.
    if let Ok(message) = DynamicMessage::decode(descriptor.clone(), bytes) {
        let reencoded = canonical_bytes(type_url, &prost::Message::encode_to_vec(&message));
        if reencoded == canonical {
            let again = DynamicMessage::decode(descriptor, canonical.as_slice())
                .expect("a clean encoding no longer decodes once canonical");
            let decoded_again = prost::Message::encode_to_vec(&again);
            assert_eq!(
                canonical_bytes(type_url, &decoded_again),
                canonical,
                "canonical bytes decode to another message"
            );
        }
    }
}
