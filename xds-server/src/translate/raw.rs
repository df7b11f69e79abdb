//! Raw Envoy resources: proto3 JSON in, the message's wire bytes out.

use prost_reflect::{DeserializeOptions, DynamicMessage};

use xds_core::descriptors;

use crate::model::EnvoyResource;

/// Encodes the resource as its Envoy message. It was validated on write, so failures here mean
/// the descriptors changed between builds.
pub(super) fn encode(r: &EnvoyResource) -> Result<Vec<u8>, String> {
    let descriptor =
        descriptors::message(&r.type_url).ok_or_else(|| format!("unknown type {}", r.type_url))?;
    let message = DynamicMessage::deserialize_with_options(
        descriptor,
        &r.resource,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| e.to_string())?;
    Ok(prost::Message::encode_to_vec(&message))
}
