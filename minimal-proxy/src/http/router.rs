//! The router: sends a routed request to its cluster and returns the upstream's response, as
//! Envoy's router filter does: picks the weighted cluster, rewrites the path, mutates headers,
//! picks a host (hash policy, subset), and retries under the route's policy within the route
//! timeout; failures become Envoy's local replies.

use std::{
    pin::Pin,
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, Version, uri::PathAndQuery};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use tokio::time::Sleep;

use super::{
    ConnectionManager, Downstream,
    body::{Counted, Replay, ResponseBody, Timers},
    books::Exchange,
    hash, headers,
    local_reply::LocalReply,
    retry::{Outcome, Retries},
    route_table::{CompiledRoute, ForwardAction, Target, Targets},
};
use crate::{
    access_log::ResponseFlags,
    runtime::Snapshot,
    upstream::{self, BoxError, Cluster, LbContext},
};

/// Bytes of request body kept for replay on retry (Envoy's default buffer limit, 1 MiB);
/// a longer body is streamed once and not retried.
const REPLAY_LIMIT: usize = 1024 * 1024;

/// The request as the router sends it: its head, kept to build every attempt.
struct Head {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

/// Forwards one request under `route`; every outcome is a response.
#[allow(clippy::too_many_arguments)]
pub async fn forward(
    manager: &ConnectionManager,
    downstream: &Downstream,
    route: &CompiledRoute,
    action: &ForwardAction,
    request: Request<Incoming>,
    snapshot: &Snapshot,
    start: Instant,
    exchange: &mut Exchange,
    received: Option<Arc<AtomicU64>>,
) -> Response<ResponseBody> {
    let target = match &action.targets {
        Targets::Single(target) => target,
        weighted => weighted.pick(rand::random()),
    };
    let Some(cluster) = snapshot.clusters.get(&target.cluster) else {
        manager.stats.no_cluster.inc();
        exchange.flags.insert(ResponseFlags::NO_CLUSTER);
        // Envoy applies the route's response headers to its local replies too.
        let mut response = LocalReply::NoCluster.response(false);
        headers::apply(&target.response_headers, response.headers_mut());
        headers::apply(&route.response_headers, response.headers_mut());
        return response;
    };
    if exchange.logging {
        exchange.upstream_cluster = Some(target.cluster.clone());
    }
    let (parts, body) = request.into_parts();
    let downstream_version = parts.version;
    let head = upstream_head(parts, route, action, target);
    let lb = LbContext {
        hash: hash::compute(&action.hash_policy, &head.headers, downstream.peer),
        metadata_match: target.metadata_match.clone(),
        previous: Vec::new(),
    };
    let body = if body.is_end_stream() {
        RequestBody::Empty
    } else {
        let body = match received {
            Some(count) => upstream::Body::new(Counted { inner: body, count }),
            None => upstream::Body::new(body.map_err(BoxError::from)),
        };
        match action.retry {
            Some(_) => RequestBody::Replay(Replay::new(body, REPLAY_LIMIT)),
            None => RequestBody::Once(Some(body)),
        }
    };
    let deadline = action
        .timeout
        .map(|t| Box::pin(tokio::time::sleep_until((start + t).into())));
    // The stream idle timeout only matters when the route timeout would not come first (it
    // spans the whole exchange too): no timer at all otherwise.
    let idle = manager
        .stream_idle_timeout
        .filter(|idle| action.timeout.is_none_or(|t| t > *idle))
        .map(|idle| (idle, Box::pin(tokio::time::sleep(idle))));
    let mut call = Call {
        cluster,
        route,
        action,
        target,
        head,
        body,
        lb,
        deadline,
        idle,
        retries: Retries::new(action.retry.as_ref()),
        exchange,
    };
    let mut response = call.run(start).await;
    *response.version_mut() = downstream_version;
    response
}

/// The request body as attempts get it.
enum RequestBody {
    /// No body: every attempt sends none.
    Empty,
    /// No retry policy: the one attempt streams it.
    Once(Option<upstream::Body>),
    /// Kept for replay.
    Replay(Replay),
}

/// One forwarded request in flight.
struct Call<'a> {
    cluster: &'a Arc<Cluster>,
    route: &'a CompiledRoute,
    action: &'a ForwardAction,
    target: &'a Target,
    head: Head,
    body: RequestBody,
    lb: LbContext,
    /// The route timeout, across attempts and the response body.
    deadline: Option<Pin<Box<Sleep>>>,
    /// The stream idle timeout, re-armed by each attempt and each response frame.
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    retries: Retries<'a>,
    exchange: &'a mut Exchange,
}

/// How one attempt ended.
#[expect(
    clippy::large_enum_variant,
    reason = "a local, matched at once: boxing the response would cost an allocation per request"
)]
enum Attempt {
    Done(Result<Response<upstream::ResponseBody>, upstream::Error>),
    PerTryTimeout,
    RouteTimeout,
    StreamIdle,
}

