//! Ring hash (ketama) built exactly as Envoy builds it: each host gets hashes
//! `xxh64("<address>_<i>")` in proportion to its weight, the least-weighted host at least
//! `min_ring_size × its share`, the whole ring at most `max_ring_size`; a request goes to the
//! first ring entry at or after its hash.

use std::{fmt::Write, sync::Arc};

use super::xxhash::xxh64;
use crate::upstream::host::Host;

#[derive(Debug)]
pub(super) struct RingHash {
    /// `(hash, host index)`, sorted by hash.
    ring: Box<[(u64, u32)]>,
}

impl RingHash {
    pub fn new(hosts: &[Arc<Host>], weights: &[f64], min_size: u64, max_size: u64) -> RingHash {
        let total: f64 = weights.iter().sum();
        if hosts.is_empty() || total <= 0.0 {
            return RingHash { ring: Box::new([]) };
        }
        let min_weight = weights
            .iter()
            .map(|w| w / total)
            .fold(f64::INFINITY, f64::min);
        let scale = ((min_weight * min_size as f64).ceil() / min_weight).min(max_size as f64);
        let mut ring = Vec::with_capacity(scale.ceil() as usize);
        let mut key = String::with_capacity(64);
        let (mut current, mut target) = (0.0f64, 0.0f64);
        for (index, (host, weight)) in hosts.iter().zip(weights).enumerate() {
            key.clear();
            let _ = write!(key, "{}_", host.address);
            let prefix = key.len();
            target += scale * weight / total;
            let mut i = 0u64;
            while current < target {
                key.truncate(prefix);
                let _ = write!(key, "{i}");
                ring.push((xxh64(key.as_bytes(), 0), index as u32));
                i += 1;
                current += 1.0;
            }
        }
        ring.sort_unstable_by_key(|(hash, _)| *hash);
        RingHash {
            ring: ring.into_boxed_slice(),
        }
    }

    /// The host index owning `hash`: the first entry at or after it, wrapping around.
    pub fn pick(&self, hash: u64) -> usize {
        let i = self.ring.partition_point(|(h, _)| *h < hash);
        self.ring
            .get(i)
            .or_else(|| self.ring.first())
            .map_or(0, |(_, host)| *host as usize)
    }
}
