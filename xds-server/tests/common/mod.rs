//! Shared by the server's test binaries: fresh stores on both backends.
//!
//! Postgres comes from `XDS_TEST_POSTGRES_URL` (or `DATABASE_URL`): a server where the tests may
//! create databases. The test command (`scripts/test.sh`) starts a throwaway one. Without it
//! the Postgres cases are skipped with a message, except under `CI=true`, where they fail.

#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use sqlx::{Connection, PgConnection};
use xds_server::store::{PostgresStore, SqliteStore, Store};

/// Fast polling so tests that wait for another process's write finish quickly.
pub const POLL: Duration = Duration::from_millis(50);

/// A store on a fresh SQLite file, with the directory that holds it.
pub async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mesh.db"), POLL)
        .await
        .unwrap();
    (Arc::new(store), dir)
}

/// The admin URL of the test Postgres server, or `None` (after saying so) when there is none.
/// Panics under `CI=true`: CI must run the Postgres cases, never skip them.
pub fn postgres_server() -> Option<String> {
    let url = std::env::var("XDS_TEST_POSTGRES_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| u.starts_with("postgres"));
    if url.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but no Postgres: set XDS_TEST_POSTGRES_URL (scripts/test.sh does)");
        }
        // Straight to stderr: libtest captures eprintln!, and a skip must be seen.
        use std::io::Write;
        let test = std::thread::current().name().unwrap_or("?").to_string();
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: no Postgres (set XDS_TEST_POSTGRES_URL, or run scripts/test.sh)"
        );
    }
    url
}

/// A URL to a new, empty database on the test server.
pub async fn fresh_postgres_database(server: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!(
        "xds_test_{}_{}_{n}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut conn = PgConnection::connect(server).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// A store on a fresh Postgres database, or `None` when there is no test server.
pub async fn postgres() -> Option<(Arc<dyn Store>, String)> {
    let server = postgres_server()?;
    let url = fresh_postgres_database(&server).await;
    let store = PostgresStore::connect(&url, POLL).await.unwrap();
    Some((Arc::new(store), url))
}
