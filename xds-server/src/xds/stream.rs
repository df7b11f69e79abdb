//! The glue between one gRPC stream and one state machine: requests and mesh changes in,
//! responses out, status and metrics updated on the way. One task per stream; a slow proxy
//! only delays itself (it always gets the latest resources, never a backlog).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use envoy_types::pb::envoy::{
    config::core::v3::Node,
    service::discovery::v3::{
        DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use xds_core::TypeUrl;

use super::{Error, Feedback, Step, cache::Cache, delta::Delta, node_info, sotw::Sotw};
use crate::{
    metrics::Metrics,
    status::{ProxyStatus, Registry, StreamGuard, SyncState, TypeStatus, Variant},
    translate::{Delivery, NodeInfo, Resources},
};

/// How long listener and route updates may wait for new clusters to warm before they are
/// sent anyway (Envoy's own cluster warming gives up after 15 s).
const HOLD_LIMIT: Duration = Duration::from_secs(5);

/// What every stream needs from the server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    pub cache: Arc<Cache>,
    pub registry: Registry,
    pub metrics: Metrics,
}

/// A protocol state machine, as the runner sees it.
pub(crate) trait Machine: Send + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;
    const VARIANT: Variant;
    fn new(only: Option<TypeUrl>, resources: Arc<Resources>) -> Self;
    fn node(req: &Self::Request) -> Option<&Node>;
    fn on_request(&mut self, req: &Self::Request) -> Result<Step<Self::Response>, Error>;
    fn on_resources(&mut self, resources: Arc<Resources>) -> Step<Self::Response>;
    /// Listener and route updates wait for new clusters to warm.
    fn holding(&self) -> bool;
    /// Gives up waiting (the proxy never acknowledged the assignments) and sends what waited.
    fn release(&mut self) -> Step<Self::Response>;
}

impl Machine for Sotw {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;
    const VARIANT: Variant = Variant::Sotw;
    fn new(only: Option<TypeUrl>, resources: Arc<Resources>) -> Self {
        Sotw::new(only, resources)
    }
    fn node(req: &DiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }
    fn on_request(&mut self, req: &DiscoveryRequest) -> Result<Step<DiscoveryResponse>, Error> {
        Sotw::on_request(self, req)
    }
    fn on_resources(&mut self, resources: Arc<Resources>) -> Step<DiscoveryResponse> {
        Sotw::on_resources(self, resources)
    }
    fn holding(&self) -> bool {
        Sotw::holding(self)
    }
    fn release(&mut self) -> Step<DiscoveryResponse> {
        Sotw::release(self)
    }
}

impl Machine for Delta {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;
    const VARIANT: Variant = Variant::Delta;
    fn new(only: Option<TypeUrl>, resources: Arc<Resources>) -> Self {
        Delta::new(only, resources)
    }
    fn node(req: &DeltaDiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }
    fn on_request(
        &mut self,
        req: &DeltaDiscoveryRequest,
    ) -> Result<Step<DeltaDiscoveryResponse>, Error> {
        Delta::on_request(self, req)
    }
    fn on_resources(&mut self, resources: Arc<Resources>) -> Step<DeltaDiscoveryResponse> {
        Delta::on_resources(self, resources)
    }
    fn holding(&self) -> bool {
        Delta::holding(self)
    }
    fn release(&mut self) -> Step<DeltaDiscoveryResponse> {
        Delta::release(self)
    }
}

/// Runs a stream in its own task; the returned stream carries its responses.
pub(crate) fn run<M: Machine>(
    ctx: Context,
    inbound: Streaming<M::Request>,
    only: Option<TypeUrl>,
    service: &'static str,
) -> ReceiverStream<Result<M::Response, Status>>
where
    Streaming<M::Request>: Send,
{
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        if let Err(status) = serve::<M>(ctx, inbound, only, service, &tx).await {
            let _ = tx.send(Err(status)).await;
        }
    });
    ReceiverStream::new(rx)
}

