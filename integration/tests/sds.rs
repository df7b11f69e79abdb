//! SDS with real Envoy: the built-in CA's workload certificates and trust bundle reach Envoy
//! as `Secret`s named by the SDS contract (on ADS SotW and Delta, and on the per-type
//! SecretDiscoveryService); a TLS listener using them serves a certificate whose URI SAN is the
//! sidecar's SPIFFE ID and which verifies against the trust bundle; with a short TTL the
//! certificate rotates without restarting Envoy and a steady stream of TLS requests loses
//! none; a proxy asking for another service's certificate gets nothing for it; the admin API
//! shows secrets with their private keys redacted.

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use integration::{
    control_plane::ControlPlane,
    net::free_port,
    proxy::{DataPlane, Proxy, dump_section},
    sidecars::{WAIT, control_plane},
};
use serde_json::{Value, json};
use tempfile::TempDir;
use xds_core::type_url;

const WEB_ID: &str = "spiffe://mesh.local/service/web";
const BUNDLE: &str = "mesh-trust-bundle";

/// The server with the built-in CA issuing certificates for `ttl`.
async fn start(ttl: &str) -> ControlPlane {
    control_plane(&["--ca", "builtin", "--workload-cert-ttl", ttl]).await
}

/// `GET path` from the server's API as text; asserts success.
async fn get_text(cp: &ControlPlane, path: &str) -> String {
    let r = reqwest::Client::new()
        .get(cp.url(path))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.text().await.unwrap()
}

/// An HTTP service `name` (no endpoints: only its sidecar's certificate matters).
async fn service(cp: &ControlPlane, name: &str) {
    cp.put(
        &format!("/api/v1/services/{name}"),
        json!({ "protocol": "http", "connect_timeout": "1s" }),
    )
    .await;
}

/// A TLS listener on `port` for `node_id` answering 200 `ok`, with the certificate secret
/// `cert` and the trust bundle, fetched over ADS or the per-type SDS service.
async fn tls_listener(
    cp: &ControlPlane,
    name: &str,
    node_id: &str,
    port: u16,
    cert: &str,
    ads: bool,
    delta: bool,
) {
    let sds = if ads {
        json!({ "ads": {}, "resource_api_version": "V3" })
    } else {
        json!({ "api_config_source": {
            "api_type": if delta { "DELTA_GRPC" } else { "GRPC" },
            "transport_api_version": "V3",
            "grpc_services": [{ "envoy_grpc": { "cluster_name": "xds_cluster" } }] },
            "resource_api_version": "V3" })
    };
    let listener = json!({
        "name": name,
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } },
        "filter_chains": [{
            "transport_socket": { "name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "common_tls_context": {
                    "tls_certificate_sds_secret_configs": [{ "name": cert, "sds_config": sds }],
                    "validation_context_sds_secret_config": { "name": BUNDLE, "sds_config": sds }
                } } },
            "filters": [{ "name": "envoy.filters.network.http_connection_manager", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": { "name": name, "virtual_hosts": [{ "name": "all", "domains": ["*"],
                    "routes": [{ "match": { "prefix": "/" },
                                 "direct_response": { "status": 200, "body": { "inline_string": "ok" } } }] }] },
                "http_filters": [{ "name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }]
            } }]
        }]
    });
    cp.put(
        &format!("/api/v1/envoy-resources/{name}"),
        json!({ "type_url": type_url::LISTENER, "resource": listener, "selector": { "node_id": node_id } }),
    )
    .await;
}

/// Envoy as node `node_id` of `cluster`, over ADS or the per-type services, SotW or Delta.
async fn envoy(cp: &ControlPlane, node_id: &str, cluster: &str, ads: bool, delta: bool) -> Proxy {
    let query = format!("&delta={delta}&ads={ads}");
    let bootstrap = cp.sidecar_bootstrap(node_id, cluster, &query).await;
    Proxy::start(DataPlane::Envoy, &bootstrap)
}

