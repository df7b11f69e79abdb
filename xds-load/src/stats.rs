//! Summaries of measured durations and counts: nearest-rank percentiles in milliseconds.

use std::{collections::BTreeMap, time::Duration};

use serde::Serialize;

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Nearest-rank percentiles of `values` (empty: all zero).
    pub fn of(values: &[Duration]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort();
        let ms = |p: f64| {
            if sorted.is_empty() {
                return 0.0;
            }
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            millis(sorted[rank - 1])
        };
        Self {
            count: sorted.len(),
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: ms(1.0),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// How many streams saw each count: `{count: streams}`.
pub fn histogram(counts: &[u32]) -> BTreeMap<u32, usize> {
    let mut h = BTreeMap::new();
    for c in counts {
        *h.entry(*c).or_default() += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = Summary::of(&v);
        assert_eq!(
            (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Summary::of(&[]).count, 0);
        assert_eq!(histogram(&[2, 2, 1]), BTreeMap::from([(1, 1), (2, 2)]));
    }
}
