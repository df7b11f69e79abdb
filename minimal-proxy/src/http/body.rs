//! Bodies: the response body the proxy answers with (a local reply or the upstream's,
//! streamed, under the route's deadline), which closes the request's books when it ends or is
//! dropped; and the request body sent upstream, counted, and replayable for retries up to a
//! limit.

use std::{
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Sleep;

use super::books::Completion;
use crate::{
    access_log::ResponseFlags,
    stats::{ClusterStats, RouteStats},
    upstream::{self, BoxError},
};

// === response ===

/// The body of every response the proxy sends downstream.
#[derive(Debug)]
pub struct ResponseBody {
    kind: Kind,
    timers: Timers,
    /// Closes the request's books once, at the end of the body or when it is dropped.
    completion: Option<Completion>,
    bytes_sent: u64,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    /// Its books (active slot, time) end with it.
    Upstream(upstream::ResponseBody),
}

/// What may cut an upstream body short.
#[derive(Debug, Default)]
pub struct Timers {
    /// The route's deadline: the upstream body must end before it (Envoy's route timeout spans
    /// the whole response); past it the stream is cut (a timeout of the cluster).
    pub deadline: Option<(Pin<Box<Sleep>>, Arc<ClusterStats>)>,
    /// The stream idle timeout, re-armed by every frame: a body silent that long is cut.
    pub idle: Option<(Duration, Pin<Box<Sleep>>)>,
    /// When the attempt went out, for the route's `upstream_rq_time` (a route with a
    /// `stat_prefix`), recorded when the upstream body completes, as the cluster's is.
    pub route_time: Option<(std::time::Instant, Arc<RouteStats>)>,
}

impl ResponseBody {
    pub fn full(bytes: Bytes) -> ResponseBody {
        ResponseBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
            timers: Timers::default(),
            completion: None,
            bytes_sent: 0,
        }
    }

    /// The upstream's body, streamed under `timers`.
    pub fn upstream(body: upstream::ResponseBody, timers: Timers) -> ResponseBody {
        ResponseBody {
            kind: Kind::Upstream(body),
            timers,
            completion: None,
            bytes_sent: 0,
        }
    }

    /// The body of a response the proxy made itself (emptied), `None` for an upstream's.
    pub fn take_local(&mut self) -> Option<Bytes> {
        match &mut self.kind {
            Kind::Full(bytes) => Some(bytes.take().unwrap_or_default()),
            Kind::Upstream(_) => None,
        }
    }

    pub fn set_completion(&mut self, completion: Completion) {
        self.completion = Some(completion);
    }

    fn finish(&mut self, flags: ResponseFlags) {
        if let Some((sent_at, stats)) = self.timers.route_time.take()
            && flags.is_empty()
            && matches!(&self.kind, Kind::Upstream(body) if body.is_end_stream())
        {
            stats.upstream_rq_time.observe(sent_at.elapsed());
        }
        if let Some(mut completion) = self.completion.take() {
            completion.close(self.bytes_sent, flags);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Upstream(body) => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Err(e))) => {
                    this.finish(ResponseFlags::UPSTREAM_REMOTE_RESET);
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(other) => {
                    if let Some((idle, sleep)) = &mut this.timers.idle {
                        sleep.as_mut().reset(tokio::time::Instant::now() + *idle);
                    }
                    Poll::Ready(other.map(|r| r.map_err(BoxError::from)))
                }
                Poll::Pending => {
                    if let Some((sleep, stats)) = &mut this.timers.deadline
                        && sleep.as_mut().poll(cx).is_ready()
                    {
                        stats.upstream_rq_timeout.inc();
                        this.finish(ResponseFlags::UPSTREAM_TIMEOUT);
                        return Poll::Ready(Some(Err("upstream request timeout".into())));
                    }
                    if let Some((_, sleep)) = &mut this.timers.idle
                        && sleep.as_mut().poll(cx).is_ready()
                    {
                        this.finish(ResponseFlags::STREAM_IDLE_TIMEOUT);
                        return Poll::Ready(Some(Err("stream idle timeout".into())));
                    }
                    Poll::Pending
                }
            },
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes_sent += data.len() as u64;
                }
            }
            Poll::Ready(None) => this.finish(ResponseFlags::default()),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Upstream(body) => body.size_hint(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // Dropped before its end: the downstream went away (a full body may be dropped
        // unpolled once written from its size hint; that is not a termination).
        let flags = match &self.kind {
            Kind::Upstream(body) if !body.is_end_stream() => {
                ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION
            }
            _ => ResponseFlags::default(),
        };
        self.finish(flags);
    }
}

