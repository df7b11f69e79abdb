//! Load balancers over one list of weighted hosts, built once per host-set change and then
//! only read: a pick is an atomic increment (round robin) or a few random numbers and loads
//! (least request, random), or a binary search / table index (ring hash, maglev). No lock and
//! no allocation per pick.

mod least_request;
mod maglev;
mod ring_hash;
mod round_robin;
pub(crate) mod xxhash;

use std::{cell::Cell, sync::Arc};

use crate::config::LbPolicy;

use super::host::Host;
use least_request::LeastRequest;
use maglev::Maglev;
use ring_hash::RingHash;
use round_robin::RoundRobin;

/// A load balancer over a fixed list of hosts.
#[derive(Debug)]
pub(crate) struct Lb {
    hosts: Box<[Arc<Host>]>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    RoundRobin(RoundRobin),
    LeastRequest(LeastRequest),
    /// Envoy's random balancer ignores weights: a uniform pick.
    Random,
    RingHash(RingHash),
    Maglev(Maglev),
}

impl Lb {
    /// A balancer over `hosts` with their effective weights; hosts of weight zero (or less)
    /// are left out.
    pub fn new(policy: &LbPolicy, hosts: Vec<(Arc<Host>, f64)>) -> Lb {
        let (hosts, weights): (Vec<_>, Vec<_>) = hosts
            .into_iter()
            .filter(|(_, w)| *w > 0.0 && w.is_finite())
            .unzip();
        let kind = match policy {
            LbPolicy::RoundRobin => Kind::RoundRobin(RoundRobin::new(&weights)),
            LbPolicy::LeastRequest { choice_count } => {
                Kind::LeastRequest(LeastRequest::new(*choice_count, &weights))
            }
            LbPolicy::Random => Kind::Random,
            LbPolicy::RingHash {
                min_ring_size,
                max_ring_size,
            } => Kind::RingHash(RingHash::new(
                &hosts,
                &weights,
                *min_ring_size,
                *max_ring_size,
            )),
            LbPolicy::Maglev { table_size } => {
                Kind::Maglev(Maglev::new(&hosts, &weights, *table_size))
            }
        };
        Lb {
            hosts: hosts.into_boxed_slice(),
            kind,
        }
    }

    /// Picks a host. `hash` drives the consistent-hash balancers (a random one is drawn when
    /// absent); `attempt` > 0 asks them for an alternative to an earlier pick, as Envoy does
    /// for retries that avoid previous hosts.
    pub fn pick(&self, hash: Option<u64>, attempt: u32) -> Option<&Arc<Host>> {
        let n = self.hosts.len();
        if n == 0 {
            return None;
        }
        if n == 1 {
            return self.hosts.first();
        }
        let i = match &self.kind {
            Kind::RoundRobin(rr) => rr.next(n),
            Kind::LeastRequest(lr) => lr.pick(&self.hosts),
            Kind::Random => (random() % n as u64) as usize,
            Kind::RingHash(ring) => ring.pick(retry_hash(hash, attempt)),
            Kind::Maglev(table) => table.pick(retry_hash(hash, attempt)),
        };
        self.hosts.get(i)
    }
}

/// The request's hash, or a random one; changed for a retry so that another host comes up.
fn retry_hash(hash: Option<u64>, attempt: u32) -> u64 {
    let h = hash.unwrap_or_else(random);
    if attempt > 0 {
        // Envoy's mutation: xor with a value with most bits set.
        h ^ (!0u64).wrapping_sub(u64::from(attempt)).wrapping_add(1)
    } else {
        h
    }
}

thread_local! {
    /// wyrand state, seeded once per thread from the OS-seeded generator.
    static RNG: Cell<u64> = Cell::new(rand::random());
}

/// A fast per-thread pseudo-random number (wyrand): load balancing needs speed, not secrecy.
pub(crate) fn random() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0xA076_1D64_78BD_642F);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xE703_7ED1_A0B4_28DB);
        ((t >> 64) ^ t) as u64
    })
}

/// A uniform float in `[0, 1)`.
pub(crate) fn random_unit() -> f64 {
    (random() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True when every weight is the same (the balancers then skip their weighted machinery, as
/// Envoy does).
fn all_equal(weights: &[f64]) -> bool {
    weights.windows(2).all(|w| w[0] == w[1])
}
