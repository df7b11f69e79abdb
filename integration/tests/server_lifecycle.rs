//! The real binary, as a new user runs it: create a mesh over HTTP, stop the server with
//! SIGTERM, start it again and read everything back, on both backends; the admin token.

use integration::server::Server;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// The README's walkthrough: a service, its endpoints, a route.
async fn create_mesh(http: &Client, server: &Server) {
    let steps = [
        (
            "/api/v1/services/web",
            json!({ "protocol": "http", "connect_timeout": "1s" }),
        ),
        (
            "/api/v1/services/web/endpoints",
            json!({ "endpoints": [
                { "address": "127.0.0.1", "port": 8081, "zone": "z1", "labels": { "version": "v1" } },
                { "address": "127.0.0.1", "port": 8082, "zone": "z1", "labels": { "version": "v2" } }
            ] }),
        ),
        (
            "/api/v1/routes/web",
            json!({ "hosts": ["web.example.com"], "rules": [{
                "match": { "path": { "prefix": "/" } },
                "destinations": [
                    { "service": "web", "weight": 80, "subset": { "version": "v1" } },
                    { "service": "web", "weight": 20, "subset": { "version": "v2" } }
                ],
                "timeout": "5s"
            }] }),
        ),
    ];
    for (path, body) in steps {
        let resp = http.put(server.url(path)).json(&body).send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "PUT {path}: {}",
            resp.text().await.unwrap()
        );
    }
}

async fn read_mesh(http: &Client, server: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/services/web",
        "/api/v1/services/web/endpoints",
        "/api/v1/routes/web",
    ] {
        let resp = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        out.push(resp.json().await.unwrap());
    }
    out
}

async fn survives_restart(args: &[&str]) {
    let http = Client::new();
    let server = Server::start(args, &[]);
    create_mesh(&http, &server).await;
    let before = read_mesh(&http, &server).await;
    assert_eq!(before[2]["rules"][0]["destinations"][1]["weight"], 20);
    let status = server.stop();
    assert!(
        status.success(),
        "SIGTERM must stop the server cleanly, got {status}"
    );

    let server = Server::start(args, &[]);
    let after = read_mesh(&http, &server).await;
    assert_eq!(
        before, after,
        "everything reads back identically after a restart"
    );
    let ready: Value = http
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["revision"], 3);
}

#[tokio::test]
async fn mesh_survives_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mesh.db");
    survives_restart(&["--sqlite-file", file.to_str().unwrap()]).await;
}

#[tokio::test]
async fn mesh_survives_a_restart_on_postgres() {
    let Some(pg) = integration::postgres::server() else {
        return;
    };
    let url = integration::postgres::fresh_database(&pg).await;
    survives_restart(&["--database-url", &url]).await;
}

#[tokio::test]
async fn readyz_names_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("by-url.db").display());
    let server = Server::start(&["--database-url", &url], &[]);
    let ready: Value = reqwest::get(server.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["store"], "sqlite");
    assert!(dir.path().join("by-url.db").exists());
}

#[tokio::test]
async fn admin_token_guards_every_route_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let token = "integration-secret-4f1c";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let db = dir.path().join("mesh.db");
    // The token file comes from the environment here, the way a container would set it.
    let mut server = Server::start(
        &["--sqlite-file", db.to_str().unwrap()],
        &[("XDS_SERVER_ADMIN_TOKEN_FILE", token_file.to_str().unwrap())],
    );
    let http = Client::new();
    let body = json!({ "protocol": "http" });

    let resp = http
        .put(server.url("/api/v1/services/web"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "unauthorized");
    let resp = http
        .put(server.url("/api/v1/services/web"))
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = http
        .get(server.url("/api/v1/services/web"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "the rejected writes stored nothing"
    );

    for open in ["/healthz", "/readyz"] {
        let resp = http.get(server.url(open)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{open} needs no token");
    }
    let resp = http
        .put(server.url("/api/v1/services/web"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let logs = server.logs().join("\n");
    assert!(logs.contains("bearer token"), "the server says auth is on");
    assert!(!logs.contains(token), "the token must never be logged");
}

#[test]
fn bad_start_up_settings_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["--admin-token-file", empty.to_str().unwrap()], "is empty"),
        (
            &["--admin-token-file", "/nonexistent/token"],
            "could not read the admin token file",
        ),
        (&["--database-url", "mysql://x"], "unsupported database URL"),
    ];
    for (args, message) in cases {
        let out = std::process::Command::new(integration::server::binary())
            .args(["--admin-addr", "127.0.0.1:0", "--sqlite-file"])
            .arg(dir.path().join("mesh.db"))
            .args(args)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(message),
            "{args:?}: expected '{message}' in:\n{stderr}"
        );
    }
}
