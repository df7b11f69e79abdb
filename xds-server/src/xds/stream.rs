//! The glue between one gRPC stream and one state machine: requests and mesh changes in,
//! responses out, status and metrics updated on the way. One task per stream; a slow proxy
//! only delays itself (it always gets the latest resources, never a backlog), and a proxy that
//! stops reading altogether loses its connection after `--xds-write-timeout`. Every request
//! passes the [`Limits`] checks before its state machine sees it.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
    time::{Duration, Instant},
};

use chrono::Utc;
use envoy_types::pb::envoy::{
    config::core::v3::Node,
    service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Status, Streaming};
use xds_core::TypeUrl;

use super::verdicts::{Verdict, Verdicts};
use super::warming::Wait;
use super::{
    Error, Feedback, Step,
    cache::Cache,
    delta::Delta,
    limits::{self, ERROR_DETAIL_LABEL, Exceeded, Limits, RESPONSE_QUEUE, TypeSet},
    node_info,
    server::Cutter,
    sotw::Sotw,
    wire::{DeltaResponse, SotwResponse},
};
use crate::{
    metrics::Metrics,
    status::{ProxyStatus, Registry, StreamGuard, SyncState, TypeStatus, Variant},
    translate::{Delivery, NodeInfo, Resources},
    watch::Published,
};

/// How long listener and route updates may wait before they are sent anyway: for new
/// clusters to warm, 5 s (Envoy's own cluster warming gives up after 15 s); for a reconnected
/// SotW proxy to name the clusters it holds, 1 s (Envoy names them in the same burst as its
/// cluster request; a proxy with no EDS cluster never does).
fn wait_limit(wait: Wait) -> Duration {
    match wait {
        Wait::Warm => Duration::from_secs(5),
        Wait::Resume => Duration::from_secs(1),
    }
}

/// Streams ended since the process started (see [`streams_ended`]).
static ENDED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many xDS streams have ended in this process: the binary trims the heap only after some
/// did (streams ending is what leaves freed memory scattered through the allocator's arenas),
/// so a stable fleet never waits on a trim.
pub fn streams_ended() -> u64 {
    ENDED.load(std::sync::atomic::Ordering::Relaxed)
}

/// What every stream needs from the server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    pub cache: Arc<Cache>,
    pub registry: Registry,
    pub metrics: Metrics,
    /// What any one client may make the server hold or do.
    pub limits: Arc<Limits>,
    /// The live taps, fed by the access-log service on the same server.
    pub taps: crate::tap::Taps,
    /// The golden metrics, fed by the metrics service on the same server.
    pub telemetry: crate::telemetry::Telemetry,
    /// One permit per open stream: `limits.max_streams` in all.
    streams: Arc<Semaphore>,
    /// The proxy-token check (`--xds-auth`); off unless the server was told otherwise.
    pub auth: crate::proxy_auth::ProxyAuth,
    /// Set on a stream's own copy of the context: what its token allows (none when auth is off).
    pub(crate) grant: Option<Arc<crate::proxy_auth::Grant>>,
}

impl Context {
    pub fn new(cache: Arc<Cache>, registry: Registry, metrics: Metrics, limits: Limits) -> Self {
        Self {
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            telemetry: crate::telemetry::Telemetry::new(
                cache.mesh(),
                metrics.clone(),
                limits.max_streams,
            ),
            limits: Arc::new(limits),
            taps: crate::tap::Taps::with_metrics(crate::tap::TapConfig::default(), metrics.tap()),
            cache,
            registry,
            metrics,
            auth: crate::proxy_auth::ProxyAuth::off(),
            grant: None,
        }
    }

    /// Counts a refusal and turns it into the stream's status.
    fn refuse(&self, e: Exceeded) -> Status {
        self.metrics.limit_refused(e.label());
        tracing::info!(limit = e.label(), "xDS limit hit: {e}");
        e.into()
    }

    /// The stream's status for an error reading a request (a request over the size limit is
    /// counted as a refusal).
    fn read_error(&self, status: Status) -> Status {
        match self.limits.read_error(status) {
            Ok(status) => status,
            Err(e) => self.refuse(e),
        }
    }

    /// Runs the limit checks on one request of a stream that has used `types`.
    fn admit(&self, req: &impl limits::Request, types: &mut TypeSet) -> Result<(), Status> {
        self.limits
            .check(req)
            .and_then(|()| types.admit(req.type_url(), self.limits.max_types_per_stream))
            .map_err(|e| self.refuse(e))
    }
}

