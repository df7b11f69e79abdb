//! JSON-lines access logs, one line per HTTP request or TCP connection, written off the
//! request path: a request captures what its formats need into a [`Record`] and hands it to a
//! writer thread per file over a bounded channel (a full channel drops the record rather than
//! slow the request); the thread renders, writes and flushes whenever it has caught up.
//!
//! Formats are Envoy `json_format`s of command operators ([`supported_operator`] says which);
//! a log without a format writes the proxy's default record (Envoy's default fields as JSON).
//!
//! gRPC logs (`envoy.access_loggers.http_grpc`) take the same records, filtered (`filter.rs`),
//! to their logger's queue (see [`crate::telemetry`]).

mod filter;
mod format;
mod record;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    fmt,
    fs::OpenOptions,
    io::{BufWriter, Write},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError},
    },
};

use http::{HeaderMap, HeaderValue};

use crate::{
    config::{AccessLog, GrpcAccessLog},
    http::route_table::{HeaderPredicate, RequestView},
    telemetry::{EntryFields, GrpcLoggers, LogQueue, grpc_log::LogMessage},
};
use format::Format;
use record::HeaderKey;
pub use record::{Record, ResponseFlags};

/// Records queued per file before new ones are dropped.
const QUEUE: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "access log operator {0} is not supported by minimal-proxy; supported: START_TIME, \
         REQ(X), RESP(X), PROTOCOL, RESPONSE_CODE, RESPONSE_FLAGS, DURATION, UPSTREAM_HOST, \
         UPSTREAM_CLUSTER, BYTES_RECEIVED, BYTES_SENT, DOWNSTREAM_REMOTE_ADDRESS, \
         DOWNSTREAM_LOCAL_ADDRESS, ROUTE_NAME"
    )]
    UnsupportedOperator(String),
    #[error(transparent)]
    Grpc(#[from] crate::telemetry::Error),
    #[error(
        "the access log filters of a listener have more than {} header conditions; \
         minimal-proxy evaluates at most that many",
        filter::MAX_HEADER_FILTERS
    )]
    TooManyHeaderFilters,
    #[error(
        "cannot open access log file {path}: {source} (does the directory exist and is it writable?)"
    )]
    Open {
        path: String,
        source: std::io::Error,
    },
}

/// Whether minimal-proxy implements a command operator, given with or without its `%`
/// delimiters (`RESPONSE_CODE`, `%REQ(:PATH)%`, `REQ(X-A?X-B):10`). The conversion layer
/// refuses a format using any other; [`check_format`] checks a whole value.
pub fn supported_operator(op: &str) -> bool {
    let op = op.strip_prefix('%').unwrap_or(op);
    let op = op.strip_suffix('%').unwrap_or(op);
    format::parse_operator(op, &mut Vec::new(), &mut Vec::new()).is_ok()
}

/// Checks one `json_format` value (text with `%OPERATOR%`s); the error names the operator.
pub fn check_format(value: &str) -> Result<(), Error> {
    let fields = [(String::from("field"), value.to_string())].into();
    Format::new(&fields, &mut Vec::new(), &mut Vec::new()).map(|_| ())
}

// === writers ===

/// The writer threads, one per file path, shared by every listener (kept by the listener
/// manager so a listener change reuses the open file).
#[derive(Debug, Default)]
pub struct Files {
    writers: Mutex<HashMap<String, SyncSender<Message>>>,
}

struct Message {
    format: Arc<Format>,
    record: Arc<Record>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message").finish_non_exhaustive()
    }
}

impl Files {
    /// The queue to `path`'s writer, opening the file (append, create) on first use.
    fn writer(&self, path: &str) -> Result<SyncSender<Message>, Error> {
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = writers.get(path) {
            return Ok(tx.clone());
        }
        let out: Box<dyn Write + Send> = match path {
            "/dev/stdout" => Box::new(std::io::stdout()),
            "/dev/stderr" => Box::new(std::io::stderr()),
            _ => Box::new(
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                    .map_err(|source| Error::Open {
                        path: path.to_string(),
                        source,
                    })?,
            ),
        };
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let name = path.to_string();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(&name, out, rx))
            .map_err(|source| Error::Open {
                path: path.to_string(),
                source,
            })?;
        writers.insert(path.to_string(), tx.clone());
        Ok(tx)
    }
}

/// The writer thread: render, write, flush whenever the queue is empty; ends when every
/// sender is gone or the file fails.
fn write_lines(path: &str, out: Box<dyn Write + Send>, rx: Receiver<Message>) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut line = Vec::with_capacity(512);
    let mut next = rx.recv().ok();
    while let Some(message) = next {
        line.clear();
        message.format.render(&message.record, &mut line);
        line.push(b'\n');
        if let Err(e) = out.write_all(&line) {
            tracing::warn!(path, error = %e, "access log write failed; the log stops");
            return;
        }
        next = match rx.try_recv() {
            Ok(m) => Some(m),
            Err(TryRecvError::Empty) => {
                if let Err(e) = out.flush() {
                    tracing::warn!(path, error = %e, "access log flush failed; the log stops");
                    return;
                }
                rx.recv().ok()
            }
            Err(TryRecvError::Disconnected) => None,
        };
    }
    let _ = out.flush();
}

