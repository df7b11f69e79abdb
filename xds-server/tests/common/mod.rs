//! Shared by the server's test binaries: fresh stores on both backends.
//!
//! Postgres comes from `XDS_TEST_POSTGRES_URL` (or `DATABASE_URL`): a server where the tests may
//! create databases. The test command (`scripts/test.sh`) starts a throwaway one. Without it
//! the Postgres cases are skipped with a message, except under `CI=true`, where they fail.

#![allow(dead_code)]

pub mod http;

use std::{sync::Arc, time::Duration};

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

pub use integration::postgres::{
    fresh_database as fresh_postgres_database, server as postgres_server,
};

/// A store on a fresh Postgres database, or `None` when there is no test server.
pub async fn postgres() -> Option<(Arc<dyn Store>, String)> {
    let server = postgres_server()?;
    let url = fresh_postgres_database(&server).await;
    let store = PostgresStore::connect(&url, POLL).await.unwrap();
    Some((Arc::new(store), url))
}
