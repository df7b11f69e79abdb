//! The golden-metrics state machine: reports in (per proxy, per second), figures out. Pure:
//! the caller passes the time (whole seconds on a monotonic clock) and the mesh's [`Index`];
//! no I/O, no clock, no locks.
//!
//! Memory follows the configuration and the connected proxies, not the traffic: one
//! [`Ring`] per (proxy, known service or route) that had traffic in the last minute, each at
//! most [`SECONDS`] slots; names the mesh does not know are dropped on arrival; a proxy whose
//! streams have all ended is forgotten a minute after its last report.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use super::{
    histogram::Buckets,
    index::{Index, Part, Subject},
    ring::{Ring, SECONDS, Sample},
    view::{Figures, ProxyFigures, RouteFigures, ServiceStats, Window},
};

/// One stat as a proxy sent it (the protobuf is left at the edge).
#[derive(Debug, Clone, PartialEq)]
pub enum Reading<'a> {
    Counter {
        name: &'a str,
        value: f64,
    },
    /// `buckets`: `(upper_bound, cumulative_count)`; `total`: the sample count.
    Histogram {
        name: &'a str,
        buckets: Vec<(f64, u64)>,
        total: u64,
    },
}

/// What one message adds, per subject: built from the readings without the aggregator's
/// lock.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    pub samples: HashMap<Subject, Sample>,
    /// Readings of names the server does not consume (or of a type it does not expect).
    pub ignored: u64,
    /// Readings of a consumed name whose value is not a count or not a histogram.
    pub malformed: u64,
}

impl Report {
    pub fn read<'a>(index: &Index, readings: impl IntoIterator<Item = Reading<'a>>) -> Report {
        let mut report = Report::default();
        for reading in readings {
            let name = match &reading {
                Reading::Counter { name, .. } | Reading::Histogram { name, .. } => *name,
            };
            let Some((subject, part)) = index.lookup(name) else {
                report.ignored += 1;
                continue;
            };
            let mut sample = Sample::default();
            match (part, reading) {
                (Part::Requests | Part::Errors, Reading::Counter { value, .. }) => {
                    let Some(count) = count(value) else {
                        report.malformed += 1;
                        continue;
                    };
                    if *part == Part::Requests {
                        sample.requests = count;
                    } else {
                        sample.errors = count;
                    }
                }
                (Part::Latency, Reading::Histogram { buckets, total, .. }) => {
                    let Some(latency) = Buckets::from_cumulative(&buckets, total) else {
                        report.malformed += 1;
                        continue;
                    };
                    sample.latency = latency;
                }
                _ => {
                    report.ignored += 1;
                    continue;
                }
            }
            report
                .samples
                .entry(subject.clone())
                .or_default()
                .add(&sample);
        }
        report
    }
}

/// A counter's value as a count: finite, not negative, whole (Envoy sends integers as doubles).
fn count(value: f64) -> Option<u64> {
    (value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < 1e18)
        .then_some(value as u64)
}

/// One calling proxy (node id), over all its metrics streams.
#[derive(Debug, Default)]
struct Proxy {
    /// Open metrics streams (a reconnect may overlap the old stream).
    streams: usize,
    /// The second of its first report since it was (re)learned: windows shorter than that
    /// are divided by what it covered.
    since: Option<u64>,
    last_report: u64,
    figures: HashMap<Subject, Ring>,
}

/// Every proxy's figures.
#[derive(Debug, Default)]
pub struct Aggregator {
    proxies: HashMap<Arc<str>, Proxy>,
}

impl Aggregator {
    /// A metrics stream of `node` opened; `false` (nothing changed) when `max` other proxies
    /// are remembered already.
    pub fn open(&mut self, node: &str, now: u64, max: usize) -> bool {
        if self.proxies.len() >= max && !self.proxies.contains_key(node) {
            return false;
        }
        let proxy = self.proxies.entry(node.into()).or_default();
        proxy.streams += 1;
        proxy.last_report = proxy.last_report.max(now);
        true
    }

