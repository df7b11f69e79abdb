//! Maglev, built as Envoy builds it: hosts sorted by address, each with an offset
//! `xxh64(address) % M` and a skip `xxh64(address, seed 1) % (M - 1) + 1`, filling the table
//! (size M, a prime, 65537 by default) in turns weighted by each host's share; a request goes
//! to `table[hash % M]`.

use std::sync::Arc;

use super::xxhash::xxh64;
use crate::upstream::host::Host;

#[derive(Debug)]
pub(super) struct Maglev {
    /// Host index per slot; empty when there are no hosts.
    table: Box<[u32]>,
}

/// One host's permutation while filling the table.
struct Entry {
    host: u32,
    offset: u64,
    skip: u64,
    weight: f64,
    target: f64,
    next: u64,
}

impl Maglev {
    pub fn new(hosts: &[Arc<Host>], weights: &[f64], table_size: u64) -> Maglev {
        let total: f64 = weights.iter().sum();
        if hosts.is_empty() || total <= 0.0 || table_size < 2 {
            return Maglev {
                table: Box::new([]),
            };
        }
        let mut keyed: Vec<(String, u32, f64)> = hosts
            .iter()
            .zip(weights)
            .enumerate()
            .map(|(i, (h, w))| (h.address.to_string(), i as u32, w / total))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let max_weight = keyed.iter().map(|k| k.2).fold(0.0, f64::max);
        let mut entries: Vec<Entry> = keyed
            .iter()
            .map(|(key, host, weight)| Entry {
                host: *host,
                offset: xxh64(key.as_bytes(), 0) % table_size,
                skip: xxh64(key.as_bytes(), 1) % (table_size - 1) + 1,
                weight: *weight,
                target: 0.0,
                next: 0,
            })
            .collect();
        let size = table_size as usize;
        let mut table = vec![u32::MAX; size];
        let mut filled = 0usize;
        let mut iteration = 1u64;
        while filled < size {
            for entry in entries.iter_mut() {
                if filled == size {
                    break;
                }
                if (iteration as f64) * entry.weight < entry.target {
                    continue;
                }
                entry.target += max_weight;
                let mut slot = permutation(entry, table_size);
                while table[slot] != u32::MAX {
                    entry.next += 1;
                    slot = permutation(entry, table_size);
                }
                table[slot] = entry.host;
                entry.next += 1;
                filled += 1;
            }
            iteration += 1;
        }
        Maglev {
            table: table.into_boxed_slice(),
        }
    }

    pub fn pick(&self, hash: u64) -> usize {
        if self.table.is_empty() {
            return 0;
        }
        self.table[(hash % self.table.len() as u64) as usize] as usize
    }
}

fn permutation(entry: &Entry, table_size: u64) -> usize {
    ((entry.offset + entry.skip.wrapping_mul(entry.next) % table_size) % table_size) as usize
}
