//! One request as a tap shows it, made from a proxy's `HTTPAccessLogEntry` (the proto stays
//! here, at the edge). Strings from proxies are cut to a bound, so a tap's memory is bounded
//! by its queue length.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use envoy_types::pb::envoy::{
    config::core::v3::{RequestMethod, address},
    data::accesslog::v3::{HttpAccessLogEntry, ResponseFlags},
};
use serde::Serialize;

/// The longest path kept; longer ones are cut (at a character boundary).
const MAX_PATH_BYTES: usize = 2048;
/// The longest authority, name or address kept.
const MAX_TEXT_BYTES: usize = 256;

/// One request a proxy served (the SSE `request` event's data).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TapEvent {
    /// When the request started (RFC 3339, milliseconds, UTC).
    pub time: String,
    /// The proxy that served it.
    pub node_id: Arc<str>,
    pub method: String,
    pub authority: String,
    pub path: String,
    /// None when no response was sent (e.g. the client went away first).
    pub status: Option<u16>,
    /// Until the last byte went to the client.
    pub duration_ms: Option<f64>,
    /// The upstream address (`ip:port`) the request went to.
    pub upstream_host: Option<String>,
    /// Envoy's short codes (`UF`, `NR`, `URX`...).
    pub response_flags: Vec<&'static str>,
    /// The mesh route it took.
    pub route: Option<String>,
    /// The service (upstream cluster) it went to.
    pub service: Option<String>,
}

impl TapEvent {
    /// The event for `entry`, logged by the proxy `node_id`.
    pub fn from_entry(node_id: &Arc<str>, entry: &HttpAccessLogEntry) -> Self {
        let common = entry.common_properties.as_ref();
        let request = entry.request.as_ref();
        let time = common
            .and_then(|c| c.start_time.as_ref())
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, t.nanos.try_into().ok()?))
            .unwrap_or_else(Utc::now)
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        let method = request
            .and_then(|r| RequestMethod::try_from(r.request_method).ok())
            .filter(|m| *m != RequestMethod::MethodUnspecified)
            .map_or("-", |m| m.as_str_name());
        let upstream_host = common
            .and_then(|c| c.upstream_remote_address.as_ref())
            .and_then(|a| match &a.address {
                Some(address::Address::SocketAddress(s)) => {
                    let port = match s.port_specifier {
                        Some(
                            envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(p),
                        ) => p,
                        _ => 0,
                    };
                    Some(match s.address.contains(':') {
                        true => format!("[{}]:{port}", cut(&s.address, MAX_TEXT_BYTES)),
                        false => format!("{}:{port}", cut(&s.address, MAX_TEXT_BYTES)),
                    })
                }
                _ => None,
            });
        let duration_ms = common
            .and_then(|c| c.time_to_last_downstream_tx_byte.as_ref())
            .map(|d| d.seconds as f64 * 1e3 + f64::from(d.nanos) / 1e6)
            .map(|ms| (ms * 1000.0).round() / 1000.0);
        Self {
            time,
            node_id: node_id.clone(),
            method: method.to_string(),
            authority: request.map_or_else(String::new, |r| cut(&r.authority, MAX_TEXT_BYTES)),
            path: request.map_or_else(String::new, |r| cut(&r.path, MAX_PATH_BYTES)),
            status: entry
                .response
                .as_ref()
                .and_then(|r| r.response_code)
                .and_then(|c| u16::try_from(c.value).ok())
                .filter(|c| *c != 0),
            duration_ms,
            upstream_host,
            response_flags: common
                .and_then(|c| c.response_flags.as_ref())
                .map(flags)
                .unwrap_or_default(),
            route: common.and_then(|c| text(&c.route_name)),
            service: common.and_then(|c| text(&c.upstream_cluster)),
        }
    }
}

fn text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| cut(s, MAX_TEXT_BYTES))
}

