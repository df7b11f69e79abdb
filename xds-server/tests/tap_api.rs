//! The live tap in-process: the SSE endpoint's refusals (bad query 400, no token 401, over
//! the cap 429), its first event, its slot freed when the client goes away; and the gRPC
//! `AccessLogService` on a real socket: entries reach the open tap as events, a stream
//! without a node id and an oversized message are refused. (The whole path through real
//! proxies is `integration/tests/tap.rs`; schemathesis leaves the endless stream out.)

mod common;

use std::time::Duration;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use common::http::{assert_error, call};
use envoy_types::pb::envoy::{
    config::core::v3::Node,
    data::accesslog::v3::{HttpAccessLogEntry, HttpRequestProperties},
    service::accesslog::v3::{
        StreamAccessLogsMessage,
        access_log_service_client::AccessLogServiceClient,
        stream_access_logs_message::{HttpAccessLogEntries, Identifier, LogEntries},
    },
};
use http_body_util::BodyExt;
use tower::ServiceExt;
use xds_server::{
    api::{AppState, router},
    tap::{Filter, TapConfig, Taps, receiver},
};

fn taps(max_open: usize) -> Taps {
    Taps::new(TapConfig {
        tap_max_open: max_open,
        tap_max_rate: 100,
    })
}

/// The admin API with these taps (and the store's directory, kept while the test runs).
async fn app(taps: &Taps, token: Option<&str>) -> (axum::Router, tempfile::TempDir) {
    let (store, dir) = common::sqlite().await;
    let app = router(AppState {
        taps: taps.clone(),
        admin_token: token.map(Into::into),
        ..AppState::new(store)
    });
    (app, dir)
}

