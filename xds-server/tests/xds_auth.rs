//! Authenticated xDS, in process: with proxy tokens required, a stream without a token or
//! with an unknown one is UNAUTHENTICATED, a token used by another node is PERMISSION_DENIED,
//! a good one is served, and revoking it ends the live stream, on this replica and on another
//! process sharing the store. Tokens are issued through the admin API.

mod common;

use std::{sync::Arc, time::Duration};

use axum::http::StatusCode;
use common::http::{assert_error, call};
use serde_json::{Value, json};
use tonic::Code;
use xds_core::{
    TypeUrl,
    testing::{AdsClient, Builder, Error},
};
use xds_server::{
    api::{AppState, router},
    proxy_auth::ProxyAuth,
    store::{SqliteStore, Store},
    xds::{embedded::Embedded, limits::Limits},
};

const WAIT: Duration = Duration::from_secs(10);

struct Replica {
    xds: Embedded,
    api: axum::Router,
}

async fn replica(store: Arc<dyn Store>) -> Replica {
    let auth = ProxyAuth::required(store.clone()).await.unwrap();
    let xds = Embedded::start_with_auth(
        store.clone(),
        Duration::from_millis(10),
        Limits::default(),
        auth.clone(),
    )
    .await
    .unwrap();
    let mut state = AppState::new(store);
    state.proxy_auth = auth;
    Replica {
        xds,
        api: router(state),
    }
}

fn proxy(id: &str, cluster: &str) -> Builder {
    AdsClient::sotw(xds_core::testing::node(id, cluster))
        .timeout(WAIT)
        .wildcard(TypeUrl::Cluster)
}

