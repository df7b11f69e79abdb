//! Pure renewal timing: a workload certificate is re-issued at half its lifetime, so a
//! proxy holds a fresh one long before the old one expires, even if a push is delayed.

use std::time::SystemTime;

/// When a certificate issued at `issued_at` and valid until `not_after` is due for
/// re-issue: half way through.
pub fn renew_at(issued_at: SystemTime, not_after: SystemTime) -> SystemTime {
    let life = not_after.duration_since(issued_at).unwrap_or_default();
    issued_at + life / 2
}

/// When the issuer must next wake: the earliest renewal, or `None` with nothing issued.
pub fn next_wake(renewals: impl IntoIterator<Item = SystemTime>) -> Option<SystemTime> {
    renewals.into_iter().min()
}

/// Whether a certificate due at `renew_at` must be re-issued at `now`.
pub fn due(now: SystemTime, renew_at: SystemTime) -> bool {
    now >= renew_at
}
