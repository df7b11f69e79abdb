//! The live tap end to end: the real server, a real proxy (Envoy or minimal-proxy, SotW and
//! Delta) in front of real upstreams, and `GET /api/v1/tap` read as server-sent events.
//!
//! Shown: a tap sees exactly the requests its filter matches, with the fields filled in
//! (method, authority, path, status, duration, upstream host, response flags, route, service);
//! the proxy is told to log only those (the access log's filter is in its config); a second
//! proxy the tap does not select never receives the access log, nor a new listener version;
//! when the taps close the access log is gone from the proxy's config and its listener is back
//! at the version it had; a tap over the cap is answered 429, a bad query 400; `/metrics`
//! counts it all. And a server stopping with a tap open ends the stream and stops at once.
//!
//! minimal-proxy implements the same gRPC access-log client and filters; its cases run from the
//! same scenario.

use std::time::{Duration, Instant};

use integration::{
    conformance,
    mesh::{Backend, ControlPlane, DataPlane, Stage, Variant, all_synced},
    net::{free_port, send},
    proxy::{Proxy, access_logs},
    upstream::Upstream,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use xds_core::type_url;

const WAIT: Duration = Duration::from_secs(30);
/// The server's default `--tap-max-open`.
const MAX_OPEN: usize = 8;
/// The access logger the server pushes.
const ACCESS_LOG: &str = "envoy.access_loggers.http_grpc";

conformance!(a_tap_streams_the_matching_requests_of_the_selected_proxy_only);

/// SIGTERM with a tap open: the server ends the tap's stream and stops at once, not at the
/// end of its grace period (an open SSE stream would otherwise hold the admin server).
#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_server_ends_open_taps() {
    let Some(mut cp) = ControlPlane::start(Backend::Sqlite).await else {
        return;
    };
    let mut tap = Tap::open_on(&cp, "status=5xx").await;
    let started = Instant::now();
    cp.stop();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping took {:?} (the grace period is 10 s)",
        started.elapsed()
    );
    let end = tokio::time::timeout(WAIT, tap.response.chunk()).await;
    assert!(
        matches!(end, Ok(Ok(None) | Err(_))),
        "the stream ended: {end:?}"
    );
}