/// `s`, at most `max` bytes of it.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Envoy's short codes for the flags set, in Envoy's order.
pub fn flags(f: &ResponseFlags) -> Vec<&'static str> {
    let all = [
        (f.failed_local_healthcheck, "LH"),
        (f.no_healthy_upstream, "UH"),
        (f.upstream_request_timeout, "UT"),
        (f.local_reset, "LR"),
        (f.upstream_remote_reset, "UR"),
        (f.upstream_connection_failure, "UF"),
        (f.upstream_connection_termination, "UC"),
        (f.upstream_overflow, "UO"),
        (f.no_route_found, "NR"),
        (f.delay_injected, "DI"),
        (f.fault_injected, "FI"),
        (f.rate_limited, "RL"),
        (f.unauthorized_details.is_some(), "UAEX"),
        (f.rate_limit_service_error, "RLSE"),
        (f.downstream_connection_termination, "DC"),
        (f.upstream_retry_limit_exceeded, "URX"),
        (f.stream_idle_timeout, "SI"),
        (f.invalid_envoy_request_headers, "IH"),
        (f.downstream_protocol_error, "DPE"),
        (f.upstream_max_stream_duration_reached, "UMSDR"),
        (f.response_from_cache_filter, "RFCF"),
        (f.no_filter_config_found, "NFCF"),
        (f.duration_timeout, "DT"),
        (f.upstream_protocol_error, "UPE"),
        (f.no_cluster_found, "NC"),
        (f.overload_manager, "OM"),
        (f.dns_resolution_failure, "DF"),
        (f.downstream_remote_reset, "DR"),
    ];
    all.into_iter()
        .filter_map(|(set, code)| set.then_some(code))
        .collect()
}

#[cfg(test)]
mod tests {
    //! Entries → events: every field read, absent ones null, long strings cut.

    use envoy_types::pb::{
        envoy::{
            config::core::v3::{Address, SocketAddress, socket_address::PortSpecifier},
            data::accesslog::v3::{AccessLogCommon, HttpRequestProperties, HttpResponseProperties},
        },
        google::protobuf::{Duration, Timestamp, UInt32Value},
    };

    use super::*;

    fn entry() -> HttpAccessLogEntry {
        HttpAccessLogEntry {
            common_properties: Some(AccessLogCommon {
                start_time: Some(Timestamp {
                    seconds: 1_764_632_701,
                    nanos: 123_000_000,
                }),
                time_to_last_downstream_tx_byte: Some(Duration {
                    seconds: 0,
                    nanos: 1_250_000,
                }),
                upstream_remote_address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: "127.0.0.1".into(),
                        port_specifier: Some(PortSpecifier::PortValue(8081)),
                        ..SocketAddress::default()
                    })),
                }),
                upstream_cluster: "web".into(),
                route_name: "web-route".into(),
                response_flags: Some(ResponseFlags {
                    upstream_connection_failure: true,
                    upstream_retry_limit_exceeded: true,
                    ..ResponseFlags::default()
                }),
                ..AccessLogCommon::default()
            }),
            request: Some(HttpRequestProperties {
                request_method: RequestMethod::Get as i32,
                authority: "web.local".into(),
                path: "/api/items?id=3".into(),
                ..HttpRequestProperties::default()
            }),
            response: Some(HttpResponseProperties {
                response_code: Some(UInt32Value { value: 503 }),
                ..HttpResponseProperties::default()
            }),
            ..HttpAccessLogEntry::default()
        }
    }

    #[test]
    fn every_field_the_contract_names_is_read() {
        let event = TapEvent::from_entry(&"ingress-1".into(), &entry());
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "time": "2025-12-01T23:45:01.123Z",
                "node_id": "ingress-1",
                "method": "GET",
                "authority": "web.local",
                "path": "/api/items?id=3",
                "status": 503,
                "duration_ms": 1.25,
                "upstream_host": "127.0.0.1:8081",
                "response_flags": ["UF", "URX"],
                "route": "web-route",
                "service": "web",
            })
        );
    }

    #[test]
    fn an_empty_entry_gives_nulls_not_errors() {
        let event = TapEvent::from_entry(&"p".into(), &HttpAccessLogEntry::default());
        assert_eq!(event.method, "-");
        assert_eq!(event.status, None);
        assert_eq!(event.duration_ms, None);
        assert_eq!(event.upstream_host, None);
        assert_eq!(event.route, None);
        assert_eq!(event.service, None);
        assert!(event.response_flags.is_empty());
    }

    #[test]
    fn long_strings_are_cut_at_a_character_boundary() {
        let mut e = entry();
        e.request.as_mut().unwrap().path = format!("/{}", "é".repeat(MAX_PATH_BYTES));
        let event = TapEvent::from_entry(&"p".into(), &e);
        assert!(event.path.len() <= MAX_PATH_BYTES);
        assert!(event.path.starts_with("/é"));
    }
}
