//! The backup and restore steps of `docs/operations.md`, run for real: a server's store is
//! backed up while the server runs and writes (SQLite: `sqlite3 .backup` and `VACUUM INTO`;
//! Postgres: `pg_dump -Fc`), restored for a new server (Postgres: `pg_restore` into an empty
//! database), and the new server serves exactly the objects the old one had at backup time.

use std::{path::Path, process::Command};

use integration::{
    announce_skip,
    control_plane::ControlPlane,
    in_ci,
    postgres::{fresh_database, server as postgres_server},
};
use serde_json::{Value, json};

/// Whether `program` runs; announces the skip (or fails under `CI=true`) when it does not.
fn available(program: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok();
    if !found {
        assert!(!in_ci(), "CI=true but {program} is not installed");
        announce_skip(
            &format!("{program} steps"),
            &format!("{program} is not installed"),
        );
    }
    found
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A mesh of every kind, written over REST.
async fn write_mesh(plane: &ControlPlane) {
    plane.service("web", 8081).await;
    plane.route_to("web").await;
    plane
        .put(
            "/api/v1/listeners/ingress",
            json!({ "port": 10000, "protocol": "http", "routes": ["main"],
                    "labels": { "app": "backup" } }),
        )
        .await;
    // A second version of the service, so versions are restored too.
    plane
        .put(
            "/api/v1/services/web",
            json!({ "protocol": "http", "connect_timeout": "2s" }),
        )
        .await;
}

/// Every object the server serves, per kind, without the live `status` block.
async fn objects(plane: &ControlPlane) -> Vec<Value> {
    let mut all = Vec::new();
    for kind in ["services", "routes", "listeners", "envoy-resources"] {
        let (status, list) = plane.get(&format!("/api/v1/{kind}?limit=1000")).await;
        assert!(status.is_success(), "GET {kind}: {list}");
        for mut item in list["items"].as_array().cloned().unwrap_or_default() {
            item.as_object_mut().unwrap().remove("status");
            all.push(json!({ "kind": kind, "object": item }));
        }
    }
    let (_, mut endpoints) = plane.get("/api/v1/services/web/endpoints").await;
    endpoints.as_object_mut().unwrap().remove("status");
    all.push(endpoints);
    all
}

/// Backs up with `backup` while the server runs, writes once more, then checks a server on
/// the restored copy serves what was there at backup time.
async fn sqlite_case(dir: &Path, backup: impl Fn(&str, &str)) {
    let live = dir.join("live.db").display().to_string();
    let copy = dir.join("backup.db").display().to_string();
    let plane = ControlPlane::start_on(&format!("sqlite://{live}"), "100ms");
    write_mesh(&plane).await;
    let before = objects(&plane).await;
    assert_eq!(before.len(), 4, "{before:?}");

    backup(&live, &copy);
    plane
        .put("/api/v1/services/after", json!({ "protocol": "tcp" }))
        .await;

    let restored = ControlPlane::start_on(&format!("sqlite://{copy}"), "100ms");
    assert_eq!(objects(&restored).await, before);
    let (status, _) = restored.get("/api/v1/services/after").await;
    assert_eq!(
        status.as_u16(),
        404,
        "the write after the backup is not in it"
    );
    // The restored store takes writes, at the next version.
    let web = restored
        .put("/api/v1/services/web", json!({ "protocol": "http" }))
        .await;
    assert_eq!(web["version"], 3);
}

#[tokio::test]
async fn a_running_sqlite_store_backs_up_with_dot_backup_and_restores() {
    if !available("sqlite3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    sqlite_case(dir.path(), |live, copy| {
        run("sqlite3", &[live, &format!(".backup '{copy}'")]);
    })
    .await;
}

#[tokio::test]
async fn a_running_sqlite_store_backs_up_with_vacuum_into_and_restores() {
    if !available("sqlite3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    sqlite_case(dir.path(), |live, copy| {
        run("sqlite3", &[live, &format!("VACUUM INTO '{copy}'")]);
    })
    .await;
}

#[tokio::test]
async fn a_running_postgres_store_backs_up_with_pg_dump_and_restores() {
    let Some(server) = postgres_server() else {
        return;
    };
    if !available("pg_dump") || !available("pg_restore") {
        return;
    }
    let live = fresh_database(&server).await;
    let plane = ControlPlane::start_on(&live, "100ms");
    write_mesh(&plane).await;
    let before = objects(&plane).await;

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("mesh.dump").display().to_string();
    run("pg_dump", &["--format=custom", "--file", &dump, &live]);
    plane
        .put("/api/v1/services/after", json!({ "protocol": "tcp" }))
        .await;

    let target = fresh_database(&server).await;
    run(
        "pg_restore",
        &["--no-owner", "--exit-on-error", "--dbname", &target, &dump],
    );
    let restored = ControlPlane::start_on(&target, "100ms");
    assert_eq!(objects(&restored).await, before);
    let (status, _) = restored.get("/api/v1/services/after").await;
    assert_eq!(
        status.as_u16(),
        404,
        "the write after the dump is not in it"
    );
    let web = restored
        .put("/api/v1/services/web", json!({ "protocol": "http" }))
        .await;
    assert_eq!(web["version"], 3);
}