/// Opens a tap; returns the response body (the open stream) after reading its first event.
async fn open(app: &axum::Router, query: &str, headers: &[(&str, &str)]) -> (String, Body) {
    let mut req = Request::get(format!("/api/v1/tap{query}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the open event at once")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    (text, body)
}

#[tokio::test]
async fn bad_queries_are_refused_naming_the_parameter() {
    let taps = taps(4);
    let (app, _dir) = app(&taps, None).await;
    for (query, field) in [
        ("?service=web&srvice=x", "srvice"),
        ("?status=2xxx", "status"),
        ("?status=600", "status"),
        ("?route=a&route=b", "route"),
        ("?path_prefix=api", "path_prefix"),
        ("?node_id=", "node_id"),
    ] {
        let resp = call(&app, "GET", &format!("/api/v1/tap{query}"), None, &[]).await;
        let error = assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_query");
        assert_eq!(error["field"], field, "{query}: {error}");
    }
    assert_eq!(taps.open_count(), 0, "no refused query opened a tap");
}

#[tokio::test]
async fn the_tap_needs_the_admin_token_like_every_endpoint() {
    let taps = taps(4);
    let (app, _dir) = app(&taps, Some("s3cret")).await;
    let resp = call(&app, "GET", "/api/v1/tap", None, &[]).await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthorized");
    let (first, _body) = open(&app, "?status=5xx", &[("authorization", "Bearer s3cret")]).await;
    assert!(first.starts_with("event: open\ndata: "), "{first}");
    assert!(first.contains(r#""status":"5xx""#), "{first}");
    assert!(first.contains(r#""max_events_per_second":100"#), "{first}");
}

#[tokio::test]
async fn over_the_cap_is_429_and_a_client_going_away_frees_its_slot() {
    let taps = taps(1);
    let (app, _dir) = app(&taps, None).await;
    let (_, body) = open(&app, "", &[]).await;
    assert_eq!(taps.open_count(), 1);
    let resp = call(&app, "GET", "/api/v1/tap?status=500", None, &[]).await;
    let error = assert_error(&resp, StatusCode::TOO_MANY_REQUESTS, "too_many_taps");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("1 taps are already open"),
        "{error}"
    );
    drop(body);
    assert_eq!(taps.open_count(), 0, "the tap closed with its stream");
    let (_, _body) = open(&app, "", &[]).await;
}

#[tokio::test]
async fn the_document_lists_the_tap_and_its_refusals() {
    let doc = serde_json::to_value(xds_server::api::openapi()).unwrap();
    let get = &doc["paths"]["/api/v1/tap"]["get"];
    assert_eq!(get["operationId"], "tap_get");
    for code in ["200", "400", "429"] {
        assert!(get["responses"][code].is_object(), "{code}: {get:#}");
    }
    let params: Vec<&str> = get["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["service", "route", "node_id", "path_prefix", "status"]
    );
}

// === the gRPC receiver ===

/// The access-log service alone on 127.0.0.1, feeding `taps`.
async fn receiver_on_socket(taps: &Taps) -> AccessLogServiceClient<tonic::transport::Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = receiver::service(taps.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    AccessLogServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn message(node: Option<&str>, paths: &[&str]) -> StreamAccessLogsMessage {
    StreamAccessLogsMessage {
        identifier: node.map(|id| Identifier {
            node: Some(Node {
                id: id.into(),
                ..Node::default()
            }),
            log_name: "xds-tap".into(),
        }),
        log_entries: Some(LogEntries::HttpLogs(HttpAccessLogEntries {
            log_entry: paths
                .iter()
                .map(|p| HttpAccessLogEntry {
                    request: Some(HttpRequestProperties {
                        path: p.to_string(),
                        ..HttpRequestProperties::default()
                    }),
                    ..HttpAccessLogEntry::default()
                })
                .collect(),
        })),
    }
}

#[tokio::test]
async fn entries_become_events_of_the_node_named_first() {
    let taps = taps(2);
    let mut tap = taps.open(Filter::default()).unwrap();
    let mut client = receiver_on_socket(&taps).await;
    let stream = tokio_stream::iter([
        message(Some("edge-1"), &["/a"]),
        // Later identifiers are ignored: the stream is edge-1's.
        message(Some("someone-else"), &["/b", "/c"]),
    ]);
    client.stream_access_logs(stream).await.unwrap();
    for want in ["/a", "/b", "/c"] {
        let event = tokio::time::timeout(Duration::from_secs(5), tap.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.path, want);
        assert_eq!(&*event.node_id, "edge-1");
    }
}

#[tokio::test]
async fn a_stream_without_a_node_id_or_with_a_huge_message_is_refused() {
    let taps = taps(2);
    let _tap = taps.open(Filter::default()).unwrap();
    let mut client = receiver_on_socket(&taps).await;
    let status = client
        .stream_access_logs(tokio_stream::iter([message(None, &["/a"])]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("identifier.node.id"), "{status}");

    let huge = "/x".repeat(receiver::MAX_MESSAGE_BYTES / 2 + 1);
    let status = client
        .stream_access_logs(tokio_stream::iter([message(Some("n"), &[&huge])]))
        .await
        .unwrap_err();
    assert_ne!(status.code(), tonic::Code::Ok, "{status}");
}

// === the stream's events ===

/// The next complete SSE event in `body` (name, data), skipping keep-alive comments.
async fn next_event(body: &mut Body, buffer: &mut String) -> (String, serde_json::Value) {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let name = block.lines().find_map(|l| l.strip_prefix("event: "));
            let data = block.lines().find_map(|l| l.strip_prefix("data: "));
            if let (Some(name), Some(data)) = (name, data) {
                return (name.to_string(), serde_json::from_str(data).unwrap());
            }
            continue;
        }
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        buffer.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
    }
}

#[tokio::test]
async fn requests_over_the_rate_are_dropped_and_the_client_is_told_how_many() {
    let taps = Taps::new(TapConfig {
        tap_max_open: 1,
        tap_max_rate: 2,
    });
    let (app, _dir) = app(&taps, None).await;
    let (_, mut body) = open(&app, "?path_prefix=/api", &[]).await;
    let entry = |path: &str| {
        let mut e = message(Some("edge-1"), &[path]);
        let Some(LogEntries::HttpLogs(logs)) = e.log_entries.take() else {
            unreachable!()
        };
        xds_server::tap::TapEvent::from_entry(&"edge-1".into(), &logs.log_entry[0])
    };
    // Five matching, one not: two pass (the rate), three are dropped, /web is not counted.
    taps.deliver(["/api/1", "/web", "/api/2", "/api/3", "/api/4", "/api/5"].map(entry));
    // The requests in order; the drop report a second after the open (so after them,
    // unless this machine stalls for that long: the order between the two is not asserted).
    let mut buffer = String::new();
    let (mut paths, mut dropped) = (Vec::new(), Vec::new());
    while paths.len() < 2 || dropped.is_empty() {
        let (name, data) = next_event(&mut body, &mut buffer).await;
        match name.as_str() {
            "request" => {
                assert_eq!(data["node_id"], "edge-1");
                paths.push(data["path"].as_str().unwrap().to_string());
            }
            "dropped" => dropped.push(data),
            other => panic!("unexpected event {other}: {data}"),
        }
    }
    assert_eq!(paths, ["/api/1", "/api/2"]);
    assert_eq!(
        dropped,
        [serde_json::json!({ "dropped": 3, "total_dropped": 3 })]
    );
}
