//! xDS over TLS with real components: the real xds-server started with `--ca builtin
//! --xds-tls builtin --xds-auth required`; real Envoy and the real minimal-proxy bootstrap
//! from `GET /api/v1/bootstrap?token=issue` (which carries the CA inline) and serve the
//! mesh's config. On the same port, a plaintext client and a client trusting another CA are
//! refused (and counted), and a TLS client without a token gets UNAUTHENTICATED.

use std::time::{Duration, Instant};

use integration::{
    net::{free_port, local_client, send},
    proxy::{DataPlane, Proxy},
    server::Server,
    upstream::Upstream,
};
use serde_json::{Value, json};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use xds_core::{
    TypeUrl,
    testing::{AdsClient, Error},
};

const WAIT: Duration = Duration::from_secs(30);

/// The TLS server the tests here start (its own SQLite file in `dir`); proxy tokens
/// required when `tokens`.
fn start(dir: &tempfile::TempDir, tokens: bool) -> Server {
    let db = dir.path().join("mesh.db").display().to_string();
    let auth = if tokens { "required" } else { "off" };
    let args = [
        "--sqlite-file",
        &db,
        "--ca",
        "builtin",
        "--xds-tls",
        "builtin",
        "--xds-auth",
        auth,
    ];
    Server::start(&args, &[])
}

async fn put(server: &Server, path: &str, body: Value) {
    let resp = local_client()
        .put(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "PUT {path}: {}", resp.status());
}

/// The bootstrap for `node` (followed by any further query) with a new proxy token, as text
/// and as JSON.
async fn bootstrap(server: &Server, node: &str) -> (String, Value) {
    let url = server.url(&format!(
        "/api/v1/bootstrap?node_id={node}&cluster=tls&admin_port={}&token=issue",
        free_port()
    ));
    let resp = local_client().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).expect("the bootstrap is JSON");
    (text, json)
}

