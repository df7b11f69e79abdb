//! Active health checks, one session per host, following Envoy's rules: the first check runs
//! at once and one pass makes a new host healthy; later `healthy_threshold` passes in a row
//! make a failed host healthy again; a response other than 200 fails the host at once, while
//! network failures (refused, reset, timed out) fail it after `unhealthy_threshold` in a row.
//! HTTP checks send `GET <path>` with `Host` (or `:authority`) set to the configured host or
//! the cluster's name and `User-Agent: Envoy/HC`, on a kept connection. Until the cluster has
//! carried traffic (`upstream_cx_total` is 0), checks run every `no_traffic_interval` (Envoy's
//! default 60 s), then every `interval`. HTTP checks of a TLS cluster handshake as its
//! traffic does (Envoy checks through the cluster's transport socket).

use std::{
    net::SocketAddr,
    sync::{Arc, Weak, atomic::Ordering},
};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::{
    config::{HealthCheck, HealthCheckKind},
    stats::ClusterStats,
    tls::{Io, client::Connector},
};

use super::{
    host::HostState,
    membership::{AbortOnDrop, Shared, spawn},
};

/// Starts the health-check session of one host; it stops when the handle is dropped or the
/// cluster goes away.
pub(crate) fn spawn_session(
    shared: Weak<Shared>,
    address: SocketAddr,
    state: Arc<HostState>,
    check: HealthCheck,
) -> Option<AbortOnDrop> {
    let authority = match &check.kind {
        HealthCheckKind::Http { host, .. } if !host.is_empty() => host.clone(),
        _ => shared
            .upgrade()
            .map(|s| s.config.name.clone())
            .unwrap_or_default(),
    };
    let tls = shared.upgrade().and_then(|s| {
        let connector = s.tls.clone()?;
        Some((connector, s.stats.clone()))
    });
    let session = Session {
        address,
        tls,
        check,
        authority,
        state,
        conn: None,
        first: true,
        healthy_in_row: 0,
        unhealthy_in_row: 0,
    };
    spawn("health checks", session.run(shared))
}

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    /// The host answered, but not 200: fails it at once.
    Failed,
    /// Connect failure, reset, timeout: counts toward `unhealthy_threshold`.
    Network,
}

/// A kept HTTP connection of the session.
enum Conn {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

struct Session {
    address: SocketAddr,
    /// The cluster's TLS, with the stats its handshakes count in.
    tls: Option<(Connector, Arc<ClusterStats>)>,
    check: HealthCheck,
    authority: String,
    state: Arc<HostState>,
    conn: Option<Conn>,
    first: bool,
    healthy_in_row: u32,
    unhealthy_in_row: u32,
}

impl Session {
    async fn run(mut self, shared: Weak<Shared>) {
        loop {
            // Only the stats are held across the check, so the cluster can go meanwhile.
            let Some(stats) = shared.upgrade().map(|s| s.stats.clone()) else {
                return;
            };
            stats.health_check_attempt.inc();
            let outcome = match tokio::time::timeout(self.check.timeout, self.probe()).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Network,
            };
            if outcome == Outcome::Network {
                // Envoy closes the connection after a failed or timed-out check.
                self.conn = None;
            }
            match outcome {
                Outcome::Passed => stats.health_check_success.inc(),
                Outcome::Failed => stats.health_check_failure.inc(),
                Outcome::Network => {
                    stats.health_check_failure.inc();
                    stats.health_check_network_failure.inc();
                }
            }
            let changed = self.apply(outcome);
            let Some(shared_now) = shared.upgrade() else {
                return;
            };
            shared_now.health_checked(
                self.address,
                &self.state,
                changed,
                outcome == Outcome::Passed,
            );
            drop(shared_now);
            let interval = if stats.upstream_cx_total.get() > 0 {
                self.check.interval
            } else {
                self.check.no_traffic_interval
            };
            drop(stats);
            tokio::time::sleep(interval).await;
        }
    }