/// The responses of one stream, as the transport reads them. Holds the stream's slot of
/// `--xds-max-streams` until both it and the stream's task are gone.
#[derive(Debug)]
pub struct Outbound<R> {
    rx: ReceiverStream<Queued<R>>,
    _slot: Arc<OwnedSemaphorePermit>,
}

/// What a stream's queue holds. Boxed: the queue allocates room for 32 items up front, and a
/// response or a `Status` inline would make that a few KiB per stream.
type Queued<R> = Result<Box<R>, Box<Status>>;

impl<R> Stream for Outbound<R> {
    type Item = Result<R, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.rx)
            .poll_next(cx)
            .map(|item| item.map(|r| r.map(|b| *b).map_err(|s| *s)))
    }
}

/// A protocol state machine, as the runner sees it.
pub(crate) trait Machine: Send + 'static {
    type Request: limits::Request + Send + 'static;
    type Response: Send + 'static;
    const VARIANT: Variant;
    fn new(only: Option<TypeUrl>, resources: Arc<Resources>) -> Self;
    fn without_rewarm_resend(self) -> Self;
    fn node(req: &Self::Request) -> Option<&Node>;
    fn on_request(&mut self, req: &Self::Request) -> Result<Step<Self::Response>, Error>;
    fn on_resources(&mut self, resources: Arc<Resources>) -> Step<Self::Response>;
    /// What listener and route updates wait for, if anything.
    fn waiting(&self) -> Option<Wait>;
    /// Gives up waiting (see [`wait_limit`]) and sends what waited.
    fn release(&mut self) -> Step<Self::Response>;
}

impl Machine for Sotw {
    type Request = DiscoveryRequest;
    type Response = SotwResponse;
    const VARIANT: Variant = Variant::Sotw;
    fn new(only: Option<TypeUrl>, resources: Arc<Resources>) -> Self {
        Sotw::new(only, resources)
    }
    fn without_rewarm_resend(self) -> Self {
        Sotw::without_rewarm_resend(self)
    }
    fn node(req: &DiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }
    fn on_request(&mut self, req: &DiscoveryRequest) -> Result<Step<SotwResponse>, Error> {
        Sotw::on_request(self, req)
    }
    fn on_resources(&mut self, resources: Arc<Resources>) -> Step<SotwResponse> {
        Sotw::on_resources(self, resources)
    }
    fn waiting(&self) -> Option<Wait> {
        Sotw::waiting(self)
    }
    fn release(&mut self) -> Step<SotwResponse> {
        Sotw::release(self)
    }
}

impl Machine for Delta {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaResponse;
    const VARIANT: Variant = Variant::Delta;
    fn new(only: Option<TypeUrl>, resources: Arc<Resources>) -> Self {
        Delta::new(only, resources)
    }
    fn without_rewarm_resend(self) -> Self {
        Delta::without_rewarm_resend(self)
    }
    fn node(req: &DeltaDiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }
    fn on_request(&mut self, req: &DeltaDiscoveryRequest) -> Result<Step<DeltaResponse>, Error> {
        Delta::on_request(self, req)
    }
    fn on_resources(&mut self, resources: Arc<Resources>) -> Step<DeltaResponse> {
        Delta::on_resources(self, resources)
    }
    fn waiting(&self) -> Option<Wait> {
        Delta::waiting(self)
    }
    fn release(&mut self) -> Step<DeltaResponse> {
        Delta::release(self)
    }
}

