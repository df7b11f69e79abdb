//! Protocols end to end on both data planes (ADS SotW and Delta): a TCP proxy listener in
//! front of TCP echo servers (payloads echoed whole, a half-close passed through and answered
//! by the upstream's close, new connections follow an endpoint change while an established one
//! keeps its upstream); HTTP/2 downstream (h2c) and upstream (`protocol: http2`) in every combination with
//! HTTP/1.1; gRPC through the proxy to a real gRPC service, errors included.

use std::time::{Duration, Instant};

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Stage, Variant},
    net::{self, POLL, free_port, h2c_client, local_client},
    upstream::{
        Upstream,
        grpc::{self, GrpcUpstream, SERVING},
        tcp::{self, TcpUpstream},
    },
};
use reqwest::Version;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const WAIT: Duration = Duration::from_secs(30);

conformance!(
    tcp_proxy_echoes_and_follows_endpoints,
    http2_both_ways,
    grpc_end_to_end
);

/// A payload that is not all one byte, so a misordered echo shows.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A `tcp` listener `tcp-in` on `port` for `service`, for this stage's node.
async fn tcp_listener(stage: &Stage, port: u16, service: &str) {
    stage
        .cp
        .put(
            "/api/v1/listeners/tcp-in",
            json!({ "address": "127.0.0.1", "port": port, "protocol": "tcp",
                    "service": service, "selector": { "node_id": stage.node_id } }),
        )
        .await;
}

/// A TCP listener proxies to `echo`: the greeting says which upstream answered and 256 KiB
/// come back intact, on 5 connections at once; the client's half-close reaches the upstream,
/// whose close ends the conversation. The endpoint moves from tcp-a to tcp-b: new connections
/// greet from tcp-b, and a connection opened before the move still talks to tcp-a.
async fn tcp_proxy_echoes_and_follows_endpoints(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let (tcp_a, tcp_b) = (TcpUpstream::start("tcp-a"), TcpUpstream::start("tcp-b"));
    let spec = json!({ "protocol": "tcp", "connect_timeout": "1s" });
    stage
        .service_on_ports("echo", spec, &[(tcp_a.port(), json!({}))])
        .await;
    let port = free_port();
    tcp_listener(&stage, port, "echo").await;
    stage.start_proxy().await;
    let deadline = Instant::now() + WAIT;
    while tcp::converse(port, b"hello", Duration::from_secs(5))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            stage
                .proxy()
                .fail("the TCP listener never proxied a conversation");
        }
        tokio::time::sleep(POLL).await;
    }
    let before = tcp_a.connections();

    let data = payload(256 * 1024);
    let talks: Vec<_> = (0..5)
        .map(|_| {
            let data = data.clone();
            tokio::spawn(async move { tcp::converse(port, &data, WAIT).await })
        })
        .collect();
    for (i, talk) in talks.into_iter().enumerate() {
        let (greeting, echoed) = talk
            .await
            .expect("a conversation task")
            .unwrap_or_else(|e| stage.proxy().fail(&format!("conversation {i}: {e}")));
        assert_eq!(greeting, "tcp-a", "conversation {i}");
        assert!(
            echoed == data,
            "conversation {i}: the echo differs from what was sent"
        );
    }
    assert_eq!(
        tcp_a.connections() - before,
        5,
        "one upstream connection per downstream one"
    );

    // A connection to tcp-a stays open across the change.
    let mut open = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect through the TCP listener");
    let mut greeting = [0u8; 6];
    open.read_exact(&mut greeting)
        .await
        .expect("the open connection's greeting");
    assert_eq!(&greeting, b"tcp-a\n");

    stage
        .endpoints_on_ports("echo", &[(tcp_b.port(), json!({}))])
        .await;
    let deadline = Instant::now() + WAIT;
    loop {
        match tcp::converse(port, b"ping", Duration::from_secs(5)).await {
            Ok((greeting, echoed)) if greeting == "tcp-b" => {
                assert_eq!(echoed, b"ping");
                break;
            }
            Ok((greeting, _)) => assert_eq!(greeting, "tcp-a", "only a or b answer"),
            Err(e) => stage
                .proxy()
                .fail(&format!("during the endpoint change: {e}")),
        }
        if Instant::now() > deadline {
            stage.proxy().fail("new connections never reached tcp-b");
        }
        tokio::time::sleep(POLL).await;
    }
    // The connection opened before the change still talks to tcp-a.
    let still = async {
        open.write_all(b"still there").await?;
        open.shutdown().await?;
        let mut echoed = Vec::new();
        open.read_to_end(&mut echoed).await.map(|_| echoed)
    };
    let echoed = tokio::time::timeout(WAIT, still).await;
    assert!(
        matches!(&echoed, Ok(Ok(e)) if e == b"still there"),
        "an established connection survives the endpoint change: {echoed:?}"
    );
    let cx = stage.proxy().stat("cluster.echo.upstream_cx_total").await;
    assert!(
        cx.is_some_and(|n| n >= 6),
        "cluster.echo.upstream_cx_total counts the upstream connections: {cx:?}"
    );
}

