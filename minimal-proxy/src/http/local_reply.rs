//! Responses the proxy makes itself, with Envoy's status codes, bodies and response flags, so a
//! client sees the same failure from either data plane.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header::CONTENT_TYPE};

use super::{body::ResponseBody, headers::X_ENVOY_OVERLOADED};
use crate::{access_log::ResponseFlags, upstream::Error};

/// Why the proxy answers a forwarded request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalReply {
    /// No virtual host or route: 404, empty (`no_route`).
    NoRoute,
    /// The route's cluster is not in the snapshot: 503, empty (`no_cluster`).
    NoCluster,
    NoHealthyUpstream,
    ConnectFailure,
    ConnectTimeout,
    /// The upstream closed or reset before the response headers.
    Reset,
    /// A circuit breaker refused the request.
    Overflow,
    /// The route timeout or the last per-try timeout passed.
    Timeout,
    /// Nothing moved on the stream for the connection manager's `stream_idle_timeout`.
    StreamIdleTimeout,
    /// An RBAC filter denied the request: 403 (Envoy sets no response flag for it).
    RbacDenied,
}

impl LocalReply {
    /// The failure an upstream error stands for.
    pub fn from_error(error: &Error) -> LocalReply {
        match error {
            Error::NoHealthyUpstream => LocalReply::NoHealthyUpstream,
            Error::ConnectFailure(_) => LocalReply::ConnectFailure,
            Error::ConnectTimeout => LocalReply::ConnectTimeout,
            Error::Reset(_) => LocalReply::Reset,
            Error::Overflow(_) => LocalReply::Overflow,
        }
    }

    pub fn flags(self) -> ResponseFlags {
        match self {
            LocalReply::NoRoute => ResponseFlags::NO_ROUTE,
            LocalReply::NoCluster => ResponseFlags::NO_CLUSTER,
            LocalReply::NoHealthyUpstream => ResponseFlags::NO_HEALTHY_UPSTREAM,
            LocalReply::ConnectFailure | LocalReply::ConnectTimeout => {
                ResponseFlags::UPSTREAM_CONNECT_FAILURE
            }
            LocalReply::Reset => ResponseFlags::UPSTREAM_CONNECTION_TERMINATION,
            LocalReply::Overflow => ResponseFlags::UPSTREAM_OVERFLOW,
            LocalReply::Timeout => ResponseFlags::UPSTREAM_TIMEOUT,
            LocalReply::StreamIdleTimeout => ResponseFlags::STREAM_IDLE_TIMEOUT,
            LocalReply::RbacDenied => ResponseFlags::default(),
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            LocalReply::NoRoute => StatusCode::NOT_FOUND,
            LocalReply::RbacDenied => StatusCode::FORBIDDEN,
            // Envoy answers 504 when the stream idles while waiting for the upstream.
            LocalReply::Timeout | LocalReply::StreamIdleTimeout => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Envoy's body for this failure; `retried` says whether earlier attempts were made.
    fn body(self, retried: bool) -> &'static str {
        match (self, retried) {
            (LocalReply::NoRoute | LocalReply::NoCluster, _) => "",
            (LocalReply::NoHealthyUpstream, _) => "no healthy upstream",
            (LocalReply::Timeout, _) => "upstream request timeout",
            (LocalReply::StreamIdleTimeout, _) => "stream timeout",
            (LocalReply::RbacDenied, _) => "RBAC: access denied",
            (LocalReply::ConnectFailure, false) => bodies::CONNECT,
            (LocalReply::ConnectFailure, true) => bodies::CONNECT_RETRIED,
            (LocalReply::ConnectTimeout, false) => bodies::TIMEOUT,
            (LocalReply::ConnectTimeout, true) => bodies::TIMEOUT_RETRIED,
            (LocalReply::Reset, false) => bodies::RESET,
            (LocalReply::Reset, true) => bodies::RESET_RETRIED,
            (LocalReply::Overflow, _) => bodies::OVERFLOW,
        }
    }

    /// The local reply for this failure.
    pub fn response(self, retried: bool) -> Response<ResponseBody> {
        let mut response = text(self.status(), self.body(retried));
        if self == LocalReply::Overflow {
            response
                .headers_mut()
                .insert(X_ENVOY_OVERLOADED.clone(), HeaderValue::from_static("true"));
        }
        response
    }
}

/// Envoy's bodies, spelled out (Envoy 1.40 wording).
mod bodies {
    pub const CONNECT: &str = "upstream connect error or disconnect/reset before headers. \
                               reset reason: remote connection failure";
    pub const CONNECT_RETRIED: &str = "upstream connect error or disconnect/reset before \
                                       headers. retried and the latest reset reason: remote \
                                       connection failure";
    pub const TIMEOUT: &str = "upstream connect error or disconnect/reset before headers. \
                               reset reason: connection timeout";
    pub const TIMEOUT_RETRIED: &str = "upstream connect error or disconnect/reset before \
                                       headers. retried and the latest reset reason: \
                                       connection timeout";
    pub const RESET: &str = "upstream connect error or disconnect/reset before headers. \
                             reset reason: connection termination";
    pub const RESET_RETRIED: &str = "upstream connect error or disconnect/reset before \
                                     headers. retried and the latest reset reason: connection \
                                     termination";
    pub const OVERFLOW: &str = "upstream connect error or disconnect/reset before headers. \
                                reset reason: overflow";
}

/// Whether a request is gRPC (`application/grpc`, `application/grpc+…`, `application/grpc;…`),
/// whose local replies Envoy sends in gRPC's terms.
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .map(|v| v.as_bytes())
        .and_then(|v| v.strip_prefix(b"application/grpc"))
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'+' || rest[0] == b';')
}

