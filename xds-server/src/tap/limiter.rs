//! A token bucket: a tap passes at most `rate` events a second (bursts up to one second's
//! worth); the caller counts what it refuses.

use std::time::Instant;

/// Events allowed per second, refilled continuously.
#[derive(Debug, Clone)]
pub struct Limiter {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Limiter {
    /// Starts full: a tap's first second may burst up to `rate` events.
    pub fn new(rate: u32, now: Instant) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            tokens: rate,
            at: now,
        }
    }

    /// Takes one event's token at `now`; `false` when over the rate (drop the event).
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now.max(self.at);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_of_one_second_passes_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut l = Limiter::new(10, t0);
        let passed = (0..25).filter(|_| l.take(t0)).count();
        assert_eq!(
            passed, 10,
            "a full bucket, then nothing at the same instant"
        );
        // A tenth of a second refills one token.
        assert!(l.take(t0 + Duration::from_millis(100)));
        assert!(!l.take(t0 + Duration::from_millis(100)));
        // A long pause refills the bucket, never beyond one second's worth.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..25).filter(|_| l.take(later)).count(), 10);
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut l = Limiter::new(1, t0);
        assert!(l.take(t0));
        assert!(!l.take(t0 - Duration::from_millis(500)));
    }
}
