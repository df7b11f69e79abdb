//! `GET /api/v1/bootstrap`: a ready Envoy bootstrap pointing at this server's xDS port.
//!
//! The body is JSON, which is also YAML (JSON is a subset of YAML 1.2): quoting is then
//! serde_json's, never hand-rolled, and the same text works as `envoy.yaml` or `envoy.json`.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, Uri, header, uri::Authority},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{ApiError, AppState};

/// The `Content-Type` of the bootstrap.
pub const CONTENT_TYPE: &str = "application/yaml";

const DEFAULT_ADMIN_PORT: u16 = 9901;
const MAX_ID_LEN: usize = 256;
const MAX_METADATA: usize = 64;
const MAX_METADATA_VALUE_LEN: usize = 1024;
/// How often the proxy sends its stats to the server unless told otherwise: short enough for
/// a 10 s window to hold ten reports.
const DEFAULT_FLUSH_SECONDS: u64 = 1;
const MAX_FLUSH_SECONDS: u64 = 60;

/// What the query asked for, validated.
#[derive(Debug)]
struct Params {
    node_id: String,
    cluster: String,
    delta: bool,
    /// Aggregated (ADS, the default) or separate CDS/LDS/EDS/RDS streams.
    ads: bool,
    admin_port: u16,
    xds_host: Option<String>,
    metadata: Map<String, Value>,
    /// Whether the proxy streams its stats to the server (golden metrics).
    stats_sink: bool,
    /// Seconds between two stats reports.
    flush_seconds: u64,
    /// `token=issue`: mint a proxy token for this node and put it in the bootstrap.
    issue_token: bool,
}

/// `?node_id=&cluster=&delta=true|false&ads=true|false&admin_port=&xds_host=&metadata.<key>=<value>`
/// `&stats_sink=true|false&stats_flush_interval=<N>s`.
/// With `&token=issue` (admin only) a new proxy token for the node is minted and sent in the
/// `initial_metadata` of every grpc_service pointing at this server; its id is in the
/// `X-Proxy-Token-Id` header.
pub async fn bootstrap_get(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    uri: Uri,
    headers: HeaderMap,
    role: Option<axum::Extension<super::auth::Role>>,
) -> Result<Response, ApiError> {
    let params = parse(query)?;
    let issued = if params.issue_token {
        super::auth::require_admin(role.as_deref())?;
        let new = super::proxy_tokens::NewProxyToken {
            node_id: params.node_id.clone(),
            node_cluster: params.cluster.clone(),
            description: "issued with a bootstrap".to_string(),
        };
        Some(super::proxy_tokens::issue(&state, new).await?)
    } else {
        None
    };
    let host = match params.xds_host.clone() {
        Some(host) => host,
        None if state.xds_addr.ip().is_unspecified() => {
            request_host(&uri, &headers).unwrap_or_else(|| "127.0.0.1".to_string())
        }
        None => state.xds_addr.ip().to_string(),
    };
    let mut bootstrap = render(&params, &host, state.xds_addr);
    if let Some(ca) = &state.xds_tls_ca {
        with_tls(&mut bootstrap, &host, ca);
    }
    if let Some(issued) = &issued {
        with_token(&mut bootstrap, &issued.token);
    }
    // A `Value` always serialises.
    let mut text = serde_json::to_string_pretty(&bootstrap).unwrap_or_default();
    text.push('\n');
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        text,
    )
        .into_response();
    if let Some(id) = issued.and_then(|i| HeaderValue::from_str(&i.view.id).ok()) {
        response.headers_mut().insert(TOKEN_ID_HEADER, id);
    }
    Ok(response)
}

/// The header naming the token a `token=issue` bootstrap carries (to list or revoke it).
pub const TOKEN_ID_HEADER: &str = "x-proxy-token-id";

/// Puts `authorization: Bearer <secret>` into the `initial_metadata` of every grpc_service
/// the bootstrap points at this server: xDS (ADS or the per-type sources) and the stats sink.
fn with_token(bootstrap: &mut Value, secret: &str) {
    let metadata = json!([{ "key": "authorization", "value": format!("Bearer {secret}") }]);
    for source in [
        "/dynamic_resources/ads_config/grpc_services",
        "/dynamic_resources/cds_config/api_config_source/grpc_services",
        "/dynamic_resources/lds_config/api_config_source/grpc_services",
    ] {
        if let Some(services) = bootstrap.pointer_mut(source).and_then(Value::as_array_mut) {
            for service in services {
                service["initial_metadata"] = metadata.clone();
            }
        }
    }
    if let Some(sinks) = bootstrap
        .get_mut("stats_sinks")
        .and_then(Value::as_array_mut)
    {
        for sink in sinks {
            if let Some(service) = sink.pointer_mut("/typed_config/grpc_service") {
                service["initial_metadata"] = metadata.clone();
            }
        }
    }
}

