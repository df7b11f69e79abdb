//! An access log record as Envoy's `HTTPAccessLogEntry`, filled as Envoy's gRPC HTTP logger
//! fills it for what the proxy knows: start time, duration (and time to the last byte sent
//! downstream), addresses, upstream cluster and host, route name, response flags, protocol;
//! the request's method, scheme, authority, path, user agent, referer, forwarded-for and
//! request id, body bytes; the response code and body bytes.

use std::{net::SocketAddr, time::SystemTime};

use envoy_types::pb::{
    envoy::{
        config::core::v3::{Address, RequestMethod, SocketAddress, address, socket_address},
        data::accesslog::v3::{
            AccessLogCommon, AccessLogType, HttpAccessLogEntry, HttpRequestProperties,
            HttpResponseProperties, ResponseFlags as EnvoyFlags,
            http_access_log_entry::HttpVersion,
        },
    },
    google::protobuf::{Duration as ProtoDuration, Timestamp, UInt32Value},
};
use http::HeaderValue;

use crate::access_log::{Record, ResponseFlags};

/// Where a record's captured request headers hold each field of the entry (indices into
/// [`Record::request_headers`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFields {
    pub method: usize,
    pub scheme: usize,
    pub authority: usize,
    pub path: usize,
    pub user_agent: usize,
    pub referer: usize,
    pub forwarded_for: usize,
    pub request_id: usize,
}

/// The entry for one request.
pub fn http_entry(record: &Record, fields: &EntryFields) -> HttpAccessLogEntry {
    let header = |i: usize| -> String {
        record
            .request_headers
            .get(i)
            .and_then(Option::as_ref)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let duration = proto_duration(record.duration);
    let common = AccessLogCommon {
        // Envoy leaves `sample_rate` unset (0) in its gRPC entries.
        downstream_remote_address: Some(address(record.downstream_remote)),
        downstream_direct_remote_address: Some(address(record.downstream_remote)),
        downstream_local_address: record.downstream_local.map(address),
        start_time: Some(timestamp(record.start)),
        time_to_last_downstream_tx_byte: Some(duration),
        duration: Some(duration),
        upstream_remote_address: record.upstream_host.map(address),
        upstream_cluster: record.upstream_cluster.clone().unwrap_or_default(),
        // Envoy leaves the message out when no flag is set.
        response_flags: (!record.flags.is_empty()).then(|| flags(record.flags)),
        route_name: record.route_name.as_deref().unwrap_or_default().to_string(),
        access_log_type: AccessLogType::DownstreamEnd as i32,
        // Envoy's stream id is the request id.
        stream_id: header(fields.request_id),
        ..AccessLogCommon::default()
    };
    let request = HttpRequestProperties {
        request_method: method(&header(fields.method)) as i32,
        scheme: header(fields.scheme),
        authority: header(fields.authority),
        path: header(fields.path),
        user_agent: header(fields.user_agent),
        referer: header(fields.referer),
        forwarded_for: header(fields.forwarded_for),
        request_id: header(fields.request_id),
        request_body_bytes: record.bytes_received,
        ..HttpRequestProperties::default()
    };
    let response = HttpResponseProperties {
        response_code: record
            .response_code
            .filter(|c| *c != 0)
            .map(|c| UInt32Value { value: c.into() }),
        response_body_bytes: record.bytes_sent,
        ..HttpResponseProperties::default()
    };
    HttpAccessLogEntry {
        common_properties: Some(common),
        protocol_version: match record.protocol {
            Some("HTTP/1.0") => HttpVersion::Http10,
            Some("HTTP/1.1") => HttpVersion::Http11,
            Some("HTTP/2") => HttpVersion::Http2,
            Some("HTTP/3") => HttpVersion::Http3,
            _ => HttpVersion::ProtocolUnspecified,
        } as i32,
        request: Some(request),
        response: Some(response),
    }
}

fn method(m: &str) -> RequestMethod {
    match m {
        "GET" => RequestMethod::Get,
        "HEAD" => RequestMethod::Head,
        "POST" => RequestMethod::Post,
        "PUT" => RequestMethod::Put,
        "DELETE" => RequestMethod::Delete,
        "CONNECT" => RequestMethod::Connect,
        "OPTIONS" => RequestMethod::Options,
        "TRACE" => RequestMethod::Trace,
        "PATCH" => RequestMethod::Patch,
        _ => RequestMethod::MethodUnspecified,
    }
}

/// Envoy's `ResponseFlags` message: one bool per flag.
fn flags(set: ResponseFlags) -> EnvoyFlags {
    let mut f = EnvoyFlags::default();
    for name in set.names() {
        match name {
            "UH" => f.no_healthy_upstream = true,
            "UT" => f.upstream_request_timeout = true,
            "UR" => f.upstream_remote_reset = true,
            "UF" => f.upstream_connection_failure = true,
            "UC" => f.upstream_connection_termination = true,
            "UO" => f.upstream_overflow = true,
            "NR" => f.no_route_found = true,
            "DC" => f.downstream_connection_termination = true,
            "URX" => f.upstream_retry_limit_exceeded = true,
            "NC" => f.no_cluster_found = true,
            "SI" => f.stream_idle_timeout = true,
            _ => {}
        }
    }
    f
}

fn address(a: SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: a.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(a.port().into())),
            ..SocketAddress::default()
        })),
    }
}

fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn proto_duration(d: std::time::Duration) -> ProtoDuration {
    ProtoDuration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}
