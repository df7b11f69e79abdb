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
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            LocalReply::NoRoute => StatusCode::NOT_FOUND,
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
        let no_route = LocalReply::NoRoute.response(false);
        assert_eq!(no_route.status(), 404);
        assert!(no_route.headers().get(CONTENT_TYPE).is_none());
    }
}
