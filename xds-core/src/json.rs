//! Encoded Envoy messages seen through Envoy's descriptors: proto3 JSON for people (config
//! dumps, status APIs, golden files) and a canonical byte form for content-hash versions.

use std::collections::BTreeMap;

use envoy_types::pb::google::protobuf::Any;
use prost::{
    Message,
    encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint},
};
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, SerializeOptions};
use serde_json::Value;

use crate::descriptors::message as descriptor;

/// One resource as proto3 JSON. Field names are Envoy's proto names (`connect_timeout`, as in
/// Envoy's own config dump and in `envoy-resources` bodies, so output can be PUT back);
/// nested `Any`s carry `@type`.
pub fn any_to_json(any: &Any) -> Result<Value, String> {
    let desc = descriptor(&any.type_url).ok_or_else(|| format!("unknown type {}", any.type_url))?;
    let message = DynamicMessage::decode(desc, any.value.as_slice()).map_err(|e| e.to_string())?;
    let options = SerializeOptions::new().use_proto_field_name(true);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| e.to_string())
}

/// The resource's bytes with every protobuf map's entries in sorted order, recursively
/// (through nested messages and `Any`s of known types). Prost and prost-reflect encode maps in
/// `HashMap` order, which differs between map instances and processes, so two encodings of the
/// same content (labels, `typed_extension_protocol_options`, a raw resource's maps) can differ;
/// hashing this form instead gives equal versions for equal content on every replica. Input
/// that does not parse against its descriptor comes back unchanged.
pub fn canonical_bytes(type_url: &str, bytes: &[u8]) -> Vec<u8> {
    descriptor(type_url)
        .and_then(|desc| canonical(&desc, bytes))
        .unwrap_or_else(|| bytes.to_vec())
}

fn canonical(desc: &MessageDescriptor, bytes: &[u8]) -> Option<Vec<u8>> {
    if desc.full_name() == "google.protobuf.Any" {
        let mut any = Any::decode(bytes).ok()?;
        if let Some(inner) = descriptor(&any.type_url) {
            any.value = canonical(&inner, &any.value)?;
        }
        return Some(any.encode_to_vec());
    }
    let mut out = Vec::with_capacity(bytes.len());
    // Map entries by field number, each entry already canonical; emitted sorted at the end.
    let mut maps: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
    let mut buf = bytes;
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).ok()?;
        match wire_type {
            WireType::Varint => {
                let v = decode_varint(&mut buf).ok()?;
                encode_key(tag, wire_type, &mut out);
                encode_varint(v, &mut out);
            }
            WireType::ThirtyTwoBit | WireType::SixtyFourBit => {
                let n = if wire_type == WireType::ThirtyTwoBit {
                    4
                } else {
                    8
                };
                let (value, rest) = buf.split_at_checked(n)?;
                encode_key(tag, wire_type, &mut out);
                out.extend_from_slice(value);
                buf = rest;
            }
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                let (payload, rest) = buf.split_at_checked(len)?;
                buf = rest;
                let field = desc.get_field(tag);
                let payload = match field.as_ref().map(|f| f.kind()) {
                    Some(Kind::Message(m)) => canonical(&m, payload)?,
                    _ => payload.to_vec(),
                };
                let mut encoded = Vec::with_capacity(payload.len() + 8);
                encode_key(tag, wire_type, &mut encoded);
                encode_varint(payload.len() as u64, &mut encoded);
                encoded.extend_from_slice(&payload);
                if field.is_some_and(|f| f.is_map()) {
                    maps.entry(tag).or_default().push(encoded);
                } else {
                    out.extend_from_slice(&encoded);
                }
            }
            // Groups do not occur in Envoy's proto3 messages.
            WireType::StartGroup | WireType::EndGroup => return None,
        }
    }
    for (_, mut entries) in maps {
        entries.sort();
        entries.into_iter().for_each(|e| out.extend_from_slice(&e));
    }
    Some(out)
}
