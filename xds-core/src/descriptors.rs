//! Envoy's descriptor pool: the FileDescriptorSet `envoy-types` was generated from (found by
//! `build.rs`), decoded on first use. Decoding costs tens of megabytes, so nothing on a data
//! path touches it: only validation of raw resources, proto3 JSON rendering and content
//! hashing do.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, MessageDescriptor};

/// The encoded descriptor set, for tools that want to decode it themselves.
pub const ENCODED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptors.bin"));

static POOL: LazyLock<DescriptorPool> =
    LazyLock::new(|| DescriptorPool::decode(ENCODED).expect("envoy-types' descriptor set decodes"));

/// The pool, decoded on first use.
pub fn pool() -> &'static DescriptorPool {
    &POOL
}

/// The message a type URL (`type.googleapis.com/<name>`) or a bare full name refers to.
pub fn message(type_url: &str) -> Option<MessageDescriptor> {
    let full_name = type_url.rsplit('/').next().unwrap_or_default();
    pool().get_message_by_name(full_name)
}
