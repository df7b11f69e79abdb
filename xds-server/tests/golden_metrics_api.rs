//! Golden metrics through the real gRPC receiver (the embedded xDS server on a socket) and
//! the admin API in-process: reports a proxy streams become figures per service, route and
//! proxy; bad streams end with a status naming the limit and harm nothing else; the REST
//! errors; the Prometheus service discovery of connected proxies.

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Router, http::StatusCode};
use common::http::{assert_error, call};
use envoy_types::pb::{
    envoy::{
        config::core::v3::Node,
        service::metrics::v3::{
            StreamMetricsMessage, metrics_service_client::MetricsServiceClient,
            stream_metrics_message::Identifier,
        },
    },
    google::protobuf::{Struct, Value as PbValue, value::Kind},
    io::prometheus::client::{Bucket, Counter, Histogram, Metric, MetricFamily},
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, transport::Channel};
use xds_core::{
    TypeUrl,
    testing::{AdsClient, node},
};
use xds_server::{
    api::{AppState, router},
    store::Store,
    xds::embedded::Embedded,
};

const WAIT: Duration = Duration::from_secs(20);

/// The xDS server (with its MetricsService) and the admin API beside it, on a mesh of
/// services `web` and `api` and route `main` to `web`.
struct Fixture {
    xds: Embedded,
    app: Router,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let (store, dir) = common::sqlite().await;
    let xds = Embedded::start(store.clone(), Duration::from_millis(10))
        .await
        .unwrap();
    let state = AppState {
        registry: xds.registry.clone(),
        metrics: xds.metrics.clone(),
        telemetry: xds.telemetry.clone(),
        ..AppState::new(store as Arc<dyn Store>)
    };
    let app = router(state);
    for (path, body) in [
        ("/api/v1/services/web", json!({ "protocol": "http" })),
        ("/api/v1/services/api", json!({ "protocol": "http" })),
        (
            "/api/v1/routes/main",
            json!({ "hosts": ["*"], "rules": [{ "destinations": [{ "service": "web" }] }] }),
        ),
    ] {
        let (status, _, body) = call(&app, "PUT", path, Some(&body.to_string()), &[]).await;
        assert!(status.is_success(), "PUT {path}: {body}");
    }
    let fixture = Fixture {
        xds,
        app,
        _dir: dir,
    };
    // The mesh watch publishes the route shortly after the write.
    fixture
        .wait(
            "the route in the stats",
            "/api/v1/services/web/stats",
            |b| b["routes"][0]["route"] == "main",
        )
        .await;
    fixture
}

