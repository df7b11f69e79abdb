//! Access log formats rendered as Envoy renders them, and lines written by real listeners.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use http::HeaderValue;
use serde_json::{Value, json};

use super::{format::rfc3339_millis, *};
use crate::{
    config::{AccessLog, RouteAction, RouteSource},
    http::tests::support::*,
};

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn operators_are_checked_by_name() {
    for op in [
        "%START_TIME%",
        "REQ(:PATH)",
        "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "%REQ(USER-AGENT):10%",
        "RESP(content-type)",
        "RESPONSE_FLAGS",
        "%DOWNSTREAM_REMOTE_ADDRESS%",
        "ROUTE_NAME",
    ] {
        assert!(supported_operator(op), "{op}");
    }
    for op in [
        "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
        "REQ()",
        "REQ(a):x",
        "DYNAMIC_METADATA(x)",
    ] {
        assert!(!supported_operator(op), "{op}");
    }
    assert!(check_format("code=%RESPONSE_CODE% took %DURATION%ms").is_ok());
    let err = check_format("%RESPONSE_CODE% %HOSTNAME%")
        .unwrap_err()
        .to_string();
    assert!(err.contains("%HOSTNAME%"), "{err}");
    assert!(check_format("100%").is_err());
}

#[test]
fn values_keep_envoys_types() {
    let mut req_keys = Vec::new();
    let mut resp_keys = Vec::new();
    let format = format::Format::new(
        &fields(&[
            ("code", "%RESPONSE_CODE%"),
            ("flags", "%RESPONSE_FLAGS%"),
            ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
            ("ua", "%REQ(USER-AGENT):4%"),
            ("missing", "%REQ(X-NOPE)%"),
            ("up", "%RESP(X-UP)%"),
            ("mixed", "code=%RESPONSE_CODE% host=%UPSTREAM_HOST%"),
            ("lit", "plain"),
            ("dur", "%DURATION%"),
            ("tx", "%BYTES_SENT%"),
            ("proto", "%PROTOCOL%"),
            ("route", "%ROUTE_NAME%"),
            ("remote", "%DOWNSTREAM_REMOTE_ADDRESS%"),
            ("start", "%START_TIME%"),
        ]),
        &mut req_keys,
        &mut resp_keys,
    )
    .unwrap();
    assert_eq!(req_keys.len(), 3);
    assert_eq!(resp_keys.len(), 1);
    let remote: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let mut record = Record::new(remote, None);
    record.start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_137_277_907);
    record.protocol = Some("HTTP/1.1");
    record.response_code = Some(404);
    record.flags = ResponseFlags::NO_ROUTE;
    record.duration = Duration::from_millis(12);
    record.bytes_sent = 7;
    // Keys register in field-name order: missing, path, ua.
    record.request_headers = vec![
        None,
        Some(HeaderValue::from_static("/a")),
        Some(HeaderValue::from_static("curl/8")),
    ];
    record.response_headers = vec![None];
    let mut line = Vec::new();
    format.render(&record, &mut line);
    let value: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(
        value,
        json!({
            "code": 404, "flags": "NR", "path": "/a", "ua": "curl", "missing": null,
            "up": null, "mixed": "code=404 host=-", "lit": "plain", "dur": 12, "tx": 7,
            "proto": "HTTP/1.1", "route": null, "remote": "127.0.0.1:4000",
            "start": "2026-12-01T15:01:17.907Z"
        })
    );
    // Keys come out sorted, as Envoy prints them.
    let text = String::from_utf8(line).unwrap();
    assert!(text.starts_with("{\"code\":404,\"dur\":12,"), "{text}");
}

