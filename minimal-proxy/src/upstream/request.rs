//! One request's way through a cluster: breakers, a pooled connection, the exchange, and the
//! books (stats, host counters, outlier detection) whatever the outcome; and the TCP proxy's
//! connection.

use std::sync::Arc;

use http::{
    HeaderValue, Request, Response, Uri, Version, header,
    uri::{Authority, PathAndQuery, Scheme},
};
use tokio::time::Instant;

use crate::config::UpstreamProtocol;

use super::{
    Body, ConnectionGuard, Error,
    circuit_breaker::{Active, Pending},
    host::Host,
    membership::Shared,
    pool::{self, HostPool},
    response::ResponseBody,
};

/// Sends `request` to `host` and keeps the books (see [`super::Cluster::send`]).
pub(crate) async fn send(
    shared: &Shared,
    host: &Arc<Host>,
    request: Request<Body>,
) -> Result<Response<ResponseBody>, Error> {
    let result = exchange(shared, host, request).await;
    match &result {
        Ok(response) => charge(shared, host, response.status().as_u16(), true),
        // A breaker is the cluster's state, not the host's: no outlier charge (as Envoy).
        Err(Error::Overflow(_)) => charge(shared, host, 503, false),
        Err(Error::NoHealthyUpstream) => {}
        // Connect failures and resets count as a 503 from the host.
        Err(_) => charge(shared, host, 503, true),
    }
    result
}

/// Charges one outcome: the cluster's code stats, the host's error or success count, and
/// (when `outlier`) the host's consecutive-5xx run.
pub(crate) fn charge(shared: &Shared, host: &Host, code: u16, outlier: bool) {
    shared.stats.charge_upstream_code(code);
    if code >= 500 {
        host.state.stats.rq_error.inc();
    } else {
        host.state.stats.rq_success.inc();
    }
    if outlier {
        outlier_outcome(shared, host, code);
    }
}

async fn exchange(
    shared: &Shared,
    host: &Arc<Host>,
    request: Request<Body>,
) -> Result<Response<ResponseBody>, Error> {
    let breakers = &shared.breakers;
    let protocol = shared.config.protocol;
    let timeout = shared.config.connect_timeout;
    let state = &host.state;
    let mut request = prepare(request, protocol, host);
    // As in Envoy's pools: a request without a free connection waits as pending (within
    // `max_pending_requests`) for one to open or come back; `max_requests` is checked when
    // a connection takes it (see `Active::attach`).
    match protocol {
        UpstreamProtocol::Http1 => {
            // A kept-alive connection may turn out closed before the request went out: then
            // (only then) the request is sent once more on another connection.
            for attempt in 0..2 {
                let mut sender = match state.pool.take_idle() {
                    Some(sender) => sender,
                    None => {
                        let _pending = Pending::try_new(breakers)?;
                        state
                            .pool
                            .h1(breakers, state, timeout, shared.tls.as_ref())
                            .await?
                    }
                };
                let active = match Active::attach(breakers, state) {
                    Ok(active) => active,
                    Err(e) => {
                        // Refused: the connection goes back to the pool unused.
                        HostPool::give_back(state, sender);
                        return Err(e);
                    }
                };
                let start = Instant::now();
                match sender.try_send_request(request).await {
                    Ok(response) => {
                        // The request stays active, and the connection busy, until the
                        // response body ends; then the body hands the connection back.
                        let stats = shared.stats.clone();
                        let connection = Some((sender, state.clone()));
                        return Ok(response
                            .map(|b| ResponseBody::new(b, active, connection, start, stats)));
                    }
                    Err(mut e) => match e.take_message() {
                        Some(unsent) if attempt == 0 => request = unsent,
                        _ => return Err(reset(shared, e.into_error())),
                    },
                }
            }
            Err(Error::Reset(
                "connection closed before the request was sent".into(),
            ))
        }
        UpstreamProtocol::Http2 => {
            let mut sender = match state.pool.shared_h2() {
                Some(sender) => sender,
                None => {
                    let _pending = Pending::try_new(breakers)?;
                    state
                        .pool
                        .h2(breakers, state, timeout, shared.tls.as_ref())
                        .await?
                }
            };
            // HTTP/2 streams end out of sight of the pool: the response body holds the slot
            // until the stream ends.
            let active = Active::attach(breakers, state)?;
            let start = Instant::now();
            match sender.send_request(request).await {
                Ok(response) => {
                    let stats = shared.stats.clone();
                    Ok(response.map(|b| ResponseBody::new(b, active, None, start, stats)))
                }
                Err(e) => {
                    if sender.is_closed() {
                        state.pool.drop_h2();
                    }
                    Err(reset(shared, e))
                }
            }
        }
    }
}

fn reset(shared: &Shared, e: hyper::Error) -> Error {
    shared.stats.upstream_rq_rx_reset.inc();
    Error::Reset(e.to_string())
}

/// Puts the request in the form the upstream protocol needs. HTTP/1.1: origin-form target and
/// a `Host` header (kept if present, else the URI's authority, else the host's address).
/// HTTP/2: `:scheme` http, `:authority` from the URI or else the `Host` header (removed) or
/// else the host's address.
fn prepare(request: Request<Body>, protocol: UpstreamProtocol, host: &Host) -> Request<Body> {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri_authority = parts.uri.authority().cloned();
    let address = || Authority::try_from(host.address.to_string()).ok();
    match protocol {
        UpstreamProtocol::Http1 => {
            if !parts.headers.contains_key(header::HOST)
                && let Some(value) = uri_authority
                    .or_else(address)
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                parts.headers.insert(header::HOST, value);
            }
            parts.uri = Uri::from(path);
            parts.version = Version::HTTP_11;
        }
        UpstreamProtocol::Http2 => {
            let from_host = parts
                .headers
                .remove(header::HOST)
                .and_then(|v| Authority::try_from(v.as_bytes()).ok());
            let mut uri = http::uri::Parts::default();
            uri.scheme = Some(Scheme::HTTP);
            uri.authority = uri_authority.or(from_host).or_else(address);
            uri.path_and_query = Some(path);
            if let Ok(built) = Uri::from_parts(uri) {
                parts.uri = built;
            }
            parts.version = Version::HTTP_2;
        }
    }
    Request::from_parts(parts, body)
}

/// A TCP connection to `host` for the TCP proxy (see [`super::Cluster::connect`]).
pub(crate) async fn connect(
    shared: &Shared,
    host: &Arc<Host>,
) -> Result<(crate::tls::Io, ConnectionGuard), Error> {
    let breakers = &shared.breakers;
    if shared.stats.upstream_cx_active.get() >= u64::from(breakers.limits.max_connections) {
        shared.stats.upstream_cx_overflow.inc();
        return Err(Error::Overflow("max_connections"));
    }
    let timeout = shared.config.connect_timeout;
    let tls = shared.tls.as_ref();
    match pool::connect(host.address, timeout, breakers, &host.state, tls).await {
        Ok((stream, guard)) => {
            // Envoy's TCP pool counts each connection as one request, and a connection that
            // opens as a success for outlier detection.
            let guard = guard.with_request(Active::new(breakers, &host.state));
            outlier_outcome(shared, host, 200);
            Ok((stream, guard))
        }
        Err(e) => {
            outlier_outcome(shared, host, 503);
            Err(e)
        }
    }
}

fn outlier_outcome(shared: &Shared, host: &Host, code: u16) {
    if let Some(detector) = &shared.detector
        && host
            .state
            .outlier
            .record(code, detector.config.consecutive_5xx)
    {
        shared.on_consecutive_5xx(host);
    }
}