/// Runs a stream in its own task; the returned stream carries its responses. Refused with
/// RESOURCE_EXHAUSTED when `--xds-max-streams` are already open. `cut` closes the stream's
/// connection (for a proxy that stopped reading).
pub(crate) fn run<M: Machine>(
    ctx: Context,
    inbound: Streaming<M::Request>,
    only: Option<TypeUrl>,
    service: &'static str,
    cut: Option<Cutter>,
) -> Result<Outbound<M::Response>, Status>
where
    Streaming<M::Request>: Send,
{
    let slot = match ctx.streams.clone().try_acquire_owned() {
        Ok(permit) => Arc::new(permit),
        Err(_) => {
            let max = ctx.limits.max_streams;
            return Err(ctx.refuse(Exceeded::Streams { max }));
        }
    };
    let (tx, rx) = mpsc::channel(RESPONSE_QUEUE);
    let held = slot.clone();
    tokio::spawn(async move {
        let _slot = held;
        // A revoked token ends the stream (and so the proxy's status) wherever it is.
        let revoked = ctx.auth.revocation(ctx.grant.clone());
        let served = tokio::select! {
            served = serve::<M>(ctx, inbound, only, service, &tx, cut) => served,
            status = revoked => Err(status),
        };
        if let Err(status) = served {
            let _ = tx.send(Err(Box::new(status))).await;
        }
        ENDED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    Ok(Outbound {
        rx: ReceiverStream::new(rx),
        _slot: slot,
    })
}

/// What a stream needs once its first request is in.
struct Started<M: Machine> {
    types: TypeSet,
    info: NodeInfo,
    delivery: Delivery,
    mesh: watch::Receiver<Arc<Published>>,
    resources: Arc<Resources>,
    guard: StreamGuard,
    verdicts: watch::Receiver<u64>,
    machine: M,
    step: Step<M::Response>,
}

/// Reads the first request (within the deadline), registers the stream and answers it; `None`
/// when the proxy closed the stream without a request.
async fn start<M: Machine>(
    ctx: &Context,
    inbound: &mut Streaming<M::Request>,
    only: Option<TypeUrl>,
    service: &'static str,
) -> Result<Option<Started<M>>, Status> {
    let wait = ctx.limits.first_request_timeout;
    let first = tokio::time::timeout(wait, inbound.message())
        .await
        .map_err(|_| ctx.refuse(Exceeded::FirstRequest(wait)))?;
    let first = first.map_err(|s| ctx.read_error(s))?;
    let Some(first) = first else {
        return Ok(None);
    };
    let mut types = TypeSet::default();
    ctx.admit(&first, &mut types)?;
    let node = M::node(&first).ok_or(Error::MissingNode)?;
    let info = node_info(node);
    if let Some(grant) = &ctx.grant {
        crate::proxy_auth::ProxyAuth::check_node(grant, &info.id, &info.cluster)?;
    }
    audit_secrets(&info, &first);
    let mut mesh = ctx.cache.mesh();
    let published = mesh.borrow_and_update().clone();
    let delivery = delivery(&info, service, M::VARIANT);
    let resources = ctx.cache.resources(&published, &info, &delivery).await;
    let guard = ctx.registry.connect(ProxyStatus {
        node_id: info.id.clone(),
        cluster: info.cluster.clone(),
        metadata: super::node_metadata(node),
        variant: M::VARIANT,
        service,
        connected_since: Utc::now(),
        types: Default::default(),
        held_back: resources.held_back.clone(),
        resources: Some(resources.clone()),
    });
    let verdicts = ctx.cache.verdicts().watch();
    tracing::info!(node = %info.id, cluster = %info.cluster, variant = ?M::VARIANT, service, "proxy connected");
    let mut machine = M::new(only, resources.clone());
    if node
        .client_features
        .iter()
        .any(|f| f == xds_core::node::REWARMS_FROM_HELD_ASSIGNMENTS)
    {
        machine = machine.without_rewarm_resend();
    }
    let step = machine.on_request(&first)?;
    Ok(Some(Started {
        types,
        info,
        delivery,
        mesh,
        resources,
        guard,
        verdicts,
        machine,
        step,
    }))
}

async fn serve<M: Machine>(
    ctx: Context,
    mut inbound: Streaming<M::Request>,
    only: Option<TypeUrl>,
    service: &'static str,
    tx: &mpsc::Sender<Queued<M::Response>>,
    cut: Option<Cutter>,
) -> Result<(), Status> {
    // The start runs boxed: its locals (the first request, the starting snapshot, the first
    // translation's future) then take no room in this future, which lives as long as the stream.
    let Some(started) = Box::pin(start::<M>(&ctx, &mut inbound, only, service)).await? else {
        return Ok(());
    };
    let Started {
        mut types,
        info,
        delivery,
        mut mesh,
        mut resources,
        guard,
        mut verdicts,
        mut machine,
        mut step,
    } = started;
    let mut changed_at: Option<Instant> = None;
    let mut convergence = Convergence::default();
    let mut wait_until: Option<(Wait, tokio::time::Instant)> = None;
    loop {
        if let Some(at) = changed_at {
            convergence.change = Some(at);
        }
        convergence.observe(&step.feedback, &ctx.metrics);
        if machine.waiting().is_none() {
            convergence.change = None; // everything the change caused is out
        }
        record(&guard, &ctx, M::VARIANT, &step.feedback, changed_at.take());
        record_verdicts(&ctx, &resources, &info.id, &step.feedback);
        for response in step.responses {
            let write_timeout = ctx.limits.write_timeout;
            match tokio::time::timeout(write_timeout, tx.send(Ok(Box::new(response)))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Ok(()), // the proxy went away
                Err(_) => {
                    // The proxy reads nothing: no status would reach it either. Closing its
                    // connection frees the queued responses and the transport's buffers.
                    let e = Exceeded::WriteTimeout(write_timeout);
                    ctx.metrics.limit_refused(e.label());
                    tracing::warn!(node = %info.id, limit = e.label(), "{e}");
                    if let Some(cut) = &cut {
                        cut.cut();
                    }
                    return Ok(());
                }
            }
        }
        wait_until = match (machine.waiting(), wait_until) {
            (None, _) => None,
            (Some(w), Some((was, t))) if w == was => Some((w, t)),
            (Some(w), _) => Some((w, tokio::time::Instant::now() + wait_limit(w))),
        };
        step = tokio::select! {
            () = tokio::time::sleep_until(wait_until.map_or_else(tokio::time::Instant::now, |(_, t)| t)), if wait_until.is_some() => {
                match wait_until.map(|(w, _)| w) {
                    Some(Wait::Warm) => tracing::warn!(node = %info.id, "new clusters did not warm in time; sending routes anyway"),
                    _ => tracing::info!(node = %info.id, "the reconnected proxy named no assignments; answering its cluster request"),
                }
                machine.release()
            }
            msg = inbound.message() => match msg {
                Ok(Some(req)) => {
                    ctx.admit(&req, &mut types)?;
                    audit_secrets(&info, &req);
                    machine.on_request(&req)?
                }
                Ok(None) => break,
                Err(status) => match ctx.limits.read_error(status) {
                    Err(e) => return Err(ctx.refuse(e)),
                    Ok(status) => {
                        tracing::debug!(node = %info.id, %status, "stream ended with an error");
                        break;
                    }
                },
            },
            changed = mesh.changed() => {
                if changed.is_err() {
                    break; // the server is shutting down
                }
                let published = mesh.borrow_and_update().clone();
                changed_at = Some(published.at);
                let next = Box::pin(ctx.cache.resources(&published, &info, &delivery)).await;
                refresh(&mut machine, &mut resources, next, &guard, (&ctx.metrics, ctx.cache.verdicts()))
            }
            // A proxy rejected something: what its group is sent may have moved back.
            Ok(()) = verdicts.changed() => {
                let published = mesh.borrow().clone();
                let next = Box::pin(ctx.cache.resources(&published, &info, &delivery)).await;
                refresh(&mut machine, &mut resources, next, &guard, (&ctx.metrics, ctx.cache.verdicts()))
            }
        };
    }
    tracing::info!(node = %info.id, "proxy disconnected");
    Ok(())
}

/// Logs and counts a request for another service's certificate (see `crate::ca`).
fn audit_secrets(info: &NodeInfo, req: &impl limits::Request) {
    let asked = req
        .names()
        .filter(|(field, _)| *field != "resource_names_unsubscribe");
    crate::ca::audit_request(info, req.type_url(), asked.map(|(_, n)| n));
}

/// Moves the stream to `next` when it differs from what it has.
fn refresh<M: Machine>(
    machine: &mut M,
    resources: &mut Arc<Resources>,
    next: Arc<Resources>,
    guard: &StreamGuard,
    (metrics, verdicts): (&Metrics, &Verdicts),
) -> Step<M::Response> {
    if Arc::ptr_eq(&next, resources) {
        return Step::default();
    }
    if !next.held_back.is_empty() || !resources.held_back.is_empty() {
        metrics.set_held_back(verdicts.held_back());
    }
    *resources = next;
    guard.update(|s| {
        s.resources = Some(resources.clone());
        s.held_back = resources.held_back.clone();
    });
    machine.on_resources(resources.clone())
}

/// Tells last-known-good what the proxy accepted and rejected.
fn record_verdicts(ctx: &Context, resources: &Resources, node_id: &str, feedback: &[Feedback]) {
    for f in feedback {
        if let Feedback::Verdict {
            type_url,
            items,
            rejected,
        } = f
        {
            // Kept per rejected resource and scanned for names: bounded as in the status.
            let cut = rejected
                .as_deref()
                .and_then(|m| ctx.limits.truncate_error_detail(m));
            let verdict = match rejected {
                Some(message) => Verdict::Rejected {
                    node_id,
                    message: cut.as_deref().unwrap_or(message),
                },
                None => Verdict::Accepted,
            };
            let verdicts = ctx.cache.verdicts();
            if verdicts.record(&resources.group, type_url, items, verdict) {
                ctx.metrics.set_held_back(verdicts.held_back());
                tracing::warn!(node = node_id, type_url = %type_url, "a proxy rejected a resource: its group keeps the last version a proxy accepted");
            }
        }
    }
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

/// For `xds_convergence_seconds`: the mesh change a stream is still sending (until nothing
/// waits), and per type the change its unacknowledged response carries.
#[derive(Debug, Default)]
struct Convergence {
    change: Option<Instant>,
    /// At most one entry per type, so a handful; empty between changes.
    pending: Vec<(String, Instant)>,
}

impl Convergence {
    fn observe(&mut self, feedback: &[Feedback], metrics: &Metrics) {
        for f in feedback {
            match f {
                Feedback::Sent { type_url, .. } => {
                    // An older change still unacknowledged keeps its start: this ACK ends both.
                    if let Some(at) = self.change
                        && !self.pending.iter().any(|(t, _)| t == type_url)
                    {
                        self.pending.push((type_url.clone(), at));
                    }
                }
                Feedback::Ack { type_url, .. } => {
                    if let Some(i) = self.pending.iter().position(|(t, _)| t == type_url) {
                        let (_, at) = self.pending.swap_remove(i);
                        metrics.observe_convergence(at.elapsed().as_secs_f64());
                    }
                }
                // A rejected change never converges on this proxy: not a duration.
                Feedback::Nack { type_url, .. } => self.pending.retain(|(t, _)| t != type_url),
                _ => {}
            }
        }
    }
}

/// Applies a step's feedback to the proxy status and the metrics.
fn record(
    guard: &StreamGuard,
    ctx: &Context,
    variant: Variant,
    feedback: &[Feedback],
    changed_at: Option<Instant>,
) {
    if feedback.is_empty() {
        return;
    }
    let metrics = &ctx.metrics;
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
                Feedback::Capped { type_url, asked } => {
                    let t = entry(&mut s.types, type_url);
                    t.error_detail = Some(format!(
                        "subscribed to {asked} names; only the first {} are served (a stream may hold at most that many per type)",
                        super::MAX_NAMES
                    ));
                }
                Feedback::Verdict { .. } => {} // see `record_verdicts`
                Feedback::Nack { type_url, message } => {
                    metrics.nack(type_url, variant);
                    let t = entry(&mut s.types, type_url);
                    t.status = SyncState::Nacked;
                    let cut = ctx.limits.truncate_error_detail(message);
                    if cut.is_some() {
                        metrics.limit_refused(ERROR_DETAIL_LABEL);
                    }
                    t.error_detail = Some(cut.unwrap_or_else(|| message.clone()));
                }
            }
        }
    });
}

