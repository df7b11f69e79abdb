//! Outlier detection, consecutive 5xx only, as Envoy does it with
//! `split_external_local_origin_errors: false`: every response code counts, and a connect
//! failure or reset counts as a 503. At `consecutive_5xx` in a row the host is ejected, unless
//! that would eject more than `max_ejection_percent` of the cluster's hosts
//! (`ejections_overflow`; Envoy ejects no host when even one is over the percentage). An
//! ejected host returns at the first sweep (every `interval`) after
//! `min(base_ejection_time × backoff, max(300 s, base_ejection_time))`; the backoff grows with
//! each ejection and shrinks by one per interval spent healthy. A passing active health
//! check also returns it.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use crate::{config::OutlierDetection, stats::ClusterStats};

/// Envoy's default `max_ejection_time`.
const DEFAULT_MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// One host's outlier state.
#[derive(Debug, Default)]
pub(crate) struct OutlierState {
    ejected: AtomicBool,
    consecutive_5xx: AtomicU32,
    times: Mutex<Times>,
}

#[derive(Debug, Default)]
struct Times {
    /// Multiplier of the base ejection time for the current or next ejection.
    backoff: u32,
    last_ejection: Option<Instant>,
    last_unejection: Option<Instant>,
}

impl OutlierState {
    pub fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Relaxed)
    }

    /// Counts one response code; true when it completes a run of `threshold` 5xx in a row
    /// (the caller then decides the ejection under the cluster's lock).
    pub fn record(&self, code: u16, threshold: u32) -> bool {
        if (500..600).contains(&code) {
            self.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1 == threshold
        } else {
            // Read first: the common case writes nothing to a shared cache line.
            if self.consecutive_5xx.load(Ordering::Relaxed) != 0 {
                self.consecutive_5xx.store(0, Ordering::Relaxed);
            }
            false
        }
    }

    fn times(&self) -> std::sync::MutexGuard<'_, Times> {
        self.times.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The cluster-wide decisions; called with the cluster's membership locked, which serialises
/// them.
#[derive(Debug)]
pub(crate) struct Detector {
    pub config: OutlierDetection,
    max_ejection_time: Duration,
}

impl Detector {
    pub fn new(config: OutlierDetection) -> Detector {
        Detector {
            config,
            max_ejection_time: DEFAULT_MAX_EJECTION_TIME.max(config.base_ejection_time),
        }
    }

    /// A host reached `consecutive_5xx`: ejects it if the percentage allows. `ejected` is the
    /// number of hosts ejected now, `hosts` the number in the cluster. True when it was ejected.
    pub fn on_consecutive_5xx(
        &self,
        host: &OutlierState,
        ejected: usize,
        hosts: usize,
        stats: &ClusterStats,
    ) -> bool {
        host.consecutive_5xx.store(0, Ordering::Relaxed);
        if host.is_ejected() {
            return false;
        }
        stats
            .outlier_detection_ejections_detected_consecutive_5xx
            .inc();
        stats.outlier_detection_ejections_consecutive_5xx.inc();
        let percent = 100.0 * (ejected + 1) as f64 / hosts.max(1) as f64;
        if percent > f64::from(self.config.max_ejection_percent.min(100)) {
            stats.outlier_detection_ejections_overflow.inc();
            return false;
        }
        stats.outlier_detection_ejections_total.inc();
        stats.outlier_detection_ejections_enforced_total.inc();
        stats
            .outlier_detection_ejections_enforced_consecutive_5xx
            .inc();
        host.ejected.store(true, Ordering::Relaxed);
        let mut times = host.times();
        times.last_ejection = Some(Instant::now());
        let base = self.config.base_ejection_time;
        if base.saturating_mul(times.backoff) < self.max_ejection_time + base {
            times.backoff += 1;
        }
        true
    }

    /// The periodic sweep over every host: returns ejected hosts whose time is up, and lets
    /// the backoff of hosts healthy for an interval shrink. True when a host returned.
    pub fn sweep<'a>(&self, hosts: impl Iterator<Item = &'a OutlierState>) -> bool {
        let now = Instant::now();
        let mut changed = false;
        for host in hosts {
            let mut times = host.times();
            if host.is_ejected() {
                let ejected_for = times
                    .last_ejection
                    .map_or(Duration::MAX, |at| now.duration_since(at));
                let due = self
                    .config
                    .base_ejection_time
                    .saturating_mul(times.backoff)
                    .min(self.max_ejection_time);
                if due <= ejected_for {
                    drop(times);
                    uneject(host);
                    changed = true;
                }
            } else if times
                .last_unejection
                .is_some_and(|at| now.duration_since(at) >= self.config.interval)
            {
                times.backoff = times.backoff.saturating_sub(1);
            }
        }
        changed
    }
}

/// Returns an ejected host to service (time served, or an active health check passed); true
/// when it was ejected. (`ejections_active` is recounted when the host set is rebuilt.)
pub(crate) fn uneject(host: &OutlierState) -> bool {
    let was = host.ejected.swap(false, Ordering::Relaxed);
    if was {
        host.consecutive_5xx.store(0, Ordering::Relaxed);
        host.times().last_unejection = Some(Instant::now());
    }
    was
}
