//! `envoy.service.accesslog.v3.AccessLogService`: where proxies send the access logs a tap
//! switched on. Bounded: messages over [`MAX_MESSAGE_BYTES`] end the stream, at most
//! [`MAX_STREAMS`] streams at once, and with no tap open entries are dropped as they
//! arrive (not converted, not matched).

use std::sync::Arc;

use envoy_types::pb::envoy::service::accesslog::v3::{
    StreamAccessLogsMessage, StreamAccessLogsResponse,
    access_log_service_server::{AccessLogService, AccessLogServiceServer},
    stream_access_logs_message::LogEntries,
};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status, Streaming, service::interceptor::InterceptedService};

use super::{
    TapEvent, Taps,
    credential::{Credential, PREFIX, Presented},
};

/// The largest message a proxy may send (Envoy's batches are 16 KiB).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Access-log streams open at once (a proxy opens one per worker thread and log).
pub const MAX_STREAMS: usize = 10_000;

/// The gRPC service, ready for the xDS server's routes.
pub fn service(taps: Taps) -> AccessLogServiceServer<Receiver> {
    AccessLogServiceServer::new(Receiver {
        taps,
        streams: Arc::new(Semaphore::new(MAX_STREAMS)),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
}

/// The service behind the xDS port's token check (see [`AccessLogAuth`]).
pub fn authenticated(
    taps: Taps,
    auth: &crate::proxy_auth::ProxyAuth,
) -> InterceptedService<AccessLogServiceServer<Receiver>, AccessLogAuth> {
    InterceptedService::new(service(taps), AccessLogAuth { auth: auth.clone() })
}

/// The access-log service's admission: a proxy token (any stream of its node), or when tokens
/// are required, the tap credential its pushed access-log config carries (checked against
/// the stream's node once its first message names it).
#[derive(Debug, Clone)]
pub struct AccessLogAuth {
    auth: crate::proxy_auth::ProxyAuth,
}

impl tonic::service::Interceptor for AccessLogAuth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let credential = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| t.starts_with(PREFIX))
            .map(str::to_string);
        match credential {
            Some(credential) if self.auth.is_required() => {
                req.extensions_mut()
                    .insert(Presented(Credential::from_presented(credential)));
                Ok(req)
            }
            _ => self.auth.admit(req),
        }
    }
}

/// Reads access-log streams into the open taps.
#[derive(Debug)]
pub struct Receiver {
    taps: Taps,
    streams: Arc<Semaphore>,
}

#[tonic::async_trait]
impl AccessLogService for Receiver {
    async fn stream_access_logs(
        &self,
        request: Request<Streaming<StreamAccessLogsMessage>>,
    ) -> Result<Response<StreamAccessLogsResponse>, Status> {
        let _slot = self.streams.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{MAX_STREAMS} access-log streams are open, the most this server takes"
            ))
        })?;
        let metrics = self.taps.metrics().clone();
        metrics.streams.inc();
        let _open = scopeguard(move || {
            metrics.streams.dec();
        });
        // Put there by the xDS port's token check (`--xds-auth`); absent when auth is off.
        let authenticated = crate::proxy_auth::Authenticated::of(&request);
        let grant = authenticated.as_ref().map(|a| a.grant.clone());
        // Or a tap credential, put there by `authenticated`'s interceptor.
        let presented = request.extensions().get::<Presented>().cloned();
        let revoked = crate::proxy_auth::revocation(authenticated);
        tokio::pin!(revoked);
        let mut stream = request.into_inner();
        let mut node_id: Option<Arc<str>> = None;
        loop {
            let message = tokio::select! {
                message = stream.message() => message?,
                status = &mut revoked => return Err(status),
            };
            let Some(message) = message else { break };
            let node = match &node_id {
                Some(node) => node.clone(),
                None => {
                    let (node, cluster) = identify(&message)?;
                    if let Some(grant) = &grant {
                        crate::proxy_auth::ProxyAuth::check_node(grant, &node, &cluster)?;
                    }
                    if let Some(Presented(credential)) = &presented
                        && !self.taps.verify(credential.expose(), &node, &cluster)
                    {
                        tracing::warn!(node = %node, cluster, "access-log stream refused: its tap credential is not this node's");
                        return Err(Status::permission_denied(format!(
                            "the tap credential is not node '{node}' in cluster '{cluster}''s \
                             (or was made by another server process): it comes with the \
                             access-log config this server pushes to that node"
                        )));
                    }
                    tracing::debug!(node = %node, "access-log stream opened");
                    node_id.insert(node).clone()
                }
            };
            if !self.taps.watched() {
                continue;
            }
            if let Some(LogEntries::HttpLogs(logs)) = &message.log_entries {
                self.taps.deliver(
                    logs.log_entry
                        .iter()
                        .map(|entry| TapEvent::from_entry(&node, entry)),
                );
            }
        }
        Ok(Response::new(StreamAccessLogsResponse {}))
    }
}

/// The node id and cluster of a stream's first message.
fn identify(message: &StreamAccessLogsMessage) -> Result<(Arc<str>, String), Status> {
    message
        .identifier
        .as_ref()
        .and_then(|i| i.node.as_ref())
        .filter(|n| !n.id.is_empty())
        .map(|n| (Arc::from(n.id.as_str()), n.cluster.clone()))
        .ok_or_else(|| {
            Status::invalid_argument(
                "the first access-log message must carry identifier.node.id (the proxy's node id)",
            )
        })
}

/// Runs `f` when dropped: the stream gauge goes down however the stream ends.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