fn entry<'a>(
    types: &'a mut std::collections::BTreeMap<String, Box<TypeStatus>>,
    type_url: &str,
) -> &'a mut TypeStatus {
    types.entry(type_url.to_string()).or_insert_with(|| {
        Box::new(TypeStatus {
            version_sent: None,
            version_acked: None,
            status: SyncState::Stale,
            error_detail: None,
            resources_sent: 0,
        })
    })
}

#[cfg(test)]
mod tests {
    //! The convergence histogram: measured from the change to the ACK of what it caused,
    //! once per type, never for a rejection or for what no change caused.

    use super::*;
    use crate::status::Registry;

    fn count(metrics: &Metrics) -> f64 {
        let text = metrics.render(&Registry::default(), 0);
        let line = text
            .lines()
            .find(|l| l.starts_with("xds_convergence_seconds_count "))
            .expect("the convergence histogram is exposed");
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    fn sent(t: &str) -> Feedback {
        Feedback::Sent {
            type_url: t.into(),
            version: "v".into(),
            count: 1,
        }
    }

    fn ack(t: &str) -> Feedback {
        Feedback::Ack {
            type_url: t.into(),
            version: "v".into(),
        }
    }

    #[test]
    fn convergence_counts_each_acknowledged_type_of_a_change_once() {
        let metrics = Metrics::new();
        let mut c = Convergence::default();
        // Not caused by a change (a proxy's own subscription): not measured.
        c.observe(&[sent("cds"), ack("cds")], &metrics);
        assert_eq!(count(&metrics), 0.0);

        c.change = Some(Instant::now());
        c.observe(&[sent("cds"), sent("lds"), sent("rds")], &metrics);
        c.observe(&[ack("cds")], &metrics);
        c.observe(&[ack("cds")], &metrics); // a second ACK of the same: counted once
        assert_eq!(count(&metrics), 1.0);
        c.observe(
            &[Feedback::Nack {
                type_url: "lds".into(),
                message: "bad".into(),
            }],
            &metrics,
        );
        c.observe(&[ack("lds"), ack("rds")], &metrics);
        assert_eq!(count(&metrics), 2.0, "the rejected type is not counted");
        assert!(c.pending.is_empty());
    }
}
