//! Real upstreams on 127.0.0.1 that say who they are and do what a test asks.
//!
//! [`Upstream`] answers HTTP/1.1 and h2c (HTTP/2 with prior knowledge) on one port. Every
//! request gets the header `x-upstream: <name>` and the JSON body
//! `{"upstream", "path", "version", "headers", "attempt", "body_len", "body_fnv"}` (what
//! reached it, and how), so a test sees where the proxy sent a request and what it looked like
//! on arrival. `200` unless:
//!
//! - `GET /healthz` is the health check: `200`, or `503` after [`Upstream::set_healthy`]
//!   `(false)`; counted apart ([`Upstream::health_checks`]), never in [`Upstream::hits`].
//! - [`Upstream::set_failing`] `(true)`: every request gets `503`.
//! - `x-test-key: <k>` numbers the attempts of one logical request (`"attempt"`: 1, 2, …), for
//!   retries: `x-fail-attempts: <n>` answers attempts 1..=n with `503`;
//!   `x-delay-ms: <ms>` delays the answer, only for attempts 1..=`x-delay-attempts` when given.
//! - `x-hold: 1` holds the request until [`Upstream::release_held`] (at most 30 s).
//!
//! [`tcp::TcpUpstream`] is a TCP echo that greets with its name; [`grpc::GrpcUpstream`] a gRPC
//! health service (`grpc.health.v1.Health/Check`) with a client for it.

pub mod grpc;
pub mod tcp;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};
use tokio::sync::{oneshot, watch};

/// The largest request body an upstream reads.
const MAX_BODY: usize = 16 << 20;

/// The longest a request with `x-hold` waits for [`Upstream::release_held`].
const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// A running HTTP upstream; it stops serving when dropped.
pub struct Upstream {
    addr: SocketAddr,
    state: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

/// What the handler and the test share.
struct Shared {
    name: String,
    /// Requests answered, health checks excluded.
    hits: AtomicU64,
    health_checks: AtomicU64,
    /// The headers of the last health check, as JSON.
    last_health_check: Mutex<Value>,
    in_flight: AtomicU64,
    /// The most requests in flight at once so far.
    max_in_flight: AtomicU64,
    /// Every request (not health checks) gets 503 while set.
    failing: AtomicBool,
    /// `/healthz` answers 503 while set.
    unhealthy: AtomicBool,
    /// Attempts seen per `x-test-key`.
    attempts: Mutex<HashMap<String, u64>>,
    /// Requests holding now, and the release generation they wait to change.
    held: AtomicU64,
    release: watch::Sender<u64>,
}

impl Upstream {
    /// Binds 127.0.0.1 on an ephemeral port and serves on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime, or if the port cannot be bound.
    pub fn start(name: &str) -> Upstream {
        let listener = bind_local();
        let addr = listener.local_addr().expect("upstream address");
        let state = Arc::new(Shared {
            name: name.to_string(),
            hits: AtomicU64::new(0),
            health_checks: AtomicU64::new(0),
            last_health_check: Mutex::new(Value::Null),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            unhealthy: AtomicBool::new(false),
            attempts: Mutex::new(HashMap::new()),
            held: AtomicU64::new(0),
            release: watch::Sender::new(0),
        });
        let app = Router::new().fallback(answer).with_state(state.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                eprintln!("upstream on {addr} stopped with an error: {e}");
            }
        });
        Upstream {
            addr,
            state,
            shutdown: Some(shutdown),
        }
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests answered so far (any status), health checks excluded.
    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Health checks (`GET /healthz`) answered so far.
    pub fn health_checks(&self) -> u64 {
        self.state.health_checks.load(Ordering::SeqCst)
    }

    /// The headers (lowercased names) of the last health check, `Null` before the first.
    pub fn last_health_check(&self) -> Value {
        self.state.last_health_check.lock().unwrap().clone()
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> u64 {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever in flight at once.
    pub fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// While `true`, every request gets `503`.
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// While `false`, `GET /healthz` gets `503`.
    pub fn set_healthy(&self, healthy: bool) {
        self.state.unhealthy.store(!healthy, Ordering::SeqCst);
    }

    /// Requests with `x-hold` waiting right now.
    pub fn held(&self) -> u64 {
        self.state.held.load(Ordering::SeqCst)
    }

    /// Lets every held request finish.
    pub fn release_held(&self) {
        self.state
            .release
            .send_modify(|generation| *generation += 1);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.release_held();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A tokio listener on 127.0.0.1 and an ephemeral port.
pub(crate) fn bind_local() -> tokio::net::TcpListener {
    let std_listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind an upstream on 127.0.0.1");
    std_listener
        .set_nonblocking(true)
        .expect("non-blocking upstream socket");
    tokio::net::TcpListener::from_std(std_listener)
        .expect("an upstream must start inside a tokio runtime")
}

/// A number from a request header, if present and numeric.
fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Counts one request in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.uri().path() == "/healthz" {
        *shared.last_health_check.lock().unwrap() = Value::Object(header_map(request.headers()));
        shared.health_checks.fetch_add(1, Ordering::SeqCst);
        let status = if shared.unhealthy.load(Ordering::SeqCst) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        return (status, shared.name.clone()).into_response();
    }
    let _in_flight = InFlight::enter(&shared);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let headers = &parts.headers;
    let attempt = match headers.get("x-test-key").and_then(|k| k.to_str().ok()) {
        Some(key) => {
            let mut attempts = shared.attempts.lock().unwrap();
            let n = attempts.entry(key.to_string()).or_default();
            *n += 1;
            *n
        }
        None => 1,
    };
    if let Some(ms) = header_number(headers, "x-delay-ms") {
        let delayed = header_number(headers, "x-delay-attempts").is_none_or(|k| attempt <= k);
        if delayed {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
    if headers.contains_key("x-hold") {
        let mut release = shared.release.subscribe();
        shared.held.fetch_add(1, Ordering::SeqCst);
        let _ = tokio::time::timeout(HOLD_LIMIT, release.changed()).await;
        shared.held.fetch_sub(1, Ordering::SeqCst);
    }
    let failed = shared.failing.load(Ordering::SeqCst)
        || header_number(headers, "x-fail-attempts").is_some_and(|n| attempt <= n);
    let body = json!({
        "upstream": &shared.name,
        "path": parts.uri.path(),
        "version": format!("{:?}", parts.version),
        "headers": header_map(headers),
        "attempt": attempt,
        "failed": failed,
        "body_len": body.len(),
        "body_fnv": crate::net::fnv1a(&body),
    });
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let status = if failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&shared.name) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-upstream"), value);
    }
    response
}

/// The request headers as a JSON object; a repeated header keeps its values comma-joined.
fn header_map(headers: &HeaderMap) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in headers {
        // HeaderName is already lowercase.
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match map.get_mut(name.as_str()) {
            Some(Value::String(seen)) => {
                seen.push_str(", ");
                seen.push_str(&value);
            }
            _ => {
                map.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    map
}
