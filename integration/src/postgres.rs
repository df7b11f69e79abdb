//! The test Postgres server: `XDS_TEST_POSTGRES_URL` (or `DATABASE_URL`) names a server where
//! tests may create databases; each test gets its own.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection};

/// The server's URL, or `None` after announcing the skip. Panics under `CI=true`.
pub fn server() -> Option<String> {
    let url = std::env::var("XDS_TEST_POSTGRES_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| u.starts_with("postgres"));
    if url.is_none() {
        assert!(
            !crate::in_ci(),
            "CI=true but no Postgres: set XDS_TEST_POSTGRES_URL (scripts/test.sh does)"
        );
        crate::announce_skip(
            "Postgres case",
            "no XDS_TEST_POSTGRES_URL; run scripts/test.sh to include it",
        );
    }
    url
}

/// Creates an empty database on `server` and returns its URL.
pub async fn fresh_database(server: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "xds_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = PgConnection::connect(server)
        .await
        .expect("connect to the test Postgres server");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await
        .expect("drop a leftover test database");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    conn.close().await.ok();
    let (base, _) = server
        .rsplit_once('/')
        .expect("the Postgres URL ends in /database");
    format!("{base}/{name}")
}
