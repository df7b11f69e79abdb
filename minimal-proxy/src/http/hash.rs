//! The route's hash policy → the request's hash for ring-hash and maglev load balancing:
//! policies in order, each one that yields a value mixed into the hash (Envoy's
//! rotate-and-xor), stopping at a terminal policy that yielded one.

use std::net::SocketAddr;

use http::{HeaderMap, header::COOKIE};

use crate::{
    config::{HashPolicy, HashPolicyKind},
    upstream::xxh64,
};

/// The hash of a request under `policies`; `None` when no policy yields a value (the load
/// balancer then picks at random, as Envoy does). Values hash with XXH64 exactly as Envoy's
/// do, so a key lands on the same ring position behind either proxy.
pub fn compute(policies: &[HashPolicy], headers: &HeaderMap, peer: SocketAddr) -> Option<u64> {
    let mut hash: Option<u64> = None;
    for policy in policies {
        let value = match &policy.kind {
            HashPolicyKind::Header(name) => header(headers, name),
            HashPolicyKind::Cookie(name) => cookie(headers, name).map(|v| xxh64(v.as_bytes(), 0)),
            HashPolicyKind::SourceIp => Some(xxh64(peer.ip().to_string().as_bytes(), 0)),
        };
        if let Some(value) = value {
            hash = Some(hash.map_or(value, |prev| prev.rotate_left(1) ^ value));
            if policy.terminal {
                break;
            }
        }
    }
    hash
}

/// Envoy's header hash: the values sorted (so their order does not matter), each hashed with
/// the previous hash as seed.
fn header(headers: &HeaderMap, name: &str) -> Option<u64> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(xxh64(first.as_bytes(), 0));
    };
    let mut all: Vec<&[u8]> = [first, second]
        .into_iter()
        .chain(values)
        .map(|v| v.as_bytes())
        .collect();
    all.sort_unstable();
    Some(all.iter().fold(0, |seed, v| xxh64(v, seed)))
}

/// The value of cookie `name` in the request's `cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn policy(kind: HashPolicyKind, terminal: bool) -> HashPolicy {
        HashPolicy { kind, terminal }
    }

    #[test]
    fn policies_hash_headers_cookies_and_source_ips_stably() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let other_port: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-user", HeaderValue::from_static("alice"));
        h.insert(COOKIE, HeaderValue::from_static("a=1; session=\"s1\"; b=2"));
        let header = [policy(HashPolicyKind::Header("x-user".into()), false)];
        let cookie = [policy(HashPolicyKind::Cookie("session".into()), false)];
        let ip = [policy(HashPolicyKind::SourceIp, false)];
        let a = compute(&header, &h, peer).unwrap();
        assert_eq!(compute(&header, &h, other_port), Some(a));
        let mut h2 = h.clone();
        h2.insert("x-user", HeaderValue::from_static("bob"));
        assert_ne!(compute(&header, &h2, peer), Some(a));
        let c = compute(&cookie, &h, peer).unwrap();
        assert_eq!(compute(&cookie, &h2, peer), Some(c));
        assert_eq!(compute(&ip, &h, peer), compute(&ip, &h2, other_port));
        // Envoy's values: XXH64 of the value; the order of repeated headers does not matter.
        assert_eq!(a, xxh64(b"alice", 0));
        assert_eq!(compute(&ip, &h, peer), Some(xxh64(b"127.0.0.1", 0)));
        let mut twice = HeaderMap::new();
        twice.append("x-user", HeaderValue::from_static("b"));
        twice.append("x-user", HeaderValue::from_static("a"));
        let mut reversed = HeaderMap::new();
        reversed.append("x-user", HeaderValue::from_static("a"));
        reversed.append("x-user", HeaderValue::from_static("b"));
        assert_eq!(
            compute(&header, &twice, peer),
            compute(&header, &reversed, peer)
        );
        // Nothing to hash: no hash at all.
        let missing = [policy(HashPolicyKind::Header("x-none".into()), true)];
        assert_eq!(compute(&missing, &h, peer), None);
    }

    #[test]
    fn a_terminal_policy_that_yields_stops_the_chain() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-user", HeaderValue::from_static("alice"));
        let terminal = [
            policy(HashPolicyKind::Header("x-user".into()), true),
            policy(HashPolicyKind::SourceIp, false),
        ];
        let only_header = [policy(HashPolicyKind::Header("x-user".into()), false)];
        assert_eq!(
            compute(&terminal, &h, peer),
            compute(&only_header, &h, peer)
        );
        let chained = [
            policy(HashPolicyKind::Header("x-user".into()), false),
            policy(HashPolicyKind::SourceIp, false),
        ];
        assert_ne!(compute(&chained, &h, peer), compute(&only_header, &h, peer));
        // A terminal policy that yields nothing does not stop the chain.
        let skipped = [
            policy(HashPolicyKind::Header("x-none".into()), true),
            policy(HashPolicyKind::Header("x-user".into()), false),
        ];
        assert_eq!(compute(&skipped, &h, peer), compute(&only_header, &h, peer));
    }
}