impl Fixture {
    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, _, body) = call(&self.app, "GET", uri, None, &[]).await;
        (status, body)
    }

    /// Polls `uri` until `ok` holds for its 200 body; returns it.
    async fn wait(&self, what: &str, uri: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, body) = self.get(uri).await;
            if status == StatusCode::OK && ok(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: GET {uri} still answers {status} {body:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.xds.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Opens a metrics stream: messages go in through the sender; the handle ends with the
    /// server's answer.
    async fn stream(
        &self,
    ) -> (
        mpsc::Sender<StreamMetricsMessage>,
        tokio::task::JoinHandle<Result<(), tonic::Status>>,
    ) {
        let mut client =
            MetricsServiceClient::new(self.channel().await).max_encoding_message_size(64 << 20);
        let (tx, rx) = mpsc::channel(8);
        let call = tokio::spawn(async move {
            client
                .stream_metrics(ReceiverStream::new(rx))
                .await
                .map(|_| ())
        });
        (tx, call)
    }
}

fn counter(name: &str, value: f64) -> MetricFamily {
    MetricFamily {
        name: Some(name.into()),
        r#type: Some(0),
        metric: vec![Metric {
            counter: Some(Counter {
                value: Some(value),
                ..Counter::default()
            }),
            ..Metric::default()
        }],
        ..MetricFamily::default()
    }
}

/// `n` samples, all in (25, 50] ms, on Envoy's default bounds.
fn latency(name: &str, n: u64) -> MetricFamily {
    let bounds = [0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];
    let bucket = bounds
        .iter()
        .map(|b| Bucket {
            upper_bound: Some(*b),
            cumulative_count: Some(if *b >= 50.0 { n } else { 0 }),
            ..Bucket::default()
        })
        .collect();
    MetricFamily {
        name: Some(name.into()),
        r#type: Some(4),
        metric: vec![Metric {
            histogram: Some(Histogram {
                sample_count: Some(n),
                bucket,
                ..Histogram::default()
            }),
            ..Metric::default()
        }],
        ..MetricFamily::default()
    }
}

/// One flush: `requests` to web through `main`, `errors` of them 5xx; and noise.
fn flush(node_id: Option<&str>, requests: u64, errors: u64) -> StreamMetricsMessage {
    let mut families = vec![
        counter("server.live", 1.0),
        counter("cluster.gone.upstream_rq_completed", 5.0),
    ];
    for prefix in ["cluster.web", "vhost.main.route.main"] {
        families.push(counter(
            &format!("{prefix}.upstream_rq_completed"),
            requests as f64,
        ));
        families.push(counter(&format!("{prefix}.upstream_rq_5xx"), errors as f64));
        families.push(latency(&format!("{prefix}.upstream_rq_time"), requests));
    }
    StreamMetricsMessage {
        identifier: node_id.map(|id| Identifier {
            node: Some(node(id, "edge")),
        }),
        envoy_metrics: families,
    }
}

#[tokio::test]
async fn reports_become_figures_per_service_route_and_proxy() {
    let f = fixture().await;
    let (one, _one) = f.stream().await;
    let (two, _two) = f.stream().await;
    one.send(flush(Some("edge-1"), 30, 3)).await.unwrap();
    one.send(flush(None, 10, 1)).await.unwrap();
    two.send(flush(Some("edge-2"), 60, 0)).await.unwrap();

    let web = f
        .wait(
            "100 requests to web",
            "/api/v1/services/web/stats?window=10s",
            |b| b["requests"] == 100,
        )
        .await;
    assert_eq!(web["service"], "web");
    assert_eq!(
        (&web["window"], &web["window_seconds"]),
        (&json!("10s"), &json!(10))
    );
    assert_eq!(web["success_rate"], 0.96);
    assert!(
        web["requests_per_second"].as_f64().unwrap() > 0.0,
        "{web:#}"
    );
    for p in ["p50", "p95", "p99"] {
        let ms = web["latency_ms"][p].as_f64().unwrap();
        assert!(ms > 25.0 && ms <= 50.0, "{p}: {web:#}");
    }
    assert_eq!(web["routes"][0]["route"], "main");
    assert_eq!(web["routes"][0]["requests"], 100);
    let proxies: Vec<(&str, u64, f64)> = web["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["node_id"].as_str().unwrap(),
                p["requests"].as_u64().unwrap(),
                p["success_rate"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(proxies, [("edge-1", 40, 0.9), ("edge-2", 60, 1.0)]);

    // All services, name order; api had no traffic.
    let (status, all) = f.get("/api/v1/stats").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["window"], "1m");
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "web"]);
    let api = &all["items"][0];
    assert_eq!(api["requests"], 0);
    assert_eq!(api["success_rate"], Value::Null);
    assert_eq!(
        api["latency_ms"],
        json!({ "p50": null, "p95": null, "p99": null })
    );
    assert_eq!(all["items"][1]["requests"], 100);

    // The receiver's own figures.
    let (_, _, text) = call_text(&f.app, "/metrics").await;
    assert!(text.contains("xds_metrics_streams 2"), "{text}");
    assert!(text.contains("xds_metrics_messages_total 3"), "{text}");
}

