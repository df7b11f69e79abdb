//! The proxy's runtime configuration: plain Rust types, free of protobuf.
//!
//! Envoy resources are converted into these at the edge (`config/*.rs`, one file per xDS
//! type); a field or value the proxy does not implement is refused there with a [`Rejection`]
//! naming the resource and the field, which becomes the NACK's `error_detail`. Everything past
//! this module (listeners, HTTP, upstreams) sees only these types, already validated.

mod check;
mod cluster;
mod endpoint;
mod listener;
mod rbac;
mod route;
#[cfg(test)]
mod tests;
mod tls;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

pub use cluster::cluster_from_proto;
pub use endpoint::load_assignment_from_proto;
pub use listener::listener_from_proto;
pub use rbac::{NetworkRbac, RbacAction, RbacFilter, RbacMatcher, RbacPolicy, RbacRules};
pub use route::route_configuration_from_proto;
pub use tls::{
    DownstreamTls, PrivateKey, SecretConfig, UpstreamTls, Validation, choose_chain,
    secret_from_proto,
};

/// Why a resource was refused: which resource, which field (a proto field path such as
/// `filter_chains[0].filters[0].typed_config.http_filters[1]`), and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{resource}: {field}: {reason}")]
pub struct Rejection {
    /// The resource's name (`cluster 'web'`, `listener 'ingress'`, …).
    pub resource: String,
    /// Where in the resource.
    pub field: String,
    /// What is wrong, and when useful what is supported instead.
    pub reason: String,
}

// === clusters ===

/// One upstream cluster (CDS, or a static cluster of the bootstrap).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub name: String,
    /// Where its endpoints come from.
    pub discovery: Discovery,
    /// Envoy's default is 5 s.
    pub connect_timeout: Duration,
    pub lb_policy: LbPolicy,
    /// How the proxy speaks HTTP to this cluster's endpoints.
    pub protocol: UpstreamProtocol,
    pub circuit_breakers: CircuitBreakers,
    pub outlier_detection: Option<OutlierDetection>,
    pub health_checks: Vec<HealthCheck>,
    /// Label subsets that routes may select (`lb_subset_config`).
    pub subsets: Option<SubsetConfig>,
    /// `common_lb_config.locality_weighted_lb_config`: locality weights apply only then;
    /// otherwise Envoy ignores them and so does the proxy.
    pub locality_weighted: bool,
    /// `transport_socket` TLS (`UpstreamTlsContext`); `None`: plaintext.
    pub tls: Option<UpstreamTls>,
}

/// Where a cluster's endpoints come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Discovery {
    /// EDS: the assignment named `service_name` (the cluster's own name when empty in Envoy).
    Eds { service_name: String },
    /// STATIC: the endpoints are in the cluster itself.
    Static(LoadAssignment),
    /// STRICT_DNS: each endpoint's host name is resolved, and re-resolved at `refresh`.
    StrictDns {
        assignment: LoadAssignment,
        refresh: Duration,
        /// Which address family a name resolves to (Envoy's `dns_lookup_family`).
        family: DnsFamily,
    },
}

/// Envoy's `dns_lookup_family` values that the proxy implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsFamily {
    /// Envoy's default: IPv6 addresses first, IPv4 when there are none.
    Auto,
    /// IPv4 addresses only.
    V4Only,
    /// IPv4 addresses first, IPv6 when there are none.
    V4Preferred,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LbPolicy {
    RoundRobin,
    /// Power of `choice_count` choices (Envoy's default 2).
    LeastRequest {
        choice_count: u32,
    },
    Random,
    RingHash {
        min_ring_size: u64,
        max_ring_size: u64,
    },
    Maglev {
        table_size: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    /// HTTP/2 with prior knowledge (h2c), as `explicit_http_config.http2_protocol_options`.
    Http2,
}

/// Envoy's circuit-breaker thresholds (default priority); defaults 1024/1024/1024/3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreakers {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_requests: u32,
    pub max_retries: u32,
}

impl Default for CircuitBreakers {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
        }
    }
}