/// What the bootstrap's xds cluster says about TLS: (the CA PEM, the xDS port).
fn tls_of(bootstrap: &Value) -> (String, u16) {
    let cluster = &bootstrap["static_resources"]["clusters"][0];
    let context = &cluster["transport_socket"]["typed_config"];
    assert_eq!(
        context["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    );
    let ca = context["common_tls_context"]["validation_context"]["trusted_ca"]["inline_string"]
        .as_str()
        .expect("the CA inline")
        .to_string();
    assert!(ca.contains("BEGIN CERTIFICATE"));
    let port = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        ["socket_address"]["port_value"]
        .as_u64()
        .unwrap();
    (ca, u16::try_from(port).unwrap())
}

/// `plane` bootstraps from the server (`query` added to the bootstrap's) and serves the
/// mesh's listener: its whole config came over TLS.
async fn proxies_get_their_config_over_tls(plane: DataPlane, query: &str, tokens: bool) {
    if plane.binary().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&dir, tokens);
    let node = format!("tls-{}", plane.as_str());
    let upstream = Upstream::start("web");
    let listener_port = free_port();
    put(
        &server,
        "/api/v1/services/web",
        json!({ "protocol": "http", "connect_timeout": "1s" }),
    )
    .await;
    put(
        &server,
        "/api/v1/services/web/endpoints",
        json!({ "endpoints": [{ "address": "127.0.0.1", "port": upstream.port() }] }),
    )
    .await;
    put(
        &server,
        "/api/v1/routes/main",
        json!({ "hosts": ["*"], "rules": [{ "match": { "path": { "prefix": "/" } },
                "destinations": [{ "service": "web" }], "timeout": "5s" }] }),
    )
    .await;
    put(
        &server,
        "/api/v1/listeners/ingress",
        json!({ "address": "127.0.0.1", "port": listener_port, "protocol": "http",
                "routes": ["main"], "selector": { "node_id": node } }),
    )
    .await;

    let (text, json) = bootstrap(&server, &format!("{node}{query}")).await;
    tls_of(&json);
    let proxy = Proxy::start(plane, &text);
    let client = local_client();
    let deadline = Instant::now() + WAIT;
    loop {
        if send(&client, listener_port, "/", &[])
            .await
            .is_ok_and(|r| r.from("web"))
        {
            break;
        }
        if Instant::now() > deadline {
            proxy.fail("serve the mesh's listener, configured over xDS on TLS");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = (
        local_client()
            .get(server.url(&format!("/api/v1/proxies/{node}")))
            .send()
            .await
            .unwrap()
            .status(),
        (),
    );
    assert_eq!(status, 200, "the proxy is listed as connected");
    let secret_logged = server
        .logs()
        .iter()
        .any(|l| l.contains("xdst_") || l.contains("PRIVATE KEY"));
    assert!(!secret_logged, "a token or key reached the server log");
}

#[tokio::test]
async fn envoy_gets_its_config_over_tls_on_ads() {
    proxies_get_their_config_over_tls(DataPlane::Envoy, "", true).await;
}

/// With proxy tokens: the EDS and RDS config sources the server puts into clusters and
/// listeners for per-type clients carry no token; Envoy opens those streams on the connection
/// its CDS and LDS streams authenticated, which the server takes as that proxy's.
#[tokio::test]
async fn envoy_gets_its_config_over_tls_on_per_type_delta_streams() {
    proxies_get_their_config_over_tls(DataPlane::Envoy, "&ads=false&delta=true", true).await;
}

#[tokio::test]
async fn minimal_proxy_gets_its_config_over_tls_on_ads() {
    proxies_get_their_config_over_tls(DataPlane::Minimal, "", true).await;
}

#[tokio::test]
async fn minimal_proxy_gets_its_config_over_tls_on_per_type_delta_streams() {
    proxies_get_their_config_over_tls(DataPlane::Minimal, "&ads=false&delta=true", true).await;
}

/// The server refuses to start with `args`, saying `expected` (and exits non-zero).
fn refuses_to_start(args: &[&str], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesh.db").display().to_string();
    let out = std::process::Command::new(integration::server::binary())
        .args([
            "--admin-addr",
            "127.0.0.1:0",
            "--xds-addr",
            "127.0.0.1:0",
            "--sqlite-file",
            &db,
        ])
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run xds-server");
    assert!(!out.status.success(), "started with {args:?}");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(expected), "{args:?}: {text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}

#[test]
fn bad_tls_settings_stop_the_server_saying_what_to_do() {
    refuses_to_start(
        &["--xds-tls", "builtin"],
        "--xds-tls builtin needs the mesh CA",
    );
    refuses_to_start(
        &["--xds-tls", "files"],
        "--xds-tls files needs both --xds-tls-cert-file and --xds-tls-key-file",
    );
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("cert.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();
    refuses_to_start(
        &[
            "--xds-tls",
            "files",
            "--xds-tls-cert-file",
            &garbage,
            "--xds-tls-key-file",
            &garbage,
        ],
        "is not a PEM certificate",
    );
}

/// A TLS endpoint for the xDS port trusting `ca_pem`, checking the name `localhost`.
fn tls_endpoint(port: u16, ca_pem: &str) -> Endpoint {
    Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca_pem))
                .domain_name("localhost"),
        )
        .unwrap()
}

/// The value of `series` (with its labels, as written) in the server's `/metrics`.
async fn metric(server: &Server, series: &str) -> f64 {
    let text = local_client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("/metrics has no {series}:\n{text}"))
}

#[tokio::test]
async fn plaintext_untrusted_and_tokenless_clients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&dir, true);
    let (_, json) = bootstrap(&server, "probe").await;
    let (ca, port) = tls_of(&json);
    let node = xds_core::testing::node("probe", "tls");

    // Plaintext gRPC to the TLS port: no stream, and the server counts a not_tls handshake.
    let not_tls = r#"xds_tls_handshake_failures_total{reason="not_tls"}"#;
    let before = metric(&server, not_tls).await;
    let plain = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5));
    let result = match plain.connect().await {
        Ok(channel) => AdsClient::sotw(node.clone())
            .timeout(Duration::from_secs(10))
            .wildcard(TypeUrl::Cluster)
            .open(channel)
            .await
            .map(|_| ()),
        Err(e) => Err(Error::Status(Box::new(tonic::Status::unavailable(
            e.to_string(),
        )))),
    };
    assert!(
        result.is_err(),
        "a plaintext client got a stream on the TLS port"
    );
    let deadline = Instant::now() + WAIT;
    while metric(&server, not_tls).await <= before {
        assert!(
            Instant::now() < deadline,
            "the plaintext handshake was not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A client trusting another CA (another server's) does not connect.
    let other_dir = tempfile::tempdir().unwrap();
    let other = start(&other_dir, true);
    let (_, other_json) = bootstrap(&other, "probe").await;
    let (other_ca, _) = tls_of(&other_json);
    assert_ne!(other_ca, ca);
    let untrusted = tls_endpoint(port, &other_ca).connect().await;
    let error = untrusted.expect_err("a client trusting another CA connected");
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(chain.contains("certificate"), "{chain}");
    let rejected = r#"xds_tls_handshake_failures_total{reason="rejected_by_client"}"#;
    let deadline = Instant::now() + WAIT;
    while metric(&server, rejected).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the refused certificate was not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Trusting the right CA but without a token: UNAUTHENTICATED, over TLS.
    let channel = tls_endpoint(port, &ca)
        .connect()
        .await
        .expect("TLS to the xDS port");
    let result = match AdsClient::sotw(node)
        .timeout(Duration::from_secs(10))
        .wildcard(TypeUrl::Cluster)
        .open(channel)
        .await
    {
        Ok(mut client) => client.next().await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Err(Error::Status(status)) => {
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}")
        }
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
    let key_logged = server.logs().iter().any(|l| l.contains("PRIVATE KEY"));
    assert!(!key_logged, "key material reached the server log");
}
