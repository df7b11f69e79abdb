//! Rotating the mesh CA with real Envoy and the real server binary: a mesh started on the
//! built-in CA moves to an operator's CA (made with the openssl command line) on the same
//! store. The trust bundle then holds both roots, the new one issuing; the sidecar gets a
//! certificate from the new CA without a restart; `GET /api/v1/ca` says the rotation is in
//! progress while a proxy has not acknowledged its new secrets (here one that rejects them)
//! and complete once every connected proxy has, and never shows a key.

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use integration::{
    net::free_port,
    proxy::{DataPlane, Proxy, dump_section},
    server::Server,
};
use serde_json::{Value, json};
use xds_core::{
    TypeUrl,
    testing::{AdsClient, node},
};

const WAIT: Duration = Duration::from_secs(30);
const WEB_ID: &str = "spiffe://mesh.local/service/web";

async fn get(server: &Server, path: &str) -> Value {
    let r = reqwest::get(server.url(path)).await.unwrap();
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.json().await.unwrap()
}

async fn put(server: &Server, path: &str, body: Value) {
    let r = reqwest::Client::new()
        .put(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "PUT {path}: {}", r.status());
}

/// An operator CA: a self-signed P-256 root with CA:true, its PKCS#8 key beside it.
fn operator_ca(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=operator-ca"])
        .args(["-addext", "basicConstraints=critical,CA:true"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

/// The issuer of the certificate in the sidecar's active `web` secret (openssl's text).
fn issuer_of_web_cert(dump: &Value) -> Option<String> {
    let secret = dump_section(dump, "SecretsConfigDump")?["dynamic_active_secrets"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == WEB_ID)?;
    let pem = secret["secret"]["tls_certificate"]["certificate_chain"]["inline_string"].as_str()?;
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-issuer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(pem.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_to_an_operator_ca_keeps_both_roots_until_every_proxy_has_the_new_one() {
    if DataPlane::Envoy.binary().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesh.db").display().to_string();
    let xds = format!("127.0.0.1:{}", free_port());
    let base = ["--xds-addr", xds.as_str(), "--sqlite-file", db.as_str()];

    // The built-in CA: one root, nothing to finish.
    let first = Server::start(&[&base[..], &["--ca", "builtin"]].concat(), &[]);
    let ca = get(&first, "/api/v1/ca").await;
    assert_eq!(ca["enabled"], true, "{ca}");
    assert_eq!(ca["trust_domain"], "mesh.local");
    assert_eq!(ca["roots"].as_array().unwrap().len(), 1, "{ca}");
    assert_eq!(ca["rotation"]["state"], "single_root", "{ca}");
    let built_in = ca["roots"][0]["sha256"].as_str().unwrap().to_string();
    put(
        &first,
        "/api/v1/services/web",
        json!({ "protocol": "http", "mtls": "strict",
                "inbound": { "address": "127.0.0.1", "port": free_port(), "app_port": free_port() } }),
    )
    .await;
    put(
        &first,
        "/api/v1/services/api",
        json!({ "protocol": "http", "mtls": "strict",
                "inbound": { "address": "127.0.0.1", "port": free_port(), "app_port": free_port() } }),
    )
    .await;
    first.stop();

    // The operator's CA on the same store: both roots, the new one issuing.
    let (cert, key) = operator_ca(dir.path());
    let args = [
        &base[..],
        &[
            "--ca",
            "files",
            "--ca-cert-file",
            &cert,
            "--ca-key-file",
            &key,
        ],
    ]
    .concat();
    let server = Server::start(&args, &[]);
    let ca = get(&server, "/api/v1/ca").await;
    let roots = ca["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 2, "{ca}");
    assert_eq!(roots[0]["issuing"], true);
    assert!(
        roots[0]["subject"]
            .as_str()
            .unwrap()
            .contains("operator-ca"),
        "{ca}"
    );
    assert_eq!(
        roots[1]["sha256"],
        built_in.as_str(),
        "the old root is kept"
    );
    assert_eq!(roots[1]["issuing"], false);
    assert!(!ca.to_string().contains("PRIVATE KEY"), "{ca}");

    // A proxy that rejects its secrets keeps the rotation in progress (api's sidecar: a
    // sidecar of web would also hold the rejected version back from web-1, last-known-good).
    let xds_addr = xds.parse().unwrap();
    let mut rejecting = AdsClient::sotw(node("api-1", "api"))
        .timeout(WAIT)
        .subscribe(TypeUrl::Secret, ["spiffe://mesh.local/service/api"])
        .connect(xds_addr)
        .await
        .unwrap();
    rejecting.nack_next(TypeUrl::Secret, "not today");
    rejecting.next().await.unwrap();

    // The sidecar gets a certificate from the new CA and acknowledges it.
    let bootstrap = reqwest::get(server.url(&format!(
        "/api/v1/bootstrap?node_id=web-1&cluster=web&admin_port={}",
        free_port()
    )))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let sidecar = Proxy::start(DataPlane::Envoy, &bootstrap);
    let dump = sidecar
        .wait_for("a certificate from the operator CA", WAIT, |d| {
            issuer_of_web_cert(d).is_some_and(|i| i.contains("operator-ca"))
        })
        .await;
    assert!(issuer_of_web_cert(&dump).unwrap().contains("operator-ca"));
    let deadline = std::time::Instant::now() + WAIT;
    let ca = loop {
        let ca = get(&server, "/api/v1/ca").await;
        if ca["rotation"]["pending"] == json!(["api-1"]) {
            break ca;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "web-1 never acknowledged: {ca}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ca["rotation"]["state"], "in_progress", "{ca}");
    assert_eq!(ca["rotation"]["proxies"], 2, "{ca}");

    // Once the rejecting proxy is gone, every connected proxy has the new certificates.
    drop(rejecting);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let ca = get(&server, "/api/v1/ca").await;
        if ca["rotation"]["state"] == "complete" {
            assert_eq!(ca["rotation"]["proxies"], 1, "{ca}");
            assert_eq!(ca["rotation"]["pending"], json!([]), "{ca}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never complete: {ca}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Without `--ca`, the endpoint says so and nothing else.
#[tokio::test]
async fn without_a_ca_the_endpoint_says_it_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesh.db").display().to_string();
    let server = Server::start(&["--sqlite-file", &db], &[]);
    assert_eq!(
        get(&server, "/api/v1/ca").await,
        json!({ "enabled": false })
    );
}