/// The gRPC status the stream ended with (panics on a response).
async fn refused(r: &Replica, proxy: Builder) -> tonic::Status {
    let result = match proxy.connect(r.xds.addr).await {
        Ok(mut client) => client.next().await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Err(Error::Status(status)) => *status,
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

async fn issue(api: &axum::Router, node: &str, cluster: &str) -> Value {
    let body = json!({ "node_id": node, "node_cluster": cluster, "description": "test" });
    let (status, _, token) = call(
        api,
        "POST",
        "/api/v1/proxy-tokens",
        Some(&body.to_string()),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    token
}

/// One new HTTP/2 connection to `r`'s xDS port.
async fn connection(r: &Replica) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{}", r.xds.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Revokes token `id` through the admin API.
async fn revoke(r: &Replica, id: &str) {
    let path = format!("/api/v1/proxy-tokens/{id}");
    let (status, _, _) = call(&r.api, "DELETE", &path, None, &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// A replica on a fresh store with a token issued for node `web` in cluster `prod`: the
/// replica, the store's directory, the secret and the token's id.
async fn with_web_token() -> (Replica, tempfile::TempDir, String, String) {
    let (store, dir) = common::sqlite().await;
    let r = replica(store).await;
    let token = issue(&r.api, "web", "prod").await;
    let secret = token["token"].as_str().unwrap().to_string();
    let id = token["id"].as_str().unwrap().to_string();
    (r, dir, secret, id)
}

/// Waits until `node` has no stream on `r`.
async fn gone(r: &Replica, node: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while r.xds.registry.get(node).is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{node} still connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn tokens_are_required_checked_against_the_node_and_revocable() {
    let (store, _dir) = common::sqlite().await;
    let r = replica(store).await;

    let status = refused(&r, proxy("web", "prod")).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("authorization: Bearer"),
        "{}",
        status.message()
    );
    let status = refused(&r, proxy("web", "prod").token("xdst_nope")).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let token = issue(&r.api, "web", "prod").await;
    let secret = token["token"].as_str().unwrap();
    let id = token["id"].as_str().unwrap();
    assert!(secret.starts_with("xdst_"));

    // Another node, or another cluster, with web's token.
    for (node, cluster) in [("api", "prod"), ("web", "staging")] {
        let status = refused(&r, proxy(node, cluster).token(secret)).await;
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(status.message().contains(id), "{}", status.message());
    }

    // The right node is served; the list shows the token but never a secret.
    let mut client = proxy("web", "prod")
        .token(secret)
        .connect(r.xds.addr)
        .await
        .unwrap();
    client.next().await.unwrap();
    assert!(r.xds.registry.get("web").is_some());
    let (_, _, list) = call(&r.api, "GET", "/api/v1/proxy-tokens", None, &[]).await;
    assert_eq!(list["items"][0]["id"], id, "{list}");
    assert!(!list.to_string().contains(secret) && !list.to_string().contains("sha256"));

    // Revoking ends the live stream at once, UNAUTHENTICATED.
    revoke(&r, id).await;
    match client.next().await {
        Err(Error::Status(s)) => {
            assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
            assert!(s.message().contains("revoked"), "{}", s.message());
        }
        other => panic!("the stream should have ended, got {other:?}"),
    }
    gone(&r, "web").await;
    let status = refused(&r, proxy("web", "prod").token(secret)).await;
    assert_eq!(status.code(), Code::Unauthenticated);
    let resp = call(
        &r.api,
        "DELETE",
        &format!("/api/v1/proxy-tokens/{id}"),
        None,
        &[],
    )
    .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_revocation_on_one_replica_ends_streams_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mesh.db");
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, common::POLL).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, common::POLL).await.unwrap());
    let (ra, rb) = (replica(a).await, replica(b).await);

    // Issued on A, used on B at once (B reloads on an unknown token).
    let token = issue(&ra.api, "web", "prod").await;
    let secret = token["token"].as_str().unwrap();
    let mut client = proxy("web", "prod")
        .token(secret)
        .connect(rb.xds.addr)
        .await
        .unwrap();
    client.next().await.unwrap();

    let id = token["id"].as_str().unwrap();
    let (status, _, _) = call(
        &ra.api,
        "DELETE",
        &format!("/api/v1/proxy-tokens/{id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    match client.next().await {
        Err(Error::Status(s)) => assert_eq!(s.code(), Code::Unauthenticated, "{s:?}"),
        other => panic!("the stream on B should have ended, got {other:?}"),
    }
    gone(&rb, "web").await;
}

#[tokio::test]
async fn bad_token_requests_name_the_field() {
    let (store, _dir) = common::sqlite().await;
    let api = router(AppState::new(store));
    for (body, status, code, field) in [
        ("[]", StatusCode::BAD_REQUEST, "invalid_json", None),
        ("{", StatusCode::BAD_REQUEST, "invalid_json", None),
        (
            r#"{"node_cluster": "c"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("node_id"),
        ),
        (
            r#"{"node_id": "", "node_cluster": "c"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("node_id"),
        ),
        (
            r#"{"node_id": "a"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("node_cluster"),
        ),
        (
            r#"{"node_id": "a", "node_cluster": "c\u0007"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("node_cluster"),
        ),
        (
            r#"{"node_id": 5, "node_cluster": "c"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("node_id"),
        ),
        (
            r#"{"node_id": "a", "node_cluster": "c", "secret": "x"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
            None,
        ),
    ] {
        let resp = call(&api, "POST", "/api/v1/proxy-tokens", Some(body), &[]).await;
        let err = assert_error(&resp, status, code);
        if let Some(field) = field {
            assert_eq!(err["field"], field, "{body}: {err}");
        }
    }
    let long = "x".repeat(257);
    let body = json!({ "node_id": long, "node_cluster": "c" }).to_string();
    let resp = call(&api, "POST", "/api/v1/proxy-tokens", Some(&body), &[]).await;
    assert_eq!(
        assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "node_id"
    );
    let resp = call(&api, "DELETE", "/api/v1/proxy-tokens/pt-nope", None, &[]).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_bootstrap_can_carry_a_new_token_but_only_for_the_admin() {
    let (store, _dir) = common::sqlite().await;
    let mut state = AppState::new(store);
    state.admin_token = Some(Arc::from("adm1n"));
    state.reader_tokens = Arc::from([Arc::from("r3ad")]);
    let api = router(state);
    let uri = "/api/v1/bootstrap?node_id=web&cluster=prod&token=issue";
    let resp = call(&api, "GET", uri, None, &[("authorization", "Bearer r3ad")]).await;
    assert_error(&resp, StatusCode::FORBIDDEN, "forbidden");
    let (_, _, list) = call(
        &api,
        "GET",
        "/api/v1/proxy-tokens",
        None,
        &[("authorization", "Bearer r3ad")],
    )
    .await;
    assert_eq!(
        list["items"],
        json!([]),
        "a refused bootstrap issued nothing"
    );

    for ads in ["true", "false"] {
        let (status, headers, boot) = call(
            &api,
            "GET",
            &format!("{uri}&ads={ads}"),
            None,
            &[("authorization", "Bearer adm1n")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{boot}");
        let id = headers.get("x-proxy-token-id").unwrap().to_str().unwrap();
        assert!(id.starts_with("pt-"));
        let text = boot.to_string();
        let services: Vec<&Value> = [
            "/dynamic_resources/ads_config/grpc_services/0",
            "/dynamic_resources/cds_config/api_config_source/grpc_services/0",
            "/dynamic_resources/lds_config/api_config_source/grpc_services/0",
            "/stats_sinks/0/typed_config/grpc_service",
        ]
        .iter()
        .filter_map(|p| boot.pointer(p))
        .collect();
        assert_eq!(services.len(), if ads == "true" { 2 } else { 3 }, "{text}");
        for s in services {
            let value = s["initial_metadata"][0]["value"].as_str().unwrap();
            assert_eq!(s["initial_metadata"][0]["key"], "authorization");
            assert!(value.starts_with("Bearer xdst_"), "{value}");
        }
    }
    let resp = call(
        &api,
        "GET",
        "/api/v1/bootstrap?node_id=web&token=yes",
        None,
        &[("authorization", "Bearer adm1n")],
    )
    .await;
    assert_eq!(
        assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_query")["field"],
        "token"
    );
    let (_, _, list) = call(
        &api,
        "GET",
        "/api/v1/proxy-tokens",
        None,
        &[("authorization", "Bearer adm1n")],
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
}

/// The MetricsService on the xDS port: no token is UNAUTHENTICATED, another node's token
/// PERMISSION_DENIED, the node's own token accepted.
#[tokio::test]
async fn the_metrics_service_checks_the_token_and_its_node() {
    use envoy_types::pb::envoy::service::metrics::v3::{
        StreamMetricsMessage, metrics_service_client::MetricsServiceClient,
        stream_metrics_message::Identifier,
    };
    let (r, _dir, secret, _) = with_web_token().await;
    let send = async |node: &str, token: Option<&str>| {
        let channel = connection(&r).await;
        let message = StreamMetricsMessage {
            identifier: Some(Identifier {
                node: Some(xds_core::testing::node(node, "prod")),
            }),
            envoy_metrics: vec![],
        };
        let mut req = tonic::Request::new(tokio_stream::iter(vec![message]));
        if let Some(t) = token {
            req.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        MetricsServiceClient::new(channel).stream_metrics(req).await
    };
    let err = send("web", None).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = send("api", Some(&secret)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    send("web", Some(&secret)).await.unwrap();
}

/// The AccessLogService (live tap) and the MetricsService hold their streams to the same
/// rules as discovery: another node's token is PERMISSION_DENIED, and revoking the token
/// ends a live stream with UNAUTHENTICATED (not only its next connect).
#[tokio::test]
async fn telemetry_streams_check_the_node_and_end_on_revocation() {
    use envoy_types::pb::envoy::service::{
        accesslog::v3::{
            StreamAccessLogsMessage, access_log_service_client::AccessLogServiceClient,
            stream_access_logs_message,
        },
        metrics::v3::{
            StreamMetricsMessage, metrics_service_client::MetricsServiceClient,
            stream_metrics_message,
        },
    };
    let (r, _dir, secret, id) = with_web_token().await;
    let (secret, id) = (secret.as_str(), id.as_str());
    let channel = connection(&r).await;
    // A request whose stream sends `first` and then stays open until `hold` is dropped.
    fn open<M: Send + 'static>(
        first: M,
        secret: &str,
    ) -> (
        tonic::Request<tokio_stream::wrappers::ReceiverStream<M>>,
        tokio::sync::mpsc::Sender<M>,
    ) {
        let (hold, rx) = tokio::sync::mpsc::channel(1);
        hold.try_send(first).unwrap();
        let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        req.metadata_mut()
            .insert("authorization", format!("Bearer {secret}").parse().unwrap());
        (req, hold)
    }
    let log_from = |node: &str| StreamAccessLogsMessage {
        identifier: Some(stream_access_logs_message::Identifier {
            node: Some(xds_core::testing::node(node, "prod")),
            log_name: "tap".into(),
        }),
        log_entries: None,
    };
    let metrics_from = |node: &str| StreamMetricsMessage {
        identifier: Some(stream_metrics_message::Identifier {
            node: Some(xds_core::testing::node(node, "prod")),
        }),
        envoy_metrics: vec![],
    };

    // Another node with web's token.
    let (req, _hold) = open(log_from("api"), secret);
    let err = AccessLogServiceClient::new(channel.clone())
        .stream_access_logs(req)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // web's own streams stay open until the token is revoked.
    let (req, _hold_logs) = open(log_from("web"), secret);
    let mut logs = AccessLogServiceClient::new(channel.clone());
    let logs = tokio::spawn(async move { logs.stream_access_logs(req).await });
    let (req, _hold_metrics) = open(metrics_from("web"), secret);
    let mut metrics = MetricsServiceClient::new(channel.clone());
    let metrics = tokio::spawn(async move { metrics.stream_metrics(req).await });
    // Both are being served before the revocation (else it would only refuse them).
    let deadline = tokio::time::Instant::now() + WAIT;
    let open_streams = || {
        let text = r.xds.metrics.render(&r.xds.registry, 0);
        ["xds_metrics_streams 1", "xds_tap_access_log_streams 1"]
            .iter()
            .all(|line| text.lines().any(|l| l == *line))
    };
    while !open_streams() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the streams never opened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!logs.is_finished() && !metrics.is_finished());
    revoke(&r, id).await;
    for (what, ended) in [
        (
            "access-log",
            tokio::time::timeout(WAIT, logs)
                .await
                .map(|r| r.unwrap().map(|_| ())),
        ),
        (
            "metrics",
            tokio::time::timeout(WAIT, metrics)
                .await
                .map(|r| r.unwrap().map(|_| ())),
        ),
    ] {
        let err = ended
            .unwrap_or_else(|_| panic!("the {what} stream outlived its token"))
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
        // The live stream's end names the token; a refused connect would not.
        assert!(
            err.message()
                .contains(&format!("proxy token {id} was revoked")),
            "{what}: {}",
            err.message()
        );
    }
}

/// A per-type EDS stream without a token on a connection where another stream presented one
/// is that proxy's (Envoy opens it from a config source the server wrote, which cannot carry
/// the token): served for the token's node, PERMISSION_DENIED for another node; an ADS stream
/// inherits nothing, nor does another connection, nor a connection that carried two tokens;
/// the inherited stream ends with the token's revocation.
#[tokio::test]
async fn per_type_streams_inherit_their_connections_token() {
    use envoy_types::pb::envoy::service::{
        discovery::v3::{DiscoveryRequest, DiscoveryResponse},
        endpoint::v3::endpoint_discovery_service_client::EndpointDiscoveryServiceClient,
    };
    let (r, _dir, secret, id) = with_web_token().await;
    // An EDS stream of `node` on `channel`, without a token; its first answer or its status.
    async fn eds(
        channel: &tonic::transport::Channel,
        node: &str,
    ) -> Result<
        (
            tonic::Streaming<DiscoveryResponse>,
            tokio::sync::mpsc::Sender<DiscoveryRequest>,
        ),
        tonic::Status,
    > {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(DiscoveryRequest {
            node: Some(xds_core::testing::node(node, "prod")),
            type_url: xds_core::type_url::ENDPOINT.into(),
            resource_names: vec!["web".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        let mut client = EndpointDiscoveryServiceClient::new(channel.clone());
        let call = client.stream_endpoints(tokio_stream::wrappers::ReceiverStream::new(rx));
        let mut inbound = tokio::time::timeout(WAIT, call)
            .await
            .unwrap()?
            .into_inner();
        // Served: web's assignment comes; refused: the stream ends with a status.
        match tokio::time::timeout(WAIT, inbound.message()).await {
            Ok(Ok(Some(_))) => Ok((inbound, tx)),
            Ok(Err(status)) => Err(status),
            other => panic!("neither an assignment nor a refusal: {other:?}"),
        }
    }
    for (path, body) in [
        ("/api/v1/services/web", json!({ "protocol": "http" })),
        (
            "/api/v1/services/web/endpoints",
            json!({ "endpoints": [{ "address": "127.0.0.1", "port": 8080 }] }),
        ),
    ] {
        let (status, _, text) = call(&r.api, "PUT", path, Some(&body.to_string()), &[]).await;
        assert!(status.is_success(), "PUT {path}: {text}");
    }
    // One HTTP/2 connection for the streams below; the first presents web's token.
    let channel = connection(&r).await;
    let mut cds = proxy("web", "prod")
        .token(&secret)
        .open(channel.clone())
        .await
        .unwrap();
    cds.next().await.unwrap();
    let (mut inherited, _hold) = eds(&channel, "web")
        .await
        .expect("web's EDS stream is served");
    assert!(r.xds.registry.streams_of("web").len() >= 2);
    let err = eds(&channel, "api")
        .await
        .expect_err("api on web's connection");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // ADS inherits nothing, and neither does another connection.
    let ads = match proxy("web", "prod").open(channel.clone()).await {
        Ok(mut c) => c.next().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(
        matches!(&ads, Err(Error::Status(s)) if s.code() == Code::Unauthenticated),
        "{ads:?}"
    );
    let err = eds(&connection(&r).await, "web")
        .await
        .expect_err("another connection");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // Revoking ends the inherited stream too, naming the token.
    revoke(&r, &id).await;
    let end = tokio::time::timeout(WAIT, inherited.message())
        .await
        .unwrap();
    match end {
        Err(s) => {
            assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
            assert!(s.message().contains(&id), "{}", s.message());
        }
        Ok(other) => panic!("the inherited stream should have ended, got {other:?}"),
    }
    // A connection that carried two tokens multiplexes proxies: nothing is inherited on it.
    let shared = connection(&r).await;
    for (node, cluster) in [("a", "prod"), ("b", "prod")] {
        let token = issue(&r.api, node, cluster).await;
        let mut c = proxy(node, cluster)
            .token(token["token"].as_str().unwrap())
            .open(shared.clone())
            .await
            .unwrap();
        c.next().await.unwrap();
    }
    let err = eds(&shared, "a")
        .await
        .expect_err("a multiplexed connection");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
}