/// Turns a local reply to a gRPC request into a trailers-only gRPC answer as Envoy does:
/// HTTP 200, `content-type: application/grpc`, `grpc-status` mapped from the HTTP status,
/// `grpc-message` the reply's body (percent-encoded), no body.
pub fn to_grpc(response: &mut Response<ResponseBody>, message: &[u8]) {
    let status = match response.status().as_u16() {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    };
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(status));
    if !message.is_empty()
        && let Ok(value) = HeaderValue::from_str(&percent_encode(message))
    {
        headers.insert("grpc-message", value);
    }
}

/// gRPC's `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
fn percent_encode(message: &[u8]) -> String {
    let mut out = String::with_capacity(message.len());
    for &b in message {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response with a `text/plain` body (none when empty), as Envoy's local replies.
pub fn text(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    if !body.is_empty() {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_envoys() {
        assert_eq!(
            LocalReply::ConnectFailure.body(false),
            "upstream connect error or disconnect/reset before headers. reset reason: remote \
             connection failure"
        );
        assert_eq!(
            LocalReply::Reset.body(true),
            "upstream connect error or disconnect/reset before headers. retried and the latest \
             reset reason: connection termination"
        );
        assert_eq!(LocalReply::ConnectFailure.body(false).len(), 98);
        assert_eq!(LocalReply::ConnectFailure.body(true).len(), 121);
        assert_eq!(LocalReply::Reset.body(false).len(), 95);
        assert_eq!(LocalReply::Reset.body(true).len(), 118);
        let overloaded = LocalReply::Overflow.response(false);
        assert_eq!(overloaded.status(), 503);
        assert_eq!(overloaded.headers()[X_ENVOY_OVERLOADED.clone()], "true");
        let mut grpc = LocalReply::NoHealthyUpstream.response(false);
        to_grpc(&mut grpc, b"no healthy upstream \xe2\x9c\x97 100%");
        assert_eq!(grpc.status(), 200);
        assert_eq!(grpc.headers()["grpc-status"], "14");
        assert_eq!(grpc.headers()["content-type"], "application/grpc");
        assert_eq!(
            grpc.headers()["grpc-message"],
            "no healthy upstream %E2%9C%97 100%25"
        );
        let mut h = http::HeaderMap::new();
        for (ct, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc-web", false),
            ("application/json", false),
        ] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_grpc(&h), grpc, "{ct}");
        }
        let no_route = LocalReply::NoRoute.response(false);
        assert_eq!(no_route.status(), 404);
        assert!(no_route.headers().get(CONTENT_TYPE).is_none());
    }
}
