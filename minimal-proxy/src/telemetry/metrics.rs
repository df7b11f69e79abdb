//! The metrics service sink (`envoy.stat_sinks.metrics_service`): every `stats_flush_interval`
//! a flush of the registry goes to `envoy.service.metrics.v3.MetricsService/StreamMetrics`,
//! the node in the first message of each stream, as Envoy sends it. The flush reads the
//! stats' atomics on this task; the request path never waits for it.

use std::{sync::Arc, time::SystemTime};

use envoy_types::pb::envoy::{
    config::core::v3::Node,
    service::metrics::v3::{
        StreamMetricsMessage, metrics_service_client::MetricsServiceClient,
        stream_metrics_message::Identifier,
    },
};
use futures::FutureExt;
use tokio::task::JoinHandle;

use super::{flush::Flusher, uplink::Uplink};
use crate::{bootstrap::MetricsSink, stats::Registry};

/// Starts the sink; it runs until the task is aborted.
pub fn spawn(sink: MetricsSink, node: Node, stats: Arc<Registry>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut flusher = Flusher::new(&sink);
        let metadata = sink.initial_metadata.clone();
        let mut uplink = Uplink::new(
            "metrics service".into(),
            sink.cluster.clone(),
            sink.target.clone(),
            std::sync::Arc::new(move |channel, messages| {
                let request = crate::xds::with_metadata(messages, &metadata);
                async move {
                    MetricsServiceClient::new(channel)
                        .stream_metrics(request)
                        .await
                        .map(|_| ())
                }
                .boxed()
            }),
        );
        let mut ticks = tokio::time::interval(sink.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; Envoy's first flush comes one interval after start.
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let now_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let families = flusher.flush(stats.samples(), now_ms);
            uplink.send(|first| StreamMetricsMessage {
                identifier: first.then(|| Identifier {
                    node: Some(node.clone()),
                }),
                envoy_metrics: families,
            });
        }
    })
}
