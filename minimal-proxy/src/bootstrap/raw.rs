//! The bootstrap as written: serde structs mirroring the part of Envoy's `Bootstrap` message the
//! proxy implements. Every struct denies unknown fields, so a field Envoy knows and the proxy
//! does not (`layered_runtime`, `stats_sinks`, an admin `access_log`, ...) fails the parse
//! with its path, instead of being silently ignored.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    #[serde(default)]
    pub node: Option<Node>,
    #[serde(default)]
    pub admin: Option<Admin>,
    #[serde(default)]
    pub dynamic_resources: Option<DynamicResources>,
    #[serde(default)]
    pub static_resources: Option<StaticResources>,
    /// Only `envoy.stat_sinks.metrics_service` (see `stats_sink.rs`).
    #[serde(default)]
    pub stats_sinks: Vec<StatsSink>,
    #[serde(default, deserialize_with = "duration")]
    pub stats_flush_interval: Option<Duration>,
}

/// One entry of `stats_sinks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsSink {
    #[serde(default)]
    pub name: String,
    pub typed_config: MetricsServiceConfig,
}

/// `envoy.config.metrics.v3.MetricsServiceConfig`, the metrics service sink's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsServiceConfig {
    #[serde(rename = "@type")]
    pub type_url: String,
    pub grpc_service: GrpcService,
    #[serde(default)]
    pub transport_api_version: Option<String>,
    #[serde(default)]
    pub report_counters_as_deltas: bool,
    #[serde(default)]
    pub emit_tags_as_labels: bool,
    #[serde(default)]
    pub histogram_emit_mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub cluster: String,
    /// Any JSON object; sent to the control plane as a protobuf `Struct`.
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub locality: Option<Locality>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locality {
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub zone: String,
    #[serde(default)]
    pub sub_zone: String,
}

/// Only the address: the admin access log, profile path and socket options are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub address: Address,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub socket_address: SocketAddress,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketAddress {
    pub address: String,
    #[serde(default)]
    pub port_value: u32,
    /// Only `TCP` (the default) is accepted.
    #[serde(default)]
    pub protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicResources {
    #[serde(default)]
    pub ads_config: Option<ApiConfigSource>,
    #[serde(default)]
    pub cds_config: Option<ConfigSource>,
    #[serde(default)]
    pub lds_config: Option<ConfigSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfigSource {
    pub api_type: String,
    #[serde(default)]
    pub transport_api_version: Option<String>,
    #[serde(default)]
    pub grpc_services: Vec<GrpcService>,
    #[serde(default)]
    pub set_node_on_first_message_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcService {
    pub envoy_grpc: EnvoyGrpc,
    /// Sent as gRPC metadata on every call (e.g. `authorization: Bearer <proxy token>`).
    #[serde(default)]
    pub initial_metadata: Vec<MetadataEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataEntry {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvoyGrpc {
    pub cluster_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSource {
    /// `ads: {}`: fetched over the ADS stream of `ads_config`.
    #[serde(default)]
    pub ads: Option<Empty>,
    #[serde(default)]
    pub api_config_source: Option<ApiConfigSource>,
    #[serde(default)]
    pub resource_api_version: Option<String>,
    /// Absent: Envoy's default of 15 s; zero: wait forever.
    #[serde(default, deserialize_with = "duration")]
    pub initial_fetch_timeout: Option<Duration>,
}

/// `{}`: a message with no fields (`AggregatedConfigSource`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticResources {
    /// Kept as JSON: the xDS cluster's common shape is decoded by [`XdsCluster`]; anything
    /// else goes through Envoy's descriptors (see `resources.rs`).
    #[serde(default)]
    pub clusters: Vec<Value>,
    #[serde(default)]
    pub listeners: Vec<Value>,
}

// === the common static cluster, decoded without Envoy's descriptors ===

/// The static cluster every xds-server bootstrap carries (the xDS server itself): `STATIC` or
/// `STRICT_DNS`, a load assignment, optionally HTTP/2. A cluster with anything more is decoded
/// through the descriptor pool instead.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XdsCluster {
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub connect_timeout: Option<Duration>,
    #[serde(default)]
    pub dns_lookup_family: Option<String>,
    #[serde(default)]
    pub typed_extension_protocol_options: Option<ProtocolOptionsMap>,
    pub load_assignment: XdsLoadAssignment,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolOptionsMap {
    #[serde(rename = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions")]
    pub http: HttpProtocolOptions,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProtocolOptions {
    #[serde(rename = "@type")]
    pub type_url: String,
    #[expect(
        dead_code,
        reason = "required for the shape; HTTP/2 is its only content"
    )]
    pub explicit_http_config: ExplicitHttpConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplicitHttpConfig {
    #[expect(
        dead_code,
        reason = "required for the shape; its content must be empty"
    )]
    pub http2_protocol_options: Empty,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XdsLoadAssignment {
    #[serde(default)]
    pub cluster_name: String,
    #[serde(default)]
    pub endpoints: Vec<XdsLocality>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XdsLocality {
    #[serde(default)]
    pub lb_endpoints: Vec<XdsLbEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XdsLbEndpoint {
    pub endpoint: XdsEndpoint,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XdsEndpoint {
    pub address: Address,
}

// === proto3 JSON scalars ===

/// A proto3 JSON `Duration`: `"1s"`, `"0.250s"`, `"-1.5s"` (negative durations are refused
/// by the caller where they make no sense).
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Parses the proto3 JSON form of a `Duration` (seconds with up to nine decimals, then `s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration: write seconds with an 's', e.g. \"1.5s\"");
    let number = text.strip_suffix('s').ok_or_else(bad)?;
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: u64 = whole.parse().map_err(|_| bad())?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    Ok(Duration::new(secs, nanos))
}
