//! Reconnect delays: jittered exponential backoff (500 ms doubling up to 30 s, each delay drawn
//! from its upper half so many proxies do not reconnect in step), reset once a stream was
//! healthy, and at the maximum at once after a refusal that retrying will not change.

use std::time::Duration;

use rand::Rng;

/// Envoy's defaults for xDS reconnects.
pub const BASE: Duration = Duration::from_millis(500);
pub const MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    /// Failures since the last healthy stream.
    attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(BASE, MAX)
    }
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            attempts: 0,
        }
    }

    /// The ceiling of the next delay: `base * 2^attempts`, at most `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempts.min(31));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay before the next attempt, in `[ceiling / 2, ceiling]`; each call doubles the
    /// ceiling up to the maximum.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempts = self.attempts.saturating_add(1);
        let half = ceiling / 2;
        let jitter_ms = rng.random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }

    /// A stream was healthy (it delivered a response): start again from the base.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// The server refused in a way retrying soon will not change (it does not serve this
    /// service, or refuses this proxy): wait the longest from now on.
    pub fn saturate(&mut self) {
        self.attempts = self.attempts.max(31);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn delays_double_within_their_jitter_up_to_the_maximum_and_reset_after_health() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut b = Backoff::default();
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            let ceiling = b.ceiling();
            let d = b.next_delay(&mut rng);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(
            ceilings,
            [
                500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000
            ]
        );
        b.reset();
        assert_eq!(b.ceiling(), BASE);
        b.saturate();
        assert_eq!(b.ceiling(), MAX);
    }
}
