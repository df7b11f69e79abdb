//! JSON-lines access logs, one line per HTTP request or TCP connection, written off the
//! request path: a request captures what its formats need into a [`Record`] and hands it to a
//! writer thread per file over a bounded channel (a full channel drops the record rather than
//! slow the request); the thread renders, writes and flushes whenever it has caught up.
//!
//! Formats are Envoy `json_format`s of command operators ([`supported_operator`] says which);
//! a log without a format writes the proxy's default record (Envoy's default fields as JSON).

mod format;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    fmt,
    fs::OpenOptions,
    io::{BufWriter, Write},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError},
    },
    time::{Duration, SystemTime},
};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{config::AccessLog, http::route_table::RequestView};
use format::Format;

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

// === records ===

/// Envoy's response flags, as far as the proxy tracks them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFlags(u16);

impl ResponseFlags {
    /// UH: no healthy upstream host.
    pub const NO_HEALTHY_UPSTREAM: ResponseFlags = ResponseFlags(1);
    /// UT: upstream request timeout.
    pub const UPSTREAM_TIMEOUT: ResponseFlags = ResponseFlags(1 << 1);
    /// UR: upstream remote reset.
    pub const UPSTREAM_REMOTE_RESET: ResponseFlags = ResponseFlags(1 << 2);
    /// UF: upstream connection failure.
    pub const UPSTREAM_CONNECT_FAILURE: ResponseFlags = ResponseFlags(1 << 3);
    /// UC: upstream connection termination.
    pub const UPSTREAM_CONNECTION_TERMINATION: ResponseFlags = ResponseFlags(1 << 4);
    /// UO: upstream overflow (circuit breaker).
    pub const UPSTREAM_OVERFLOW: ResponseFlags = ResponseFlags(1 << 5);
    /// NR: no route.
    pub const NO_ROUTE: ResponseFlags = ResponseFlags(1 << 6);
    /// DC: downstream connection termination.
    pub const DOWNSTREAM_CONNECTION_TERMINATION: ResponseFlags = ResponseFlags(1 << 7);
    /// URX: upstream retry limit exceeded.
    pub const UPSTREAM_RETRY_LIMIT_EXCEEDED: ResponseFlags = ResponseFlags(1 << 8);
    /// NC: no cluster.
    pub const NO_CLUSTER: ResponseFlags = ResponseFlags(1 << 9);

    /// In Envoy's print order.
    const NAMES: [(ResponseFlags, &'static str); 10] = [
        (Self::NO_HEALTHY_UPSTREAM, "UH"),
        (Self::UPSTREAM_TIMEOUT, "UT"),
        (Self::UPSTREAM_REMOTE_RESET, "UR"),
        (Self::UPSTREAM_CONNECT_FAILURE, "UF"),
        (Self::UPSTREAM_CONNECTION_TERMINATION, "UC"),
        (Self::UPSTREAM_OVERFLOW, "UO"),
        (Self::NO_ROUTE, "NR"),
        (Self::DOWNSTREAM_CONNECTION_TERMINATION, "DC"),
        (Self::UPSTREAM_RETRY_LIMIT_EXCEEDED, "URX"),
        (Self::NO_CLUSTER, "NC"),
    ];

    pub fn insert(&mut self, other: ResponseFlags) {
        self.0 |= other.0;
    }

    pub fn contains(self, other: ResponseFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for ResponseFlags {
    /// `-` when none, else the short names joined with `,` as Envoy prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// What one request (or TCP connection) leaves for its access log line.
#[derive(Debug, Clone)]
pub struct Record {
    pub start: SystemTime,
    /// `HTTP/1.1`, `HTTP/2`; `None` for TCP.
    pub protocol: Option<&'static str>,
    /// `None` for TCP (rendered as 0, as Envoy does).
    pub response_code: Option<u16>,
    pub flags: ResponseFlags,
    pub duration: Duration,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_cluster: Option<String>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub downstream_remote: SocketAddr,
    pub downstream_local: Option<SocketAddr>,
    pub route_name: Option<String>,
    /// Values of [`AccessLogs`]' request header keys, in order.
    pub request_headers: Vec<Option<HeaderValue>>,
    /// Values of [`AccessLogs`]' response header keys, in order.
    pub response_headers: Vec<Option<HeaderValue>>,
}

impl Record {
    /// A record of a connection or request that starts now.
    pub fn new(downstream_remote: SocketAddr, downstream_local: Option<SocketAddr>) -> Record {
        Record {
            start: SystemTime::now(),
            protocol: None,
            response_code: None,
            flags: ResponseFlags::default(),
            duration: Duration::ZERO,
            upstream_host: None,
            upstream_cluster: None,
            bytes_received: 0,
            bytes_sent: 0,
            downstream_remote,
            downstream_local,
            route_name: None,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
        }
    }
}

/// A header an operator reads: `REQ(X?Y)` reads `X`, or `Y` when `X` is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderKey {
    primary: HeaderSource,
    alternative: Option<HeaderSource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HeaderSource {
    Method,
    Path,
    Authority,
    Scheme,
    Status,
    Name(HeaderName),
}

impl HeaderKey {
    fn new(primary: &str, alternative: Option<&str>) -> Option<HeaderKey> {
        Some(HeaderKey {
            primary: HeaderSource::new(primary)?,
            alternative: match alternative {
                Some(a) => Some(HeaderSource::new(a)?),
                None => None,
            },
        })
    }
}

impl HeaderSource {
    fn new(name: &str) -> Option<HeaderSource> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            ":method" => HeaderSource::Method,
            ":path" => HeaderSource::Path,
            ":authority" | "host" => HeaderSource::Authority,
            ":scheme" => HeaderSource::Scheme,
            ":status" => HeaderSource::Status,
            _ => HeaderSource::Name(HeaderName::from_bytes(lower.as_bytes()).ok()?),
        })
    }

    fn request_value(&self, req: &RequestView<'_>) -> Option<HeaderValue> {
        let text = match self {
            HeaderSource::Method => req.method.as_str(),
            HeaderSource::Path => req.path_and_query,
            HeaderSource::Authority => req.authority,
            HeaderSource::Scheme => req.scheme,
            HeaderSource::Status => return None,
            HeaderSource::Name(name) => return req.headers.get(name).cloned(),
        };
        HeaderValue::from_str(text).ok()
    }

    fn response_value(&self, status: u16, headers: &HeaderMap) -> Option<HeaderValue> {
        match self {
            HeaderSource::Status => Some(HeaderValue::from(status)),
            HeaderSource::Name(name) => headers.get(name).cloned(),
            _ => None,
        }
    }
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
    request_keys: Vec<HeaderKey>,
    response_keys: Vec<HeaderKey>,
    /// Warned once that a queue was full.
    warned: AtomicBool,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message").finish_non_exhaustive()
    }
}

impl AccessLogs {
    /// `None` when there is no log to write (nothing to capture on the request path).
    pub fn new(configs: &[AccessLog], files: &Files) -> Result<Option<Arc<AccessLogs>>, Error> {
        if configs.is_empty() {
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
        Ok(Some(Arc::new(AccessLogs {
            sinks,
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
