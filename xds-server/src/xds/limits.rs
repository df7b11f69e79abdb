//! Bounds on what any client reaching the xDS port can make the server hold or do, whether
//! it is a real proxy or not: streams open, time before the first request, type URLs and
//! names per stream, node size, stored NACK messages, and time a response may wait for a
//! reader. Pure checks on raw requests, run before a state machine sees them; the stream
//! glue (`stream.rs`) enforces the rest.
//!
//! Every refusal says which limit was hit and which flag raises it, and is counted in
//! `xds_limit_refusals_total{limit}`.

use std::time::Duration;

use envoy_types::pb::envoy::{
    config::core::v3::Node,
    service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest},
};

/// The limits, as configured (`config.rs`) or by default (the embedded server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// xDS streams open at once, over all connections: each holds a task, a status entry and
    /// up to [`RESPONSE_QUEUE`] responses.
    pub max_streams: usize,
    /// Streams one HTTP/2 connection may open at once (SETTINGS_MAX_CONCURRENT_STREAMS), so
    /// one connection cannot take the whole of `max_streams`.
    pub max_streams_per_connection: u32,
    /// How long a new stream may wait for its first request (a stream that sends nothing
    /// would otherwise hold a slot of `max_streams` forever).
    pub first_request_timeout: Duration,
    /// Distinct type URLs one stream may use (each type keeps state in the state machine).
    pub max_types_per_stream: usize,
    /// Entries of a delta request's `initial_resource_versions`.
    pub max_initial_resource_versions: usize,
    /// Bytes of one request, encoded: what a stream buffers while a request arrives.
    pub max_request_bytes: usize,
    /// Bytes of any resource name or type URL in a request.
    pub max_name_bytes: usize,
    /// Bytes of the node, encoded (it is kept for the stream's life and shown by the API).
    pub max_node_bytes: usize,
    /// Bytes of a NACK's `error_detail` message kept in the proxy status; longer ones are
    /// cut (on a character boundary) and marked.
    pub max_error_detail_bytes: usize,
    /// How long a response may wait for the proxy to read while [`RESPONSE_QUEUE`] earlier
    /// ones are already queued; then the proxy's connection is closed, freeing what it held.
    pub write_timeout: Duration,
}

/// Responses queued per stream between its task and the transport. With HTTP/2 flow control
/// (the transport polls for more only when the previous chunk has been sent) this bounds what
/// a stream that is not read holds: this many responses, one more in the task, and one
/// encoded chunk in the transport.
pub const RESPONSE_QUEUE: usize = 8;

/// What is appended to a NACK message cut to [`Limits::max_error_detail_bytes`].
pub const TRUNCATED: &str = "… [truncated by xds-server]";

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_streams: 10_000,
            max_streams_per_connection: 100,
            first_request_timeout: Duration::from_secs(10),
            max_types_per_stream: 16,
            max_initial_resource_versions: 10_000,
            max_request_bytes: 4 * 1024 * 1024,
            max_name_bytes: 1024,
            max_node_bytes: 64 * 1024,
            max_error_detail_bytes: 4 * 1024,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// A limit was hit. Each message names the limit and the flag that raises it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    #[error(
        "the server already has {max} xDS streams open (--xds-max-streams): retry later, or raise the limit"
    )]
    Streams { max: usize },
    #[error(
        "no request arrived within {0:?} of opening the stream (--xds-first-request-timeout): send the first request, with the node, at once"
    )]
    FirstRequest(Duration),
    #[error(
        "a stream may use at most {max} distinct type URLs (--xds-max-types-per-stream); '{type_url}' is one more"
    )]
    Types { max: usize, type_url: String },
    #[error(
        "initial_resource_versions has {got} entries; at most {max} are accepted (--xds-max-initial-resource-versions)"
    )]
    InitialVersions { got: usize, max: usize },
    #[error(
        "a request is larger than {max} bytes (--xds-max-request-bytes): subscribe in smaller steps, or raise the limit"
    )]
    RequestBytes { max: usize },
    #[error(
        "a name in {field} is {got} bytes; at most {max} are accepted (--xds-max-resource-name-bytes)"
    )]
    NameBytes {
        field: &'static str,
        got: usize,
        max: usize,
    },
    #[error(
        "the node is {got} bytes encoded; at most {max} are accepted (--xds-max-node-bytes): send less metadata"
    )]
    NodeBytes { got: usize, max: usize },
    #[error(
        "the proxy read no response for {0:?} while {RESPONSE_QUEUE} waited (--xds-write-timeout): its connection is closed"
    )]
    WriteTimeout(Duration),
}

