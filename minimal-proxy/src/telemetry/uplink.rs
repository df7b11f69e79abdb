//! A client-streaming gRPC call to a telemetry service (metrics, access logs) that never holds
//! up its caller: messages go through a small bounded queue (a full queue drops the message
//! and counts it); a stream that ended is reopened on the next message after a jittered
//! exponential backoff (from the first delay again once a stream had connected); the first
//! message of every stream carries the identifier, as Envoy's does.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use futures::future::BoxFuture;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::{bootstrap::Target, xds::backoff::Backoff};

/// Messages queued for the stream before new ones are dropped.
const QUEUE: usize = 16;

/// Opens the call on a channel with the stream of messages; resolves when the call ends.
/// A closure (not a plain `fn`) so it can carry the grpc_service's `initial_metadata`.
pub type Open<M> = Arc<
    dyn Fn(Channel, ReceiverStream<M>) -> BoxFuture<'static, Result<(), tonic::Status>>
        + Send
        + Sync,
>;

/// One telemetry stream to a static cluster.
pub struct Uplink<M> {
    /// What the stream is for, in logs (`metrics service`, `access log 'xds-tap'`).
    what: String,
    cluster: String,
    target: Target,
    open: Open<M>,
    current: Option<Current<M>>,
    backoff: Backoff,
    /// No stream is opened before this (after a failure).
    retry_at: Option<Instant>,
    /// Messages dropped: the queue was full, or no stream could be opened (logged when a
    /// stream ends).
    dropped: u64,
}

struct Current<M> {
    tx: mpsc::Sender<M>,
    call: JoinHandle<Result<(), tonic::Status>>,
    /// Set once the connection is up: the stream was healthy, whatever ends it.
    connected: Arc<AtomicBool>,
}

impl<M: Send + 'static> Uplink<M> {
    pub fn new(what: String, cluster: String, target: Target, open: Open<M>) -> Uplink<M> {
        Uplink {
            what,
            cluster,
            target,
            open,
            current: None,
            backoff: Backoff::default(),
            retry_at: None,
            dropped: 0,
        }
    }

    /// Sends the message `build` makes (`build(true)` on a new stream: it must carry the
    /// identifier). Returns whether it was queued.
    pub fn send(&mut self, build: impl FnOnce(bool) -> M) -> bool {
        self.reap();
        let first = self.current.is_none();
        if first {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                self.dropped += 1;
                return false;
            }
            self.current = self.start();
        }
        let Some(current) = &self.current else {
            self.dropped += 1;
            return false;
        };
        match current.tx.try_send(build(first)) {
            Ok(()) => true,
            Err(_) => {
                self.dropped += 1;
                false
            }
        }
    }

    /// Ends the current stream cleanly (the server sees the end of the client stream).
    pub fn close(&mut self) {
        self.current = None;
    }

    /// Forgets a stream whose call ended, and schedules the next attempt.
    fn reap(&mut self) {
        let Some(current) = &self.current else { return };
        if !current.call.is_finished() {
            return;
        }
        let Some(current) = self.current.take() else {
            return;
        };
        if current.connected.load(Ordering::Relaxed) {
            self.backoff.reset();
        }
        let delay = self.backoff.next_delay(&mut rand::rng());
        self.retry_at = Some(Instant::now() + delay);
        tracing::warn!(
            what = %self.what,
            cluster = %self.cluster,
            retry_in = ?delay,
            dropped_so_far = self.dropped,
            "telemetry stream ended; is the server at the cluster's address up and serving this service?"
        );
    }

    fn start(&mut self) -> Option<Current<M>> {
        let uri = crate::xds::endpoint::uri(&self.target);
        let endpoint = match crate::xds::endpoint::endpoint(&self.target) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(%uri, error = %e, "telemetry target is unusable");
                self.retry_at = Some(Instant::now() + self.backoff.next_delay(&mut rand::rng()));
                return None;
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let connected = Arc::new(AtomicBool::new(false));
        let open = self.open.clone();
        let up = connected.clone();
        // Messages wait in the queue while the connection is made.
        let call = tokio::spawn(async move {
            let channel = endpoint
                .connect()
                .await
                .map_err(|e| tonic::Status::unavailable(format!("cannot connect: {e}")))?;
            up.store(true, Ordering::Relaxed);
            open(channel, ReceiverStream::new(rx)).await
        });
        Some(Current {
            tx,
            call,
            connected,
        })
    }
}

impl<M> Drop for Uplink<M> {
    fn drop(&mut self) {
        // Dropping the sender ends the client stream; the call task then finishes by itself.
        self.current = None;
    }
}
