//! The admin API on the bootstrap's admin address, in Envoy's shapes so tools and the test
//! harness read both proxies the same way: `GET /ready`, `/config_dump`, `/clusters`,
//! `/stats` (text, `?format=json`), `/stats/prometheus`, `/server_info`; `POST
//! /quitquitquit`.
//!
//! Plain hyper, HTTP/1.1: the admin API is for people and scripts, and keeping it off the
//! request path's code keeps each simple.

mod clusters;
mod config_dump;
mod stats;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, convert::Infallible, sync::Arc};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{net::TcpListener, sync::Notify};
use xds_core::drain;

use crate::{bootstrap::Bootstrap, runtime::Runtime, xds};

/// What the admin handlers read.
#[derive(Debug, Clone)]
pub struct State {
    pub bootstrap: Arc<Bootstrap>,
    pub xds: xds::Handle,
    pub runtime: Runtime,
    /// Notified by `POST /quitquitquit`: the process shuts down as on SIGTERM.
    pub quit: Arc<Notify>,
    /// When the process started, for `/server_info`'s uptime.
    pub started: std::time::Instant,
}

/// Serves the admin API on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, state: State, mut shutdown: drain::Watch) {
    let state = Arc::new(state);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    continue;
                }
            },
            () = shutdown.signaled() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req)) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "admin connection ended");
            }
        });
    }
}

/// Answers one admin request (no I/O: every page is rendered from memory).
pub fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    route(
        state,
        req.method(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
    )
}

/// The router, separate from hyper's request type so tests call it directly.
pub fn route(state: &State, method: &Method, path: &str, query: &str) -> Response<Full<Bytes>> {
    let query = parse_query(query);
    let read = method == Method::GET || method == Method::HEAD;
    match path {
        "/ready" if read => ready(state),
        "/config_dump" if read => config_dump::render(state, &query),
        "/clusters" if read => clusters::render(state, &query),
        "/stats" if read => stats::render(state, &query),
        "/stats/prometheus" if read => stats::prometheus(state),
        "/server_info" if read => server_info(state),
        "/quitquitquit" if method == Method::POST => {
            state.quit.notify_one();
            text(StatusCode::OK, "OK\n")
        }
        "/ready" | "/config_dump" | "/clusters" | "/stats" | "/stats/prometheus"
        | "/server_info" | "/quitquitquit" => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: read pages take GET, /quitquitquit takes POST\n",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "invalid path. admin commands are: /ready /config_dump /clusters /stats \
             /stats/prometheus /server_info /quitquitquit\n",
        ),
    }
}

/// `200 LIVE` once the first configuration warmed; before, `503` with Envoy's state name
/// (`PRE_INITIALIZING` while clusters initialise, `INITIALIZING` while listeners do).
fn ready(state: &State) -> Response<Full<Bytes>> {
    match state.xds.server_state() {
        "LIVE" => text(StatusCode::OK, "LIVE\n"),
        other => text(StatusCode::SERVICE_UNAVAILABLE, &format!("{other}\n")),
    }
}

/// The parts of Envoy's `/server_info` a script looks at.
fn server_info(state: &State) -> Response<Full<Bytes>> {
    let node = &state.bootstrap.node;
    let body = serde_json::json!({
        "version": concat!("minimal-proxy/", env!("CARGO_PKG_VERSION")),
        "state": state.xds.server_state(),
        "uptime_current_epoch": format!("{}s", state.started.elapsed().as_secs()),
        "node": { "id": node.id, "cluster": node.cluster },
        "command_line_options": {},
    });
    json(StatusCode::OK, &body)
}

/// `a=1&b` → `{a: "1", b: ""}` (the admin API's parameters are plain words).
fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=UTF-8", body.to_string())
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut text = serde_json::to_string_pretty(body).unwrap_or_default();
    text.push('\n');
    respond(status, "application/json", text)
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
