//! A statistic as a stats sink reads it: Envoy's full and tag-extracted names, its tags, its
//! value and whether it has been used.

/// A statistic as a stats sink sees it (see [`super::Registry::samples`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Envoy's full name (`cluster.web.upstream_rq_200`).
    pub name: String,
    /// Envoy's tag-extracted name (`cluster.upstream_rq`).
    pub extracted: String,
    /// Envoy's tags in Envoy's order, with Envoy's names (`envoy.response_code`).
    pub tags: Vec<(String, String)>,
    pub value: SampleValue,
    /// Envoy's "used": a counter counted, a gauge changed, a histogram sampled at least once.
    pub used: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    Counter(u64),
    Gauge(u64),
    /// Counts per bucket of [`super::BUCKETS_MS`] (not cumulative) then the overflow bucket, and
    /// the sum in milliseconds.
    Histogram {
        buckets: Vec<u64>,
        sum_ms: f64,
    },
}
