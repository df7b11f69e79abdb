//! The responses the state machines make, encoded straight from the shared resources.
//!
//! Every resource is encoded once per revision ([`Encoded`]) and shared by every stream that
//! sends it. Building a prost `DiscoveryResponse` would copy each resource's bytes into every
//! stream's response; these types hold the shared resources instead and write the same wire
//! format (`envoy.service.discovery.v3.DiscoveryResponse` and `DeltaDiscoveryResponse`) when
//! tonic encodes them, so the only copy is into the transport's buffer.

use std::{marker::PhantomData, sync::Arc};

use bytes::{Buf, BufMut};
use prost::{
    DecodeError, Message,
    encoding::{self, DecodeContext, WireType, encode_key, encode_varint, encoded_len_varint},
};
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::translate::Encoded;

/// The codec of every xDS stream: prost, with small buffers. tonic allocates its buffer size
/// per stream and direction up front (8 KiB by default: most of a stream's memory with 10,000
/// streams) and grows it in steps of that size for larger messages.
#[derive(Debug)]
pub struct XdsCodec<T, U>(PhantomData<fn() -> (T, U)>);

impl<T, U> Default for XdsCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// Starting size of a stream's encode and decode buffers (an ACK fits; larger messages grow
/// it); the yield threshold stays tonic's.
const BUFFERS: usize = 512;
const YIELD_THRESHOLD: usize = 32 * 1024;

impl<T, U> Codec for XdsCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(BUFFERS, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::new(BUFFERS, YIELD_THRESHOLD))
    }
}

/// The identity every response carries, so a proxy's config dump says who configured it.
pub const CONTROL_PLANE: &str = concat!("xds-server/", env!("CARGO_PKG_VERSION"));

/// A State-of-the-World response (`DiscoveryResponse`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SotwResponse {
    pub version_info: String,
    pub resources: Arc<[Arc<Encoded>]>,
    pub type_url: String,
    pub nonce: String,
}

/// An incremental response (`DeltaDiscoveryResponse`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeltaResponse {
    pub system_version_info: String,
    pub resources: Vec<Arc<Encoded>>,
    pub type_url: String,
    pub removed_resources: Vec<String>,
    pub nonce: String,
}

// Field numbers, from envoy/service/discovery/v3/discovery.proto.
const SOTW_VERSION_INFO: u32 = 1;
const SOTW_RESOURCES: u32 = 2;
const SOTW_TYPE_URL: u32 = 4;
const SOTW_NONCE: u32 = 5;
const SOTW_CONTROL_PLANE: u32 = 6;
const DELTA_SYSTEM_VERSION_INFO: u32 = 1;
const DELTA_RESOURCES: u32 = 2;
const DELTA_TYPE_URL: u32 = 4;
const DELTA_NONCE: u32 = 5;
const DELTA_REMOVED_RESOURCES: u32 = 6;
const DELTA_CONTROL_PLANE: u32 = 7;
const RESOURCE_VERSION: u32 = 1;
const RESOURCE_RESOURCE: u32 = 2;
const RESOURCE_NAME: u32 = 3;
const ANY_TYPE_URL: u32 = 1;
const ANY_VALUE: u32 = 2;
const CONTROL_PLANE_IDENTIFIER: u32 = 1;

/// The length of a string field (proto3: empty strings are not written).
fn string_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        message_len(tag, s.len())
    }
}

fn put_string(tag: u32, s: &str, buf: &mut impl BufMut) {
    if !s.is_empty() {
        put_header(tag, s.len(), buf);
        buf.put_slice(s.as_bytes());
    }
}