impl Call<'_> {
    async fn run(&mut self, start: Instant) -> Response<ResponseBody> {
        let per_try = self.action.retry.as_ref().and_then(|p| p.per_try_timeout);
        let stats = self.cluster.stats().clone();
        // Held for the duration of a retry attempt: the cluster's retry budget.
        let mut _retry_permit = None;
        loop {
            let host = match self.cluster.select(&self.lb) {
                Ok(host) => host,
                Err(e) => return self.fail(LocalReply::from_error(&e)),
            };
            if self.exchange.logging {
                self.exchange.upstream_host = Some(host.address);
            }
            let mut request = self.attempt_request();
            // Envoy announces the whole route timeout (or the per-try timeout) on the first
            // attempt, what is left on retries.
            let expected = match self.retries.done() {
                0 => self.action.expected_timeout.clone(),
                _ => {
                    let remaining = self
                        .action
                        .timeout
                        .map(|t| t.saturating_sub(start.elapsed()));
                    min_some(remaining, per_try).map(|t| headers::millis(t.as_millis() as u64))
                }
            };
            if let Some(expected) = expected {
                request
                    .headers_mut()
                    .insert(headers::X_ENVOY_EXPECTED_RQ_TIMEOUT_MS.clone(), expected);
            }
            let sent_at = Instant::now();
            let mut per_try_sleep = per_try.map(|t| Box::pin(tokio::time::sleep(t)));
            if let Some((idle, sleep)) = &mut self.idle {
                sleep.as_mut().reset(tokio::time::Instant::now() + *idle);
            }
            let attempt = tokio::select! {
                biased;
                r = self.cluster.send(&host, request) => Attempt::Done(r),
                _ = until(&mut self.deadline) => Attempt::RouteTimeout,
                _ = until(&mut per_try_sleep) => Attempt::PerTryTimeout,
                _ = until_idle(&mut self.idle) => Attempt::StreamIdle,
            };
            self.charge_route(&attempt);
            let (outcome, result) = match attempt {
                Attempt::StreamIdle => return self.fail(LocalReply::StreamIdleTimeout),
                Attempt::RouteTimeout => {
                    stats.upstream_rq_timeout.inc();
                    self.cluster.report_timeout(&host);
                    return self.fail(LocalReply::Timeout);
                }
                Attempt::PerTryTimeout => {
                    stats.upstream_rq_per_try_timeout.inc();
                    self.cluster.report_timeout(&host);
                    (Outcome::PerTryTimeout, None)
                }
                Attempt::Done(Ok(response)) => (
                    Outcome::Status(response.status().as_u16()),
                    Some(Ok(response)),
                ),
                Attempt::Done(Err(e)) => (outcome_of(&e), Some(Err(e))),
            };
            let covered = self.retries.covers(outcome);
            let replayable = match &self.body {
                RequestBody::Empty => true,
                RequestBody::Once(_) => false,
                RequestBody::Replay(r) => r.can_replay(),
            };
            // The cluster's retry budget (`max_retries`); it counts its own overflow.
            let permit = if covered && self.retries.remaining() && replayable {
                let permit = self.cluster.try_retry();
                if let (None, Some(r)) = (&permit, &self.route.stats) {
                    r.upstream_rq_retry_overflow.inc();
                }
                permit
            } else {
                None
            };
            let Some(permit) = permit else {
                // Envoy's `RetryStatus::NoRetryLimitExceeded`: the policy would retry this
                // outcome but `num_retries` is spent (also when it was 0).
                if covered && !self.retries.remaining() {
                    stats.upstream_rq_retry_limit_exceeded.inc();
                    if let Some(r) = &self.route.stats {
                        r.upstream_rq_retry_limit_exceeded.inc();
                    }
                    self.exchange
                        .flags
                        .insert(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
                }
                return match result {
                    Some(Ok(response)) => {
                        if self.retries.done() > 0 && !covered {
                            stats.upstream_rq_retry_success.inc();
                            if let Some(r) = &self.route.stats {
                                r.upstream_rq_retry_success.inc();
                            }
                        }
                        self.respond(response, sent_at)
                    }
                    Some(Err(e)) => self.fail(LocalReply::from_error(&e)),
                    None => self.fail(LocalReply::Timeout),
                };
            };
            // Retry: drop this attempt's response, wait the backoff (within the deadline).
            drop(result);
            stats.upstream_rq_retry.inc();
            if let Some(r) = &self.route.stats {
                r.upstream_rq_retry.inc();
            }
            let backoff = self.retries.next_backoff();
            tokio::select! {
                biased;
                _ = until(&mut self.deadline) => {
                    stats.upstream_rq_timeout.inc();
                    if let Some(r) = &self.route.stats {
                        r.upstream_rq_timeout.inc();
                    }
                    return self.fail(LocalReply::Timeout);
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            _retry_permit = Some(permit);
        }
    }

    /// Charges an attempt to the route's stats (a route with a `stat_prefix`) as the cluster
    /// charges it: the attempt, its code (503 for a reset or connect failure, 504 for a
    /// timeout), the route timeout.
    fn charge_route(&self, attempt: &Attempt) {
        let Some(r) = &self.route.stats else { return };
        let code = match attempt {
            Attempt::StreamIdle => return,
            Attempt::Done(Err(upstream::Error::NoHealthyUpstream)) => return,
            Attempt::Done(Ok(response)) => response.status().as_u16(),
            Attempt::Done(Err(_)) => 503,
            Attempt::PerTryTimeout => 504,
            Attempt::RouteTimeout => {
                r.upstream_rq_timeout.inc();
                504
            }
        };
        r.upstream_rq_total.inc();
        r.charge_upstream_code(code);
    }

    /// This attempt's request: the head (moved for a single attempt, copied when a retry may
    /// follow) and its body.
    fn attempt_request(&mut self) -> Request<upstream::Body> {
        let body = match &mut self.body {
            RequestBody::Empty => upstream::Body::default(),
            RequestBody::Once(body) => body.take().unwrap_or_default(),
            RequestBody::Replay(replay) => replay.attempt(),
        };
        let mut request = Request::new(body);
        if self.action.retry.is_some() {
            *request.method_mut() = self.head.method.clone();
            *request.uri_mut() = self.head.uri.clone();
            *request.headers_mut() = self.head.headers.clone();
        } else {
            *request.method_mut() = std::mem::take(&mut self.head.method);
            *request.uri_mut() = std::mem::take(&mut self.head.uri);
            *request.headers_mut() = std::mem::take(&mut self.head.headers);
        }
        *request.version_mut() = Version::HTTP_11;
        request
    }

    /// The local reply for a failure, with its flag.
    fn fail(&mut self, reply: LocalReply) -> Response<ResponseBody> {
        self.exchange.flags.insert(reply.flags());
        let mut response = reply.response(self.retries.done() > 0);
        headers::apply(&self.target.response_headers, response.headers_mut());
        headers::apply(&self.route.response_headers, response.headers_mut());
        response
    }

    /// The upstream's response on its way downstream.
    fn respond(
        &mut self,
        response: Response<upstream::ResponseBody>,
        sent_at: Instant,
    ) -> Response<ResponseBody> {
        let (mut parts, body) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(
            headers::X_ENVOY_UPSTREAM_SERVICE_TIME.clone(),
            headers::millis(sent_at.elapsed().as_millis() as u64),
        );
        headers::apply(&self.target.response_headers, &mut parts.headers);
        headers::apply(&self.route.response_headers, &mut parts.headers);
        let timers = Timers {
            route_time: self.route.stats.clone().map(|r| (sent_at, r)),
            deadline: self
                .deadline
                .take()
                .map(|sleep| (sleep, self.cluster.stats().clone())),
            idle: self.idle.take(),
        };
        Response::from_parts(parts, ResponseBody::upstream(body, timers))
    }
}

/// The request head sent upstream: the downstream URI (the upstream module puts it in the
/// form its protocol needs) with the path rewritten, hop-by-hop headers dropped, Envoy's
/// headers added, then the weighted cluster's and the route's mutations.
fn upstream_head(
    parts: http::request::Parts,
    route: &CompiledRoute,
    action: &ForwardAction,
    target: &Target,
) -> Head {
    let http::request::Parts {
        method,
        mut uri,
        mut headers,
        ..
    } = parts;
    headers::strip_hop_by_hop(&mut headers);
    headers::strip_untrusted(&mut headers);
    if let Some((len, replacement)) = &action.prefix_rewrite {
        uri = rewrite(uri, *len, replacement, &mut headers);
    }
    headers::add_request_headers(&mut headers, "http");
    headers::apply(&target.request_headers, &mut headers);
    headers::apply(&route.request_headers, &mut headers);
    Head {
        method,
        uri,
        headers,
    }
}

/// Replaces the first `len` bytes of the path (the matched prefix) with `replacement`, and
/// keeps the original in `x-envoy-original-path`, as Envoy does.
fn rewrite(uri: Uri, len: usize, replacement: &str, headers: &mut HeaderMap) -> Uri {
    let original = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let Some(rest) = original.get(len..) else {
        return uri;
    };
    let Ok(rewritten) = PathAndQuery::try_from(format!("{replacement}{rest}")) else {
        return uri;
    };
    if let Ok(value) = HeaderValue::from_str(original) {
        headers.insert(headers::X_ENVOY_ORIGINAL_PATH.clone(), value);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(rewritten);
    Uri::from_parts(parts).unwrap_or(uri)
}

/// How an upstream error counts for retries.
fn outcome_of(error: &upstream::Error) -> Outcome {
    match error {
        upstream::Error::ConnectFailure(_) | upstream::Error::ConnectTimeout => {
            Outcome::ConnectFailure
        }
        upstream::Error::Reset(_) => Outcome::Reset,
        upstream::Error::Overflow(_) | upstream::Error::NoHealthyUpstream => Outcome::Overflow,
    }
}

/// Waits for the stream idle timeout; never resolves without one.
async fn until_idle(idle: &mut Option<(Duration, Pin<Box<Sleep>>)>) {
    match idle {
        Some((_, s)) => s.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Waits for an optional sleep; never resolves without one.
async fn until(sleep: &mut Option<Pin<Box<Sleep>>>) {
    match sleep {
        Some(s) => s.as_mut().await,
        None => std::future::pending().await,
    }
}

pub(super) fn min_some(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
