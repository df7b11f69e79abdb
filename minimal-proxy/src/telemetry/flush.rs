//! One flush of the metrics service sink, as Envoy's `MetricsFlusher` makes it: every stat
//! that has been used, counters as totals or as the change since the previous flush, gauges,
//! and histograms of the samples recorded since the previous flush (Envoy's interval
//! statistics) as a summary, a histogram or both, with Envoy's bucket bounds. Pure: the
//! caller passes the registry's samples and the time.

use std::collections::HashMap;

use envoy_types::pb::io::prometheus::client::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile,
    Summary,
};

use crate::{
    bootstrap::{HistogramEmitMode, MetricsSink},
    stats::{BUCKETS_MS, Sample, SampleValue},
};

/// Envoy's supported quantiles, as fractions.
pub const QUANTILES: [f64; 10] = [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0];

/// What one flush needs from the previous one.
#[derive(Debug)]
pub struct Flusher {
    counters_as_deltas: bool,
    tags_as_labels: bool,
    histograms: HistogramEmitMode,
    /// Counter totals at the previous flush.
    counters: HashMap<String, u64>,
    /// Histogram bucket counts and sums at the previous flush.
    previous: HashMap<String, (Vec<u64>, f64)>,
}

impl Flusher {
    pub fn new(sink: &MetricsSink) -> Flusher {
        Flusher {
            counters_as_deltas: sink.counters_as_deltas,
            tags_as_labels: sink.tags_as_labels,
            histograms: sink.histograms,
            counters: HashMap::new(),
            previous: HashMap::new(),
        }
    }

    /// The metric families of one flush at `now_ms` (Unix milliseconds). Stats never used
    /// (a counter still at 0, a gauge never set, a histogram with no sample yet) are left
    /// out, as Envoy leaves them out.
    pub fn flush(&mut self, samples: Vec<Sample>, now_ms: i64) -> Vec<MetricFamily> {
        let mut out = Vec::with_capacity(samples.len());
        for sample in samples {
            if !sample.used {
                continue;
            }
            match &sample.value {
                SampleValue::Counter(total) => {
                    let before = self.counters.insert(sample.name.clone(), *total);
                    let value = if self.counters_as_deltas {
                        total.saturating_sub(before.unwrap_or(0))
                    } else {
                        *total
                    };
                    let metric = Metric {
                        counter: Some(Counter {
                            value: Some(value as f64),
                            ..Counter::default()
                        }),
                        ..Metric::default()
                    };
                    out.push(self.family(&sample, MetricType::Counter, metric, now_ms));
                }
                SampleValue::Gauge(value) => {
                    let metric = Metric {
                        gauge: Some(Gauge {
                            value: Some(*value as f64),
                        }),
                        ..Metric::default()
                    };
                    out.push(self.family(&sample, MetricType::Gauge, metric, now_ms));
                }
                SampleValue::Histogram { buckets, sum_ms } => {
                    let (before, before_sum) = self
                        .previous
                        .insert(sample.name.clone(), (buckets.clone(), *sum_ms))
                        .unwrap_or_default();
                    let interval: Vec<u64> = buckets
                        .iter()
                        .enumerate()
                        .map(|(i, n)| n.saturating_sub(before.get(i).copied().unwrap_or(0)))
                        .collect();
                    let sum = (sum_ms - before_sum).max(0.0);
                    let count: u64 = interval.iter().sum();
                    if self.histograms.summary() {
                        let metric = Metric {
                            summary: Some(summary(&interval, count, sum)),
                            ..Metric::default()
                        };
                        out.push(self.family(&sample, MetricType::Summary, metric, now_ms));
                    }
                    if self.histograms.histogram() {
                        let metric = Metric {
                            histogram: Some(histogram(&interval, count, sum)),
                            ..Metric::default()
                        };
                        out.push(self.family(&sample, MetricType::Histogram, metric, now_ms));
                    }
                }
            }
        }
        out
    }

    /// The family of one metric: the full name, or the tag-extracted name with the tags as
    /// labels.
    fn family(&self, s: &Sample, kind: MetricType, mut m: Metric, now_ms: i64) -> MetricFamily {
        m.timestamp_ms = Some(now_ms);
        let name = if self.tags_as_labels {
            m.label = s
                .tags
                .iter()
                .map(|(k, v)| LabelPair {
                    name: Some(k.clone()),
                    value: Some(v.clone()),
                })
                .collect();
            s.extracted.clone()
        } else {
            s.name.clone()
        };
        MetricFamily {
            name: Some(name),
            r#type: Some(kind as i32),
            metric: vec![m],
            ..MetricFamily::default()
        }
    }
}

/// Buckets with Envoy's bounds, counts cumulative across buckets (no `+Inf` bucket, as
/// Envoy sends none: `sample_count` holds the total).
pub fn histogram(interval: &[u64], count: u64, sum: f64) -> Histogram {
    let mut cumulative = 0;
    let bucket = BUCKETS_MS
        .iter()
        .zip(interval)
        .map(|(bound, n)| {
            cumulative += n;
            Bucket {
                upper_bound: Some(*bound),
                cumulative_count: Some(cumulative),
                ..Bucket::default()
            }
        })
        .collect();
    Histogram {
        sample_count: Some(count),
        sample_sum: Some(sum),
        bucket,
        ..Histogram::default()
    }
}

/// Envoy's quantiles of the interval, interpolated within buckets (NaN with no sample, as
/// Envoy sends).
pub fn summary(interval: &[u64], count: u64, sum: f64) -> Summary {
    Summary {
        sample_count: Some(count),
        sample_sum: Some(sum),
        quantile: QUANTILES
            .iter()
            .map(|q| Quantile {
                quantile: Some(*q),
                value: Some(quantile(interval, count, *q)),
            })
            .collect(),
        ..Summary::default()
    }
}

/// The `q` quantile of bucket counts (per bucket of [`BUCKETS_MS`], then the overflow).
pub fn quantile(interval: &[u64], count: u64, q: f64) -> f64 {
    if count == 0 {
        return f64::NAN;
    }
    let target = q * count as f64;
    let mut below = 0u64;
    let mut lower = 0.0;
    for (bound, n) in BUCKETS_MS.iter().zip(interval) {
        let upto = below + n;
        if *n > 0 && upto as f64 >= target {
            let fraction = ((target - below as f64) / *n as f64).clamp(0.0, 1.0);
            return lower + (bound - lower) * fraction;
        }
        below = upto;
        lower = *bound;
    }
    BUCKETS_MS[BUCKETS_MS.len() - 1]
}
