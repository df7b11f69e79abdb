//! What a request or connection leaves for its log line: the [`Record`], its
//! [`ResponseFlags`], and the headers formats ask for, captured by [`HeaderKey`].

use std::{
    fmt,
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::http::route_table::RequestView;

/// Envoy's response flags, as far as the proxy tracks them, in the order they were set:
/// Envoy prints them so (`URX,UF`: the retry limit is noted before the failure that ends the
/// request). Each flag is a 4-bit code; up to 16 fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFlags(u64);

impl ResponseFlags {
    /// UH: no healthy upstream host.
    pub const NO_HEALTHY_UPSTREAM: ResponseFlags = ResponseFlags(1);
    /// UT: upstream request timeout.
    pub const UPSTREAM_TIMEOUT: ResponseFlags = ResponseFlags(2);
    /// UR: upstream remote reset.
    pub const UPSTREAM_REMOTE_RESET: ResponseFlags = ResponseFlags(3);
    /// UF: upstream connection failure.
    pub const UPSTREAM_CONNECT_FAILURE: ResponseFlags = ResponseFlags(4);
    /// UC: upstream connection termination.
    pub const UPSTREAM_CONNECTION_TERMINATION: ResponseFlags = ResponseFlags(5);
    /// UO: upstream overflow (circuit breaker).
    pub const UPSTREAM_OVERFLOW: ResponseFlags = ResponseFlags(6);
    /// NR: no route.
    pub const NO_ROUTE: ResponseFlags = ResponseFlags(7);
    /// DC: downstream connection termination.
    pub const DOWNSTREAM_CONNECTION_TERMINATION: ResponseFlags = ResponseFlags(8);
    /// URX: upstream retry limit exceeded.
    pub const UPSTREAM_RETRY_LIMIT_EXCEEDED: ResponseFlags = ResponseFlags(9);
    /// NC: no cluster.
    pub const NO_CLUSTER: ResponseFlags = ResponseFlags(10);
    /// SI: stream idle timeout.
    pub const STREAM_IDLE_TIMEOUT: ResponseFlags = ResponseFlags(11);

    /// Short names by code (index 0 unused).
    const NAMES: [&'static str; 12] = [
        "", "UH", "UT", "UR", "UF", "UC", "UO", "NR", "DC", "URX", "NC", "SI",
    ];

    /// The codes set, oldest first.
    fn codes(self) -> impl Iterator<Item = u64> {
        (0..16)
            .map(move |i| (self.0 >> (4 * i)) & 0xF)
            .take_while(|code| *code != 0)
    }

    /// Adds the flags of `other` not set yet, after those already set.
    pub fn insert(&mut self, other: ResponseFlags) {
        for code in other.codes() {
            if self.codes().any(|c| c == code) {
                continue;
            }
            let len = self.codes().count();
            if len < 16 {
                self.0 |= code << (4 * len);
            }
        }
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: ResponseFlags) -> bool {
        other.codes().all(|code| self.codes().any(|c| c == code))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The short names of the flags set (`UF`, `URX`), oldest first.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.codes().map(|code| Self::NAMES[code as usize])
    }

    /// The flag of a short name, `None` for a flag the proxy never sets.
    pub fn from_name(name: &str) -> Option<ResponseFlags> {
        let code = Self::NAMES.iter().skip(1).position(|n| *n == name)?;
        Some(ResponseFlags(code as u64 + 1))
    }
}

impl fmt::Display for ResponseFlags {
    /// `-` when none, else the short names joined with `,` in the order they were set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, code) in self.codes().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(Self::NAMES[code as usize])?;
        }
        Ok(())
    }
}

/// What one request (or TCP connection) leaves for its access log line.
#[derive(Debug, Clone)]
pub struct Record {
    pub start: SystemTime,
    /// `HTTP/1.1`, `HTTP/2`; `None` for TCP.
    pub protocol: Option<&'static str>,
    /// `None` for TCP (rendered as 0, as Envoy does).
    pub response_code: Option<u16>,
    pub flags: ResponseFlags,
    pub duration: Duration,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_cluster: Option<String>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub downstream_remote: SocketAddr,
    pub downstream_local: Option<SocketAddr>,
    /// `%ROUTE_NAME%`: shared with the route table (no copy per request).
    pub route_name: Option<std::sync::Arc<str>>,
    /// Values of [`AccessLogs`]' request header keys, in order.
    pub request_headers: Vec<Option<HeaderValue>>,
    /// Values of [`AccessLogs`]' response header keys, in order.
    pub response_headers: Vec<Option<HeaderValue>>,
    /// The results of the log filters' header conditions, one bit each (see `filter.rs`).
    pub header_matches: u64,
}

impl Record {
    /// A record of a connection or request that starts now.
    pub fn new(downstream_remote: SocketAddr, downstream_local: Option<SocketAddr>) -> Record {
        Record {
            start: SystemTime::now(),
            protocol: None,
            response_code: None,
            flags: ResponseFlags::default(),
            duration: Duration::ZERO,
            upstream_host: None,
            upstream_cluster: None,
            bytes_received: 0,
            bytes_sent: 0,
            downstream_remote,
            downstream_local,
            route_name: None,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            header_matches: 0,
        }
    }
}

/// A header an operator reads: `REQ(X?Y)` reads `X`, or `Y` when `X` is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderKey {
    pub(super) primary: HeaderSource,
    pub(super) alternative: Option<HeaderSource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HeaderSource {
    Method,
    Path,
    Authority,
    Scheme,
    Status,
    Name(HeaderName),
}

impl HeaderKey {
    pub(super) fn new(primary: &str, alternative: Option<&str>) -> Option<HeaderKey> {
        Some(HeaderKey {
            primary: HeaderSource::new(primary)?,
            alternative: match alternative {
                Some(a) => Some(HeaderSource::new(a)?),
                None => None,
            },
        })
    }
}

impl HeaderSource {
    fn new(name: &str) -> Option<HeaderSource> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            ":method" => HeaderSource::Method,
            ":path" => HeaderSource::Path,
            ":authority" | "host" => HeaderSource::Authority,
            ":scheme" => HeaderSource::Scheme,
            ":status" => HeaderSource::Status,
            _ => HeaderSource::Name(HeaderName::from_bytes(lower.as_bytes()).ok()?),
        })
    }

    pub(super) fn request_value(&self, req: &RequestView<'_>) -> Option<HeaderValue> {
        let text = match self {
            HeaderSource::Method => req.method.as_str(),
            HeaderSource::Path => req.path_and_query,
            HeaderSource::Authority => req.authority,
            HeaderSource::Scheme => req.scheme,
            HeaderSource::Status => return None,
            HeaderSource::Name(name) => return req.headers.get(name).cloned(),
        };
        HeaderValue::from_str(text).ok()
    }

    pub(super) fn response_value(&self, status: u16, headers: &HeaderMap) -> Option<HeaderValue> {
        match self {
            HeaderSource::Status => Some(HeaderValue::from(status)),
            HeaderSource::Name(name) => headers.get(name).cloned(),
            _ => None,
        }
    }
}
