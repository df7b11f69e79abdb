//! The Envoy bootstrap (`-c envoy.yaml`), parsed and checked field by field: what the proxy
//! implements becomes a [`Bootstrap`]; anything else is refused at start with the field's path
//! (`static_resources.clusters[0].outlier_detection: ...`), never silently ignored.
//!
//! YAML and JSON are both read into JSON first (YAML through `serde_yaml_ng`), then decoded into
//! the typed structs of `raw.rs`, which deny unknown fields. Static clusters and listeners are
//! Envoy messages: the common xDS cluster is decoded by a typed fast path; anything richer goes
//! through Envoy's descriptor pool, which is decoded only then (it costs tens of megabytes),
//! and is converted by the same functions as xDS resources (`config::*_from_proto`).

mod dynamic;
mod grpc_tls;
mod raw;
mod resources;
mod stats_sink;
#[cfg(test)]
mod tests;

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::Arc,
    time::Duration,
};

use envoy_types::pb::google::protobuf::Any;
use serde_json::Value;

use crate::config::{ClusterConfig, ListenerConfig};

pub use grpc_tls::GrpcTls;
pub use raw::{Locality, parse_duration};
pub use stats_sink::{DEFAULT_FLUSH_INTERVAL, HistogramEmitMode, MetricsSink};

/// Envoy's default `initial_fetch_timeout`.
pub const DEFAULT_INITIAL_FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the bootstrap was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the bootstrap file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the bootstrap is not valid {format}: {message}")]
    Syntax {
        format: &'static str,
        message: String,
    },
    /// A field is wrong or not implemented; `path` is its place in the document.
    #[error("{path}: {reason}")]
    Field { path: String, reason: String },
}

impl Error {
    pub(crate) fn field(path: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Field {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// What the command line may override (Envoy's `--service-node`, `--service-cluster`).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub node_id: Option<String>,
    pub node_cluster: Option<String>,
}

/// The bootstrap as the proxy runs it.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub node: Node,
    /// Where the admin API listens; `None`: no admin API (as Envoy without `admin`).
    pub admin: Option<SocketAddr>,
    /// `None`: static configuration only.
    pub dynamic: Option<Dynamic>,
    pub clusters: Vec<StaticResource<ClusterConfig>>,
    pub listeners: Vec<StaticResource<ListenerConfig>>,
    /// The metrics service sink (`stats_sinks`), if any.
    pub metrics_sink: Option<MetricsSink>,
    /// Static clusters a gRPC client may send to (telemetry: access logs), by name.
    pub grpc_targets: std::collections::BTreeMap<String, Target>,
    /// The document as given (YAML read as JSON), for `/config_dump`.
    pub document: Value,
}

/// The proxy's identity towards the control plane.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub id: String,
    pub cluster: String,
    pub metadata: serde_json::Map<String, Value>,
    pub locality: Option<Locality>,
}

/// A static cluster or listener: its runtime config, and the Envoy message it came from (for
/// `/config_dump`).
#[derive(Debug, Clone)]
pub struct StaticResource<T> {
    pub config: Arc<T>,
    pub resource: Any,
}

/// Where dynamic resources come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Dynamic {
    /// Clusters (and their assignments, over the same channel).
    pub cds: Option<Source>,
    /// Listeners (and their route configurations, over the same channel).
    pub lds: Option<Source>,
}

/// One type's source.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub channel: Channel,
    /// How long the first fetch (and warming) may take before the proxy goes on without it;
    /// `None`: forever (Envoy's `initial_fetch_timeout: 0s`).
    pub initial_fetch_timeout: Option<Duration>,
}

/// A gRPC stream to a management server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Channel {
    /// ADS (one stream for every type) or the type's own service (CDS, EDS, LDS, RDS).
    pub aggregated: bool,
    pub protocol: Protocol,
    /// The static cluster naming the server.
    pub cluster: String,
    pub target: Target,
    /// Send the node on the first request of a stream only.
    pub node_on_first_message_only: bool,
    /// The grpc_service's `initial_metadata`, sent on every stream (e.g. the proxy token).
    pub initial_metadata: Vec<(String, String)>,
}

/// Where the management server is: the first endpoint of its static cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub connect_timeout: Duration,
    /// The cluster's `transport_socket`: TLS to the server (`None`: plaintext).
    pub tls: Option<Arc<GrpcTls>>,
}

/// `api_type`: State-of-the-World (`GRPC`) or incremental (`DELTA_GRPC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Sotw,
    Delta,
}

/// Reads and checks the bootstrap file: `.json` as JSON, anything else as YAML (as Envoy).
pub fn load(path: &Path, overrides: &Overrides) -> Result<Bootstrap, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    let json = path.extension().is_some_and(|e| e == "json");
    parse(&text, json, overrides)
}