#[test]
fn flags_print_in_the_order_they_were_set_as_envoy_prints_them() {
    let mut flags = ResponseFlags::default();
    assert_eq!(flags.to_string(), "-");
    flags.insert(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
    flags.insert(ResponseFlags::UPSTREAM_CONNECT_FAILURE);
    flags.insert(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
    assert_eq!(flags.to_string(), "URX,UF");
    assert!(flags.contains(ResponseFlags::UPSTREAM_CONNECT_FAILURE));
    assert!(!flags.contains(ResponseFlags::NO_ROUTE));
    let mut more = ResponseFlags::NO_ROUTE;
    more.insert(flags);
    assert_eq!(more.to_string(), "NR,URX,UF");
}

#[test]
fn start_times_are_rfc3339_in_utc() {
    let at = |ms| rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(at(951_782_400_001), "2000-02-29T00:00:00.001Z");
    assert_eq!(at(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
}

/// Waits for `n` lines in `path` and parses them.
async fn lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} lines",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_listener_writes_one_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let upstream = Upstream::echo().await;
    let web = cluster(
        "web",
        &[upstream.address],
        crate::config::UpstreamProtocol::Http1,
    );
    let runtime = runtime(vec![web], vec![]);
    let mut up = route("/up", RouteAction::Forward(forward("web")));
    up.name = "to-web".into();
    let r = routes("r", vec![route("/direct", direct(200, "hello")), up]);
    let mut config = hcm(RouteSource::Inline(Arc::new(r)));
    config.access_log = vec![
        AccessLog {
            path: path.to_string_lossy().into_owned(),
            json_format: Some(fields(&[
                ("code", "%RESPONSE_CODE%"),
                ("flags", "%RESPONSE_FLAGS%"),
                ("path", "%REQ(:PATH)%"),
                ("method", "%REQ(:METHOD)%"),
                ("cluster", "%UPSTREAM_CLUSTER%"),
                ("host", "%UPSTREAM_HOST%"),
                ("rx", "%BYTES_RECEIVED%"),
                ("tx", "%BYTES_SENT%"),
                ("ctype", "%RESP(CONTENT-TYPE)%"),
                ("route", "%ROUTE_NAME%"),
            ])),
        },
        // The default record, to the same file.
        AccessLog {
            path: path.to_string_lossy().into_owned(),
            json_format: None,
        },
    ];
    let listener = http_listener("l", "127.0.0.1:0".parse().unwrap(), config);
    let (_manager, address) = serve(&runtime, listener).await;
    let mut client = Client::h1(address).await;
    assert_eq!(client.get("/nowhere").await.status, 404);
    assert_eq!(client.get("/direct").await.status, 200);
    let up = http::Request::post("/up")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"abc")))
        .unwrap();
    let echoed = client.send(up).await.unwrap();

    let all = lines(&path, 6).await;
    let (custom, default): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|l| l.get("code").is_some());
    assert_eq!(custom[0]["code"], 404);
    assert_eq!(custom[0]["flags"], "NR");
    assert_eq!(custom[0]["path"], "/nowhere");
    assert_eq!(custom[0]["cluster"], Value::Null);
    assert_eq!(custom[0]["route"], Value::Null, "no route matched");
    assert_eq!(custom[1]["route"], Value::Null, "an unnamed route");
    assert_eq!(custom[2]["route"], "to-web");
    assert_eq!(custom[1]["tx"], 5);
    assert_eq!(custom[1]["ctype"], "text/plain");
    assert_eq!(custom[2]["method"], "POST");
    assert_eq!(custom[2]["flags"], "-");
    assert_eq!(custom[2]["cluster"], "web");
    assert_eq!(custom[2]["host"], upstream.address.to_string());
    assert_eq!(custom[2]["rx"], 3);
    assert_eq!(custom[2]["tx"], echoed.body.len());
    assert_eq!(default[2]["response_code"], 200);
    assert_eq!(default[2]["protocol"], "HTTP/1.1");
    assert_eq!(default[2]["authority"], "web.test");
    // Generated for the log too when the client sent none, as Envoy does.
    assert_eq!(default[0]["request_id"].as_str().map(str::len), Some(36));
    assert_eq!(default[0]["response_flags"], "NR");
    assert!(default[2]["upstream_service_time"].is_string());
}

#[tokio::test]
async fn a_client_gone_before_the_response_is_logged_with_dc() {
    use tokio::io::AsyncWriteExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let hold = Arc::new(tokio::sync::Semaphore::new(0));
    let held = hold.clone();
    let upstream = Upstream::start(move |_| {
        let held = held.clone();
        async move {
            let _permit = held.acquire().await;
            reply(200, "late")
        }
    })
    .await;
    let web = cluster(
        "web",
        &[upstream.address],
        crate::config::UpstreamProtocol::Http1,
    );
    let runtime = runtime(vec![web], vec![]);
    let r = routes("r", vec![route("/", RouteAction::Forward(forward("web")))]);
    let mut config = hcm(RouteSource::Inline(Arc::new(r)));
    config.access_log = vec![AccessLog {
        path: path.to_string_lossy().into_owned(),
        json_format: None,
    }];
    let listener = http_listener("l", "127.0.0.1:0".parse().unwrap(), config);
    let (_manager, address) = serve(&runtime, listener).await;

    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    client
        .write_all(b"GET /gone HTTP/1.1\r\nhost: web.test\r\n\r\n")
        .await
        .unwrap();
    let requests = upstream.requests.clone();
    eventually(Duration::from_secs(5), || {
        requests.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
    drop(client);

    let line = &lines(&path, 1).await[0];
    assert_eq!(line["response_code"], 0);
    assert_eq!(line["response_flags"], "DC");
    assert_eq!(line["path"], "/gone");
    assert_eq!(line["upstream_cluster"], "web");
    let stats = runtime.stats.http("ingress");
    assert_eq!(stats.downstream_rq_active.get(), 0);
    hold.add_permits(10);
}
