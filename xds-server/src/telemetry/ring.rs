//! The last minute of one figure, one slot per second that had traffic: memory follows what
//! is active, and never more than [`SECONDS`] slots per figure.

use std::collections::VecDeque;

use super::histogram::Buckets;

/// How far back anything is kept: the longest window.
pub const SECONDS: u64 = 60;

/// What was reported in one second (or summed over a window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Requests completed.
    pub requests: u64,
    /// Of those, answered 5xx.
    pub errors: u64,
    /// Their latencies.
    pub latency: Buckets,
}

impl Sample {
    pub fn add(&mut self, other: &Sample) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        self.latency.add(&other.latency);
    }

    pub fn is_empty(&self) -> bool {
        self.requests == 0 && self.errors == 0 && self.latency.total() == 0
    }
}

/// Slots in ascending second order, none older than [`SECONDS`] before the newest write.
#[derive(Debug, Default)]
pub struct Ring {
    slots: VecDeque<(u64, Sample)>,
}

impl Ring {
    /// Adds `sample` to second `now` (seconds never go back: a caller's clock is monotonic).
    pub fn record(&mut self, now: u64, sample: &Sample) {
        if sample.is_empty() {
            return;
        }
        match self.slots.back_mut() {
            Some((second, slot)) if *second >= now => slot.add(sample),
            _ => self.slots.push_back((now, *sample)),
        }
        self.expire(now);
    }

    /// Drops slots that no window reaches any more.
    pub fn expire(&mut self, now: u64) {
        while self
            .slots
            .front()
            .is_some_and(|(second, _)| second + SECONDS <= now)
        {
            self.slots.pop_front();
        }
    }

    /// The sum over the `seconds` seconds ending with `now` (inclusive).
    pub fn sum(&self, now: u64, seconds: u64) -> Sample {
        let mut total = Sample::default();
        for (second, sample) in self.slots.iter().rev() {
            if second + seconds <= now {
                break;
            }
            total.add(sample);
        }
        total
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(n: u64) -> Sample {
        Sample {
            requests: n,
            ..Sample::default()
        }
    }

    #[test]
    fn sums_the_window_ending_now() {
        let mut ring = Ring::default();
        ring.record(100, &requests(1));
        ring.record(105, &requests(2));
        ring.record(105, &requests(3));
        ring.record(109, &requests(4));
        assert_eq!(ring.sum(109, 10).requests, 10);
        assert_eq!(ring.sum(109, 5).requests, 9);
        assert_eq!(
            ring.sum(114, 10).requests,
            9,
            "second 100 left the 10 s window"
        );
        assert_eq!(ring.sum(159, 60).requests, 10);
        assert_eq!(ring.sum(160, 60).requests, 9);
    }

    #[test]
    fn keeps_at_most_a_minute_and_nothing_for_silence() {
        let mut ring = Ring::default();
        for s in 0..1000 {
            ring.record(s, &requests(1));
            ring.record(s, &Sample::default());
        }
        assert_eq!(ring.slots.len(), SECONDS as usize);
        ring.expire(2000);
        assert!(ring.is_empty());
    }
}
