//! Header handling on the way through: hop-by-hop headers dropped in both directions, the
//! headers Envoy adds (`x-forwarded-proto`, `x-request-id`, `x-envoy-expected-rq-timeout-ms`,
//! `x-envoy-upstream-service-time`, `server`), and the routes' header mutations.

use std::sync::OnceLock;

use http::{
    HeaderMap, HeaderName, HeaderValue,
    header::{CONNECTION, SERVER, TE, TRANSFER_ENCODING, UPGRADE},
};

use crate::config::HeaderMutation;

pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_ENVOY_EXPECTED_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
pub static X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName =
    HeaderName::from_static("x-envoy-upstream-service-time");
pub static X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
pub static X_ENVOY_OVERLOADED: HeaderName = HeaderName::from_static("x-envoy-overloaded");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Envoy's `server` header: Envoy overwrites the upstream's with its own name, and a client
/// comparing both data planes sees the same value.
pub static SERVER_NAME: HeaderValue = HeaderValue::from_static("envoy");

/// Drops hop-by-hop headers (RFC 9110 §7.6.1): those named in `Connection`, and the fixed set.
/// `te: trailers` is end-to-end for gRPC and stays.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if let Some(connection) = headers.remove(CONNECTION) {
        // Rare: named extra hop-by-hop headers.
        if let Ok(list) = connection.to_str() {
            for name in list.split(',') {
                let name = name.trim();
                if !name.eq_ignore_ascii_case("te") && !name.is_empty() {
                    headers.remove(name);
                }
            }
        }
    }
    for name in [&KEEP_ALIVE, &PROXY_CONNECTION] {
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
    headers.remove(TRANSFER_ENCODING);
    headers.remove(UPGRADE);
    if let Some(te) = headers.get(TE)
        && !te.as_bytes().eq_ignore_ascii_case(b"trailers")
    {
        headers.remove(TE);
    }
}

/// The `x-envoy-*` request headers Envoy 1.40 drops from a downstream request (they would
/// steer its router: timeouts, retries, tracing), observed on the wire; others pass.
const UNTRUSTED: [&str; 15] = [
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-force-trace",
    "x-envoy-hedge-on-per-try-timeout",
    "x-envoy-internal",
    "x-envoy-ip-tags",
    "x-envoy-max-retries",
    "x-envoy-original-url",
    "x-envoy-retriable-header-names",
    "x-envoy-retriable-status-codes",
    "x-envoy-retry-grpc-on",
    "x-envoy-retry-on",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-rq-timeout-alt-response",
    "x-envoy-upstream-rq-timeout-ms",
];

/// Drops the router-steering `x-envoy-*` headers a client sent, as Envoy does (one scan of
/// the names; most requests carry none).
pub fn strip_untrusted(headers: &mut HeaderMap) {
    if !headers
        .keys()
        .any(|name| name.as_str().starts_with("x-envoy-"))
    {
        return;
    }
    for name in UNTRUSTED {
        headers.remove(name);
    }
}

/// Applies a mutation as Envoy does: removals first, then additions (`append == false`
/// replaces every value of that header).
pub fn apply(mutation: &HeaderMutation, headers: &mut HeaderMap) {
    for name in &mutation.remove {
        headers.remove(name);
    }
    for (name, value, append) in &mutation.add {
        if *append {
            headers.append(name.clone(), value.clone());
        } else {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// The request headers Envoy adds before forwarding: `x-forwarded-proto` when absent and an
/// `x-request-id` (a random UUID v4) when absent.
pub fn add_request_headers(headers: &mut HeaderMap, scheme: &'static str) {
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(scheme));
    }
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID.clone(), request_id());
    }
}

/// A number of milliseconds as a header value; values under a second come from a table built
/// once, so the common `x-envoy-upstream-service-time` costs no allocation.
pub fn millis(ms: u64) -> HeaderValue {
    static SMALL: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let small = SMALL.get_or_init(|| (0..1000u64).map(HeaderValue::from).collect());
    match small.get(ms as usize) {
        Some(value) => value.clone(),
        None => HeaderValue::from(ms),
    }
}

/// A random UUID v4, as Envoy generates for `x-request-id`.
pub fn request_id() -> HeaderValue {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 36];
    let mut i = 0;
    for (n, byte) in bytes.iter().enumerate() {
        if matches!(n, 4 | 6 | 8 | 10) {
            out[i] = b'-';
            i += 1;
        }
        out[i] = HEX[usize::from(byte >> 4)];
        out[i + 1] = HEX[usize::from(byte & 0xF)];
        i += 2;
    }
    HeaderValue::from_bytes(&out).expect("hex digits and dashes are a valid header value")
}

/// The response headers Envoy sets on every response it sends: `server: envoy`.
pub fn set_server(headers: &mut HeaderMap) {
    headers.insert(SERVER, SERVER_NAME.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_but_te_trailers_stays() {
        let mut h = HeaderMap::new();
        h.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.insert(UPGRADE, HeaderValue::from_static("h2c"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["te", "x-kept"]);
        h.insert(TE, HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut h);
        assert!(!h.contains_key(TE));
    }

    #[test]
    fn router_steering_headers_from_the_client_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-envoy-upstream-rq-timeout-ms",
            HeaderValue::from_static("1"),
        );
        h.insert("x-envoy-max-retries", HeaderValue::from_static("9"));
        h.insert("x-envoy-original-path", HeaderValue::from_static("/kept"));
        h.insert("x-other", HeaderValue::from_static("kept"));
        strip_untrusted(&mut h);
        let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["x-envoy-original-path", "x-other"]);
    }

    #[test]
    fn mutations_remove_then_add_or_replace() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("old"));
        h.insert("x-b", HeaderValue::from_static("old"));
        h.insert("x-gone", HeaderValue::from_static("1"));
        let m = HeaderMutation {
            add: vec![
                (
                    HeaderName::from_static("x-a"),
                    HeaderValue::from_static("new"),
                    false,
                ),
                (
                    HeaderName::from_static("x-b"),
                    HeaderValue::from_static("new"),
                    true,
                ),
                (
                    HeaderName::from_static("x-gone"),
                    HeaderValue::from_static("back"),
                    false,
                ),
            ],
            remove: vec![HeaderName::from_static("x-gone")],
        };
        apply(&m, &mut h);
        assert_eq!(h.get_all("x-a").iter().collect::<Vec<_>>(), ["new"]);
        assert_eq!(h.get_all("x-b").iter().collect::<Vec<_>>(), ["old", "new"]);
        assert_eq!(h.get_all("x-gone").iter().collect::<Vec<_>>(), ["back"]);
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let a = request_id();
        let b = request_id();
        assert_ne!(a, b);
        let s = a.to_str().unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        assert_eq!(s.matches('-').count(), 4);
    }
}
