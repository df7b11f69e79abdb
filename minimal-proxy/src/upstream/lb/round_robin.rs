//! Weighted round robin: the smooth order of picks is computed once (earliest deadline
//! first, as Envoy's EDF scheduler orders them), so a pick is one atomic increment and an index.

use std::{
    cmp::Ordering as CmpOrdering,
    collections::BinaryHeap,
    sync::atomic::{AtomicU64, Ordering},
};

/// The longest precomputed order; larger weight sums are scaled down to fit (each host keeps
/// at least one slot), which changes shares by less than one part in this many.
const MAX_ORDER: f64 = 65_536.0;

#[derive(Debug)]
pub(super) struct RoundRobin {
    /// Host indexes in pick order; `None` when all weights are equal (plain rotation).
    order: Option<Box<[u32]>>,
    next: AtomicU64,
}

impl RoundRobin {
    pub fn new(weights: &[f64]) -> RoundRobin {
        let order = (!super::all_equal(weights)).then(|| smooth_order(weights));
        // Envoy starts each balancer at a random position.
        RoundRobin {
            order,
            next: AtomicU64::new(super::random() % 1_000_003),
        }
    }

    /// The index of the next host among `n`.
    pub fn next(&self, n: usize) -> usize {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match &self.order {
            Some(order) => order[(i % order.len() as u64) as usize] as usize,
            None => (i % n as u64) as usize,
        }
    }
}

/// Integer weights with the same proportions (scaled down when their sum is too large).
fn integer_weights(weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    let exact = weights.iter().all(|w| w.fract() == 0.0);
    let ints: Vec<u64> = if exact && sum <= MAX_ORDER {
        weights.iter().map(|w| *w as u64).collect()
    } else {
        weights
            .iter()
            .map(|w| ((w / sum * MAX_ORDER).round() as u64).max(1))
            .collect()
    };
    let g = ints.iter().copied().fold(0, gcd).max(1);
    ints.into_iter().map(|w| w / g).collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One host's next deadline in the EDF order.
#[derive(Debug, PartialEq)]
struct Deadline {
    at: f64,
    host: u32,
}

impl Eq for Deadline {}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    /// Reversed, so the max-heap pops the earliest deadline (lowest host index on ties).
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .at
            .total_cmp(&self.at)
            .then_with(|| other.host.cmp(&self.host))
    }
}

/// One full cycle of picks in which each host appears `weight` times, interleaved (a host of
/// weight 3 beside one of weight 1 gives `0 0 1 0`, not `0 0 0 1`).
fn smooth_order(weights: &[f64]) -> Box<[u32]> {
    let ints = integer_weights(weights);
    let total: u64 = ints.iter().sum();
    let mut heap: BinaryHeap<Deadline> = ints
        .iter()
        .enumerate()
        // Starting half a period in spreads each host's picks over the cycle.
        .map(|(i, w)| Deadline {
            at: 0.5 / *w as f64,
            host: i as u32,
        })
        .collect();
    let mut order = Vec::with_capacity(total as usize);
    while (order.len() as u64) < total {
        let Some(mut d) = heap.pop() else { break };
        order.push(d.host);
        d.at += 1.0 / ints[d.host as usize] as f64;
        heap.push(d);
    }
    order.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_gives_each_host_its_weight_interleaved() {
        let order = smooth_order(&[3.0, 1.0]);
        assert_eq!(&*order, &[0, 0, 1, 0]);
        let order = smooth_order(&[2.0, 4.0, 6.0]);
        assert_eq!(order.len(), 6, "weights reduced by their gcd");
        let count = |h| order.iter().filter(|i| **i == h).count();
        assert_eq!((count(0), count(1), count(2)), (1, 2, 3));
    }

    #[test]
    fn huge_weights_are_scaled_but_keep_every_host() {
        let order = smooth_order(&[1.0, 1_000_000.0]);
        assert!(order.len() <= MAX_ORDER as usize + 1);
        assert!(order.contains(&0));
    }
}
