//! Retry decisions as Envoy's router makes them: which outcomes a `retry_on` covers, how many
//! retries are left, and the jittered exponential backoff between attempts.

use std::time::Duration;

use crate::config::RetryPolicy;

/// How one attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered with this status.
    Status(u16),
    /// No connection (refused, unreachable, connect timeout).
    ConnectFailure,
    /// The connection or stream ended before the response headers.
    Reset,
    /// The per-try timeout passed before the response headers.
    PerTryTimeout,
    /// A circuit breaker refused the request: never retried.
    Overflow,
}

/// One request's retry bookkeeping.
#[derive(Debug)]
pub struct Retries<'a> {
    policy: Option<&'a RetryPolicy>,
    /// Retries done so far.
    done: u32,
    /// Envoy's backoff exponent; it stops growing once the backoff reaches the maximum.
    exponent: u32,
}

impl<'a> Retries<'a> {
    pub fn new(policy: Option<&'a RetryPolicy>) -> Retries<'a> {
        Retries {
            policy,
            done: 0,
            exponent: 1,
        }
    }

    /// Retries done so far.
    pub fn done(&self) -> u32 {
        self.done
    }

    /// Whether the policy covers this outcome (regardless of how many retries are left).
    pub fn covers(&self, outcome: Outcome) -> bool {
        let Some(p) = self.policy else {
            return false;
        };
        let on = p.retry_on;
        match outcome {
            Outcome::Status(code) => {
                (on.server_error && code >= 500)
                    || (on.gateway_error && matches!(code, 502..=504))
                    || (on.retriable_status_codes && p.retriable_status_codes.contains(&code))
            }
            Outcome::ConnectFailure => {
                on.server_error || on.gateway_error || on.connect_failure || on.reset
            }
            Outcome::Reset | Outcome::PerTryTimeout => {
                on.server_error || on.gateway_error || on.reset
            }
            Outcome::Overflow => false,
        }
    }

    /// Whether a retry is left under `num_retries`.
    pub fn remaining(&self) -> bool {
        self.policy.is_some_and(|p| self.done < p.num_retries)
    }

    /// Counts a retry and returns how long to wait before it: a random time in
    /// `[0, base * (2^n - 1))`, at most the maximum (Envoy's full-jitter backoff).
    pub fn next_backoff(&mut self) -> Duration {
        self.done += 1;
        let Some(p) = self.policy else {
            return Duration::ZERO;
        };
        let base = p.backoff_base.as_millis().max(1) as u64;
        let max = p.backoff_max.as_millis() as u64;
        let ceiling = base.saturating_mul((1u64 << self.exponent.min(62)) - 1);
        if ceiling <= max {
            self.exponent += 1;
        }
        let ms = (rand::random::<u64>() % ceiling).min(max);
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RetryOn;

    fn policy(retry_on: RetryOn, codes: Vec<u16>) -> RetryPolicy {
        RetryPolicy {
            retry_on,
            num_retries: 2,
            per_try_timeout: None,
            retriable_status_codes: codes,
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
        }
    }

    #[test]
    fn retry_on_conditions_cover_what_envoy_covers() {
        use Outcome::*;
        let on = |f: fn(&mut RetryOn)| {
            let mut r = RetryOn::default();
            f(&mut r);
            r
        };
        let cases: Vec<(RetryOn, Vec<Outcome>, Vec<Outcome>)> = vec![
            (
                on(|r| r.server_error = true),
                vec![
                    Status(500),
                    Status(503),
                    ConnectFailure,
                    Reset,
                    PerTryTimeout,
                ],
                vec![Status(404), Status(200), Overflow],
            ),
            (
                on(|r| r.gateway_error = true),
                vec![
                    Status(502),
                    Status(503),
                    Status(504),
                    ConnectFailure,
                    Reset,
                    PerTryTimeout,
                ],
                vec![Status(500), Overflow],
            ),
            (
                on(|r| r.connect_failure = true),
                vec![ConnectFailure],
                vec![Status(503), Reset, PerTryTimeout],
            ),
            (
                on(|r| r.reset = true),
                vec![ConnectFailure, Reset, PerTryTimeout],
                vec![Status(503)],
            ),
            (
                on(|r| r.retriable_status_codes = true),
                vec![Status(409)],
                vec![Status(503), Reset],
            ),
        ];
        for (retry_on, yes, no) in cases {
            let p = policy(retry_on, vec![409]);
            let r = Retries::new(Some(&p));
            for o in yes {
                assert!(r.covers(o), "{retry_on:?} should cover {o:?}");
            }
            for o in no {
                assert!(!r.covers(o), "{retry_on:?} should not cover {o:?}");
            }
        }
        assert!(!Retries::new(None).covers(Status(503)));
    }

    #[test]
    fn retries_stop_at_num_retries_and_back_off_within_bounds() {
        let p = policy(RetryOn::default(), vec![]);
        let mut r = Retries::new(Some(&p));
        let ceilings = [25, 75, 175, 250, 250];
        for (i, ceiling) in ceilings.iter().enumerate() {
            if i < 2 {
                assert!(r.remaining());
            }
            let b = r.next_backoff();
            assert!(b < Duration::from_millis(*ceiling) || b == Duration::from_millis(250));
        }
        assert!(!r.remaining());
        assert_eq!(r.done(), 5);
    }
}
