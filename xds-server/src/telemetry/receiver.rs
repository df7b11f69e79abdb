//! `envoy.service.metrics.v3.MetricsService/StreamMetrics`: the gRPC edge of the golden
//! metrics. Every message's metric families become [`Reading`]s for [`Telemetry::record`];
//! the first must name the node. A message over the limits ends that stream with a status
//! saying which limit, and touches nothing else.

use envoy_types::pb::{
    envoy::service::metrics::v3::{
        StreamMetricsMessage, StreamMetricsResponse,
        metrics_service_server::{MetricsService, MetricsServiceServer},
    },
    io::prometheus::client::MetricFamily,
};
use tonic::{Code, Request, Response, Status, Streaming};

use super::{Telemetry, aggregator::Reading};

/// The largest message accepted: Envoy sends ~10 KB per flush for a handful of clusters (its
/// first message, which carries the node, ~64 KB); 4 MiB is room for thousands of clusters.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// The most metric families (and metrics in all) one message may carry.
pub const MAX_METRICS: usize = 100_000;

/// The longest node id accepted.
pub const MAX_NODE_ID: usize = 256;

/// The gRPC service; `server()` makes the tonic service for the xDS port's routes.
#[derive(Debug, Clone)]
pub struct Receiver {
    telemetry: Telemetry,
}

impl Receiver {
    pub fn new(telemetry: Telemetry) -> Self {
        Self { telemetry }
    }

    /// The tonic service, refusing messages over [`MAX_MESSAGE_BYTES`].
    pub fn server(self) -> MetricsServiceServer<Receiver> {
        MetricsServiceServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn stream_metrics(
        &self,
        request: Request<Streaming<StreamMetricsMessage>>,
    ) -> Result<Response<StreamMetricsResponse>, Status> {
        // Put there by the xDS port's token check (`--xds-auth`); absent when auth is off.
        let authenticated = crate::proxy_auth::Authenticated::of(&request);
        let grant = authenticated.as_ref().map(|a| a.grant.clone());
        let revoked = crate::proxy_auth::revocation(authenticated);
        let mut stream = request.into_inner();
        let mut mesh = self.telemetry.mesh();
        // Ends with the mesh watch (server shutdown), as the xDS streams do, or with an error
        // once its token is revoked.
        let ended = async move {
            let shutdown = async {
                match mesh.as_mut() {
                    Some(mesh) => while mesh.changed().await.is_ok() {},
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown => Ok(()),
                status = revoked => Err(status),
            }
        };
        tokio::pin!(ended);
        let Some(first) = self.next(&mut stream, &mut ended).await? else {
            return Ok(Response::new(StreamMetricsResponse {}));
        };
        let node = node_id(&first).map_err(|e| self.refuse("no_node", e))?;
        if let Some(grant) = &grant {
            let cluster = first
                .identifier
                .as_ref()
                .and_then(|i| i.node.as_ref())
                .map_or("", |n| n.cluster.as_str());
            crate::proxy_auth::ProxyAuth::check_node(grant, &node, cluster)?;
        }
        let Some(_open) = self.telemetry.open(&node) else {
            let max = self.telemetry.max_proxies();
            return Err(self.refuse(
                "too_many_proxies",
                Status::resource_exhausted(format!(
                    "golden metrics are kept for at most {max} proxies at once \
                     (--xds-max-streams); a proxy is forgotten a minute after its last stream \
                     ends"
                )),
            ));
        };
        let mut message = first;
        loop {
            self.handle(&node, &message)?;
            match self.next(&mut stream, &mut ended).await {
                Ok(Some(m)) => message = m,
                Ok(None) => return Ok(Response::new(StreamMetricsResponse {})),
                Err(status) => {
                    tracing::debug!(node, %status, "metrics stream ended");
                    return Err(status);
                }
            }
        }
    }
}

impl Receiver {
    fn handle(&self, node: &str, message: &StreamMetricsMessage) -> Result<(), Status> {
        let metrics: usize = message
            .envoy_metrics
            .iter()
            .map(|f| f.metric.len().max(1))
            .sum();
        if metrics > MAX_METRICS {
            return Err(self.refuse(
                "too_many",
                Status::resource_exhausted(format!(
                    "a StreamMetricsMessage with {metrics} metrics; at most {MAX_METRICS} are \
                     accepted per message"
                )),
            ));
        }
        self.telemetry
            .record(node, message.envoy_metrics.iter().flat_map(readings));
        Ok(())
    }

    /// The next message, or `None` when the client or the server ends the stream; a message
    /// over [`MAX_MESSAGE_BYTES`] is refused as such.
    async fn next(
        &self,
        stream: &mut Streaming<StreamMetricsMessage>,
        ended: &mut (impl Future<Output = Result<(), Status>> + Unpin),
    ) -> Result<Option<StreamMetricsMessage>, Status> {
        let message = tokio::select! {
            message = stream.message() => message,
            end = ended => return end.map(|()| None),
        };
        message.map_err(|status| {
            if !too_large(&status) {
                return status;
            }
            self.refuse(
                "too_large",
                Status::resource_exhausted(format!(
                    "a StreamMetricsMessage over {MAX_MESSAGE_BYTES} bytes: send only the stats \
                     the server consumes (see the metrics contract), or fewer clusters per proxy"
                )),
            )
        })
    }

    /// Counts a refused stream and logs it.
    fn refuse(&self, reason: &'static str, status: Status) -> Status {
        self.telemetry.inner.metrics.telemetry_refused(reason);
        tracing::info!(reason, %status, "metrics stream refused");
        status
    }
}

fn too_large(status: &Status) -> bool {
    status.code() == Code::OutOfRange && status.message().contains("message length too large")
}

/// The node id of a stream's first message.
fn node_id(first: &StreamMetricsMessage) -> Result<String, Status> {
    let id = first
        .identifier
        .as_ref()
        .and_then(|i| i.node.as_ref())
        .map(|n| n.id.as_str())
        .unwrap_or_default();
    if id.is_empty() {
        return Err(Status::invalid_argument(
            "the first StreamMetricsMessage must carry identifier.node with an id (the \
             proxy's node id)",
        ));
    }
    if id.chars().count() > MAX_NODE_ID || id.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "identifier.node.id must be 1..={MAX_NODE_ID} characters without control characters"
        )));
    }
    Ok(id.to_string())
}

/// A family's metrics as readings: counters and histograms (gauges and the rest are not
/// consumed).
fn readings(family: &MetricFamily) -> impl Iterator<Item = Reading<'_>> {
    let name = family.name.as_deref().unwrap_or_default();
    family.metric.iter().filter_map(move |m| {
        if let Some(counter) = &m.counter {
            return Some(Reading::Counter {
                name,
                value: counter.value.unwrap_or_default(),
            });
        }
        let histogram = m.histogram.as_ref()?;
        Some(Reading::Histogram {
            name,
            buckets: histogram
                .bucket
                .iter()
                .map(|b| {
                    (
                        b.upper_bound.unwrap_or_default(),
                        b.cumulative_count.unwrap_or_default(),
                    )
                })
                .collect(),
            total: histogram.sample_count.unwrap_or_default(),
        })
    })
}