async fn a_tap_streams_the_matching_requests_of_the_selected_proxy_only(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    // `/down` goes to a service whose only endpoint refuses connections: 503, flag UF.
    let closed = free_port();
    let spec = json!({ "protocol": "http", "connect_timeout": "1s" });
    stage
        .service_on_ports("svc-down", spec.clone(), &[(closed, json!({}))])
        .await;
    let rules = json!([
        { "match": { "path": { "prefix": "/down" } },
          "destinations": [{ "service": "svc-down" }], "timeout": "5s" },
        { "match": { "path": { "prefix": "/" } },
          "destinations": [{ "service": "svc-a" }], "timeout": "5s" },
    ]);
    stage.serve_with("svc-a", spec, &a, rules).await;
    let node = stage.node_id.clone();

    // A second proxy of the same kind, on its own listener: no tap ever selects it.
    let bystander = Bystander::start(&stage).await;
    let lds_before = lds_version(&stage, &node).await;
    let bystander_lds = lds_version(&stage, &bystander.node_id).await;

    // Refusals first: a bad query is 400, naming the parameter.
    for (query, field) in [("status=6xx", "status"), ("bogus=1", "bogus")] {
        let (status, body) = stage.cp.get(&format!("/api/v1/tap?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }

    // Tap 1: this proxy's requests under /api. Tap 2: its 5xx answers.
    let mut api = Tap::open(&stage, &format!("node_id={node}&path_prefix=/api")).await;
    assert_eq!(api.open["filter"]["path_prefix"], "/api", "{}", api.open);
    let mut errors = Tap::open(&stage, &format!("node_id={node}&status=5xx")).await;
    // Both taps' filters reach the proxy: the :path prefix and the status comparisons.
    stage
        .proxy()
        .wait_for("the taps' access log and its filters", WAIT, |d| {
            let logs = access_logs(d);
            let text = Value::from(logs.clone()).to_string();
            logs.len() == 1
                && logs[0]["name"] == ACCESS_LOG
                && ["xds-tap", "\"/api\"", "xds_tap.status"]
                    .iter()
                    .all(|s| text.contains(s))
        })
        .await;

    // Requests on new connections (connections accepted before the listener changed may
    // still be served by its previous filter chain while it drains).
    let fresh = || {
        Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let port = stage.listener_port;
    for path in ["/api/one", "/web/two", "/api/three?x=1", "/down/four"] {
        send(&fresh(), port, path, &[])
            .await
            .unwrap_or_else(|e| stage.proxy().fail(&format!("GET {path}: {e}")));
    }

    // Tap 1 sees /api/one and /api/three, and nothing else.
    let seen = api.requests(2).await;
    let paths: Vec<&str> = seen.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/api/one", "/api/three?x=1"], "{seen:#?}");
    let one = &seen[0];
    assert_eq!(one["node_id"], node.as_str());
    assert_eq!(one["method"], "GET");
    assert_eq!(one["authority"], format!("127.0.0.1:{port}"));
    assert_eq!(one["status"], 200);
    assert_eq!(one["upstream_host"], format!("127.0.0.1:{}", a.port()));
    assert_eq!(one["response_flags"], json!([]));
    assert_eq!(one["route"], "main");
    assert_eq!(one["service"], "svc-a");
    assert!(
        one["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{one}"
    );
    // RFC 3339 in UTC with milliseconds: 2026-12-01T23:45:01.123Z
    let time = one["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
        "{one}"
    );

    // Tap 2 sees only the 503, with the proxy's reason.
    let down = errors.requests(1).await;
    let down = &down[0];
    assert_eq!(down["path"], "/down/four", "{down}");
    assert_eq!(down["status"], 503, "{down}");
    assert_eq!(down["service"], "svc-down", "{down}");
    let flags = down["response_flags"].as_array().unwrap();
    assert!(flags.contains(&json!("UF")), "{down}");

    // The cap: the open taps plus idle ones (on a node no proxy has) up to --tap-max-open,
    // then one more is refused with a clear answer.
    let mut idle = Vec::new();
    for _ in 2..MAX_OPEN {
        idle.push(Tap::open(&stage, "node_id=nobody").await);
    }
    let (status, body) = stage.cp.get("/api/v1/tap").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_taps", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--tap-max-open")),
        "{body}"
    );
    // The server counts it all: the refusal, the open taps, what they were handed.
    assert_eq!(stage.cp.metric("xds_tap_refused_total").await, 1.0);
    assert_eq!(stage.cp.metric("xds_tap_open").await, MAX_OPEN as f64);
    assert_eq!(stage.cp.metric("xds_tap_events_total").await, 3.0);
    assert_eq!(stage.cp.metric("xds_tap_dropped_total").await, 0.0);
    drop(idle);

    // The bystander never had the access log, nor a new listener version.
    let dump = bystander.proxy.config_dump().await.expect("config_dump");
    assert!(access_logs(&dump).is_empty(), "{dump:#}");
    assert_eq!(lds_version(&stage, &bystander.node_id).await, bystander_lds);

    // Closing the taps (the clients go away) removes the access log, and the listener is back
    // at the version it had before.
    drop(api);
    drop(errors);
    stage
        .proxy()
        .wait_for("the access log gone", WAIT, |d| access_logs(d).is_empty())
        .await;
    let deadline = Instant::now() + WAIT;
    while lds_version(&stage, &node).await != lds_before {
        assert!(
            Instant::now() < deadline,
            "the listener never went back to its version before the tap"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lds_version(&stage, &bystander.node_id).await, bystander_lds);
    assert_eq!(stage.cp.metric("xds_tap_open").await, 0.0);
    stage.all_from("a", 3, "after-the-tap").await;
}

/// The version of the listeners `node_id` acknowledged.
async fn lds_version(stage: &Stage, node_id: &str) -> Value {
    let status = stage
        .cp
        .proxy(node_id)
        .await
        .expect("the proxy is connected");
    status["types"][type_url::LISTENER]["version_acked"].clone()
}

/// A second proxy of the stage's kind with its own listener (same route), synced.
struct Bystander {
    node_id: String,
    proxy: Proxy,
}

impl Bystander {
    async fn start(stage: &Stage) -> Bystander {
        let node_id = format!("{}-bystander", stage.node_id);
        stage
            .cp
            .put(
                "/api/v1/listeners/bystander",
                json!({ "address": "127.0.0.1", "port": free_port(), "protocol": "http",
                        "routes": ["main"], "selector": { "node_id": node_id } }),
            )
            .await;
        let bootstrap = stage
            .cp
            .bootstrap(&node_id, stage.variant, free_port())
            .await;
        let proxy = Proxy::start(stage.plane, &bootstrap);
        proxy.wait_ready(WAIT).await;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = stage.cp.proxy(&node_id).await
                && all_synced(&status)
            {
                break;
            }
            if Instant::now() > deadline {
                proxy.fail("the bystander never synced");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Bystander { node_id, proxy }
    }
}

/// One open tap: the SSE stream, read event by event. Dropping it closes the connection.
struct Tap {
    response: reqwest::Response,
    buffer: String,
    /// The `open` event's data.
    open: Value,
}

impl Tap {
    async fn open(stage: &Stage, query: &str) -> Tap {
        Self::open_on(&stage.cp, query).await
    }

    async fn open_on(cp: &ControlPlane, query: &str) -> Tap {
        // No overall timeout: the stream lasts as long as the test reads it.
        let client = Client::builder().no_proxy().build().unwrap();
        let url = cp.url(&format!("/api/v1/tap?{query}"));
        let response = client.get(&url).send().await.expect("GET /api/v1/tap");
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let mut tap = Tap {
            response,
            buffer: String::new(),
            open: Value::Null,
        };
        let (event, data) = tap.next().await;
        assert_eq!(event, "open", "{data}");
        tap.open = data;
        tap
    }

    /// The next event (name and data), waiting at most [`WAIT`].
    async fn next(&mut self) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return (event, serde_json::from_str(&data).expect("JSON data"));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("an event within the deadline")
                .expect("the stream reads")
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next `count` request events (a `dropped` event fails the test: nothing here comes
    /// near the rate limit).
    async fn requests(&mut self, count: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < count {
            let (event, data) = self.next().await;
            assert_eq!(event, "request", "{data}");
            out.push(data);
        }
        out
    }
}

/// With proxy tokens required on the xDS port, a tap still sees its requests: the access-log
/// config pushed to the tapped proxy carries a credential for that node (the proxy's own token
/// is only in its bootstrap), which the API shows redacted.
async fn a_tap_works_with_proxy_tokens_required(plane: DataPlane) {
    let backend = Backend::Sqlite;
    let extra = ["--xds-auth", "required"];
    let Some(mut stage) = Stage::new_with(plane, Variant::Sotw, backend, &extra).await else {
        return;
    };
    let a = Upstream::start("a");
    let spec = json!({ "protocol": "http", "connect_timeout": "1s" });
    let rules = json!([{ "match": { "path": { "prefix": "/" } },
                         "destinations": [{ "service": "svc-a" }], "timeout": "5s" }]);
    stage.serve_with("svc-a", spec, &a, rules).await;
    let node = stage.node_id.clone();
    let mut tap = Tap::open(&stage, &format!("node_id={node}")).await;
    stage
        .proxy()
        .wait_for("the tap's access log with its credential", WAIT, |d| {
            let text = Value::from(access_logs(d)).to_string();
            text.contains(ACCESS_LOG) && text.contains("Bearer xdstap_")
        })
        .await;
    let (_, config) = stage
        .cp
        .get(&format!("/api/v1/proxies/{node}/config"))
        .await;
    let config = config.to_string();
    assert!(
        config.contains("[redacted]") && !config.contains("xdstap_"),
        "the API shows the credential redacted"
    );
    let client = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    send(&client, stage.listener_port, "/with-tokens", &[])
        .await
        .unwrap_or_else(|e| stage.proxy().fail(&format!("GET /with-tokens: {e}")));
    let events = tap.requests(1).await;
    assert_eq!(events[0]["path"], "/with-tokens", "{events:?}");
    assert_eq!(events[0]["node_id"], node.as_str(), "{events:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tap_works_with_proxy_tokens_required_on_envoy() {
    a_tap_works_with_proxy_tokens_required(DataPlane::Envoy).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tap_works_with_proxy_tokens_required_on_minimal_proxy() {
    a_tap_works_with_proxy_tokens_required(DataPlane::Minimal).await;
}