async fn serve<M: Machine>(
    ctx: Context,
    mut inbound: Streaming<M::Request>,
    only: Option<TypeUrl>,
    service: &'static str,
    tx: &mpsc::Sender<Result<M::Response, Status>>,
) -> Result<(), Status> {
    let Some(first) = inbound.message().await? else {
        return Ok(());
    };
    let node = M::node(&first).ok_or(Error::MissingNode)?;
    let metadata_len = node
        .metadata
        .as_ref()
        .map_or(0, prost::Message::encoded_len);
    if metadata_len > super::MAX_NODE_METADATA {
        return Err(Error::NodeTooLarge(metadata_len).into());
    }
    let info = node_info(node);
    let mut mesh = ctx.cache.mesh();
    let published = mesh.borrow_and_update().clone();
    let delivery = delivery(&info, service, M::VARIANT);
    let mut resources = ctx.cache.resources(&published, &info, &delivery);
    let guard = ctx.registry.connect(ProxyStatus {
        node_id: info.id.clone(),
        cluster: info.cluster.clone(),
        metadata: super::node_metadata(node),
        variant: M::VARIANT,
        service,
        connected_since: Utc::now(),
        types: Default::default(),
        resources: Some(resources.clone()),
    });
    tracing::info!(node = %info.id, cluster = %info.cluster, variant = ?M::VARIANT, service, "proxy connected");
    let mut machine = M::new(only, resources.clone());
    let mut step = machine.on_request(&first)?;
    let mut changed_at: Option<Instant> = None;
    let mut hold_until: Option<tokio::time::Instant> = None;
    loop {
        record(
            &guard,
            &ctx.metrics,
            M::VARIANT,
            &step.feedback,
            changed_at.take(),
        );
        for response in step.responses {
            if tx.send(Ok(response)).await.is_err() {
                return Ok(()); // the proxy went away
            }
        }
        hold_until = match (machine.holding(), hold_until) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(tokio::time::Instant::now() + HOLD_LIMIT),
        };
        step = tokio::select! {
            () = tokio::time::sleep_until(hold_until.unwrap_or_else(tokio::time::Instant::now)), if hold_until.is_some() => {
                tracing::warn!(node = %info.id, "new clusters did not warm in time; sending routes anyway");
                machine.release()
            }
            msg = inbound.message() => match msg {
                Ok(Some(req)) => machine.on_request(&req)?,
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(node = %info.id, %status, "stream ended with an error");
                    break;
                }
            },
            changed = mesh.changed() => {
                if changed.is_err() {
                    break; // the server is shutting down
                }
                let published = mesh.borrow_and_update().clone();
                let next = ctx.cache.resources(&published, &info, &delivery);
                if Arc::ptr_eq(&next, &resources) {
                    Step::default()
                } else {
                    resources = next;
                    guard.update(|s| s.resources = Some(resources.clone()));
                    changed_at = Some(published.at);
                    machine.on_resources(resources.clone())
                }
            }
        };
    }
    tracing::info!(node = %info.id, "proxy disconnected");
    Ok(())
}

/// How this proxy fetches what its clusters and listeners refer to: over ADS when it is on
/// ADS, else over per-type streams to its xDS cluster, named by the node metadata field
/// `xds_cluster` (default `xds_cluster`, as in the bootstrap this server hands out).
fn delivery(node: &NodeInfo, service: &'static str, variant: Variant) -> Delivery {
    if service == "ads" {
        return Delivery::Ads;
    }
    let named = node.metadata.get("xds_cluster").filter(|n| !n.is_empty());
    Delivery::Separate {
        delta: variant == Variant::Delta,
        xds_cluster: named.cloned().unwrap_or_else(|| "xds_cluster".to_string()),
    }
}

/// Applies a step's feedback to the proxy status and the metrics.
fn record(
    guard: &StreamGuard,
    metrics: &Metrics,
    variant: Variant,
    feedback: &[Feedback],
    changed_at: Option<Instant>,
) {
    if feedback.is_empty() {
        return;
    }
    if let Some(at) =
        changed_at.filter(|_| feedback.iter().any(|f| matches!(f, Feedback::Sent { .. })))
    {
        metrics.observe_push_latency(at.elapsed().as_secs_f64());
    }
    guard.update(|s| {
        for f in feedback {
            match f {
                Feedback::Sent {
                    type_url,
                    version,
                    count,
                } => {
                    metrics.push(type_url, variant);
                    let t = entry(&mut s.types, type_url);
                    t.version_sent = Some(version.clone());
                    t.resources_sent = *count;
                    t.status = SyncState::Stale;
                }
                Feedback::Ack { type_url, version } => {
                    metrics.ack(type_url, variant);
                    let t = entry(&mut s.types, type_url);
                    t.version_acked = Some(version.clone());
                    t.status = SyncState::Synced;
                    t.error_detail = None;
                }
                Feedback::Resumed { type_url, version } => {
                    let t = entry(&mut s.types, type_url);
                    t.version_sent = Some(version.clone());
                    t.version_acked = Some(version.clone());
                    t.status = SyncState::Synced;
                }
                Feedback::Nack { type_url, message } => {
                    metrics.nack(type_url, variant);
                    let t = entry(&mut s.types, type_url);
                    t.status = SyncState::Nacked;
                    t.error_detail = Some(message.clone());
                }
            }
        }
    });
}

fn entry<'a>(
    types: &'a mut std::collections::BTreeMap<String, TypeStatus>,
    type_url: &str,
) -> &'a mut TypeStatus {
    types.entry(type_url.to_string()).or_insert(TypeStatus {
        version_sent: None,
        version_acked: None,
        status: SyncState::Stale,
        error_detail: None,
        resources_sent: 0,
    })
}
