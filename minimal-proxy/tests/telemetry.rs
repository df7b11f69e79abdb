//! Telemetry end to end, on real processes: the proxy binary (and Envoy 1.40, when
//! `ENVOY_BIN` names it) runs one bootstrap with the metrics service sink and a filtered gRPC
//! access log, both pointed at a real tonic receiver; real requests go through it to a real
//! upstream. Checked: the first message of each stream names the node (and the log), the
//! golden-metric counters add up as deltas, the latency histograms count every request in
//! Envoy's buckets, only the requests the filter selects are logged, with the fields the
//! server reads. With Envoy, both proxies must send the same names, types and fields
//! (`TELEMETRY_DUMP=1` prints an entry from each and the stat names only one of them sent).

#[path = "telemetry/receiver.rs"]
mod receiver;
#[path = "telemetry/upstream.rs"]
mod upstream;

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use envoy_types::pb::{
    envoy::{
        config::core::v3::{RequestMethod, address, socket_address},
        data::accesslog::v3::HttpAccessLogEntry,
        service::accesslog::v3::stream_access_logs_message::LogEntries,
    },
    io::prometheus::client::{MetricFamily, MetricType},
};
use serde_json::{Value, json};

use receiver::Received;

/// Requests sent: (path, how many). `/api/fail` answers 503 and is the only one logged.
const TRAFFIC: [(&str, u64); 3] = [("/api/fail", 6), ("/api/ok", 4), ("/web/fail", 3)];
const LOGGED: u64 = 6;
const TOTAL: u64 = 13;
const FAILED: u64 = 9;

/// The families the control plane consumes (contract: /tmp/contract/metrics.md).
const CONSUMED: [(&str, MetricType); 6] = [
    ("cluster.web.upstream_rq_completed", MetricType::Counter),
    ("cluster.web.upstream_rq_5xx", MetricType::Counter),
    ("cluster.web.upstream_rq_time", MetricType::Histogram),
    (
        "vhost.main.route.main.upstream_rq_completed",
        MetricType::Counter,
    ),
    ("vhost.main.route.main.upstream_rq_5xx", MetricType::Counter),
    (
        "vhost.main.route.main.upstream_rq_time",
        MetricType::Histogram,
    ),
];

fn envoy_bin() -> Option<PathBuf> {
    let bin = PathBuf::from(std::env::var_os("ENVOY_BIN")?);
    bin.exists().then_some(bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn socket(address: SocketAddr) -> Value {
    json!({ "socket_address": { "address": address.ip().to_string(), "port_value": address.port() } })
}

fn status(op: &str, value: u32) -> Value {
    json!({ "status_code_filter": { "comparison": { "op": op,
        "value": { "default_value": value, "runtime_key": "xds_tap.status" } } } })
}

/// The bootstrap both proxies run: the metrics contract's sink and the tap contract's logger
/// (`path_prefix=/api&status=5xx`), towards `receiver`.
fn bootstrap(node: &str, listen: SocketAddr, upstream: SocketAddr, receiver: SocketAddr) -> Value {
    let static_cluster = |name: &str, at: SocketAddr| {
        json!({ "name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [{
                "endpoint": { "address": socket(at) } }] }] } })
    };
    let mut telemetry = static_cluster("xds_cluster", receiver);
    telemetry["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": { "http2_protocol_options": {} } } });
    let access_log = json!([{
        "name": "envoy.access_loggers.http_grpc",
        "filter": { "and_filter": { "filters": [
            { "header_filter": { "header": { "name": ":path", "string_match": { "prefix": "/api" } } } },
            { "and_filter": { "filters": [status("GE", 500), status("LE", 599)] } } ] } },
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
            "common_config": {
                "log_name": "xds-tap",
                "grpc_service": { "envoy_grpc": { "cluster_name": "xds_cluster" } },
                "transport_api_version": "V3",
                "buffer_flush_interval": "0.200s",
                "buffer_size_bytes": 16384 } } }]);
    json!({
        "node": { "id": node, "cluster": "edge" },
        "admin": { "address": socket("127.0.0.1:0".parse().unwrap()) },
        "stats_flush_interval": "0.5s",
        "stats_sinks": [{
            "name": "envoy.stat_sinks.metrics_service",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig",
                "transport_api_version": "V3",
                "report_counters_as_deltas": true,
                "histogram_emit_mode": "HISTOGRAM",
                "grpc_service": { "envoy_grpc": { "cluster_name": "xds_cluster" } } } }],
        "static_resources": {
            "clusters": [telemetry, static_cluster("web", upstream)],
            "listeners": [{
                "name": "ingress",
                "address": socket(listen),
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        "access_log": access_log,
                        "route_config": { "name": "main", "virtual_hosts": [{
                            "name": "main", "domains": ["*"],
                            "routes": [{ "name": "main", "stat_prefix": "main",
                                "match": { "prefix": "/" }, "route": { "cluster": "web" } }] }] },
                        "http_filters": [{ "name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }]
                    } }] }]
            }]
        }
    })
}

