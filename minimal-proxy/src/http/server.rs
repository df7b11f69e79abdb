//! One downstream HTTP connection: hyper serves it (HTTP/1.1 or HTTP/2 by the listener's
//! codec) until it closes or the listener drains (then HTTP/1 answers in-flight requests with
//! `Connection: close` and HTTP/2 sends GOAWAY); each request is routed, forwarded or
//! answered locally, counted, and logged when its response body ends.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use xds_core::drain;

use super::{
    ConnectionManager, Downstream,
    body::ResponseBody,
    books::{Completion, PendingLog},
    headers,
    local_reply::{self, LocalReply},
    route_table::{Action, CompiledRoute, RequestView},
    router,
};
use crate::{
    access_log::Record,
    config::ForwardClientCert,
    rbac::Input,
    stats::{ConnectionGuard, HttpStats},
    tls::{Io, PeerCert, xfcc},
};

const X_FORWARDED_CLIENT_CERT: &str = "x-forwarded-client-cert";

impl ConnectionManager {
    /// Serves one accepted connection to its end, or until `drain` fires and in-flight
    /// requests finish. `peer_cert` is the verified client certificate of an mTLS
    /// connection; `local_uri` the URI SAN this proxy presented on it (TLS only).
    pub async fn serve(
        self: Arc<Self>,
        stream: Io,
        peer: SocketAddr,
        peer_cert: Option<Arc<PeerCert>>,
        local_uri: Option<String>,
        mut drain: drain::Watch,
    ) {
        let _ = stream.tcp().set_nodelay(true);
        let xfcc = match (self.forward_client_cert, &peer_cert) {
            (ForwardClientCert::SanitizeSet { uri }, Some(cert)) => {
                HeaderValue::try_from(xfcc::value(local_uri.as_deref(), cert, uri)).ok()
            }
            _ => None,
        };
        let downstream = Arc::new(Downstream {
            peer,
            peer_cert,
            xfcc,
            // Only access logs read it: spare the system call otherwise.
            local: self
                .logs
                .as_ref()
                .and_then(|_| stream.tcp().local_addr().ok()),
            counted: AtomicBool::new(false),
        });
        let _guard = ConnectionGuard::new(self.stats.clone());
        let manager = self.clone();
        let service = hyper::service::service_fn(move |request| {
            let manager = manager.clone();
            let downstream = downstream.clone();
            async move { Ok::<_, Infallible>(manager.handle(&downstream, request).await) }
        });
        let connection = self.builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = drain.signaled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "downstream connection ended with an error");
        }
    }

    /// One request, start to response headers; the response body closes its books.
    async fn handle(
        &self,
        downstream: &Downstream,
        mut request: Request<Incoming>,
    ) -> Response<ResponseBody> {
        let stats = &self.stats;
        count_protocol(downstream, request.version(), stats);
        if self.logs.is_some() && !request.headers().contains_key(&headers::X_REQUEST_ID) {
            // Envoy's connection manager gives every request an id before anything logs it.
            let id = headers::request_id();
            request
                .headers_mut()
                .insert(headers::X_REQUEST_ID.clone(), id);
        }
        // SANITIZE / SANITIZE_SET: what a client claims is dropped; the proxy's own goes in.
        let headers = request.headers_mut();
        headers.remove(X_FORWARDED_CLIENT_CERT);
        if let Some(value) = &downstream.xfcc {
            headers.insert(X_FORWARDED_CLIENT_CERT, value.clone());
        }
        let grpc = local_reply::is_grpc(request.headers());
        let snapshot = self.runtime.load();
        let table = self.route_table(&snapshot);
        let (matched, log, denied) = {
            let view = view(&request);
            let log = self.logs.as_ref().map(|logs| {
                let mut record = Box::new(Record::new(downstream.peer, downstream.local));
                record.protocol = Some(protocol(request.version()));
                record.request_headers = logs.capture_request(&view);
                record.header_matches = logs.header_matches(&view);
                PendingLog {
                    logs: logs.clone(),
                    record,
                    received: Some(Arc::new(AtomicU64::new(0))),
                }
            });
            let denied = self.rbac.as_ref().and_then(|rbac| {
                let input = Input {
                    peer_cert: downstream.peer_cert.as_deref(),
                    request: Some(&view),
                };
                rbac.check(&input).err()
            });
            (table.as_deref().and_then(|t| t.route(&view)), log, denied)
        };
        let mut books = Completion::open(Instant::now(), stats.clone(), log);
        if let (Some((_, route)), Some(log)) = (matched, &mut books.log) {
            log.record.route_name = route.name.clone();
        }
        let mut response = match matched {
            // The RBAC filters run before the router: a denial answers whatever the route.
            _ if let Some(denied) = denied => {
                tracing::debug!(peer = %downstream.peer, details = %denied, "denied by RBAC");
                LocalReply::RbacDenied.response(false)
            }
            None => {
                stats.no_route.inc();
                books.exchange.flags.insert(LocalReply::NoRoute.flags());
                LocalReply::NoRoute.response(false)
            }
            // No upgrade is configured (Envoy's `upgrade_configs` is refused): Envoy answers a
            // routed upgrade request with 403 and closes.
            Some(_) if is_upgrade(&request) => {
                let mut response = local_reply::text(StatusCode::FORBIDDEN, "");
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                response
            }
            Some((_, route)) => match &route.action {
                Action::Direct { status, body } => {
                    stats.rq_direct_response.inc();
                    direct(route, *status, body.clone(), &request)
                }
                Action::Forward(action) => {
                    let received = books.log.as_ref().and_then(|l| l.received.clone());
                    let start = books.start();
                    router::forward(
                        self,
                        downstream,
                        route,
                        action,
                        request,
                        &snapshot,
                        start,
                        &mut books.exchange,
                        received,
                    )
                    .await
                }
            },
        };
        if grpc && let Some(message) = response.body_mut().take_local() {
            local_reply::to_grpc(&mut response, &message);
        }
        headers::set_server(response.headers_mut());
        let status = response.status().as_u16();
        if let Some(class) = stats.downstream_rq_xx.get(usize::from(status / 100)) {
            class.inc();
        }
        if let Some(log) = &mut books.log {
            log.record.response_code = Some(status);
            log.record.response_headers = log.logs.capture_response(status, response.headers());
        }
        response.body_mut().set_completion(books);
        response
    }
}