/// Consecutive-5xx ejection (the only detector implemented; others are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierDetection {
    /// Envoy's default 5.
    pub consecutive_5xx: u32,
    /// How often ejections are reconsidered; Envoy's default 10 s.
    pub interval: Duration,
    /// Ejected for this times the number of ejections so far; Envoy's default 30 s.
    pub base_ejection_time: Duration,
    /// Envoy's default 10 %.
    pub max_ejection_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub timeout: Duration,
    pub interval: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// The interval while the cluster has carried no traffic yet; Envoy's default 60 s.
    pub no_traffic_interval: Duration,
    pub kind: HealthCheckKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheckKind {
    /// GET `path`; healthy on 200 (Envoy's default expected status range `[200, 201)`).
    Http {
        path: String,
        host: String,
        http2: bool,
    },
    /// Connect and succeed.
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsetConfig {
    /// What a request whose metadata matches no selector gets.
    pub fallback: SubsetFallback,
    pub selectors: Vec<SubsetSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsetSelector {
    /// Sorted label keys.
    pub keys: Vec<String>,
    /// What a request for this key set gets when no endpoint carries the values.
    pub fallback: SubsetFallback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubsetFallback {
    /// No endpoint: 503.
    NoFallback,
    /// Any endpoint of the cluster.
    AnyEndpoint,
}

// === endpoints ===

/// A cluster's endpoints (EDS `ClusterLoadAssignment`, or a static cluster's).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadAssignment {
    pub cluster_name: String,
    pub localities: Vec<LocalityEndpoints>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LocalityEndpoints {
    pub zone: String,
    /// Locality weight (`load_balancing_weight`); used only by a cluster with
    /// [`ClusterConfig::locality_weighted`], where a locality without one takes no load (unless
    /// no locality has one: then the hosts are balanced alone, as in Envoy).
    pub weight: Option<u32>,
    /// Priority 0 only is implemented; others are refused at conversion.
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Resolved address, or a host name (`STRICT_DNS` clusters) with its port.
    pub address: EndpointAddress,
    /// 1 by default.
    pub weight: u32,
    pub health: EndpointHealth,
    /// `filter_metadata["envoy.lb"]` string labels, for subsets.
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EndpointAddress {
    Socket(SocketAddr),
    Dns { host: String, port: u16 },
}

/// The health the control plane reports; active health checks add their own view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointHealth {
    /// HEALTHY or UNKNOWN: eligible.
    Healthy,
    /// UNHEALTHY, TIMEOUT: no traffic.
    Unhealthy,
    /// DRAINING: no new requests.
    Draining,
    /// DEGRADED: used only when nothing healthy is left.
    Degraded,
}

// === listeners ===

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    /// In order; a connection is served by the first whose match takes it (at least one).
    pub chains: Vec<FilterChainConfig>,
    /// `envoy.filters.listener.tls_inspector`: the first bytes are peeked to tell TLS from
    /// plaintext, for chains matching on `transport_protocol`.
    pub tls_inspector: bool,
}

impl ListenerConfig {
    /// A listener with one plaintext chain matching every connection (no inspector).
    pub fn single(name: &str, address: SocketAddr, filter: ListenerFilter) -> ListenerConfig {
        ListenerConfig {
            name: name.to_string(),
            address,
            chains: vec![FilterChainConfig {
                name: String::new(),
                transport: TransportProtocol::Any,
                tls: None,
                filter,
            }],
            tls_inspector: false,
        }
    }
}

/// One filter chain: which connections it takes, their TLS, and their network filter.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterChainConfig {
    /// Envoy's display name (`inbound|web|mtls`); may be empty.
    pub name: String,
    /// `filter_chain_match.transport_protocol`.
    pub transport: TransportProtocol,
    /// `transport_socket` TLS (`DownstreamTlsContext`); `None`: plaintext.
    pub tls: Option<DownstreamTls>,
    pub filter: ListenerFilter,
}

/// `filter_chain_match.transport_protocol`: what the TLS inspector saw (`raw_buffer` when it
/// saw no ClientHello, or when there is no inspector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportProtocol {
    /// Unset: any connection.
    Any,
    /// `tls`: a TLS ClientHello.
    Tls,
    /// `raw_buffer`: anything else.
    RawBuffer,
}