/// A proxy process, killed when dropped.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(bin: &Path, dir: &Path, doc: &Value) -> Proxy {
    let config = dir.join("bootstrap.json");
    std::fs::write(&config, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&config)
        .arg("--admin-address-path")
        .arg(dir.join("admin"))
        .args([
            "--disable-hot-restart",
            "--use-dynamic-base-id",
            "-l",
            "warning",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the proxy");
    Proxy(child)
}

/// One GET through the proxy; the status, or `None` while it is not listening yet.
async fn get(listen: SocketAddr, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(listen).await.ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: web.local\r\nUser-Agent: telemetry-test\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1)?.parse().ok()
}

/// What one proxy sent for the scenario.
struct Observed {
    received: Received,
    upstream: SocketAddr,
}

/// Runs the scenario on `bin` and waits until everything the traffic causes has arrived.
async fn scenario(bin: &Path, node: &str) -> Observed {
    let (at, received) = receiver::start().await;
    let upstream = upstream::start().await;
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _proxy = start(bin, dir.path(), &bootstrap(node, listen, upstream, at));
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(listen, "/ready-probe").await.is_none() {
        assert!(
            Instant::now() < deadline,
            "{} never listened",
            bin.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The probe is one more request (200 from the upstream, not logged).
    for (path, n) in TRAFFIC {
        for _ in 0..n {
            let code = get(listen, path).await.expect("a response");
            assert_eq!(
                code,
                if path.contains("fail") { 503 } else { 200 },
                "{path}"
            );
        }
    }
    let limit = Duration::from_secs(20);
    received
        .wait_for("the access log entries", limit, |r| {
            entries(r).len() as u64 >= LOGGED
        })
        .await;
    received
        .wait_for("every request in the metrics", limit, |r| {
            let m = r.metric_messages();
            counter_sum(&m, "cluster.web.upstream_rq_completed") >= (TOTAL + 1) as f64
                && histogram_count(&m, "cluster.web.upstream_rq_time") > TOTAL
                && histogram_count(&m, "vhost.main.route.main.upstream_rq_time") > TOTAL
                && counter_sum(&m, "access_logs.grpc_access_log.logs_written") >= LOGGED as f64
        })
        .await;
    Observed { received, upstream }
}

fn families(
    messages: &[envoy_types::pb::envoy::service::metrics::v3::StreamMetricsMessage],
) -> impl Iterator<Item = &MetricFamily> {
    messages.iter().flat_map(|m| &m.envoy_metrics)
}

fn counter_sum(
    messages: &[envoy_types::pb::envoy::service::metrics::v3::StreamMetricsMessage],
    name: &str,
) -> f64 {
    families(messages)
        .filter(|f| f.name() == name && f.r#type() == MetricType::Counter)
        .flat_map(|f| &f.metric)
        .filter_map(|m| m.counter.as_ref()?.value)
        .sum()
}

fn histogram_count(
    messages: &[envoy_types::pb::envoy::service::metrics::v3::StreamMetricsMessage],
    name: &str,
) -> u64 {
    families(messages)
        .filter(|f| f.name() == name && f.r#type() == MetricType::Histogram)
        .flat_map(|f| &f.metric)
        .filter_map(|m| m.histogram.as_ref()?.sample_count)
        .sum()
}

fn entries(r: &Received) -> Vec<HttpAccessLogEntry> {
    r.log_messages()
        .into_iter()
        .filter_map(|m| match m.log_entries {
            Some(LogEntries::HttpLogs(h)) => Some(h.log_entry),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The consumed families present, by name and type.
fn consumed(o: &Observed) -> BTreeSet<(String, i32)> {
    let messages = o.received.metric_messages();
    families(&messages)
        .filter(|f| {
            CONSUMED
                .iter()
                .any(|(n, t)| f.name() == *n && f.r#type() == *t)
        })
        .map(|f| (f.name().to_string(), f.r#type))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|(n, t)| (n, t.unwrap_or_default()))
        .collect()
}

/// Which of the fields the server reads (and a few more Envoy fills) an entry carries.
fn filled(e: &HttpAccessLogEntry) -> BTreeSet<&'static str> {
    let c = e.common_properties.clone().unwrap_or_default();
    let req = e.request.clone().unwrap_or_default();
    let resp = e.response.clone().unwrap_or_default();
    [
        ("start_time", c.start_time.is_some()),
        (
            "time_to_last_downstream_tx_byte",
            c.time_to_last_downstream_tx_byte.is_some(),
        ),
        (
            "upstream_remote_address",
            c.upstream_remote_address.is_some(),
        ),
        ("upstream_cluster", !c.upstream_cluster.is_empty()),
        ("route_name", !c.route_name.is_empty()),
        ("response_flags", c.response_flags.is_some()),
        (
            "downstream_remote_address",
            c.downstream_remote_address.is_some(),
        ),
        (
            "downstream_local_address",
            c.downstream_local_address.is_some(),
        ),
        ("request_method", req.request_method != 0),
        ("scheme", !req.scheme.is_empty()),
        ("authority", !req.authority.is_empty()),
        ("path", !req.path.is_empty()),
        ("user_agent", !req.user_agent.is_empty()),
        ("stream_id", !c.stream_id.is_empty()),
        ("request_id", !req.request_id.is_empty()),
        ("response_code", resp.response_code.is_some()),
        ("protocol_version", e.protocol_version != 0),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// What every proxy must send for the scenario.
fn check(o: &Observed, node: &str) {
    let streams = o.received.metrics.lock().unwrap().clone();
    let first = streams
        .iter()
        .find_map(|s| s.first().cloned())
        .expect("a metrics stream");
    let id = first.identifier.and_then(|i| i.node).map(|n| n.id);
    assert_eq!(
        id.as_deref(),
        Some(node),
        "the first metrics message names the node"
    );
    assert!(
        streams
            .iter()
            .flat_map(|s| s.iter().skip(1))
            .all(|m| m.identifier.is_none()),
        "only the first message of a stream carries the identifier"
    );
    let messages = o.received.metric_messages();
    // The readiness probe is one more 200.
    assert_eq!(
        counter_sum(&messages, "cluster.web.upstream_rq_completed"),
        (TOTAL + 1) as f64
    );
    assert_eq!(
        counter_sum(&messages, "cluster.web.upstream_rq_5xx"),
        FAILED as f64
    );
    assert_eq!(
        counter_sum(&messages, "vhost.main.route.main.upstream_rq_completed"),
        (TOTAL + 1) as f64
    );
    assert_eq!(
        counter_sum(&messages, "vhost.main.route.main.upstream_rq_5xx"),
        FAILED as f64
    );
    assert_eq!(
        histogram_count(&messages, "cluster.web.upstream_rq_time"),
        TOTAL + 1
    );
    let h = families(&messages)
        .find(|f| f.name() == "cluster.web.upstream_rq_time" && f.r#type() == MetricType::Histogram)
        .and_then(|f| f.metric[0].histogram.clone())
        .unwrap();
    let bounds: Vec<f64> = h.bucket.iter().map(|b| b.upper_bound.unwrap()).collect();
    assert_eq!(bounds.first(), Some(&0.5));
    assert_eq!(bounds.last(), Some(&3_600_000.0));
    assert_eq!(bounds.len(), 19, "Envoy's default bounds");

    // Envoy's logger stats count what the filter let through.
    assert_eq!(
        counter_sum(&messages, "access_logs.grpc_access_log.logs_written"),
        LOGGED as f64
    );
    let logs = o.received.logs.lock().unwrap().clone();
    let first = logs
        .iter()
        .find_map(|s| s.first().cloned())
        .expect("a log stream");
    let identifier = first
        .identifier
        .expect("the first log message has the identifier");
    assert_eq!(identifier.log_name, "xds-tap");
    assert_eq!(identifier.node.map(|n| n.id).as_deref(), Some(node));
    let entries = entries(&o.received);
    assert_eq!(
        entries.len() as u64,
        LOGGED,
        "only /api with a 5xx is logged"
    );
    for e in &entries {
        let c = e.common_properties.as_ref().unwrap();
        let req = e.request.as_ref().unwrap();
        assert_eq!(req.path, "/api/fail");
        assert_eq!(req.request_method, RequestMethod::Get as i32);
        assert_eq!(req.authority, "web.local");
        assert_eq!(
            e.response
                .as_ref()
                .unwrap()
                .response_code
                .as_ref()
                .map(|c| c.value),
            Some(503)
        );
        assert_eq!(c.upstream_cluster, "web");
        assert_eq!(c.route_name, "main");
        let Some(address::Address::SocketAddress(up)) = c
            .upstream_remote_address
            .as_ref()
            .and_then(|a| a.address.clone())
        else {
            panic!("no upstream address")
        };
        assert_eq!(up.address, o.upstream.ip().to_string());
        assert_eq!(
            up.port_specifier,
            Some(socket_address::PortSpecifier::PortValue(
                o.upstream.port().into()
            ))
        );
        assert!(c.time_to_last_downstream_tx_byte.is_some());
        let flags = c.response_flags.unwrap_or_default();
        assert_eq!(flags, Default::default(), "an upstream 503 sets no flag");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_proxy_streams_metrics_and_filtered_access_logs() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_minimal-proxy"));
    let o = scenario(&bin, "mp-1").await;
    check(&o, "mp-1");
    assert_eq!(consumed(&o).len(), CONSUMED.len(), "{:?}", consumed(&o));
}

/// The sink keeps going without a receiver, finds it once it listens, and after the receiver
/// ended a stream opens a new one whose first message names the node again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_reconnects_and_names_the_node_on_every_new_stream() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_minimal-proxy"));
    let upstream = upstream::start().await;
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Nothing listens here yet.
    let at: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _proxy = start(
        &bin,
        dir.path(),
        &bootstrap("mp-late", listen, upstream, at),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    // A few flushes go nowhere while the proxy serves.
    for _ in 0..3 {
        while get(listen, "/api/ok").await.is_none() {
            assert!(Instant::now() < deadline, "the proxy never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let received = Received::default();
    received
        .end_first_metrics_stream_after
        .store(2, std::sync::atomic::Ordering::Relaxed);
    let (_, received) = receiver::start_at(at, received).await;
    let limit = Duration::from_secs(30);
    received
        .wait_for("a second metrics stream", limit, |r| {
            r.metrics
                .lock()
                .unwrap()
                .get(1)
                .is_some_and(|s| !s.is_empty())
        })
        .await;
    let streams = received.metrics.lock().unwrap().clone();
    for (i, stream) in streams.iter().enumerate().filter(|(_, s)| !s.is_empty()) {
        let node = stream[0]
            .identifier
            .clone()
            .and_then(|i| i.node)
            .map(|n| n.id);
        assert_eq!(node.as_deref(), Some("mp-late"), "stream {i}");
        assert!(
            stream[1..].iter().all(|m| m.identifier.is_none()),
            "stream {i}"
        );
    }
    assert_eq!(
        streams[0].len(),
        2,
        "the first stream ended after two messages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_and_minimal_proxy_send_the_same_names_types_and_fields() {
    let Some(envoy) = envoy_bin() else {
        eprintln!("skipped: set ENVOY_BIN to an Envoy 1.40 binary to compare with Envoy");
        return;
    };
    let from_envoy = scenario(&envoy, "envoy-1").await;
    check(&from_envoy, "envoy-1");
    let ours = scenario(&PathBuf::from(env!("CARGO_BIN_EXE_minimal-proxy")), "mp-1").await;
    check(&ours, "mp-1");
    assert_eq!(consumed(&ours), consumed(&from_envoy));
    if std::env::var_os("TELEMETRY_DUMP").is_some() {
        eprintln!("envoy: {:#?}", entries(&from_envoy.received)[0]);
        eprintln!("ours: {:#?}", entries(&ours.received)[0]);
        let names = |o: &Observed| -> BTreeSet<(String, i32)> {
            let m = o.received.metric_messages();
            families(&m)
                .filter(|f| f.name().starts_with("cluster.web.") || f.name().starts_with("vhost."))
                .map(|f| (f.name().to_string(), f.r#type.unwrap_or_default()))
                .collect()
        };
        let (e, m) = (names(&from_envoy), names(&ours));
        eprintln!("only envoy: {:?}", e.difference(&m).collect::<Vec<_>>());
        eprintln!("only ours: {:?}", m.difference(&e).collect::<Vec<_>>());
        let messages = from_envoy.received.metric_messages();
        let logger: BTreeSet<_> = families(&messages)
            .filter(|f| f.name().starts_with("access_logs."))
            .map(|f| f.name().to_string())
            .collect();
        eprintln!("envoy logger stats: {logger:?}");
    }
    let fields = |o: &Observed| filled(&entries(&o.received)[0]);
    assert_eq!(fields(&ours), fields(&from_envoy));
}
