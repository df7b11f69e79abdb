//! A telemetry receiver for the tests: a real tonic server on 127.0.0.1:0 serving
//! `MetricsService` and `AccessLogService`, keeping every message by stream.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use envoy_types::pb::envoy::service::{
    accesslog::v3::{
        StreamAccessLogsMessage, StreamAccessLogsResponse,
        access_log_service_server::{AccessLogService, AccessLogServiceServer},
    },
    metrics::v3::{
        StreamMetricsMessage, StreamMetricsResponse,
        metrics_service_server::{MetricsService, MetricsServiceServer},
    },
};
use tonic::{Request, Response, Status, Streaming};

/// Every stream received, each as its messages in order.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub metrics: Arc<Mutex<Vec<Vec<StreamMetricsMessage>>>>,
    pub logs: Arc<Mutex<Vec<Vec<StreamAccessLogsMessage>>>>,
    /// When not 0: the first metrics stream is ended (UNAVAILABLE) after this many messages,
    /// as a server going away would end it.
    pub end_first_metrics_stream_after: Arc<AtomicUsize>,
}

impl Received {
    /// Waits until `done` holds for what was received, or panics after `limit`.
    pub async fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&Received) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn metric_messages(&self) -> Vec<StreamMetricsMessage> {
        self.metrics
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    pub fn log_messages(&self) -> Vec<StreamAccessLogsMessage> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn stream_metrics(
        &self,
        request: Request<Streaming<StreamMetricsMessage>>,
    ) -> Result<Response<StreamMetricsResponse>, Status> {
        let mut stream = request.into_inner();
        let index = {
            let mut all = self.metrics.lock().unwrap();
            all.push(Vec::new());
            all.len() - 1
        };
        while let Some(m) = stream.message().await? {
            let received = {
                let mut all = self.metrics.lock().unwrap();
                all[index].push(m);
                all[index].len()
            };
            let end = self.end_first_metrics_stream_after.load(Ordering::Relaxed);
            if index == 0 && received == end {
                return Err(Status::unavailable("the receiver ends this stream"));
            }
        }
        Ok(Response::new(StreamMetricsResponse {}))
    }
}

#[tonic::async_trait]
impl AccessLogService for Received {
    async fn stream_access_logs(
        &self,
        request: Request<Streaming<StreamAccessLogsMessage>>,
    ) -> Result<Response<StreamAccessLogsResponse>, Status> {
        let mut stream = request.into_inner();
        let index = {
            let mut all = self.logs.lock().unwrap();
            all.push(Vec::new());
            all.len() - 1
        };
        while let Some(m) = stream.message().await? {
            self.logs.lock().unwrap()[index].push(m);
        }
        Ok(Response::new(StreamAccessLogsResponse {}))
    }
}

/// Starts the receiver; it serves until the test's runtime ends.
pub async fn start() -> (SocketAddr, Received) {
    start_at("127.0.0.1:0".parse().unwrap(), Received::default()).await
}

/// Starts the receiver on `address` (a port reserved earlier), recording into `received`.
pub async fn start_at(address: SocketAddr, received: Received) -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(MetricsServiceServer::new(received.clone()))
        .add_service(AccessLogServiceServer::new(received.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    (address, received)
}