/// The parts of a request routing and logging read.
fn view(request: &Request<Incoming>) -> RequestView<'_> {
    let authority = match request.uri().authority() {
        Some(a) => a.as_str(),
        None => request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    };
    RequestView {
        authority,
        method: request.method(),
        path_and_query: request.uri().path_and_query().map_or("/", |p| p.as_str()),
        scheme: "http",
        headers: request.headers(),
    }
}

/// A route's direct response, with the route's response headers. A 201 carries a `location`
/// naming the request's URL, as Envoy's direct responses do.
fn direct(
    route: &CompiledRoute,
    status: StatusCode,
    body: Option<Bytes>,
    request: &Request<Incoming>,
) -> Response<ResponseBody> {
    let mut response = match body {
        Some(body) => {
            let mut r = local_reply::text(status, "");
            *r.body_mut() = ResponseBody::full(body);
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r
        }
        None => local_reply::text(status, ""),
    };
    if status == StatusCode::CREATED {
        let view = view(request);
        let location = format!("http://{}{}", view.authority, view.path_and_query);
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    headers::apply(&route.response_headers, response.headers_mut());
    response
}

/// An HTTP/1 upgrade (`Connection: upgrade` and an `Upgrade` other than `h2c`, which is
/// ignored as Envoy ignores it).
fn is_upgrade(request: &Request<Incoming>) -> bool {
    let headers = request.headers();
    let Some(upgrade) = headers.get(header::UPGRADE) else {
        return false;
    };
    !upgrade.as_bytes().eq_ignore_ascii_case(b"h2c")
        && headers.get_all(header::CONNECTION).iter().any(|v| {
            v.as_bytes()
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
        })
}

/// Counts the connection as HTTP/1 or HTTP/2 on its first request.
fn count_protocol(downstream: &Downstream, version: Version, stats: &HttpStats) {
    if !downstream.counted.load(Ordering::Relaxed)
        && !downstream.counted.swap(true, Ordering::Relaxed)
    {
        if version == Version::HTTP_2 {
            stats.downstream_cx_http2_total.inc();
        } else {
            stats.downstream_cx_http1_total.inc();
        }
    }
}

/// `%PROTOCOL%` as Envoy prints it.
fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}