// === request ===

/// Counts the bytes of the downstream request body (for `%BYTES_RECEIVED%`).
#[derive(Debug)]
pub struct Counted {
    pub inner: Incoming,
    pub count: Arc<AtomicU64>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled.map_err(BoxError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The downstream request body shared by the attempts of one request: each attempt replays
/// what earlier ones read, then reads on. Past `limit` buffered bytes it stops keeping them
/// and the request can no longer be retried (Envoy's buffer limit).
#[derive(Debug, Clone)]
pub struct Replay {
    shared: Arc<Mutex<ReplayState>>,
}

#[derive(Debug)]
struct ReplayState {
    inner: upstream::Body,
    chunks: Vec<Bytes>,
    buffered: usize,
    limit: usize,
    /// More than `limit` was read, or the body failed: no replay possible.
    spoiled: bool,
    ended: bool,
    trailers: Option<HeaderMap>,
    /// The attempt allowed to read; older attempts' bodies fail (their connection may still
    /// poll them after the attempt was given up).
    epoch: u32,
}

/// One attempt's view of a [`Replay`].
#[derive(Debug)]
struct ReplayBody {
    shared: Arc<Mutex<ReplayState>>,
    epoch: u32,
    /// Next chunk to replay.
    pos: usize,
    trailers_sent: bool,
}

impl Replay {
    pub fn new(inner: upstream::Body, limit: usize) -> Replay {
        Replay {
            shared: Arc::new(Mutex::new(ReplayState {
                inner,
                chunks: Vec::new(),
                buffered: 0,
                limit,
                spoiled: false,
                ended: false,
                trailers: None,
                epoch: 0,
            })),
        }
    }

    /// Whether another attempt can send the whole body again.
    pub fn can_replay(&self) -> bool {
        !self.lock().spoiled
    }

    /// The body for the next attempt; earlier attempts' bodies stop working.
    pub fn attempt(&self) -> upstream::Body {
        let epoch = {
            let mut state = self.lock();
            state.epoch += 1;
            state.epoch
        };
        upstream::Body::new(ReplayBody {
            shared: self.shared.clone(),
            epoch,
            pos: 0,
            trailers_sent: false,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayState> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let mut state = this.shared.lock().unwrap_or_else(|e| e.into_inner());
        if state.epoch != this.epoch {
            return Poll::Ready(Some(Err("request body taken over by a retry".into())));
        }
        if this.pos < state.chunks.len() {
            this.pos += 1;
            return Poll::Ready(Some(Ok(Frame::data(state.chunks[this.pos - 1].clone()))));
        }
        if state.ended {
            if this.trailers_sent {
                return Poll::Ready(None);
            }
            this.trailers_sent = true;
            return Poll::Ready(state.trailers.clone().map(|t| Ok(Frame::trailers(t))));
        }
        match Pin::new(&mut state.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                state.ended = true;
                this.trailers_sent = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                state.spoiled = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if !state.spoiled {
                        state.buffered += data.len();
                        if state.buffered > state.limit {
                            state.spoiled = true;
                            state.chunks = Vec::new();
                        } else {
                            state.chunks.push(data.clone());
                            this.pos = state.chunks.len();
                        }
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    state.trailers = Some(trailers.clone());
                    state.ended = true;
                    this.trailers_sent = true;
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let state = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        state.epoch == self.epoch
            && self.pos >= state.chunks.len()
            && state.ended
            && (self.trailers_sent || state.trailers.is_none())
    }
}