impl Exceeded {
    /// The `limit` label of `xds_limit_refusals_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Exceeded::Streams { .. } => "streams",
            Exceeded::FirstRequest(_) => "first_request_timeout",
            Exceeded::Types { .. } => "types_per_stream",
            Exceeded::InitialVersions { .. } => "initial_resource_versions",
            Exceeded::RequestBytes { .. } => "request_bytes",
            Exceeded::NameBytes { .. } => "resource_name_bytes",
            Exceeded::NodeBytes { .. } => "node_bytes",
            Exceeded::WriteTimeout(_) => "write_timeout",
        }
    }
}

/// Every `limit` label, so the series exist (at zero) before the first refusal.
pub const LABELS: [&str; 9] = [
    "streams",
    "first_request_timeout",
    "types_per_stream",
    "initial_resource_versions",
    "request_bytes",
    "resource_name_bytes",
    "node_bytes",
    "error_detail_bytes",
    "write_timeout",
];

/// The `limit` label counted when a NACK message is cut (the stream stays open).
pub const ERROR_DETAIL_LABEL: &str = "error_detail_bytes";

impl From<Exceeded> for tonic::Status {
    fn from(e: Exceeded) -> Self {
        match e {
            Exceeded::FirstRequest(_) => tonic::Status::deadline_exceeded(e.to_string()),
            _ => tonic::Status::resource_exhausted(e.to_string()),
        }
    }
}

/// What the checks read of a request, SotW or delta.
pub(crate) trait Request {
    fn type_url(&self) -> &str;
    fn node(&self) -> Option<&Node>;
    /// Every resource name the request carries, with the field it is in.
    fn names(&self) -> impl Iterator<Item = (&'static str, &str)>;
    fn initial_versions(&self) -> usize;
}

impl Request for DiscoveryRequest {
    fn type_url(&self) -> &str {
        &self.type_url
    }
    fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }
    fn names(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.resource_names
            .iter()
            .map(|n| ("resource_names", n.as_str()))
    }
    fn initial_versions(&self) -> usize {
        0
    }
}

impl Request for DeltaDiscoveryRequest {
    fn type_url(&self) -> &str {
        &self.type_url
    }
    fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }
    fn names(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let sub = self.resource_names_subscribe.iter();
        let unsub = self.resource_names_unsubscribe.iter();
        let initial = self.initial_resource_versions.keys();
        sub.map(|n| ("resource_names_subscribe", n.as_str()))
            .chain(unsub.map(|n| ("resource_names_unsubscribe", n.as_str())))
            .chain(initial.map(|n| ("initial_resource_versions", n.as_str())))
    }
    fn initial_versions(&self) -> usize {
        self.initial_resource_versions.len()
    }
}

impl Limits {
    /// The stream's status for an error reading a request: tonic's refusal of a request over
    /// [`Limits::max_request_bytes`] becomes [`Exceeded::RequestBytes`] (it names no flag).
    pub(crate) fn read_error(&self, status: tonic::Status) -> Result<tonic::Status, Exceeded> {
        // tonic says OUT_OF_RANGE; a limit is RESOURCE_EXHAUSTED here, with the flag named.
        let too_large = status.code() == tonic::Code::OutOfRange
            && status.message().contains("message length too large");
        if too_large {
            Err(Exceeded::RequestBytes {
                max: self.max_request_bytes,
            })
        } else {
            Ok(status)
        }
    }

