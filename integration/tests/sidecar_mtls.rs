//! Sidecars over mTLS with the real minimal-proxy (and Envoy, for the mixed pairs): the real
//! xds-server with the built-in CA, `web` strict behind its sidecar, `api`'s sidecar calling
//! it through its outbound listener. For each pair (minimal↔minimal, Envoy→minimal,
//! minimal→Envoy): the call succeeds over mTLS and the application sees
//! `x-forwarded-client-cert` naming both sides; plaintext to the strict port is refused; once
//! `web` is permissive the same port takes plaintext and mTLS; both sides count their
//! handshakes. And rotation: with a 6 s certificate lifetime, a steady stream of calls through
//! two renewals loses none, while new handshakes get the renewed certificate.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use integration::{
    net::free_port,
    proxy::DataPlane,
    sidecars::{available, control_plane, counted, get, ok_from, wait_get},
    upstream::Upstream,
};
use serde_json::{Value, json};

const WEB: &str = "spiffe://mesh.local/service/web";
const API: &str = "spiffe://mesh.local/service/api";

/// The bootstrap query for ADS SotW or Delta.
fn delta_query(delta: bool) -> String {
    format!("&delta={delta}")
}

/// The `x-forwarded-client-cert` the application saw.
fn xfcc(body: &str) -> String {
    let echo: Value = serde_json::from_str(body).unwrap_or_default();
    echo["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The strict → permissive scenario with `web`'s sidecar on `web_plane` and `api`'s on
/// `api_plane`.
async fn strict_then_permissive(web_plane: DataPlane, api_plane: DataPlane, delta: bool) {
    if !available(&[web_plane, api_plane]) {
        return;
    }
    let mesh = control_plane(&["--ca", "builtin"]).await;
    let app = Upstream::start("web-app");
    let (web_in, outbound) = (free_port(), free_port());
    mesh.api_calls_web("strict", web_in, &app, free_port(), outbound)
        .await;
    let web = mesh.sidecar(web_plane, "web", &delta_query(delta)).await;
    let api = mesh.sidecar(api_plane, "api", &delta_query(delta)).await;

    let via_api = format!("http://127.0.0.1:{outbound}/call");
    let (_, _, body) = wait_get(&via_api, "api → web over mTLS", ok_from("web-app"))
        .await
        .unwrap_or_else(|e| web.fail(&e));
    let seen = xfcc(&body);
    eprintln!(
        "{} → {}: x-forwarded-client-cert: {seen}",
        api_plane.as_str(),
        web_plane.as_str()
    );
    assert!(
        seen.starts_with(&format!("By={WEB};Hash=")) && seen.ends_with(&format!(";URI={API}")),
        "the application sees both identities, as Envoy writes them: {seen}"
    );
    counted(
        &web,
        &format!("listener.127.0.0.1_{web_in}.ssl.handshake"),
        "ssl",
    )
    .await;
    counted(&api, "cluster.web.ssl.handshake", "ssl").await;

    // A client's own x-forwarded-client-cert never reaches the application.
    let client = reqwest::Client::new();
    let forged = client
        .get(&via_api)
        .header(
            "x-forwarded-client-cert",
            "URI=spiffe://mesh.local/service/admin",
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!forged.contains("service/admin"), "{forged}");

    let plain = format!("http://127.0.0.1:{web_in}/plain");
    let hits = app.hits();
    wait_get(&plain, "plaintext to strict is refused", |a| a.is_err())
        .await
        .unwrap_err();
    assert_eq!(app.hits(), hits, "nothing reached the application");

    mesh.web("http", "permissive", web_in, &app).await;
    let (_, _, body) = wait_get(&plain, "plaintext to permissive", ok_from("web-app"))
        .await
        .unwrap_or_else(|e| web.fail(&e));
    assert_eq!(xfcc(&body), "", "no client certificate, no header");
    let (_, _, body) = wait_get(&via_api, "mTLS to permissive", ok_from("web-app"))
        .await
        .unwrap_or_else(|e| web.fail(&e));
    assert!(xfcc(&body).ends_with(&format!(";URI={API}")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_sidecars_call_each_other_over_mtls_sotw() {
    strict_then_permissive(DataPlane::Minimal, DataPlane::Minimal, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_sidecars_call_each_other_over_mtls_delta() {
    strict_then_permissive(DataPlane::Minimal, DataPlane::Minimal, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_calls_a_minimal_sidecar_over_mtls() {
    strict_then_permissive(DataPlane::Minimal, DataPlane::Envoy, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimal_sidecar_calls_envoy_over_mtls() {
    strict_then_permissive(DataPlane::Envoy, DataPlane::Minimal, true).await;
}

/// The serial number of the certificate served on `port` (the client presents none: the
/// server's certificate comes before it asks for one), or `None` without openssl.
fn served_serial(port: u16) -> Option<String> {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername web </dev/null 2>/dev/null \
         | openssl x509 -noout -serial"
    );
    let out = Command::new("sh").args(["-c", &script]).output().ok()?;
    let serial = String::from_utf8_lossy(&out.stdout).trim().to_string();
    serial.starts_with("serial=").then_some(serial)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_a_steady_stream_without_a_lost_request() {
    let planes = [DataPlane::Minimal, DataPlane::Minimal];
    if !available(&planes) {
        return;
    }
    // Renewed at half life: about every 3 s.
    let mesh = control_plane(&["--ca", "builtin", "--workload-cert-ttl", "6s"]).await;
    let app = Upstream::start("web-app");
    let (web_in, outbound) = (free_port(), free_port());
    mesh.api_calls_web("strict", web_in, &app, free_port(), outbound)
        .await;
    let web = mesh.sidecar(planes[0], "web", &delta_query(false)).await;
    let _api = mesh.sidecar(planes[1], "api", &delta_query(false)).await;
    let via_api = format!("http://127.0.0.1:{outbound}/steady");
    wait_get(&via_api, "api → web over mTLS", ok_from("web-app"))
        .await
        .unwrap_or_else(|e| web.fail(&e));
    let first = served_serial(web_in);
    if first.is_none() {
        eprintln!("note: no openssl; the served certificate is not compared");
    }

    // A steady stream across at least two renewals (bounded in count and time).
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = Instant::now();
    let (mut sent, mut failed) = (0u32, Vec::new());
    let mut serials = first.iter().cloned().collect::<Vec<_>>();
    while start.elapsed() < Duration::from_secs(9) && sent < 2_000 {
        match get(&client, &via_api).await {
            Ok((200, _, _)) => {}
            other => failed.push(other),
        }
        sent += 1;
        if sent % 50 == 0
            && let Some(s) = served_serial(web_in)
            && serials.last() != Some(&s)
        {
            serials.push(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        failed.is_empty(),
        "{} of {sent} requests failed during rotation: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(sent > 100, "a steady stream: {sent}");
    if first.is_some() {
        assert!(
            serials.len() >= 2,
            "new handshakes get the renewed certificate: {serials:?}"
        );
    }
    // A new connection after the renewals still works (a new mTLS handshake end to end).
    let fresh = reqwest::Client::new();
    assert!(matches!(get(&fresh, &via_api).await, Ok((200, _, _))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_sidecars_handshake_per_connection_through_rotation() {
    let planes = [DataPlane::Minimal, DataPlane::Minimal];
    if !available(&planes) {
        return;
    }
    let mesh = control_plane(&["--ca", "builtin", "--workload-cert-ttl", "4s"]).await;
    let app = Upstream::start("web-app");
    let (web_in, outbound) = (free_port(), free_port());
    for (service, app_port, port) in [
        ("web", app.port(), web_in),
        ("api", free_port(), free_port()),
    ] {
        mesh.put(
            &format!("/api/v1/services/{service}"),
            json!({ "protocol": "tcp", "mtls": "strict", "connect_timeout": "1s",
                    "inbound": { "address": "127.0.0.1", "port": port, "app_port": app_port } }),
        )
        .await;
    }
    mesh.put(
        "/api/v1/services/web/endpoints",
        json!({ "endpoints": [ { "address": "127.0.0.1", "port": web_in } ] }),
    )
    .await;
    mesh.put(
        "/api/v1/listeners/api-to-web",
        json!({ "address": "127.0.0.1", "port": outbound, "protocol": "tcp", "service": "web",
                "selector": { "node_cluster": "api" } }),
    )
    .await;
    let web = mesh.sidecar(planes[0], "web", &delta_query(true)).await;
    let api = mesh.sidecar(planes[1], "api", &delta_query(true)).await;
    let url = format!("http://127.0.0.1:{outbound}/tcp");
    wait_get(&url, "api → web over mTLS (TCP)", ok_from("web-app"))
        .await
        .unwrap_or_else(|e| web.fail(&e));

    // No pooling: every request is a new connection, so a new handshake between sidecars.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let before = api.stat("cluster.web.ssl.handshake").await.unwrap_or(0);
    let first = served_serial(web_in);
    let start = Instant::now();
    let (mut sent, mut failed) = (0u64, Vec::new());
    while start.elapsed() < Duration::from_secs(6) && sent < 1_000 {
        match get(&client, &url).await {
            Ok((200, _, _)) => {}
            other => failed.push(other),
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    if let (Some(first), Some(now)) = (first, served_serial(web_in)) {
        assert_ne!(first, now, "web's certificate was renewed meanwhile");
    }
    let handshakes = api.stat("cluster.web.ssl.handshake").await.unwrap_or(0) - before;
    assert!(
        handshakes >= sent,
        "one handshake per connection: {handshakes} for {sent}"
    );
    assert_eq!(
        web.stat(&format!(
            "listener.127.0.0.1_{web_in}.ssl.fail_verify_error"
        ))
        .await
        .unwrap_or(0),
        0,
        "no certificate failed verification across the renewals (the openssl probes present \
         none: those count in fail_verify_no_cert)"
    );
}
