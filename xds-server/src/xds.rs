//! The xDS server: one task per gRPC stream, driven by pure state machines.
//!
//! - [`sotw`] and [`delta`]: the protocol state machines (request or new resources in,
//!   responses and status feedback out), unit-tested without tonic.
//! - [`cache`]: resources per proxy group: translated once per (selection, revision) and
//!   shared by every stream in the group.
//! - `warming`: make-before-break for new clusters, shared by both state machines.
//! - `stream`: the glue running one state machine against one gRPC stream.
//! - [`server`]: the tonic services (ADS, CDS, EDS, LDS, RDS; SotW and delta) and
//!   [`server::serve`], the one place the gRPC server and its transport settings are built.
//! - [`limits`]: bounds on what any client of the xDS port can make the server hold or do.
//! - [`verdicts`]: last-known-good: what each group accepted and rejected, applied to what
//!   the group is sent.
//! - [`embedded`]: the xDS server alone in this process, for tests and benchmarks.
//! - [`tls`]: TLS on the xDS port (`--xds-tls`).

pub mod cache;
pub mod delta;
pub mod embedded;
#[cfg(test)]
mod fixtures;
pub mod limits;
pub mod server;
pub mod sotw;
mod stream;
pub mod tls;
mod type_map;
pub mod verdicts;
mod warming;
pub mod wire;

pub use stream::{Context, streams_ended};
pub use warming::Wait;

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;

use xds_core::{TypeUrl, node::struct_to_json};

use crate::translate::{Encoded, NodeInfo};

/// What a state machine tells the rest of the server besides responses: it feeds the proxy
/// status and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Feedback {
    /// A response went out with `version` holding `count` resources.
    Sent {
        type_url: String,
        version: String,
        count: usize,
    },
    /// The proxy accepted `version`.
    Ack { type_url: String, version: String },
    /// The proxy rejected what we sent; `message` is its `error_detail`.
    Nack { type_url: String, message: String },
    /// A reconnecting proxy already holds `version` (delta's `initial_resource_versions`), so
    /// nothing needed sending: it runs what we would send.
    Resumed { type_url: String, version: String },
    /// The proxy subscribed to `asked` names of one type, more than [`MAX_NAMES`]: only the
    /// first are served. Kept in its status (the stream stays up: ending it would only make
    /// the proxy reconnect and ask again, in a loop).
    Capped { type_url: String, asked: usize },
    /// What the proxy said of the resources of the response it answered (SotW: all it holds
    /// of the type; delta: what that response updated): `rejected` holds its message. Feeds
    /// last-known-good.
    Verdict {
        type_url: String,
        items: Arc<[Arc<Encoded>]>,
        rejected: Option<String>,
    },
}

/// What one event produced in a state machine: responses to send, and feedback for status
/// and metrics.
#[derive(Debug)]
pub struct Step<R> {
    pub responses: Vec<R>,
    pub feedback: Vec<Feedback>,
}

impl<R> Default for Step<R> {
    fn default() -> Self {
        Self {
            responses: Vec::new(),
            feedback: Vec::new(),
        }
    }
}

/// Why a stream is closed with an error status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the first request of a stream must carry the node (identity of the proxy)")]
    MissingNode,
    #[error("type URL '{0}' is malformed: expected type.googleapis.com/<message name>")]
    BadTypeUrl(String),
    #[error("this service serves {expected} only, not '{got}'")]
    WrongType { expected: TypeUrl, got: String },
}

/// Per stream and type, the most resource names a proxy may subscribe to: far above any real
/// proxy, and a bound on what an unauthenticated client can make the server keep.
pub const MAX_NAMES: usize = 10_000;

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

/// Checks a request's type URL; an empty one on a per-type service means that service's type.
pub(crate) fn resolve_type_url(got: &str, only: Option<&TypeUrl>) -> Result<TypeUrl, Error> {
    match (got, only) {
        ("", Some(t)) => Ok(t.clone()),
        (got, Some(t)) if got != t.as_str() => Err(Error::WrongType {
            expected: t.clone(),
            got: got.to_string(),
        }),
        (got, _) => {
            let name = got.strip_prefix("type.googleapis.com/").unwrap_or_default();
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
            if ok {
                Ok(TypeUrl::from(got))
            } else {
                Err(Error::BadTypeUrl(got.to_string()))
            }
        }
    }
}

/// The selector-relevant parts of an Envoy node: id, cluster and string metadata fields.
pub(crate) fn node_info(node: &Node) -> NodeInfo {
    let metadata = match node_metadata(node) {
        serde_json::Value::Object(fields) => fields
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        _ => Default::default(),
    };
    NodeInfo {
        id: node.id.clone(),
        cluster: node.cluster.clone(),
        metadata,
    }
}

/// The node's metadata as plain JSON (for the status API; selectors use its string fields).
pub(crate) fn node_metadata(node: &Node) -> serde_json::Value {
    node.metadata
        .as_ref()
        .map_or_else(|| serde_json::json!({}), struct_to_json)
}

/// A fresh nonce per response on a stream.
#[derive(Debug, Default)]
pub(crate) struct Nonces(u64);

impl Nonces {
    pub(crate) fn next(&mut self) -> String {
        self.0 += 1;
        self.0.to_string()
    }
}
