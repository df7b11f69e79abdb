//! The route's hash policy → the request's hash for ring-hash and maglev load balancing:
//! policies in order, each one that yields a value mixed into the hash (Envoy's
//! rotate-and-xor), stopping at a terminal policy that yielded one.

use std::net::SocketAddr;

use http::{HeaderMap, header::COOKIE};

use crate::config::{HashPolicy, HashPolicyKind};

/// The hash of a request under `policies`; `None` when no policy yields a value (the load
/// balancer then picks at random, as Envoy does).
pub fn compute(policies: &[HashPolicy], headers: &HeaderMap, peer: SocketAddr) -> Option<u64> {
    let mut hash: Option<u64> = None;
    for policy in policies {
        let value = match &policy.kind {
            HashPolicyKind::Header(name) => {
                let mut values = headers.get_all(name.as_str()).iter().peekable();
                values.peek().is_some().then(|| {
                    let mut h = Fnv::default();
                    for v in values {
                        h.write(v.as_bytes());
                    }
                    h.finish()
                })
            }
            HashPolicyKind::Cookie(name) => cookie(headers, name).map(|v| {
                let mut h = Fnv::default();
                h.write(v.as_bytes());
                h.finish()
            }),
            HashPolicyKind::SourceIp => {
                let mut h = Fnv::default();
                match peer.ip() {
                    std::net::IpAddr::V4(ip) => h.write(&ip.octets()),
                    std::net::IpAddr::V6(ip) => h.write(&ip.octets()),
                }
                Some(h.finish())
            }
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

/// FNV-1a 64 with a final avalanche (splitmix64), stable across processes so every replica
/// of the proxy hashes a request alike.
#[derive(Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
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
