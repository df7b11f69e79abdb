//! The upstream response body: hyper's body, carrying the request's books to the end of the
//! response as Envoy keeps them (`upstream_rq_active` and `upstream_rq_time` end with the
//! response's last frame, not its head), and handing an HTTP/1.1 connection back to its pool
//! at that end.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use hyper::{
    body::{Body, Frame, Incoming, SizeHint},
    client::conn::http1,
};
use tokio::time::Instant;

use super::{Body as UpstreamBody, circuit_breaker::Active, host::HostState, pool::HostPool};
use crate::stats::ClusterStats;

/// An upstream response's body, as [`super::Cluster::send`] returns it.
///
/// Holds (moved in, nothing allocated) the request's active slot, its start time and, for
/// HTTP/1.1, its connection: at the end of the stream it records `upstream_rq_time` (as
/// Envoy's router does when the upstream response completes), releases the slot, then hands
/// the connection back to the pool (in that order: a request woken by the connection finds
/// room under `max_requests`). Dropped before its end (a reset, a retry that gave it up, a
/// downstream gone) it releases the slot and closes the connection (it is mid-response) but
/// records no time, as Envoy records none for a response that did not complete.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Incoming,
    /// The request's `upstream_rq_active` slot (counted against `max_requests`), held until
    /// the response ends.
    active: Option<Active>,
    /// The HTTP/1.1 connection that carries the response and the host whose pool it goes
    /// back to once the response ends; `None` for HTTP/2 (multiplexed, never checked out).
    connection: Option<(http1::SendRequest<UpstreamBody>, Arc<HostState>)>,
    /// When the request went out, and where its time goes; taken once recorded.
    timing: Option<(Instant, Arc<ClusterStats>)>,
}

impl ResponseBody {
    pub(crate) fn new(
        inner: Incoming,
        active: Active,
        connection: Option<(http1::SendRequest<UpstreamBody>, Arc<HostState>)>,
        start: Instant,
        stats: Arc<ClusterStats>,
    ) -> ResponseBody {
        let mut body = ResponseBody {
            inner,
            active: Some(active),
            connection,
            timing: Some((start, stats)),
        };
        // A response without a body (HEAD, 204, 304, empty) is complete at its head; the
        // server may never poll it.
        if body.inner.is_end_stream() {
            body.complete();
        }
        body
    }

    /// The response ended: its time is recorded, its slot released, then its connection
    /// handed back (once).
    fn complete(&mut self) {
        if let Some((start, stats)) = self.timing.take() {
            stats.upstream_rq_time.observe(start.elapsed());
        }
        self.active = None;
        if let Some((sender, host)) = self.connection.take() {
            HostPool::give_back(&host, sender);
        }
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
                self.connection = None;
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
