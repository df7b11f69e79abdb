//! A real HTTP/1.1 upstream on 127.0.0.1 that says who it is: every request gets `200`, the
//! header `x-upstream: <name>` and the JSON body
//! `{"upstream": <name>, "path": <request path>, "headers": {<lowercased name>: <value>}}`,
//! so a test sees where Envoy sent a request and what it looked like on arrival.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderName, HeaderValue},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

/// A running upstream; it stops serving when dropped.
pub struct Upstream {
    name: String,
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    shutdown: Option<oneshot::Sender<()>>,
}

#[derive(Clone)]
struct Shared {
    name: Arc<str>,
    hits: Arc<AtomicU64>,
}

impl Upstream {
    /// Binds 127.0.0.1 on an ephemeral port and serves on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime, or if the port cannot be bound.
    pub fn start(name: &str) -> Upstream {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind an upstream on 127.0.0.1");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking upstream socket");
        let addr = std_listener.local_addr().expect("upstream address");
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .expect("Upstream::start must run inside a tokio runtime");
        let hits = Arc::new(AtomicU64::new(0));
        let shared = Shared {
            name: name.into(),
            hits: hits.clone(),
        };
        let app = Router::new().fallback(echo).with_state(shared);
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
            name: name.to_string(),
            addr,
            hits,
            shutdown: Some(shutdown),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests answered so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn echo(State(shared): State<Shared>, request: Request) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let mut headers = Map::new();
    for (name, value) in request.headers() {
        // HeaderName is already lowercase; a repeated header keeps its values comma-joined.
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(seen)) => {
                seen.push_str(", ");
                seen.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    let body = json!({
        "upstream": &*shared.name,
        "path": request.uri().path(),
        "headers": headers,
    });
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&shared.name) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-upstream"), value);
    }
    response
}
