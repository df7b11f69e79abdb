//! `stats_sinks` and `stats_flush_interval`: Envoy's metrics service sink
//! (`envoy.stat_sinks.metrics_service`, V3, to a static cluster over `envoy_grpc`), the only
//! sink minimal-proxy implements; any other sink or setting is refused by name.

use std::time::Duration;

use super::{Error, Target, raw, resources::ParsedCluster};

/// Envoy's default `stats_flush_interval`.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

const SINK_NAME: &str = "envoy.stat_sinks.metrics_service";
const CONFIG_TYPE: &str = "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig";

/// The metrics service sink as the proxy runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSink {
    /// The static cluster named by `grpc_service.envoy_grpc.cluster_name`.
    pub cluster: String,
    pub target: Target,
    /// The grpc_service's `initial_metadata`, sent on the stream (e.g. the proxy token).
    pub initial_metadata: Vec<(String, String)>,
    /// Counters as the change since the last flush (Envoy's default: the running total).
    pub counters_as_deltas: bool,
    /// Tag-extracted names with the tags as labels (Envoy's default: full names, no labels).
    pub tags_as_labels: bool,
    pub histograms: HistogramEmitMode,
    /// `stats_flush_interval`: how often the stats are sent.
    pub interval: Duration,
}

/// `histogram_emit_mode`: what a histogram is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramEmitMode {
    /// Envoy's default: a summary (quantiles) and a histogram (buckets).
    SummaryAndHistogram,
    Summary,
    Histogram,
}

impl HistogramEmitMode {
    pub fn summary(self) -> bool {
        self != HistogramEmitMode::Histogram
    }
    pub fn histogram(self) -> bool {
        self != HistogramEmitMode::Summary
    }
}

/// The sink of `stats_sinks` (at most one); `None` when there is none.
pub(super) fn metrics_sink(
    sinks: &[raw::StatsSink],
    interval: Option<Duration>,
    clusters: &[ParsedCluster],
) -> Result<Option<MetricsSink>, Error> {
    let interval = match interval {
        None => DEFAULT_FLUSH_INTERVAL,
        Some(d) if d < Duration::from_millis(1) || d > Duration::from_secs(300) => {
            return Err(Error::field(
                "stats_flush_interval",
                "must be between 1ms and 300s (Envoy's bounds)",
            ));
        }
        Some(d) => d,
    };
    let sink = match sinks {
        [] => return Ok(None),
        [sink] => sink,
        _ => {
            return Err(Error::field(
                "stats_sinks",
                format!(
                    "minimal-proxy supports one sink ({SINK_NAME}), got {}",
                    sinks.len()
                ),
            ));
        }
    };
    let path = "stats_sinks[0]";
    if !sink.name.is_empty() && sink.name != SINK_NAME {
        return Err(Error::field(
            format!("{path}.name"),
            format!(
                "sink '{}' is not supported by minimal-proxy: use {SINK_NAME}",
                sink.name
            ),
        ));
    }
    let config = &sink.typed_config;
    if config.type_url != CONFIG_TYPE {
        return Err(Error::field(
            format!("{path}.typed_config.@type"),
            format!(
                "'{}' is not supported by minimal-proxy: use {CONFIG_TYPE}",
                config.type_url
            ),
        ));
    }
    match config.transport_api_version.as_deref() {
        None | Some("V3") | Some("AUTO") => {}
        Some(other) => {
            return Err(Error::field(
                format!("{path}.typed_config.transport_api_version"),
                format!("{other} is not supported: minimal-proxy speaks the V3 API only"),
            ));
        }
    }
    let histograms = match config.histogram_emit_mode.as_deref() {
        None | Some("SUMMARY_AND_HISTOGRAM") => HistogramEmitMode::SummaryAndHistogram,
        Some("SUMMARY") => HistogramEmitMode::Summary,
        Some("HISTOGRAM") => HistogramEmitMode::Histogram,
        Some(other) => {
            return Err(Error::field(
                format!("{path}.typed_config.histogram_emit_mode"),
                format!("'{other}' is not a mode: use SUMMARY_AND_HISTOGRAM, SUMMARY or HISTOGRAM"),
            ));
        }
    };
    let cluster = config.grpc_service.envoy_grpc.cluster_name.clone();
    let field = format!("{path}.typed_config.grpc_service.envoy_grpc.cluster_name");
    let target = static_target(&cluster, &field, clusters)?;
    let initial_metadata = initial_metadata(
        &config.grpc_service.initial_metadata,
        &format!("{path}.typed_config.grpc_service.initial_metadata"),
    )?;
    Ok(Some(MetricsSink {
        initial_metadata,
        cluster,
        target,
        counters_as_deltas: config.report_counters_as_deltas,
        tags_as_labels: config.emit_tags_as_labels,
        histograms,
        interval,
    }))
}

/// A grpc_service's `initial_metadata`, checked to be valid gRPC metadata (a lowercase ASCII
/// key not ending in `-bin`, a printable ASCII value).
pub(super) fn initial_metadata(
    raw: &[super::raw::MetadataEntry],
    path: &str,
) -> Result<Vec<(String, String)>, Error> {
    raw.iter()
        .enumerate()
        .map(
            |(i, e)| match crate::xds::metadata_problem(&e.key, &e.value) {
                Some((field, problem)) => {
                    Err(Error::field(format!("{path}[{i}].{field}"), problem))
                }
                None => Ok((e.key.clone(), e.value.clone())),
            },
        )
        .collect()
}

/// The address of a static cluster that a gRPC client (a sink, a logger) sends to.
pub(super) fn static_target(
    cluster: &str,
    field: &str,
    clusters: &[ParsedCluster],
) -> Result<Target, Error> {
    match clusters.iter().find(|(c, _)| c.config.name == cluster) {
        None => Err(Error::field(
            field,
            format!("'{cluster}' is not a static cluster: define it in static_resources.clusters"),
        )),
        Some((_, None)) => Err(Error::field(
            field,
            format!("static cluster '{cluster}' has no endpoint with a socket address"),
        )),
        Some((_, Some(target))) => Ok(target.clone()),
    }
}

#[cfg(test)]
mod tests;
