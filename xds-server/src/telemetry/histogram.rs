//! Latency histograms on fixed bounds (Envoy's defaults), so figures from any number of proxies
//! and seconds merge by adding counts; percentiles as Prometheus' `histogram_quantile` reads
//! them (linear inside a bucket).

/// Envoy's default histogram bucket bounds, in milliseconds: what Envoy sends unless its
/// bootstrap changes them. Bounds a proxy sends otherwise are folded onto these.
pub const BOUNDS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// One count per bound, then the overflow (above the last bound).
pub const SLOTS: usize = BOUNDS.len() + 1;

/// Samples per bucket (not cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Buckets(pub [u64; SLOTS]);

impl Buckets {
    /// From a Prometheus-style histogram: `(upper_bound, cumulative_count)` ascending and
    /// `total` samples (those above the last bound are `total` minus the last count). `None`
    /// when the counts are not a histogram: bounds not ascending, not finite or negative, or
    /// cumulative counts that fall.
    pub fn from_cumulative(buckets: &[(f64, u64)], total: u64) -> Option<Buckets> {
        let mut out = Buckets::default();
        let (mut last_bound, mut last_count) = (f64::NEG_INFINITY, 0u64);
        for &(bound, cumulative) in buckets {
            if !bound.is_finite() || bound < 0.0 || bound <= last_bound || cumulative < last_count {
                return None;
            }
            out.0[slot_of(bound)] += cumulative - last_count;
            (last_bound, last_count) = (bound, cumulative);
        }
        if total < last_count {
            return None;
        }
        out.0[SLOTS - 1] += total - last_count;
        Some(out)
    }

    pub fn add(&mut self, other: &Buckets) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// The `q`-quantile (0..=1) in milliseconds, `None` without samples. Inside a bucket the
    /// value is interpolated linearly from its lower bound (0 for the first); the overflow
    /// bucket answers the last bound (nothing larger is known).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &count) in self.0.iter().enumerate() {
            if count == 0 {
                continue;
            }
            if (below + count) as f64 >= rank {
                let Some(&upper) = BOUNDS.get(i) else {
                    return Some(BOUNDS[BOUNDS.len() - 1]);
                };
                let lower = if i == 0 { 0.0 } else { BOUNDS[i - 1] };
                let within = (rank - below as f64) / count as f64;
                return Some(lower + (upper - lower) * within);
            }
            below += count;
        }
        Some(BOUNDS[BOUNDS.len() - 1])
    }
}

/// The slot of the smallest default bound ≥ `bound` (the overflow slot above them all).
fn slot_of(bound: f64) -> usize {
    BOUNDS.partition_point(|b| *b < bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envoy(counts: &[u64]) -> Vec<(f64, u64)> {
        BOUNDS.iter().copied().zip(counts.iter().copied()).collect()
    }

    #[test]
    fn reads_envoys_cumulative_buckets() {
        // As captured from Envoy 1.40: 16 samples between 25 and 50 ms.
        let mut counts = vec![0, 0, 0, 0, 0];
        counts.extend([16; 14]);
        let b = Buckets::from_cumulative(&envoy(&counts), 16).unwrap();
        assert_eq!(b.0[5], 16);
        assert_eq!(b.total(), 16);
        // Linear within (25, 50]: the median is half way.
        assert_eq!(b.quantile(0.5), Some(37.5));
        assert_eq!(b.quantile(1.0), Some(50.0));
    }

    #[test]
    fn samples_above_the_last_bound_overflow() {
        let b = Buckets::from_cumulative(&[(1.0, 1)], 3).unwrap();
        assert_eq!(b.0[1], 1);
        assert_eq!(b.0[SLOTS - 1], 2);
        assert_eq!(b.quantile(0.99), Some(3600000.0));
    }

    #[test]
    fn other_bounds_fold_onto_the_defaults() {
        // 2 ms and 3 ms bounds both land in the 5 ms bucket; 7 ms in the 10 ms one.
        let b = Buckets::from_cumulative(&[(2.0, 1), (3.0, 3), (7.0, 4)], 4).unwrap();
        assert_eq!(b.0[2], 3);
        assert_eq!(b.0[3], 1);
    }

    #[test]
    fn refuses_what_is_not_a_histogram() {
        assert_eq!(Buckets::from_cumulative(&[(5.0, 2), (1.0, 3)], 3), None);
        assert_eq!(Buckets::from_cumulative(&[(1.0, 3), (5.0, 2)], 3), None);
        assert_eq!(Buckets::from_cumulative(&[(f64::NAN, 1)], 1), None);
        assert_eq!(Buckets::from_cumulative(&[(-1.0, 1)], 1), None);
        assert_eq!(Buckets::from_cumulative(&[(1.0, 3)], 2), None);
    }

    #[test]
    fn no_samples_no_quantile() {
        assert_eq!(Buckets::default().quantile(0.5), None);
    }

    #[test]
    fn quantiles_across_buckets() {
        // 90 samples ≤ 1 ms, 10 in (100, 250].
        let mut b = Buckets::default();
        b.0[1] = 90;
        b.0[7] = 10;
        assert_eq!(b.quantile(0.5).map(|v| (v * 1000.0).round()), Some(778.0));
        let p95 = b.quantile(0.95).unwrap();
        assert!((p95 - 175.0).abs() < 1e-9, "{p95}");
    }
}
