//! The upstream response body: hyper's body, carrying the request's books to the end of the
//! response as Envoy keeps them (`upstream_rq_active` and `upstream_rq_time` end with the
//! response's last frame, not its head).

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Instant;

use super::circuit_breaker::Active;
use crate::stats::ClusterStats;

/// An upstream response's body, as [`super::Cluster::send`] returns it.
///
/// Holds (moved in, nothing allocated) the request's active slot and its start time: at the
/// end of the stream it records `upstream_rq_time` (as Envoy's router does when the upstream
/// response completes) and releases the slot. Dropped before its end (a reset, a retry that
/// gave it up, a downstream gone) it releases the slot but records no time, as Envoy records
/// none for a response that did not complete.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Incoming,
    /// The request's `upstream_rq_active` slot (counted against `max_requests`) for an
    /// HTTP/2 stream, which ends out of the pool's sight. `None` for HTTP/1.1: its pool holds
    /// the slot until the connection is free again.
    active: Option<Active>,
    /// When the request went out, and where its time goes; taken once recorded.
    timing: Option<(Instant, Arc<ClusterStats>)>,
}

impl ResponseBody {
    pub(crate) fn new(
        inner: Incoming,
        active: Option<Active>,
        start: Instant,
        stats: Arc<ClusterStats>,
    ) -> ResponseBody {
        let mut body = ResponseBody {
            inner,
            active,
            timing: Some((start, stats)),
        };
        // A response without a body (HEAD, 204, 304, empty) is complete at its head; the
        // server may never poll it.
        if body.inner.is_end_stream() {
            body.complete();
        }
        body
    }

    /// The response ended: its time is recorded, its slot released (once).
    fn complete(&mut self) {
        if let Some((start, stats)) = self.timing.take() {
            stats.upstream_rq_time.observe(start.elapsed());
        }
        self.active = None;
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.complete(),
            // The last frame (data with END_STREAM, or trailers): complete now rather than
            // on a poll that may never come.
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.complete(),
            // Reset mid-body: the stream is over, incomplete.
            Poll::Ready(Some(Err(_))) => {
                self.timing = None;
                self.active = None;
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