    /// A metrics stream of `node` ended; the proxy's figures stay for a minute.
    pub fn close(&mut self, node: &str, now: u64) {
        if let Some(proxy) = self.proxies.get_mut(node) {
            proxy.streams = proxy.streams.saturating_sub(1);
            proxy.last_report = proxy.last_report.max(now);
        }
    }

    /// Adds `report` from `node` at second `now`. Subjects the mesh dropped since the report
    /// was read are left out.
    pub fn record(&mut self, node: &str, report: &Report, index: &Index, now: u64) {
        let proxy = self.proxies.entry(node.into()).or_default();
        proxy.since.get_or_insert(now);
        proxy.last_report = now;
        for (subject, sample) in &report.samples {
            if sample.is_empty() || !index.knows(subject) {
                continue;
            }
            proxy
                .figures
                .entry(subject.clone())
                .or_default()
                .record(now, sample);
        }
    }

    /// Forgets what no window reaches: slots older than a minute, subjects the mesh no
    /// longer has, proxies without a stream and silent for a minute.
    pub fn expire(&mut self, index: &Index, now: u64) {
        self.proxies.retain(|_, proxy| {
            proxy.figures.retain(|subject, ring| {
                ring.expire(now);
                !ring.is_empty() && index.knows(subject)
            });
            proxy.streams > 0 || proxy.last_report + SECONDS > now
        });
    }

    /// How many proxies are remembered (for tests and `/metrics`).
    pub fn proxies(&self) -> usize {
        self.proxies.len()
    }

    /// The figures of `service`, `None` when the mesh has no such service.
    pub fn service(
        &self,
        index: &Index,
        service: &str,
        window: Window,
        now: u64,
    ) -> Option<ServiceStats> {
        let routes = index.routes_to(service)?;
        let seconds = window.seconds();
        let subject = Subject::Service(service.into());
        let mut total = Span::default();
        let mut proxies = BTreeMap::new();
        for (node, proxy) in &self.proxies {
            let Some(ring) = proxy.figures.get(&subject) else {
                continue;
            };
            let sample = ring.sum(now, seconds);
            if sample.is_empty() {
                continue;
            }
            let covered = proxy.covered(now, seconds);
            total.add(&sample, covered);
            proxies.insert(node.clone(), Span::of(sample, covered));
        }
        let routes = routes
            .iter()
            .map(|route| {
                let subject = Subject::Route(route.clone());
                let mut span = Span::default();
                for proxy in self.proxies.values() {
                    if let Some(ring) = proxy.figures.get(&subject) {
                        span.add(&ring.sum(now, seconds), proxy.covered(now, seconds));
                    }
                }
                RouteFigures {
                    route: route.to_string(),
                    figures: span.figures(),
                }
            })
            .collect();
        Some(ServiceStats {
            service: service.to_string(),
            window: window.as_str(),
            window_seconds: seconds,
            figures: total.figures(),
            routes,
            proxies: proxies
                .into_iter()
                .map(|(node, span)| ProxyFigures {
                    node_id: node.to_string(),
                    figures: span.figures(),
                })
                .collect(),
        })
    }
}

impl Proxy {
    /// The seconds of a `seconds` window ending at `now` this proxy has been reporting for
    /// (at least 1).
    fn covered(&self, now: u64, seconds: u64) -> u64 {
        let since = self.since.unwrap_or(now);
        (now.saturating_sub(since) + 1).clamp(1, seconds)
    }
}

/// A sample over the longest time any contributing proxy covered.
#[derive(Debug, Default)]
struct Span {
    sample: Sample,
    seconds: u64,
}

impl Span {
    fn of(sample: Sample, seconds: u64) -> Span {
        Span { sample, seconds }
    }

    fn add(&mut self, sample: &Sample, covered: u64) {
        if sample.is_empty() {
            return;
        }
        self.sample.add(sample);
        self.seconds = self.seconds.max(covered);
    }

    fn figures(&self) -> Figures {
        Figures::of(&self.sample, self.seconds.max(1))
    }
}