/// Parses a bootstrap document (`json`: strict JSON; otherwise YAML, of which JSON is a part).
pub fn parse(text: &str, json: bool, overrides: &Overrides) -> Result<Bootstrap, Error> {
    let document: Value = if json {
        serde_json::from_str(text).map_err(|e| Error::Syntax {
            format: "JSON",
            message: e.to_string(),
        })?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| Error::Syntax {
            format: "YAML",
            message: e.to_string(),
        })?
    };
    from_document(document, overrides)
}

/// Checks a bootstrap already read as JSON.
pub fn from_document(document: Value, overrides: &Overrides) -> Result<Bootstrap, Error> {
    if document.is_null() {
        return Err(Error::field("(document)", "the bootstrap is empty"));
    }
    let raw: raw::Bootstrap = decode(&document, "")?;
    let node = node(raw.node.unwrap_or_default(), overrides);
    let admin = raw.admin.map(|a| admin(&a)).transpose()?;
    let statics = raw.static_resources.unwrap_or_default();
    let clusters = resources::clusters(&statics.clusters)?;
    let listeners = resources::listeners(&statics.listeners)?;
    grpc_tls::only_for_grpc(&clusters, &listeners)?;
    let metrics_sink =
        stats_sink::metrics_sink(&raw.stats_sinks, raw.stats_flush_interval, &clusters)?;
    let grpc_targets = clusters
        .iter()
        .filter_map(|(c, t)| Some((c.config.name.clone(), t.clone()?)))
        .collect();
    let dynamic = match raw.dynamic_resources {
        Some(d) => Some(dynamic::dynamic(d, &clusters)?),
        None => None,
    };
    if dynamic.is_some() && (node.id.is_empty() || node.cluster.is_empty()) {
        return Err(Error::field(
            "node",
            "'id' and 'cluster' are required with dynamic_resources: set them in node or with \
             --service-node and --service-cluster",
        ));
    }
    Ok(Bootstrap {
        node,
        admin,
        dynamic,
        clusters: clusters.into_iter().map(|(r, _)| r).collect(),
        listeners,
        metrics_sink,
        grpc_targets,
        document,
    })
}

/// Decodes `value` into `T`; an error names the field's path under `prefix`. An unknown
/// field is one the proxy does not implement (or a misspelling): the message says so.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    value: &Value,
    prefix: &str,
) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = join(prefix, &e.path().to_string());
        let message = e.inner().to_string();
        match message.strip_prefix("unknown field `") {
            Some(rest) => {
                let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
                let supported = expected
                    .trim_start_matches(", expected one of ")
                    .trim_start_matches(", expected ")
                    .trim_start_matches(", there are no fields");
                let hint = if supported.is_empty() {
                    String::new()
                } else {
                    format!(" (implemented here: {})", supported.replace('`', ""))
                };
                // serde_path_to_error already ends the path with the unknown key.
                let path = if path.ends_with(field) {
                    path
                } else {
                    join(&path, field)
                };
                Error::field(path, format!("not supported by minimal-proxy{hint}"))
            }
            None => Error::field(path, message),
        }
    })
}

/// `a` + `.b` (or `[0]`), leaving out empty parts and serde_path_to_error's `.` for the root.
pub(crate) fn join(prefix: &str, rest: &str) -> String {
    let rest = if rest == "." { "" } else { rest };
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if rest.starts_with('[') => format!("{prefix}{rest}"),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

fn node(raw: raw::Node, overrides: &Overrides) -> Node {
    Node {
        id: overrides.node_id.clone().unwrap_or(raw.id),
        cluster: overrides.node_cluster.clone().unwrap_or(raw.cluster),
        metadata: raw.metadata.unwrap_or_default(),
        locality: raw.locality,
    }
}

fn admin(raw: &raw::Admin) -> Result<SocketAddr, Error> {
    socket_address(&raw.address.socket_address, "admin.address.socket_address")
}

/// A listening address: an IP literal (Envoy does not resolve names for listeners) and a port.
pub(crate) fn socket_address(raw: &raw::SocketAddress, path: &str) -> Result<SocketAddr, Error> {
    if raw.protocol.as_deref().is_some_and(|p| p != "TCP") {
        return Err(Error::field(
            format!("{path}.protocol"),
            "only TCP is supported by minimal-proxy",
        ));
    }
    let ip: IpAddr = raw.address.parse().map_err(|_| {
        Error::field(
            format!("{path}.address"),
            format!(
                "'{}' is not an IP address (names are not resolved here)",
                raw.address
            ),
        )
    })?;
    let port = u16::try_from(raw.port_value).map_err(|_| {
        Error::field(
            format!("{path}.port_value"),
            format!("{} is not a port (0..=65535)", raw.port_value),
        )
    })?;
    Ok(SocketAddr::new(ip, port))
}