    /// Envoy's transition rules; true when the host's health flipped.
    fn apply(&mut self, outcome: Outcome) -> bool {
        let failed = &self.state.failed_active_hc;
        let was_failed = failed.load(Ordering::Relaxed);
        let first = std::mem::replace(&mut self.first, false);
        if outcome == Outcome::Passed {
            self.unhealthy_in_row = 0;
            if was_failed {
                self.healthy_in_row += 1;
                if first || self.healthy_in_row >= self.check.healthy_threshold {
                    failed.store(false, Ordering::Relaxed);
                    return true;
                }
            }
        } else {
            self.healthy_in_row = 0;
            if !was_failed {
                self.unhealthy_in_row += 1;
                if outcome == Outcome::Failed
                    || self.unhealthy_in_row >= self.check.unhealthy_threshold
                {
                    failed.store(true, Ordering::Relaxed);
                    return true;
                }
            }
        }
        false
    }

    async fn probe(&mut self) -> Outcome {
        let (path, http2) = match &self.check.kind {
            HealthCheckKind::Tcp => {
                return match TcpStream::connect(self.address).await {
                    Ok(_) => Outcome::Passed,
                    Err(_) => Outcome::Network,
                };
            }
            HealthCheckKind::Http { path, http2, .. } => (path.clone(), *http2),
        };
        let conn = match self.conn.take() {
            Some(conn) if !is_closed(&conn) => conn,
            _ => match self.connect(http2).await {
                Ok(conn) => conn,
                Err(()) => return Outcome::Network,
            },
        };
        let (outcome, conn) = self.request(conn, &path).await;
        self.conn = conn;
        outcome
    }

    async fn connect(&self, http2: bool) -> Result<Conn, ()> {
        let stream = TcpStream::connect(self.address).await.map_err(|_| ())?;
        let _ = stream.set_nodelay(true);
        let stream = match &self.tls {
            Some((connector, stats)) => connector
                .connect(stream, &stats.ssl)
                .await
                .map_err(|_| ())?,
            None => Io::Plain(stream),
        };
        let io = TokioIo::new(stream);
        if http2 {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await
                .map_err(|_| ())?;
            tokio::spawn(conn);
            Ok(Conn::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await.map_err(|_| ())?;
            tokio::spawn(conn);
            Ok(Conn::H1(sender))
        }
    }

    /// One check on `conn`; the connection comes back when it can carry the next one.
    async fn request(&self, conn: Conn, path: &str) -> (Outcome, Option<Conn>) {
        let builder = Request::get(path).header(header::USER_AGENT, "Envoy/HC");
        let response = match conn {
            Conn::H1(mut sender) => {
                let request = builder
                    .header(header::HOST, &self.authority)
                    .body(Empty::new());
                let Ok(request) = request else {
                    return (Outcome::Failed, None);
                };
                if sender.ready().await.is_err() {
                    return (Outcome::Network, None);
                }
                let response = sender.send_request(request).await;
                (response, Some(Conn::H1(sender)))
            }
            Conn::H2(mut sender) => {
                let uri = format!("http://{}{}", self.authority, path);
                let Ok(request) = builder.uri(uri).body(Empty::new()) else {
                    return (Outcome::Failed, None);
                };
                let response = sender.send_request(request).await;
                (response, Some(Conn::H2(sender)))
            }
        };
        match response {
            (Ok(response), conn) => {
                let status = response.status();
                // Read to the end so the connection can carry the next check.
                let whole = response.into_body().collect().await.is_ok();
                let outcome = if status == StatusCode::OK {
                    Outcome::Passed
                } else {
                    Outcome::Failed
                };
                (outcome, conn.filter(|_| whole))
            }
            (Err(_), _) => (Outcome::Network, None),
        }
    }
}

fn is_closed(conn: &Conn) -> bool {
    match conn {
        Conn::H1(s) => s.is_closed(),
        Conn::H2(s) => s.is_closed(),
    }
}
