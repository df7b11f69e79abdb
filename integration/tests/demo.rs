//! The demo stays runnable: the compose file follows the Compose Specification, its Envoy
//! bootstrap is what the server generates and what Envoy accepts, and the Docker-free demo
//! really routes traffic, through Envoy and through minimal-proxy.

use std::{path::PathBuf, process::Command};

use integration::{net::free_port, server::Server};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A tool the test command installs; `None` (announced) outside CI when it is missing.
fn tool(var: &str) -> Option<String> {
    let path = std::env::var(var)
        .ok()
        .filter(|p| std::path::Path::new(p).is_file());
    if path.is_none() {
        assert!(
            !integration::in_ci(),
            "CI=true but {var} is not set (scripts/test.sh sets it)"
        );
        integration::announce_skip("demo case", &format!("{var} not set; run scripts/test.sh"));
    }
    path
}

#[test]
fn compose_file_follows_the_compose_spec() {
    let Some(check) = tool("CHECK_JSONSCHEMA") else {
        return;
    };
    let out = Command::new(check)
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(repo().join("docker-compose.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker-compose.yml breaks the Compose Specification:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn demo_bootstrap_is_generated_and_accepted_by_envoy() {
    let Some(envoy) = tool("ENVOY_BIN") else {
        return;
    };
    let committed = repo().join("demo/envoy-ingress.yaml");
    let xds_port = free_port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesh.db");
    let server = Server::start(
        &[
            "--sqlite-file",
            db.to_str().unwrap(),
            "--xds-addr",
            &format!("127.0.0.1:{xds_port}"),
        ],
        &[],
    );
    let url = server.url(
        "/api/v1/bootstrap?node_id=ingress-1&cluster=ingress&xds_host=xds-server&admin_port=9901",
    );
    let generated: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let mut expected: Value =
        serde_json::from_str(&std::fs::read_to_string(&committed).unwrap()).unwrap();
    // The committed file targets the compose service's port 18000.
    let port = &mut expected["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
        ["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"];
    assert_eq!(*port, 18000);
    *port = xds_port.parse::<u16>().unwrap().into();
    assert_eq!(
        generated, expected,
        "demo/envoy-ingress.yaml is stale: regenerate it from /api/v1/bootstrap"
    );
    let out = Command::new(envoy)
        .args(["--mode", "validate", "-c"])
        .arg(&committed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Envoy rejects demo/envoy-ingress.yaml:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn local_demo_routes_traffic_through_envoy() {
    let Some(envoy) = tool("ENVOY_BIN") else {
        return;
    };
    local_demo_check(&[], &[("ENVOY_BIN", envoy)]);
}

#[test]
fn local_demo_routes_traffic_through_minimal_proxy() {
    let proxy = integration::target_binary("minimal-proxy");
    let proxy = proxy.display().to_string();
    local_demo_check(&["--proxy", "minimal"], &[("DEMO_PROXY_BIN", proxy)]);
}

/// `demo/run-local.sh --check <args>` on free ports must print `demo check passed`.
fn local_demo_check(args: &[&str], env: &[(&str, String)]) {
    let ports = [
        "DEMO_ADMIN_PORT",
        "DEMO_XDS_PORT",
        "DEMO_LISTENER_PORT",
        "DEMO_V1_PORT",
        "DEMO_V2_PORT",
        "DEMO_ENVOY_ADMIN_PORT",
    ];
    demo_check("demo/run-local.sh", args, env, &ports);
}

/// The sidecar demo, `demo/run-sidecars.sh --check <args>`: plaintext calls, then the one
/// step that turns mTLS on (plaintext refused, web's SPIFFE certificate on the wire, TLS
/// handshakes counted, both callers served), then one pair denied (403) while the other
/// keeps working.
fn sidecar_demo_check(args: &[&str], env: &[(&str, String)]) {
    let ports = [
        "DEMO_ADMIN_PORT",
        "DEMO_XDS_PORT",
        "DEMO_WEB_INBOUND_PORT",
        "DEMO_WEB_APP_PORT",
        "DEMO_FRONTEND_PORT",
        "DEMO_BATCH_PORT",
        "DEMO_WEB_ADMIN_PORT",
        "DEMO_FRONTEND_ADMIN_PORT",
        "DEMO_BATCH_ADMIN_PORT",
    ];
    let mut env = env.to_vec();
    env.push((
        "DEMO_MESHCTL_BIN",
        integration::target_binary("meshctl").display().to_string(),
    ));
    demo_check("demo/run-sidecars.sh", args, &env, &ports);
}

#[test]
fn sidecar_demo_turns_on_mtls_and_denies_a_pair_on_minimal_proxy() {
    let proxy = integration::target_binary("minimal-proxy");
    sidecar_demo_check(
        &["--proxy", "minimal"],
        &[("DEMO_PROXY_BIN", proxy.display().to_string())],
    );
}

#[test]
fn sidecar_demo_turns_on_mtls_and_denies_a_pair_on_envoy() {
    let Some(envoy) = tool("ENVOY_BIN") else {
        return;
    };
    sidecar_demo_check(&[], &[("ENVOY_BIN", envoy)]);
}

/// Runs a demo script with `--check`, every port in `ports` free, and expects it to pass.
fn demo_check(script: &str, args: &[&str], env: &[(&str, String)], ports: &[&str]) {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join(script))
        .arg("--check")
        .args(args)
        .env("DEMO_SERVER_BIN", integration::server::binary());
    for (var, value) in env {
        cmd.env(var, value);
    }
    for var in ports {
        cmd.env(var, free_port().to_string());
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("demo check passed"),
        "{script} --check {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