/// The one network filter of a filter chain.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenerFilter {
    Http(HttpConnectionManager),
    Tcp(TcpProxy),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpConnectionManager {
    /// Stats prefix (`envoy_http_conn_manager_prefix`).
    pub stat_prefix: String,
    pub codec: Codec,
    pub routes: RouteSource,
    pub access_log: Vec<AccessLog>,
    /// `envoy.access_loggers.http_grpc` entries of `access_log`.
    pub grpc_access_log: Vec<GrpcAccessLog>,
    /// Envoy's `stream_idle_timeout`, default 5 min; `None` disables it.
    pub stream_idle_timeout: Option<Duration>,
    /// `envoy.filters.http.rbac` filters before the router, in order: the first denial
    /// answers 403.
    pub rbac: Vec<RbacFilter>,
    /// What happens to `x-forwarded-client-cert`.
    pub forward_client_cert: ForwardClientCert,
}

/// Envoy's `forward_client_cert_details` (with `set_current_client_cert_details`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardClientCert {
    /// SANITIZE, Envoy's default: the header is removed from every request.
    #[default]
    Sanitize,
    /// SANITIZE_SET: removed, then on an mTLS connection set to this proxy's certificate
    /// (`By`), the client certificate's hash and, with `uri`, its URI SAN.
    SanitizeSet { uri: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// HTTP/1.1, or HTTP/2 with prior knowledge (`codec_type: AUTO`).
    Auto,
    Http1,
    Http2,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteSource {
    /// RDS: the route configuration of this name, fetched over xDS.
    Rds(String),
    /// `route_config` inside the connection manager.
    Inline(Arc<RouteConfig>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpProxy {
    pub stat_prefix: String,
    pub cluster: String,
    /// Envoy's default 1 h; `None` disables it.
    pub idle_timeout: Option<Duration>,
    pub access_log: Vec<AccessLog>,
    /// `envoy.filters.network.rbac` filters before it, in order: the first denial closes the
    /// connection before anything is sent upstream.
    pub rbac: Vec<NetworkRbac>,
}

/// Envoy's gRPC HTTP access logger (`envoy.access_loggers.http_grpc`): entries streamed to
/// an `AccessLogService` in batches.
#[derive(Debug, Clone, PartialEq)]
pub struct GrpcAccessLog {
    /// `common_config.log_name`: sent in the stream's identifier.
    pub log_name: String,
    /// The static cluster of `grpc_service.envoy_grpc.cluster_name`.
    pub cluster: String,
    /// `grpc_service.initial_metadata`, sent on the stream (e.g. the credential a tap's
    /// access log carries when the control plane requires tokens).
    pub initial_metadata: Vec<(String, String)>,
    /// How long entries wait for a batch (Envoy's default 1 s).
    pub buffer_flush_interval: Duration,
    /// A batch is sent once its entries reach this size (Envoy's default 16 KiB).
    pub buffer_size_bytes: u32,
    /// Which requests are logged; `None`: all.
    pub filter: Option<LogFilter>,
}

/// Envoy's access log filters, as far as minimal-proxy implements them.
#[derive(Debug, Clone, PartialEq)]
pub enum LogFilter {
    /// `status_code_filter`: the response code (0 when none) compared to a value.
    Status(Comparison),
    /// `duration_filter`: the request's duration in milliseconds compared to a value.
    Duration(Comparison),
    /// `header_filter`: a request header matcher, as in routes.
    Header(HeaderMatch),
    /// `response_flag_filter`: any of these flags set (any flag when empty).
    ResponseFlags(Vec<String>),
    And(Vec<LogFilter>),
    Or(Vec<LogFilter>),
}

/// `ComparisonFilter`: `op` against `default_value` (minimal-proxy has no runtime, so the
/// runtime key never overrides it, as in an Envoy with no runtime layer setting it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    pub op: CompareOp,
    pub value: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ge,
    Le,
    Ne,
}

/// A file access log of JSON lines (`envoy.access_loggers.file` with `json_format`, or the
/// proxy's default JSON record when no format is given).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLog {
    /// A path, or `/dev/stdout` / `/dev/stderr`.
    pub path: String,
    /// Field name → Envoy command operator (`%RESPONSE_CODE%`, `%REQ(:PATH)%`, …) or literal.
    pub json_format: Option<BTreeMap<String, String>>,
}

// === routes ===

#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHost {
    pub name: String,
    /// Envoy's domain forms: exact, `*.suffix`, `prefix*`, or `*`.
    pub domains: Vec<String>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Envoy's `Route.name`: what `%ROUTE_NAME%` prints; empty when the route has none.
    pub name: String,
    /// Envoy's `Route.stat_prefix`: the route's stats are `vhost.<vhost>.route.<prefix>.*`;
    /// empty: no route stats.
    pub stat_prefix: String,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
}