/// `h2` speaks HTTP/2 to its upstream (`protocol: http2`), `h1` HTTP/1.1. Clients speak
/// HTTP/1.1 or h2c to the listener; every combination arrives in the upstream's protocol and
/// answers in the client's. 20 concurrent h2c requests share one connection and all succeed.
async fn http2_both_ways(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let h2 = json!({ "protocol": "http2", "connect_timeout": "1s" });
    stage.service_with("h2", h2, &[(&a, json!({}))]).await;
    stage.service("h1", &[(&b, json!({}))]).await;
    stage
        .route(
            "main",
            json!([
                { "match": { "path": { "prefix": "/h2/" } }, "destinations": [{ "service": "h2" }] },
                { "match": { "path": { "prefix": "/" } }, "destinations": [{ "service": "h1" }] }
            ]),
        )
        .await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
    stage
        .wait_reply("a reply from a over h2", "/h2/", &[], WAIT, |r| r.from("a"))
        .await;

    let port = stage.listener_port;
    let (h1_client, h2_client) = (local_client(), h2c_client());
    let cases = [
        (&h1_client, Version::HTTP_11, "/h2/x", "a", "HTTP/2.0"),
        (&h2_client, Version::HTTP_2, "/h2/x", "a", "HTTP/2.0"),
        (&h1_client, Version::HTTP_11, "/plain", "b", "HTTP/1.1"),
        (&h2_client, Version::HTTP_2, "/plain", "b", "HTTP/1.1"),
    ];
    for (client, downstream, path, upstream, upstream_version) in cases {
        let reply = net::send(client, port, path, &[])
            .await
            .unwrap_or_else(|e| stage.proxy().fail(&format!("{downstream:?} {path}: {e}")));
        assert!(reply.from(upstream), "{downstream:?} {path}: {reply:?}");
        assert_eq!(
            (reply.version, reply.upstream_version.as_deref()),
            (downstream, Some(upstream_version)),
            "{path}: answered in the client's protocol, arrived in the upstream's"
        );
    }

    let concurrent: Vec<_> = (0..20)
        .map(|i| {
            let client = h2_client.clone();
            tokio::spawn(async move { net::send(&client, port, &format!("/h2/{i}"), &[]).await })
        })
        .collect();
    for (i, task) in concurrent.into_iter().enumerate() {
        let reply = task.await.expect("a request task");
        assert!(
            reply
                .as_ref()
                .is_ok_and(|r| r.from("a") && r.version == Version::HTTP_2),
            "concurrent h2c request {i}: {reply:?}"
        );
    }
}

/// A gRPC health service behind `protocol: grpc`: `Check("")` answers SERVING through the
/// proxy; `Check("nope")` comes back as the service's own NOT_FOUND, message and metadata
/// intact (a trailers-only answer passed through). With no endpoint left, the proxy answers by
/// itself in gRPC's terms: UNAVAILABLE, `no healthy upstream`.
async fn grpc_end_to_end(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let g = GrpcUpstream::start("grpc-a");
    let spec = json!({ "protocol": "grpc", "connect_timeout": "1s" });
    stage
        .service_on_ports("health", spec, &[(g.port(), json!({}))])
        .await;
    stage.route_to("main", "health").await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
    let port = stage.listener_port;
    stage.proxy().listener_port_ready(port, WAIT).await;

    let deadline = Instant::now() + WAIT;
    let served = loop {
        match grpc::check(port, "").await {
            Ok(served) => break served,
            Err(e) if Instant::now() > deadline => stage
                .proxy()
                .fail(&format!("Check(\"\") through the proxy: {e:?}")),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    };
    assert_eq!(served, (SERVING, Some("grpc-a".to_string())));
    for i in 0..10 {
        let again = grpc::check(port, "grpc-a").await;
        assert!(
            again.as_ref().is_ok_and(|(s, _)| *s == SERVING),
            "Check {i}: {again:?}"
        );
    }

    let calls = g.calls();
    let refused = grpc::check(port, "nope")
        .await
        .expect_err("an unknown service is NOT_FOUND");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    assert_eq!(refused.message(), "unknown service 'nope'", "{refused:?}");
    assert_eq!(
        grpc::upstream_of(refused.metadata()).as_deref(),
        Some("grpc-a"),
        "the service's own error, not the proxy's: {refused:?}"
    );
    assert_eq!(g.calls(), calls + 1);

    // No endpoint left: the proxy's own answer, in gRPC's terms.
    stage.endpoints_on_ports("health", &[]).await;
    let deadline = Instant::now() + WAIT;
    let unavailable = loop {
        match grpc::check(port, "").await {
            Err(status) if status.code() == tonic::Code::Unavailable => break status,
            Ok(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
            other => stage
                .proxy()
                .fail(&format!("Check with no endpoint: {other:?}")),
        }
    };
    assert_eq!(
        unavailable.message(),
        "no healthy upstream",
        "a local reply to a gRPC request is a gRPC status: {unavailable:?}"
    );
    assert_eq!(grpc::upstream_of(unavailable.metadata()), None);
}