// === impl AccessLogs ===

/// One listener's access logs: their formats, the headers they read, their writers.
#[derive(Debug)]
pub struct AccessLogs {
    sinks: Vec<(Arc<Format>, SyncSender<Message>)>,
    /// gRPC logs: their filter and their logger's queue.
    grpc: Vec<(Option<filter::Filter>, LogQueue)>,
    /// The gRPC logs' filters' header conditions, decided when a request arrives.
    header_filters: Vec<HeaderPredicate>,
    /// Where the gRPC entries' request fields are among the captured headers.
    entry_fields: Arc<EntryFields>,
    request_keys: Vec<HeaderKey>,
    response_keys: Vec<HeaderKey>,
    /// Warned once that a queue was full.
    warned: AtomicBool,
}

impl AccessLogs {
    /// `None` when there is no log to write (nothing to capture on the request path).
    pub fn new(
        configs: &[AccessLog],
        grpc_configs: &[GrpcAccessLog],
        files: &Files,
        loggers: &GrpcLoggers,
    ) -> Result<Option<Arc<AccessLogs>>, Error> {
        if configs.is_empty() && grpc_configs.is_empty() {
            return Ok(None);
        }
        let mut request_keys = Vec::new();
        let mut response_keys = Vec::new();
        let mut sinks = Vec::with_capacity(configs.len());
        for config in configs {
            let format = match &config.json_format {
                Some(fields) => Format::new(fields, &mut request_keys, &mut response_keys)?,
                None => Format::default_format(&mut request_keys, &mut response_keys),
            };
            sinks.push((Arc::new(format), files.writer(&config.path)?));
        }
        let mut header_filters = Vec::new();
        let mut grpc = Vec::with_capacity(grpc_configs.len());
        for config in grpc_configs {
            let filter = match &config.filter {
                Some(f) => Some(
                    filter::compile(f, &mut header_filters).ok_or(Error::TooManyHeaderFilters)?,
                ),
                None => None,
            };
            grpc.push((filter, loggers.queue(config)?));
        }
        let entry_fields = if grpc.is_empty() {
            EntryFields::default()
        } else {
            let mut key = |name: &str| {
                let key = HeaderKey::new(name, None).expect("a valid header name");
                request_keys.push(key);
                request_keys.len() - 1
            };
            EntryFields {
                method: key(":method"),
                scheme: key(":scheme"),
                authority: key(":authority"),
                path: key(":path"),
                user_agent: key("user-agent"),
                referer: key("referer"),
                forwarded_for: key("x-forwarded-for"),
                request_id: key("x-request-id"),
            }
        };
        Ok(Some(Arc::new(AccessLogs {
            sinks,
            grpc,
            header_filters,
            entry_fields: Arc::new(entry_fields),
            request_keys,
            response_keys,
            warned: AtomicBool::new(false),
        })))
    }

    /// The request headers the formats read, in [`Record::request_headers`] order.
    pub fn capture_request(&self, req: &RequestView<'_>) -> Vec<Option<HeaderValue>> {
        self.request_keys
            .iter()
            .map(|k| {
                k.primary
                    .request_value(req)
                    .or_else(|| k.alternative.as_ref()?.request_value(req))
            })
            .collect()
    }

    /// The gRPC log filters' header conditions for this request ([`Record::header_matches`]).
    pub fn header_matches(&self, req: &RequestView<'_>) -> u64 {
        filter::header_bits(&self.header_filters, req)
    }

    /// The response headers the formats read, in [`Record::response_headers`] order.
    pub fn capture_response(&self, status: u16, headers: &HeaderMap) -> Vec<Option<HeaderValue>> {
        self.response_keys
            .iter()
            .map(|k| {
                k.primary
                    .response_value(status, headers)
                    .or_else(|| k.alternative.as_ref()?.response_value(status, headers))
            })
            .collect()
    }

    /// Queues the record for every log; drops it (warning once) when a queue is full.
    pub fn log(&self, record: Record) {
        let record = Arc::new(record);
        for (filter, queue) in &self.grpc {
            if filter.as_ref().is_none_or(|f| f.admits(&record)) {
                queue.push(LogMessage {
                    record: record.clone(),
                    fields: self.entry_fields.clone(),
                });
            }
        }
        for (format, tx) in &self.sinks {
            let message = Message {
                format: format.clone(),
                record: record.clone(),
            };
            match tx.try_send(message) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!("access log queue full; records are being dropped");
                    }
                }
            }
        }
    }
}