#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// All must match (`:method` among them, as Envoy matches methods).
    pub headers: Vec<HeaderMatch>,
    /// Envoy's default true.
    pub case_sensitive: bool,
}

impl PartialEq for RouteMatch {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
            && self.headers == other.headers
            && self.case_sensitive == other.case_sensitive
    }
}

#[derive(Debug, Clone)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// Anchored: the whole path (without the query) must match, as Envoy's `safe_regex`.
    Regex(regex::Regex),
}

impl PartialEq for PathMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PathMatch::Prefix(a), PathMatch::Prefix(b)) => a == b,
            (PathMatch::Exact(a), PathMatch::Exact(b)) => a == b,
            (PathMatch::Regex(a), PathMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatch {
    /// Lower-case; pseudo-headers (`:method`, `:authority`, `:path`) included.
    pub name: String,
    pub kind: HeaderMatchKind,
    pub invert: bool,
}

#[derive(Debug, Clone)]
pub enum HeaderMatchKind {
    Exact(String),
    /// Anchored, as Envoy's `safe_regex`.
    Regex(regex::Regex),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// `true`: the header is there; `false`: it is absent.
    Present(bool),
}

impl PartialEq for HeaderMatchKind {
    fn eq(&self, other: &Self) -> bool {
        use HeaderMatchKind::*;
        match (self, other) {
            (Exact(a), Exact(b))
            | (Prefix(a), Prefix(b))
            | (Suffix(a), Suffix(b))
            | (Contains(a), Contains(b)) => a == b,
            (Regex(a), Regex(b)) => a.as_str() == b.as_str(),
            (Present(a), Present(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    Forward(Forward),
    /// `direct_response`: answered by the proxy.
    Direct {
        status: u16,
        body: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    pub target: ClusterTarget,
    /// Replaces the matched prefix of the path.
    pub prefix_rewrite: Option<String>,
    /// Envoy's default 15 s; `None` (a zero duration in Envoy) disables it.
    pub timeout: Option<Duration>,
    pub retry: Option<RetryPolicy>,
    pub hash_policy: Vec<HashPolicy>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClusterTarget {
    Cluster(String),
    Weighted(Vec<WeightedCluster>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightedCluster {
    pub name: String,
    pub weight: u32,
    /// Subset selection (`metadata_match.filter_metadata["envoy.lb"]`), empty for none.
    pub metadata_match: BTreeMap<String, String>,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub retry_on: RetryOn,
    /// Envoy's default 1.
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    pub retriable_status_codes: Vec<u16>,
    /// Envoy's defaults 25 ms and ten times the base.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

/// The retry conditions implemented (`retry_on` values; others are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryOn {
    /// `5xx`: any 5xx, a reset or a connect failure.
    pub server_error: bool,
    /// `gateway-error`: 502, 503, 504.
    pub gateway_error: bool,
    pub connect_failure: bool,
    /// `reset`: the upstream reset or closed the stream before responding (also timeouts).
    pub reset: bool,
    /// `retriable-status-codes`: the codes in [`RetryPolicy::retriable_status_codes`].
    pub retriable_status_codes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashPolicy {
    pub kind: HashPolicyKind,
    /// Stop at this policy when it produced a hash.
    pub terminal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashPolicyKind {
    Header(String),
    Cookie(String),
    SourceIp,
}

/// Headers removed, then set (replacing any value) or appended: Envoy's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderMutation {
    /// `(name, value, append)`; `append == false` replaces the value.
    pub add: Vec<(http::HeaderName, http::HeaderValue, bool)>,
    pub remove: Vec<http::HeaderName>,
}