/// With TLS on the xDS port: the xDS cluster connects over TLS, trusting `ca_pem` (public:
/// the CA certificates, inline) and checking the server's certificate names `host` (a DNS
/// SAN, or an IP SAN for an IP literal, which is then not sent as SNI).
fn with_tls(bootstrap: &mut Value, host: &str, ca_pem: &str) {
    let ip = host.parse::<IpAddr>().is_ok();
    let san_type = if ip { "IP_ADDRESS" } else { "DNS" };
    let mut context = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "validation_context": {
                "trusted_ca": { "inline_string": ca_pem },
                "match_typed_subject_alt_names": [
                    { "san_type": san_type, "matcher": { "exact": host } },
                ],
            },
        },
    });
    if !ip {
        context["sni"] = host.into();
    }
    let socket = json!({ "name": "envoy.transport_sockets.tls", "typed_config": context });
    if let Some(clusters) = bootstrap
        .pointer_mut("/static_resources/clusters")
        .and_then(Value::as_array_mut)
    {
        for cluster in clusters {
            cluster["transport_socket"] = socket.clone();
        }
    }
}

fn parse(query: Vec<(String, String)>) -> Result<Params, ApiError> {
    let mut node_id = None;
    let mut cluster = None;
    let mut delta = None;
    let mut ads = None;
    let mut admin_port = None;
    let mut xds_host = None;
    let mut stats_sink = None;
    let mut flush_seconds = None;
    let mut issue_token = None;
    let mut metadata = Map::new();
    for (key, value) in query {
        let seen = match key.as_str() {
            "node_id" => node_id.replace(text("node_id", value)?).is_some(),
            "cluster" => cluster.replace(text("cluster", value)?).is_some(),
            "delta" => delta.replace(boolean("delta", &value)?).is_some(),
            "ads" => ads.replace(boolean("ads", &value)?).is_some(),
            "admin_port" => admin_port
                .replace(
                    value
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| {
                            bad("admin_port", format!("must be 1..=65535, got '{value}'"))
                        })?,
                )
                .is_some(),
            "xds_host" => xds_host.replace(host("xds_host", value)?).is_some(),
            "stats_sink" => stats_sink.replace(boolean("stats_sink", &value)?).is_some(),
            "stats_flush_interval" => flush_seconds.replace(flush_interval(&value)?).is_some(),
            "token" if value == "issue" => issue_token.replace(true).is_some(),
            "token" => {
                return Err(bad(
                    "token",
                    format!("must be 'issue' (mint a proxy token for this node), got '{value}'"),
                ));
            }
            other => match other.strip_prefix("metadata.") {
                Some(k) => {
                    let field = format!("metadata.{k}");
                    if k.is_empty() || k.chars().count() > 128 || k.chars().any(char::is_control) {
                        return Err(bad(
                            &field,
                            "keys must be 1..=128 characters, no control characters",
                        ));
                    }
                    if value.len() > MAX_METADATA_VALUE_LEN || value.chars().any(char::is_control) {
                        return Err(bad(
                            &field,
                            format!(
                                "values must be at most {MAX_METADATA_VALUE_LEN} bytes, no control characters"
                            ),
                        ));
                    }
                    metadata
                        .insert(k.to_string(), Value::String(value))
                        .is_some()
                }
                None => {
                    return Err(ApiError::invalid_query(format!(
                        "unknown query parameter '{other}'; use node_id, cluster, delta, ads, admin_port, xds_host, stats_sink, stats_flush_interval, token and metadata.<key>"
                    )));
                }
            },
        };
        if seen {
            return Err(bad(&key, "given more than once"));
        }
    }
    if metadata.len() > MAX_METADATA {
        return Err(ApiError::invalid_query(format!(
            "at most {MAX_METADATA} metadata.<key> parameters"
        )));
    }
    let admin_port = admin_port.unwrap_or(DEFAULT_ADMIN_PORT);
    // Where the proxy serves `/stats/prometheus`: its admin address, for the Prometheus
    // service discovery (`/api/v1/prometheus/targets`), unless the caller said otherwise.
    if !metadata.contains_key(super::prometheus::STATS_ADDRESS) {
        metadata.insert(
            super::prometheus::STATS_ADDRESS.to_string(),
            Value::String(format!("127.0.0.1:{admin_port}")),
        );
    }
    Ok(Params {
        node_id: node_id.ok_or_else(|| {
            bad(
                "node_id",
                "is required: the id the Envoy proxy will present (listener selectors match on it)",
            )
        })?,
        cluster: cluster.unwrap_or_else(|| "default".to_string()),
        delta: delta.unwrap_or(false),
        ads: ads.unwrap_or(true),
        admin_port,
        xds_host,
        metadata,
        stats_sink: stats_sink.unwrap_or(true),
        flush_seconds: flush_seconds.unwrap_or(DEFAULT_FLUSH_SECONDS),
        issue_token: issue_token.unwrap_or(false),
    })
}

fn boolean(field: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(field, format!("must be true or false, got '{value}'"))),
    }
}