    /// Checks one request on its own: node size, name lengths, `initial_resource_versions`.
    pub(crate) fn check(&self, req: &impl Request) -> Result<(), Exceeded> {
        if let Some(node) = req.node() {
            let got = prost::Message::encoded_len(node);
            if got > self.max_node_bytes {
                return Err(Exceeded::NodeBytes {
                    got,
                    max: self.max_node_bytes,
                });
            }
        }
        let got = req.initial_versions();
        if got > self.max_initial_resource_versions {
            return Err(Exceeded::InitialVersions {
                got,
                max: self.max_initial_resource_versions,
            });
        }
        let too_long = std::iter::once(("type_url", req.type_url()))
            .chain(req.names())
            .find(|(_, n)| n.len() > self.max_name_bytes);
        match too_long {
            Some((field, name)) => Err(Exceeded::NameBytes {
                field,
                got: name.len(),
                max: self.max_name_bytes,
            }),
            None => Ok(()),
        }
    }

    /// `message` cut to [`Limits::max_error_detail_bytes`] on a character boundary, with
    /// [`TRUNCATED`] appended; `None` when it fits.
    pub(crate) fn truncate_error_detail(&self, message: &str) -> Option<String> {
        if message.len() <= self.max_error_detail_bytes {
            return None;
        }
        let mut end = self.max_error_detail_bytes;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        Some(format!("{}{TRUNCATED}", &message[..end]))
    }
}

/// The type URLs one stream has used, capped at [`Limits::max_types_per_stream`].
#[derive(Debug, Default)]
pub(crate) struct TypeSet(Vec<String>);