/// The key and length of a nested message field; its body follows.
fn put_header(tag: u32, len: usize, buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn message_len(tag: u32, len: usize) -> usize {
    encoding::key_len(tag) + encoded_len_varint(len as u64) + len
}

/// The `Any` body of a resource.
fn any_len(e: &Encoded) -> usize {
    let value = &e.resource.value;
    string_len(ANY_TYPE_URL, &e.resource.type_url)
        + if value.is_empty() {
            0
        } else {
            message_len(ANY_VALUE, value.len())
        }
}

fn put_any(e: &Encoded, buf: &mut impl BufMut) {
    put_string(ANY_TYPE_URL, &e.resource.type_url, buf);
    if !e.resource.value.is_empty() {
        put_header(ANY_VALUE, e.resource.value.len(), buf);
        buf.put_slice(&e.resource.value);
    }
}

fn control_plane_len(tag: u32) -> usize {
    message_len(tag, string_len(CONTROL_PLANE_IDENTIFIER, CONTROL_PLANE))
}

fn put_control_plane(tag: u32, buf: &mut impl BufMut) {
    put_header(
        tag,
        string_len(CONTROL_PLANE_IDENTIFIER, CONTROL_PLANE),
        buf,
    );
    put_string(CONTROL_PLANE_IDENTIFIER, CONTROL_PLANE, buf);
}

/// The `Resource` wrapper of a delta response: name, version and the `Any`.
fn delta_resource_len(e: &Encoded) -> usize {
    string_len(RESOURCE_VERSION, &e.version)
        + message_len(RESOURCE_RESOURCE, any_len(e))
        + string_len(RESOURCE_NAME, &e.name)
}

impl Message for SotwResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        put_string(SOTW_VERSION_INFO, &self.version_info, buf);
        for e in self.resources.iter() {
            put_header(SOTW_RESOURCES, any_len(e), buf);
            put_any(e, buf);
        }
        put_string(SOTW_TYPE_URL, &self.type_url, buf);
        put_string(SOTW_NONCE, &self.nonce, buf);
        put_control_plane(SOTW_CONTROL_PLANE, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        // Only ever encoded; a decode (none happens) skips everything.
        encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        string_len(SOTW_VERSION_INFO, &self.version_info)
            + self
                .resources
                .iter()
                .map(|e| message_len(SOTW_RESOURCES, any_len(e)))
                .sum::<usize>()
            + string_len(SOTW_TYPE_URL, &self.type_url)
            + string_len(SOTW_NONCE, &self.nonce)
            + control_plane_len(SOTW_CONTROL_PLANE)
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

impl Message for DeltaResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        put_string(DELTA_SYSTEM_VERSION_INFO, &self.system_version_info, buf);
        for e in &self.resources {
            put_header(DELTA_RESOURCES, delta_resource_len(e), buf);
            put_string(RESOURCE_VERSION, &e.version, buf);
            put_header(RESOURCE_RESOURCE, any_len(e), buf);
            put_any(e, buf);
            put_string(RESOURCE_NAME, &e.name, buf);
        }
        put_string(DELTA_TYPE_URL, &self.type_url, buf);
        put_string(DELTA_NONCE, &self.nonce, buf);
        for name in &self.removed_resources {
            // Repeated strings are written even when empty.
            put_header(DELTA_REMOVED_RESOURCES, name.len(), buf);
            buf.put_slice(name.as_bytes());
        }
        put_control_plane(DELTA_CONTROL_PLANE, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        string_len(DELTA_SYSTEM_VERSION_INFO, &self.system_version_info)
            + self
                .resources
                .iter()
                .map(|e| message_len(DELTA_RESOURCES, delta_resource_len(e)))
                .sum::<usize>()
            + string_len(DELTA_TYPE_URL, &self.type_url)
            + string_len(DELTA_NONCE, &self.nonce)
            + self
                .removed_resources
                .iter()
                .map(|n| message_len(DELTA_REMOVED_RESOURCES, n.len()))
                .sum::<usize>()
            + control_plane_len(DELTA_CONTROL_PLANE)
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    //! The hand-written encodings decode as the Envoy messages, field for field.

    use envoy_types::pb::{
        envoy::{
            config::core::v3::ControlPlane,
            service::discovery::v3::{DeltaDiscoveryResponse, DiscoveryResponse, Resource},
        },
        google::protobuf::Any,
    };

    use super::*;
    use crate::translate::content_version;

    fn encoded(name: &str, value: &[u8]) -> Arc<Encoded> {
        Arc::new(Encoded {
            name: name.to_string(),
            version: content_version(value),
            resource: Any {
                type_url: "type.googleapis.com/x.Y".to_string(),
                value: value.to_vec(),
            },
            origins: Default::default(),
        })
    }

    fn items() -> Vec<Arc<Encoded>> {
        // An empty value, a long one (multi-byte lengths), a name with non-ASCII bytes.
        vec![
            encoded("a", b""),
            encoded("b", &vec![7u8; 300]),
            encoded("ç", b"xyz"),
        ]
    }

    fn control_plane() -> Option<ControlPlane> {
        Some(ControlPlane {
            identifier: CONTROL_PLANE.to_string(),
        })
    }

    #[test]
    fn sotw_response_decodes_as_a_discovery_response() {
        let r = SotwResponse {
            version_info: "v1".into(),
            resources: items().into(),
            type_url: "type.googleapis.com/x.Y".into(),
            nonce: "42".into(),
        };
        let bytes = r.encode_to_vec();
        assert_eq!(bytes.len(), r.encoded_len());
        let decoded = DiscoveryResponse::decode(bytes.as_slice()).unwrap();
        let expected = DiscoveryResponse {
            version_info: "v1".into(),
            resources: items().iter().map(|e| e.resource.clone()).collect(),
            type_url: "type.googleapis.com/x.Y".into(),
            nonce: "42".into(),
            control_plane: control_plane(),
            ..DiscoveryResponse::default()
        };
        assert_eq!(decoded, expected);
        // Empty fields are left out, as prost does.
        let empty = SotwResponse::default();
        assert_eq!(
            empty.encode_to_vec(),
            DiscoveryResponse {
                control_plane: control_plane(),
                ..DiscoveryResponse::default()
            }
            .encode_to_vec()
        );
    }

    #[test]
    fn delta_response_decodes_as_a_delta_discovery_response() {
        let r = DeltaResponse {
            system_version_info: "v2".into(),
            resources: items(),
            type_url: "type.googleapis.com/x.Y".into(),
            removed_resources: vec!["gone".into(), String::new()],
            nonce: "7".into(),
        };
        let bytes = r.encode_to_vec();
        assert_eq!(bytes.len(), r.encoded_len());
        let decoded = DeltaDiscoveryResponse::decode(bytes.as_slice()).unwrap();
        let expected = DeltaDiscoveryResponse {
            system_version_info: "v2".into(),
            resources: items()
                .iter()
                .map(|e| Resource {
                    name: e.name.clone(),
                    version: e.version.clone(),
                    resource: Some(e.resource.clone()),
                    ..Resource::default()
                })
                .collect(),
            type_url: "type.googleapis.com/x.Y".into(),
            removed_resources: vec!["gone".into(), String::new()],
            nonce: "7".into(),
            control_plane: control_plane(),
            ..DeltaDiscoveryResponse::default()
        };
        assert_eq!(decoded, expected);
    }
}
