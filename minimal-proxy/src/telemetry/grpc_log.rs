//! The gRPC HTTP access loggers: one task per log name, cluster and buffer settings, shared by
//! every listener that configures it (as Envoy shares a logger per configuration). Requests
//! hand records through a bounded queue ([`LogQueue`]; full: dropped and counted); the task
//! builds the entries, batches them up to `buffer_size_bytes` or `buffer_flush_interval`, and
//! streams them to `envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs`, the node
//! and log name in the first message of each stream. An idle logger closes its stream.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use envoy_types::pb::envoy::{
    config::core::v3::Node,
    data::accesslog::v3::HttpAccessLogEntry,
    service::accesslog::v3::{
        StreamAccessLogsMessage,
        access_log_service_client::AccessLogServiceClient,
        stream_access_logs_message::{HttpAccessLogEntries, Identifier, LogEntries},
    },
};
use futures::FutureExt;
use prost::Message;
use tokio::sync::mpsc;

use super::{
    entry::{EntryFields, http_entry},
    uplink::Uplink,
};
use crate::{access_log::Record, bootstrap::Target, config::GrpcAccessLog, stats::GrpcLogStats};

/// Records queued per logger before new ones are dropped.
const QUEUE: usize = 4096;

/// A logger with nothing to send this long closes its stream (the next entry reopens it).
const IDLE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "gRPC access log '{log_name}' names cluster '{cluster}', which is not a static cluster \
         with a socket address in the bootstrap; minimal-proxy sends access logs to static \
         clusters only (use the bootstrap's xDS cluster)"
    )]
    UnknownCluster { log_name: String, cluster: String },
}

/// One record on its way to a logger, with where its captured headers are.
#[derive(Debug)]
pub struct LogMessage {
    pub record: Arc<Record>,
    pub fields: Arc<EntryFields>,
}

/// The request path's end of a logger: never waits.
#[derive(Debug, Clone)]
pub struct LogQueue {
    tx: mpsc::Sender<LogMessage>,
    /// `access_logs.grpc_access_log.logs_written` / `_dropped`.
    stats: Arc<GrpcLogStats>,
}

impl LogQueue {
    /// Queues a record; a full queue drops it (counted; a warning on the first drop).
    pub fn push(&self, message: LogMessage) {
        match self.tx.try_send(message) {
            Ok(()) => self.stats.logs_written.inc(),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.stats.logs_dropped.get() == 0 {
                    tracing::warn!("gRPC access log queue full; records are being dropped");
                }
                self.stats.logs_dropped.inc();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.stats.logs_dropped.inc(),
        }
    }
}

/// Every logger of the process, by configuration; kept by the listener manager.
#[derive(Debug, Default)]
pub struct GrpcLoggers {
    /// The node sent in each stream's identifier.
    node: Node,
    /// The bootstrap's static clusters a logger may send to.
    targets: BTreeMap<String, Target>,
    stats: Arc<GrpcLogStats>,
    loggers: Mutex<HashMap<Key, LogQueue>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    log_name: String,
    cluster: String,
    flush_interval: Duration,
    buffer_size: u32,
    initial_metadata: Vec<(String, String)>,
}

impl GrpcLoggers {
    pub fn new(
        node: Node,
        targets: BTreeMap<String, Target>,
        stats: Arc<GrpcLogStats>,
    ) -> GrpcLoggers {
        GrpcLoggers {
            node,
            targets,
            stats,
            loggers: Mutex::default(),
        }
    }

    /// The queue of the logger for `config`, starting the logger on first use (needs a
    /// tokio runtime).
    pub fn queue(&self, config: &GrpcAccessLog) -> Result<LogQueue, Error> {
        let Some(target) = self.targets.get(&config.cluster) else {
            return Err(Error::UnknownCluster {
                log_name: config.log_name.clone(),
                cluster: config.cluster.clone(),
            });
        };
        let key = Key {
            log_name: config.log_name.clone(),
            cluster: config.cluster.clone(),
            flush_interval: config.buffer_flush_interval,
            buffer_size: config.buffer_size_bytes,
            initial_metadata: config.initial_metadata.clone(),
        };
        let mut loggers = self.loggers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = loggers.get(&key) {
            return Ok(queue.clone());
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let queue = LogQueue {
            tx,
            stats: self.stats.clone(),
        };
        let metadata = key.initial_metadata.clone();
        let uplink = Uplink::new(
            format!("access log '{}'", key.log_name),
            key.cluster.clone(),
            target.clone(),
            std::sync::Arc::new(move |channel, messages| {
                let request = crate::xds::with_metadata(messages, &metadata);
                async move {
                    AccessLogServiceClient::new(channel)
                        .stream_access_logs(request)
                        .await
                        .map(|_| ())
                }
                .boxed()
            }),
        );
        tokio::spawn(run(rx, uplink, self.node.clone(), key.clone()));
        loggers.insert(key, queue.clone());
        Ok(queue)
    }
}

/// One logger: batch, flush on size or interval, close the stream when idle.
async fn run(
    mut rx: mpsc::Receiver<LogMessage>,
    mut uplink: Uplink<StreamAccessLogsMessage>,
    node: Node,
    key: Key,
) {
    let mut batch: Vec<HttpAccessLogEntry> = Vec::new();
    let mut bytes = 0usize;
    let mut last_sent = Instant::now();
    let mut ticks = tokio::time::interval(key.flush_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = rx.recv() => {
                let Some(message) = message else { break };
                let entry = http_entry(&message.record, &message.fields);
                bytes += entry.encoded_len();
                batch.push(entry);
                if bytes >= key.buffer_size as usize {
                    send(&mut uplink, &node, &key.log_name, &mut batch);
                    bytes = 0;
                    last_sent = Instant::now();
                }
            }
            _ = ticks.tick() => {
                if !batch.is_empty() {
                    send(&mut uplink, &node, &key.log_name, &mut batch);
                    bytes = 0;
                    last_sent = Instant::now();
                } else if last_sent.elapsed() >= IDLE {
                    uplink.close();
                }
            }
        }
    }
    if !batch.is_empty() {
        send(&mut uplink, &node, &key.log_name, &mut batch);
    }
}

fn send(
    uplink: &mut Uplink<StreamAccessLogsMessage>,
    node: &Node,
    log_name: &str,
    batch: &mut Vec<HttpAccessLogEntry>,
) {
    let entries = std::mem::take(batch);
    uplink.send(|first| StreamAccessLogsMessage {
        identifier: first.then(|| Identifier {
            node: Some(node.clone()),
            log_name: log_name.to_string(),
        }),
        log_entries: Some(LogEntries::HttpLogs(HttpAccessLogEntries {
            log_entry: entries,
        })),
    });
}
