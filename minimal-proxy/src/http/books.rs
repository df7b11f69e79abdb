//! One request's books: opened when it arrives, closed exactly once (when its response body
//! ends, or when the request is dropped before): `downstream_rq_active` and `_time`, and the
//! access log record with what the router learnt on the way ([`Exchange`]).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use crate::{
    access_log::{AccessLogs, Record, ResponseFlags},
    stats::HttpStats,
};

/// What the router learns for the access log.
#[derive(Debug, Default)]
pub struct Exchange {
    /// Whether the listener logs (the fields below are filled only then).
    pub logging: bool,
    pub flags: ResponseFlags,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_cluster: Option<String>,
}

/// One request's books. Dropped before the response ends (the downstream went away
/// mid-request), it counts and logs the request with Envoy's `DC` flag (and response code 0
/// when no response was made).
#[derive(Debug)]
pub struct Completion {
    start: Instant,
    stats: Arc<HttpStats>,
    /// Filled by the router.
    pub exchange: Exchange,
    /// When the listener writes access logs.
    pub log: Option<PendingLog>,
    closed: bool,
}

/// A request's access log record, completed when the response ends.
#[derive(Debug)]
pub struct PendingLog {
    pub logs: Arc<AccessLogs>,
    pub record: Box<Record>,
    /// The request body's byte count, when it was streamed upstream.
    pub received: Option<Arc<AtomicU64>>,
}

impl Completion {
    /// Counts the request as active until the books close.
    pub fn open(start: Instant, stats: Arc<HttpStats>, log: Option<PendingLog>) -> Completion {
        stats.downstream_rq_total.inc();
        stats.downstream_rq_active.inc();
        Completion {
            start,
            stats,
            exchange: Exchange {
                logging: log.is_some(),
                ..Exchange::default()
            },
            log,
            closed: false,
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Closes the books (once): time, active gauge, and the log line.
    pub fn close(&mut self, bytes_sent: u64, flags: ResponseFlags) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        self.stats.downstream_rq_time.observe(elapsed);
        // Whichever side the stream idle timeout cut (the wait for the upstream's head, or a
        // stalled body), the stream ends here once: counted once.
        if self
            .exchange
            .flags
            .contains(ResponseFlags::STREAM_IDLE_TIMEOUT)
            || flags.contains(ResponseFlags::STREAM_IDLE_TIMEOUT)
        {
            self.stats.downstream_rq_idle_timeout.inc();
        }
        self.stats.downstream_rq_active.dec();
        if let Some(PendingLog {
            logs,
            mut record,
            received,
        }) = self.log.take()
        {
            record.duration = elapsed;
            record.bytes_sent = bytes_sent;
            record.flags = self.exchange.flags;
            record.flags.insert(flags);
            record.upstream_host = self.exchange.upstream_host;
            record.upstream_cluster = self.exchange.upstream_cluster.take();
            if let Some(received) = received {
                record.bytes_received = received.load(Ordering::Relaxed);
            }
            logs.log(*record);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.close(0, ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION);
    }
}