impl TypeSet {
    /// Admits `type_url` if the stream already uses it or has room for one more.
    pub(crate) fn admit(&mut self, type_url: &str, max: usize) -> Result<(), Exceeded> {
        if self.0.iter().any(|t| t == type_url) {
            return Ok(());
        }
        if self.0.len() >= max {
            return Err(Exceeded::Types {
                max,
                type_url: type_url.to_string(),
            });
        }
        self.0.push(type_url.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
    use xds_core::type_url;

    use super::*;

    fn small() -> Limits {
        Limits {
            max_types_per_stream: 2,
            max_initial_resource_versions: 2,
            max_name_bytes: 8,
            max_node_bytes: 100,
            max_error_detail_bytes: 5,
            ..Limits::default()
        }
    }

    fn node(metadata_bytes: usize) -> Node {
        let value = Value {
            kind: Some(Kind::StringValue("x".repeat(metadata_bytes))),
        };
        Node {
            id: "n".into(),
            metadata: Some(Struct {
                fields: [("k".to_string(), value)].into(),
            }),
            ..Node::default()
        }
    }

    #[test]
    fn the_whole_node_is_measured() {
        let l = small();
        let mut req = DiscoveryRequest {
            node: Some(node(10)),
            ..DiscoveryRequest::default()
        };
        assert_eq!(l.check(&req), Ok(()));
        req.node.as_mut().unwrap().user_agent_name = "y".repeat(200);
        let err = l.check(&req).unwrap_err();
        assert!(matches!(err, Exceeded::NodeBytes { max: 100, .. }), "{err}");
        assert!(err.to_string().contains("--xds-max-node-bytes"), "{err}");
    }

    #[test]
    fn every_name_field_and_the_type_url_are_measured() {
        let l = small();
        let ok = DeltaDiscoveryRequest {
            resource_names_subscribe: vec!["a".into(), "12345678".into()],
            ..DeltaDiscoveryRequest::default()
        };
        assert_eq!(l.check(&ok), Ok(()));
        let long = "123456789".to_string();
        let cases: [(&str, DeltaDiscoveryRequest); 4] = [
            (
                "resource_names_subscribe",
                DeltaDiscoveryRequest {
                    resource_names_subscribe: vec!["a".into(), long.clone()],
                    ..ok.clone()
                },
            ),
            (
                "resource_names_unsubscribe",
                DeltaDiscoveryRequest {
                    resource_names_unsubscribe: vec![long.clone()],
                    ..ok.clone()
                },
            ),
            (
                "initial_resource_versions",
                DeltaDiscoveryRequest {
                    initial_resource_versions: [(long.clone(), "1".into())].into(),
                    ..ok.clone()
                },
            ),
            (
                "type_url",
                DeltaDiscoveryRequest {
                    type_url: type_url::CLUSTER.into(),
                    ..ok.clone()
                },
            ),
        ];
        for (field, req) in cases {
            let err = l.check(&req).unwrap_err();
            assert!(
                matches!(err, Exceeded::NameBytes { field: f, max: 8, .. } if f == field),
                "{field}: {err}"
            );
            assert!(err.to_string().contains("--xds-max-resource-name-bytes"));
        }
        let sotw = DiscoveryRequest {
            resource_names: vec![long],
            ..DiscoveryRequest::default()
        };
        assert!(matches!(
            l.check(&sotw),
            Err(Exceeded::NameBytes {
                field: "resource_names",
                ..
            })
        ));
    }

    #[test]
    fn initial_resource_versions_are_counted() {
        let l = small();
        let mut req = DeltaDiscoveryRequest {
            initial_resource_versions: [("a".into(), "1".into()), ("b".into(), "1".into())].into(),
            ..DeltaDiscoveryRequest::default()
        };
        assert_eq!(l.check(&req), Ok(()));
        req.initial_resource_versions.insert("c".into(), "1".into());
        assert_eq!(
            l.check(&req),
            Err(Exceeded::InitialVersions { got: 3, max: 2 })
        );
    }

    #[test]
    fn type_urls_are_capped_per_stream_but_repeats_are_free() {
        let mut types = TypeSet::default();
        for t in [type_url::CLUSTER, type_url::LISTENER, type_url::CLUSTER] {
            assert_eq!(types.admit(t, 2), Ok(()));
        }
        let err = types.admit(type_url::ROUTE, 2).unwrap_err();
        assert_eq!(err.label(), "types_per_stream");
        assert!(err.to_string().contains("--xds-max-types-per-stream"));
    }

    #[test]
    fn error_details_are_cut_on_a_char_boundary_and_marked() {
        let l = small();
        assert_eq!(l.truncate_error_detail("short"), None);
        assert_eq!(
            l.truncate_error_detail("abcdefgh").as_deref(),
            Some(format!("abcde{TRUNCATED}").as_str())
        );
        // 'é' is two bytes: bytes 4..6; cutting at 5 would split it.
        assert_eq!(
            l.truncate_error_detail("abcdéfgh").as_deref(),
            Some(format!("abcd{TRUNCATED}").as_str())
        );
    }

    #[test]
    fn tonics_oversized_request_error_names_the_flag() {
        let l = small();
        let tonic = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 8 bytes",
        );
        let e = l.read_error(tonic).unwrap_err();
        assert_eq!(e.label(), "request_bytes");
        let s = tonic::Status::from(e);
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert!(s.message().contains("--xds-max-request-bytes"));
        let other = l.read_error(tonic::Status::cancelled("gone")).unwrap();
        assert_eq!(other.code(), tonic::Code::Cancelled);
    }

    #[test]
    fn codes_follow_the_kind_of_limit() {
        let s = tonic::Status::from(Exceeded::FirstRequest(Duration::from_secs(1)));
        assert_eq!(s.code(), tonic::Code::DeadlineExceeded);
        let s = tonic::Status::from(Exceeded::Streams { max: 1 });
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert!(s.message().contains("--xds-max-streams"));
        for e in [
            Exceeded::Streams { max: 1 },
            Exceeded::FirstRequest(Duration::ZERO),
            Exceeded::NodeBytes { got: 1, max: 0 },
            Exceeded::WriteTimeout(Duration::ZERO),
        ] {
            assert!(LABELS.contains(&e.label()));
        }
    }
}