/// `<N>s`, 1..=60 whole seconds.
fn flush_interval(value: &str) -> Result<u64, ApiError> {
    value
        .strip_suffix('s')
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| (1..=MAX_FLUSH_SECONDS).contains(n))
        .ok_or_else(|| {
            bad(
                "stats_flush_interval",
                format!("must be whole seconds from 1s to {MAX_FLUSH_SECONDS}s, got '{value}'"),
            )
        })
}

fn bad(field: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_query(format!("{field} {problem}")).with_field(field)
}

/// An identifier: 1..=256 characters, no control characters.
fn text(field: &str, value: String) -> Result<String, ApiError> {
    if value.is_empty() || value.chars().count() > MAX_ID_LEN {
        return Err(bad(field, format!("must be 1..={MAX_ID_LEN} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(bad(field, "must not contain control characters"));
    }
    Ok(value)
}

/// An IP literal (IPv6 with or without brackets) or a DNS name.
fn host(field: &str, value: String) -> Result<String, ApiError> {
    let bare = value.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if value.len() <= 253 && value.split('.').all(label_ok) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(bad(
            field,
            format!("must be an IP address or a DNS name, got '{value}'"),
        ))
    }
}

/// The host the client used to reach this API (HTTP/2 `:authority` or HTTP/1 `Host`), when it
/// is a valid host: a proxy that reaches the admin API that way likely reaches xDS too.
fn request_host(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let from_header = || {
        let value = headers.get(header::HOST)?.to_str().ok()?;
        value.parse::<Authority>().ok()
    };
    let authority = uri.authority().cloned().or_else(from_header)?;
    host("Host", authority.host().to_string()).ok()
}

/// The bootstrap document. An IP literal gets a STATIC cluster; a DNS name a STRICT_DNS one
/// (Envoy does not resolve names in STATIC clusters), preferring IPv4 when xDS listens on IPv4
/// (Envoy's default, AUTO, would pick `::1` for `localhost` and miss a `0.0.0.0` listener).
fn render(p: &Params, xds_host: &str, xds: SocketAddr) -> Value {
    // The server points per-type clients' EDS and RDS at the cluster their node metadata names
    // (`xds_cluster`, by default `xds_cluster`): the bootstrap's cluster has that name.
    let cluster_name = p
        .metadata
        .get("xds_cluster")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or("xds_cluster");
    let mut xds_cluster = json!({
        "name": cluster_name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} },
            },
        },
        "load_assignment": {
            "cluster_name": cluster_name,
            "endpoints": [{
                "lb_endpoints": [{ "endpoint": { "address": socket(xds_host, xds.port()) } }],
            }],
        },
    });
    if xds_host.parse::<IpAddr>().is_err() {
        xds_cluster["type"] = "STRICT_DNS".into();
        let family = if xds.is_ipv4() {
            "V4_PREFERRED"
        } else {
            "AUTO"
        };
        xds_cluster["dns_lookup_family"] = family.into();
    }
    let api_type = if p.delta { "DELTA_GRPC" } else { "GRPC" };
    let grpc_services = json!([{ "envoy_grpc": { "cluster_name": cluster_name } }]);
    let dynamic_resources = if p.ads {
        let ads_source = json!({ "ads": {}, "resource_api_version": "V3" });
        json!({
            "ads_config": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "grpc_services": grpc_services,
                "set_node_on_first_message_only": true,
            },
            "cds_config": ads_source,
            "lds_config": ads_source,
        })
    } else {
        // Separate streams: the server points EDS and RDS at the same `xds_cluster`.
        let source = json!({
            "api_config_source": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "grpc_services": grpc_services,
                "set_node_on_first_message_only": true,
            },
            "resource_api_version": "V3",
        });
        json!({ "cds_config": source, "lds_config": source })
    };
    let mut bootstrap = json!({
        "node": { "id": p.node_id, "cluster": p.cluster, "metadata": p.metadata },
        "admin": { "address": socket("127.0.0.1", p.admin_port) },
        "dynamic_resources": dynamic_resources,
        "static_resources": { "clusters": [xds_cluster] },
    });
    if p.stats_sink {
        bootstrap["stats_flush_interval"] = format!("{}s", p.flush_seconds).into();
        bootstrap["stats_sinks"] = stats_sinks(cluster_name);
    }
    bootstrap
}

/// Envoy's metrics-service sink, streaming to this server over the xDS cluster: counters as
/// deltas since the last flush and latencies as buckets (not quantiles), so reports from any
/// number of proxies and flushes add up exactly (see `crate::telemetry`).
fn stats_sinks(cluster_name: &str) -> Value {
    json!([{
        "name": "envoy.stat_sinks.metrics_service",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig",
            "transport_api_version": "V3",
            "report_counters_as_deltas": true,
            "histogram_emit_mode": "HISTOGRAM",
            "grpc_service": { "envoy_grpc": { "cluster_name": cluster_name } },
        },
    }])
}

fn socket(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}
