//! Least request: the best of `choice_count` random hosts (power of two choices by default),
//! "best" being the fewest active requests; with unequal weights the candidates are drawn in
//! proportion to weight and compared by active requests per unit of weight.

use std::sync::Arc;

use super::{random, random_unit};
use crate::upstream::host::Host;

#[derive(Debug)]
pub(super) struct LeastRequest {
    choices: u32,
    /// With unequal weights: how to draw and compare candidates.
    weighted: Option<Weighted>,
}

#[derive(Debug)]
struct Weighted {
    /// Running sums of the weights, for drawing in proportion to weight.
    cumulative: Box<[f64]>,
    weights: Box<[f64]>,
}

impl LeastRequest {
    pub fn new(choice_count: u32, weights: &[f64]) -> LeastRequest {
        let weighted = (!super::all_equal(weights)).then(|| {
            let cumulative = weights
                .iter()
                .scan(0.0, |acc, w| {
                    *acc += w;
                    Some(*acc)
                })
                .collect();
            Weighted {
                cumulative,
                weights: weights.into(),
            }
        });
        LeastRequest {
            choices: choice_count.max(1),
            weighted,
        }
    }

    pub fn pick(&self, hosts: &[Arc<Host>]) -> usize {
        let n = hosts.len();
        let mut best: Option<(usize, f64)> = None;
        for _ in 0..self.choices {
            let (i, load) = match &self.weighted {
                None => {
                    let i = (random() % n as u64) as usize;
                    (i, hosts[i].active_requests() as f64)
                }
                Some(Weighted {
                    cumulative,
                    weights,
                }) => {
                    let total = cumulative[n - 1];
                    let r = random_unit() * total;
                    let i = cumulative.partition_point(|c| *c <= r).min(n - 1);
                    (i, (hosts[i].active_requests() + 1) as f64 / weights[i])
                }
            };
            if best.is_none_or(|(_, b)| load < b) {
                best = Some((i, load));
            }
        }
        best.map_or(0, |(i, _)| i)
    }
}