/// The active secrets in Envoy's config dump, by name.
fn active_secrets(dump: &Value) -> Vec<(String, Value)> {
    dump_section(dump, "SecretsConfigDump")
        .and_then(|s| s["dynamic_active_secrets"].as_array())
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or_default().to_string(),
                        s["secret"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has_secrets(dump: &Value, names: &[&str]) -> bool {
    let active = active_secrets(dump);
    names.iter().all(|n| active.iter().any(|(a, _)| a == n))
}

/// Runs `openssl` with `args` and `stdin`; its stdout.
fn openssl(args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
}

/// What a TLS client sees on `port`: whether the chain verified against `bundle_file`, and
/// the peer certificate's serial and subjectAltName text.
fn peer(port: u16, bundle_file: &str) -> (bool, String, String) {
    let connect = format!("127.0.0.1:{port}");
    let out = openssl(
        &[
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            bundle_file,
            "-verify_return_error",
        ],
        "",
    );
    let verified = out.contains("Verify return code: 0 (ok)");
    let serial = openssl(&["x509", "-noout", "-serial"], &out)
        .trim()
        .to_string();
    let san = openssl(&["x509", "-noout", "-ext", "subjectAltName"], &out);
    (verified, serial, san)
}

/// Waits until a TLS handshake on `port` verifies against the bundle; returns its serial and SAN.
async fn wait_tls(proxy: &Proxy, port: u16, bundle_file: &str) -> (String, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (ok, serial, san) = peer(port, bundle_file);
        if ok && !serial.is_empty() {
            return (serial, san);
        }
        if Instant::now() > deadline {
            proxy.fail(&format!("no verified TLS handshake on {port}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The names of the `Secret`s in the proxy-config API's output (wherever the type's map is).
fn secret_names(config: &Value) -> Vec<String> {
    match config {
        Value::Object(map) => match map.get(type_url::SECRET) {
            Some(Value::Object(by_name)) => by_name.keys().cloned().collect(),
            _ => map.values().flat_map(secret_names).collect(),
        },
        _ => Vec::new(),
    }
}

fn envoy_available() -> bool {
    DataPlane::Envoy.binary().is_some()
}

/// The bundle from Envoy's dump, written to a file for openssl.
fn bundle_file(dir: &TempDir, dump: &Value) -> String {
    let (_, secret) = active_secrets(dump)
        .into_iter()
        .find(|(n, _)| n == BUNDLE)
        .expect("the bundle");
    let pem = secret["validation_context"]["trusted_ca"]["inline_string"]
        .as_str()
        .expect("trusted_ca inline");
    let path = dir.path().join("bundle.pem");
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}

/// (a) ADS SotW: the certificate and bundle arrive by name, TLS serves the SPIFFE identity,
/// the API redacts the key; the certificate rotates under a steady stream of TLS requests
/// (each a new handshake), none lost, Envoy never restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sds_certificates_serve_tls_and_rotate_without_losing_requests() {
    if !envoy_available() {
        return;
    }
    let mut cp = start("6s").await;
    let dir = tempfile::tempdir().unwrap();
    service(&cp, "web").await;
    let port = free_port();
    tls_listener(&cp, "tls-in", "web-1", port, WEB_ID, true, false).await;
    let proxy = envoy(&cp, "web-1", "web", true, false).await;
    let dump = proxy
        .wait_for("the certificate and the bundle", WAIT, |d| {
            has_secrets(d, &[WEB_ID, BUNDLE])
        })
        .await;
    let (_, cert) = active_secrets(&dump)
        .into_iter()
        .find(|(n, _)| n == WEB_ID)
        .unwrap();
    let chain = cert["tls_certificate"]["certificate_chain"]["inline_string"]
        .as_str()
        .unwrap();
    assert!(
        openssl(&["x509", "-noout", "-ext", "subjectAltName"], chain)
            .contains(&format!("URI:{WEB_ID}")),
        "the certificate's URI SAN is the SPIFFE ID"
    );
    let bundle = bundle_file(&dir, &dump);
    let (first, san) = wait_tls(&proxy, port, &bundle).await;
    assert!(
        san.contains(&format!("URI:{WEB_ID}")),
        "the peer certificate carries the SPIFFE ID: {san}"
    );

    // The API shows the secrets, never the key.
    let config = get_text(&cp, "/api/v1/proxies/web-1/config").await;
    let parsed: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(secret_names(&parsed), [BUNDLE, WEB_ID], "{parsed:#}");
    assert!(
        !config.contains("PRIVATE KEY") && config.contains("[redacted]"),
        "the key is redacted"
    );
    let logs = cp.server().logs().join("\n");
    assert!(!logs.contains("PRIVATE KEY"), "no key in the server's logs");

    // Rotation under load: requests in a loop (bounded) while the serial changes twice.
    let pid = proxy.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url = format!("https://127.0.0.1:{port}/");
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            for _ in 0..2_000 {
                if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                // -k: the SPIFFE certificate names no host; the chain is verified by openssl above.
                let out = Command::new("curl")
                    .args([
                        "-sk",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "--max-time",
                        "5",
                        &url,
                    ])
                    .output()
                    .expect("curl");
                if out.stdout == b"200" {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let started = Instant::now();
    let mut seen = vec![first];
    while seen.len() < 3 {
        assert!(
            started.elapsed() < WAIT,
            "the certificate did not rotate twice in {WAIT:?}: {seen:?}"
        );
        let (verified, serial, san) = peer(port, &bundle);
        if verified && !serial.is_empty() && !seen.contains(&serial) {
            assert!(san.contains(&format!("URI:{WEB_ID}")), "{san}");
            seen.push(serial);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert_eq!(proxy.pid(), pid, "the same Envoy process");
    assert!(proxy.is_running(), "Envoy is still running");
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 10, "the load ran ({ok} requests)");
    assert_eq!(
        failed, 0,
        "no request lost during rotation ({ok} succeeded)"
    );
    // The first certificate (6 s) has expired by now: the listener serves on the renewed one.
    assert!(started.elapsed() > Duration::from_secs(3));
}

/// (b) A proxy gets only its own identity: a sidecar of `db` asking for web's certificate
/// gets nothing for that name (the server logs it), while the bundle reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_gets_no_other_services_certificate() {
    if !envoy_available() {
        return;
    }
    let mut cp = start("1h").await;
    service(&cp, "web").await;
    service(&cp, "db").await;
    let port = free_port();
    tls_listener(&cp, "steal", "db-1", port, WEB_ID, true, false).await;
    let proxy = envoy(&cp, "db-1", "db", true, false).await;
    let dump = proxy
        .wait_for("the bundle", WAIT, |d| has_secrets(d, &[BUNDLE]))
        .await;
    // The bundle came in the same responses as any certificate would have: none for web.
    assert!(
        !has_secrets(&dump, &[WEB_ID]),
        "db's sidecar must not receive web's certificate"
    );
    let deadline = Instant::now() + WAIT;
    while !cp
        .server()
        .logs()
        .iter()
        .any(|l| l.contains("another service's certificate") && l.contains(WEB_ID))
    {
        assert!(Instant::now() < deadline, "the refusal is logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = get_text(&cp, "/metrics").await;
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("xds_sds_refused_requests_total "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(
        refused.is_some_and(|n| n >= 1),
        "the refusal is counted: {refused:?}"
    );
    let config: Value =
        serde_json::from_str(&get_text(&cp, "/api/v1/proxies/db-1/config").await).unwrap();
    assert_eq!(
        secret_names(&config),
        [BUNDLE, "spiffe://mesh.local/service/db"],
        "db-1 holds its own certificate and the bundle, not web's: {config:#}"
    );
}

/// (c) The same secrets over ADS Delta and over the per-type SecretDiscoveryService (SotW and
/// delta): TLS serves the SPIFFE identity in each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sds_over_delta_and_the_per_type_service() {
    if !envoy_available() {
        return;
    }
    let cp = start("1h").await;
    let dir = tempfile::tempdir().unwrap();
    service(&cp, "web").await;
    let _ = cp.xds_port;
    for (i, (ads, delta)) in [(true, true), (false, false), (false, true)]
        .into_iter()
        .enumerate()
    {
        let node = format!("web-{i}");
        let port = free_port();
        tls_listener(&cp, &format!("tls-{i}"), &node, port, WEB_ID, ads, delta).await;
        let proxy = envoy(&cp, &node, "web", ads, delta).await;
        let dump = proxy
            .wait_for(&format!("secrets (ads={ads}, delta={delta})"), WAIT, |d| {
                has_secrets(d, &[WEB_ID, BUNDLE])
            })
            .await;
        let bundle = bundle_file(&dir, &dump);
        let (_, san) = wait_tls(&proxy, port, &bundle).await;
        assert!(
            san.contains(&format!("URI:{WEB_ID}")),
            "ads={ads} delta={delta}: {san}"
        );
    }
}