async fn call_text(app: &Router, uri: &str) -> (StatusCode, (), String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = axum::http::Request::get(uri)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, (), String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn bad_streams_end_with_the_limit_they_broke_and_harm_nothing_else() {
    let f = fixture().await;
    let (good, _good) = f.stream().await;
    good.send(flush(Some("good"), 5, 0)).await.unwrap();

    // No node in the first message.
    let (tx, call) = f.stream().await;
    tx.send(flush(None, 1, 0)).await.unwrap();
    let status = call.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("identifier.node"), "{status:?}");

    // Over 4 MiB in one message.
    let (tx, call) = f.stream().await;
    let mut huge = flush(Some("huge"), 1, 0);
    huge.envoy_metrics.push(counter(&"x".repeat(5 << 20), 1.0));
    tx.send(huge).await.unwrap();
    let status = call.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("4194304 bytes"), "{status:?}");

    // Over 100,000 metrics in one message (small enough in bytes).
    let (tx, call) = f.stream().await;
    let mut many = flush(Some("many"), 1, 0);
    many.envoy_metrics
        .extend((0..100_001).map(|_| MetricFamily::default()));
    tx.send(many).await.unwrap();
    let status = call.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("at most 100000"), "{status:?}");

    // The good stream still counts; the refused ones added nothing.
    good.send(flush(None, 7, 0)).await.unwrap();
    let web = f
        .wait("12 requests", "/api/v1/services/web/stats", |b| {
            b["requests"] == 12
        })
        .await;
    let nodes: Vec<&str> = web["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["good"]);
    let (_, _, text) = call_text(&f.app, "/metrics").await;
    for reason in ["no_node", "too_large", "too_many"] {
        let line = format!("xds_metrics_streams_refused_total{{reason=\"{reason}\"}} 1");
        assert!(text.contains(&line), "{line}: {text}");
    }
}

#[tokio::test]
async fn stats_requests_are_refused_clearly() {
    let f = fixture().await;
    let r = call(&f.app, "GET", "/api/v1/services/nope/stats", None, &[]).await;
    let err = assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    assert!(err["message"].as_str().unwrap().contains("nope"), "{err}");
    for (uri, mentions) in [
        ("/api/v1/services/web/stats?window=5m", "10s or 1m"),
        ("/api/v1/stats?window=", "10s or 1m"),
        ("/api/v1/stats?window=10s&window=1m", "more than once"),
        ("/api/v1/stats?since=1", "unknown query parameter 'since'"),
    ] {
        let r = call(&f.app, "GET", uri, None, &[]).await;
        let err = assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
        assert!(
            err["message"].as_str().unwrap().contains(mentions),
            "{uri}: {err}"
        );
    }
}

fn with_metadata(id: &str, cluster: &str, metadata: &[(&str, &str)]) -> Node {
    let fields = metadata
        .iter()
        .map(|(k, v)| {
            let value = PbValue {
                kind: Some(Kind::StringValue(v.to_string())),
            };
            (k.to_string(), value)
        })
        .collect();
    Node {
        metadata: Some(Struct { fields }),
        ..node(id, cluster)
    }
}

#[tokio::test]
async fn prometheus_discovers_every_connected_proxy_with_a_stats_address() {
    let f = fixture().await;
    let nodes = [
        with_metadata("web-1", "web", &[("stats_address", "127.0.0.1:15001")]),
        with_metadata("edge-1", "edge", &[("stats_address", "127.0.0.1:15002")]),
        with_metadata("bad", "edge", &[("stats_address", "no port")]),
        with_metadata("bare", "edge", &[]),
    ];
    let mut clients = Vec::new();
    for n in nodes {
        let client = AdsClient::sotw(n)
            .wildcard(TypeUrl::Cluster)
            .connect(f.xds.addr)
            .await
            .unwrap();
        clients.push(client);
    }
    let targets = f
        .wait("four proxies connected", "/api/v1/proxies", |b| {
            b["items"].as_array().is_some_and(|i| i.len() == 4)
        })
        .await;
    drop(targets);
    let (status, body) = f.get("/api/v1/prometheus/targets").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!([
            { "targets": ["127.0.0.1:15002"],
              "labels": { "__metrics_path__": "/stats/prometheus", "node_cluster": "edge",
                          "node_id": "edge-1" } },
            { "targets": ["127.0.0.1:15001"],
              "labels": { "__metrics_path__": "/stats/prometheus", "node_cluster": "web",
                          "node_id": "web-1", "service": "web" } },
        ])
    );
    // A proxy that disconnects leaves the list.
    clients.truncate(1);
    f.wait("only web-1", "/api/v1/prometheus/targets", |b| {
        b.as_array().is_some_and(|t| t.len() == 1)
    })
    .await;
    let r = call(&f.app, "GET", "/api/v1/prometheus/targets?x=1", None, &[]).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
}
