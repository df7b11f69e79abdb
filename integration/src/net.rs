//! Talking to processes on 127.0.0.1: ports picked before their listener starts, a plain
//! HTTP client, and one request through a proxy's listener read back as a [`Reply`].

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use reqwest::{Client, Version};
use serde_json::Value;

/// Pause between two polls of a condition.
pub const POLL: Duration = Duration::from_millis(50);

/// A port that was free a moment ago on 127.0.0.1 (bound, read, released), for addresses
/// that must be known before the process that listens on them starts.
pub fn free_port() -> u16 {
    // Ports handed out here are picked now and bound later by another process (the proxy, the
    // server). Taking them below the kernel's ephemeral range (32768+) means no socket bound
    // to port 0 meanwhile can take them; a per-process start spreads concurrent test runs.
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(97) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN);
}

/// A plain HTTP/1.1 client for 127.0.0.1: no proxy from the environment, bounded requests.
pub fn local_client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build an HTTP client")
}

/// An HTTP/2 client for 127.0.0.1 speaking h2c with prior knowledge (no upgrade dance).
pub fn h2c_client() -> Client {
    Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build an h2c client")
}

/// One answer through a proxy: the status, and what the upstream echoed (when it was reached).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The HTTP version of the answer the client got.
    pub version: Version,
    /// The upstream's name, `None` when the proxy answered itself (e.g. 503, 404).
    pub upstream: Option<String>,
    /// The path the upstream saw.
    pub path: Option<String>,
    /// The headers the upstream saw.
    pub headers: Value,
    /// The HTTP version the upstream saw (`"HTTP/1.1"`, `"HTTP/2.0"`).
    pub upstream_version: Option<String>,
    /// Which attempt of this request key the upstream answered (see `upstream.rs`).
    pub attempt: Option<u64>,
    /// The request body the upstream got: its length and [`fnv1a`].
    pub request_body: Option<(u64, String)>,
    /// The response headers the client got, lowercased names.
    pub response_headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    /// A `200` that `upstream` answered.
    pub fn from(&self, upstream: &str) -> bool {
        self.status == 200 && self.upstream.as_deref() == Some(upstream)
    }
}

/// One GET to `127.0.0.1:port` with `client`; `Err` when no HTTP answer came back.
pub async fn send(
    client: &Client,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    let req = client.get(format!("http://127.0.0.1:{port}{path}"));
    exchange(req, headers).await
}

/// One POST of `body` to `127.0.0.1:port` with `client`; `Err` when no HTTP answer came back.
pub async fn post(
    client: &Client,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    let req = client
        .post(format!("http://127.0.0.1:{port}{path}"))
        .body(body);
    exchange(req, headers).await
}

async fn exchange(
    mut req: reqwest::RequestBuilder,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("request failed: {e:?}"))?;
    let status = resp.status().as_u16();
    let version = resp.version();
    let response_headers = resp.headers().clone();
    let body = resp.text().await.map_err(|e| format!("body failed: {e}"))?;
    let echo: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    Ok(Reply {
        status,
        version,
        upstream: echo["upstream"].as_str().map(str::to_string),
        path: echo["path"].as_str().map(str::to_string),
        headers: echo["headers"].clone(),
        upstream_version: echo["version"].as_str().map(str::to_string),
        attempt: echo["attempt"].as_u64(),
        request_body: echo["body_len"]
            .as_u64()
            .zip(echo["body_fnv"].as_str().map(str::to_string)),
        response_headers,
        body,
    })
}

/// FNV-1a (64 bit) of `bytes` as 16 hex digits: how the upstream reports the body it got.
pub fn fnv1a(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}
