//! The store when its database goes away: requests fail fast with 503 `store_unavailable`
//! (and `Retry-After`), `/readyz` says 503 within its timeout, everything works again once the
//! database is back, and a replica whose LISTEN connection was cut catches up with the writes
//! it missed. Postgres cases run on a private cluster (`integration::postgres::Cluster`) they
//! may stop; skipped without the server binaries, failing under `CI=true`. The full failover
//! with real Envoy is `integration/tests/postgres_failover.rs`.

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use axum::http::{StatusCode, header};
use integration::postgres::{Cluster, fresh_database};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;
use xds_server::{
    api::{AppState, router},
    model::Kind,
    store::{Error, PostgresStore, Record, Snapshot, Store, Write, Written},
};

use common::http::{assert_error, call};

/// Longer than any test: replicas learn of each other's writes only by NOTIFY and by the read
/// that follows a re-established LISTEN.
const NO_POLL: Duration = Duration::from_secs(3600);

/// The pool's acquire timeout (3 s) plus slack for a loaded machine.
const FAIL_FAST: Duration = Duration::from_secs(6);

const WAIT: Duration = Duration::from_secs(20);

/// How long `/readyz` waits for the store (`api/health.rs`).
const READY_TIMEOUT: Duration = Duration::from_secs(2);

const HTTP: &str = r#"{"protocol": "http", "connect_timeout": "1s"}"#;

fn service(name: &str) -> Write {
    Write {
        kind: Kind::Service,
        name: name.into(),
        spec: json!({ "protocol": "http" }),
        references: vec![],
        expected_version: None,
    }
}

/// Waits until `store`'s revision watch reaches `revision`.
async fn wait_watch(store: &dyn Store, revision: i64, what: &str) {
    let mut rx = store.watch();
    let reached = tokio::time::timeout(WAIT, rx.wait_for(|r| *r >= revision)).await;
    assert!(
        reached.is_ok_and(|r| r.is_ok()),
        "{what}: the watch stayed at {} instead of reaching {revision}",
        *rx.borrow()
    );
}

// === a database that stops and starts ===

/// `PUT /api/v1/services/{name}` with a plain HTTP service.
async fn put(app: &axum::Router, name: &str) -> common::http::Response {
    let path = format!("/api/v1/services/{name}");
    call(app, "PUT", &path, Some(HTTP), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_fast_while_postgres_is_down_and_work_once_it_is_back() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = fresh_database(&cluster.url()).await;
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url, NO_POLL).await.unwrap());
    let other = PostgresStore::connect(&url, NO_POLL).await.unwrap();
    let app = router(AppState::new(store.clone()));

    assert_eq!(put(&app, "before").await.0, StatusCode::CREATED);
    cluster.stop_fast();

    let started = Instant::now();
    let resp = put(&app, "during").await;
    assert!(
        started.elapsed() < FAIL_FAST,
        "PUT took {:?}",
        started.elapsed()
    );
    let err = assert_error(&resp, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
    assert!(err["message"].as_str().unwrap().contains("retry"), "{err}");
    assert_eq!(resp.1.get(header::RETRY_AFTER).unwrap(), "1");

    let started = Instant::now();
    let resp = call(&app, "GET", "/readyz", None, &[]).await;
    assert!(
        started.elapsed() < READY_TIMEOUT + Duration::from_secs(1),
        "/readyz took {:?}",
        started.elapsed()
    );
    assert_error(&resp, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");

    let resp = call(&app, "GET", "/api/v1/services/before", None, &[]).await;
    assert_error(&resp, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");

    cluster.start_again();
    // The pool's connections died with the server: the first request after it replaces them.
    assert_eq!(put(&app, "after").await.0, StatusCode::CREATED);
    let (status, _, ready) = call(&app, "GET", "/readyz", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    let revision = ready["revision"].as_i64().unwrap();
    // The other replica LISTENs again: it hears of this write by NOTIFY (it polls hourly).
    wait_watch(&other, revision, "the other replica after the restart").await;
    let (status, _, body) = call(&app, "GET", "/api/v1/services/during", None, &[]).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused write is not stored: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_listen_was_cut_catches_up_with_the_writes_it_missed() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = fresh_database(&cluster.url()).await;
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE ROLE replica_b LOGIN SUPERUSER")
        .execute(&mut admin)
        .await
        .unwrap();
    let a = PostgresStore::connect(&url, NO_POLL).await.unwrap();
    let b_url = url.replacen("postgres@", "replica_b@", 1);
    let b = PostgresStore::connect(&b_url, NO_POLL).await.unwrap();
    let first = a.put(service("first")).await.unwrap().record.revision;
    wait_watch(&b, first, "B by NOTIFY").await;

    // B is cut off and cannot come back until the role may log in again.
    sqlx::query("ALTER ROLE replica_b NOLOGIN")
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'replica_b'",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE usename = 'replica_b'")
                .fetch_one(&mut admin)
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "replica_b sessions linger");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Written while B hears nothing: its NOTIFY is lost to B for good.
    let missed = a.put(service("missed")).await.unwrap().record.revision;
    assert!(*b.watch().borrow() < missed);

    sqlx::query("ALTER ROLE replica_b LOGIN")
        .execute(&mut admin)
        .await
        .unwrap();
    wait_watch(&b, missed, "B once its LISTEN is back").await;
    assert_eq!(
        b.get(Kind::Service, "missed")
            .await
            .unwrap()
            .unwrap()
            .revision,
        missed
    );
}

// === the API over a store that fails or hangs ===

/// A store whose every call fails with `fail()`, or never answers when `fail` is `None`.
struct Broken {
    fail: Option<fn() -> sqlx::Error>,
    revision: watch::Sender<i64>,
}

impl Broken {
    fn store(fail: Option<fn() -> sqlx::Error>) -> Arc<dyn Store> {
        Arc::new(Broken {
            fail,
            revision: watch::Sender::new(0),
        })
    }

    async fn answer<T>(&self) -> Result<T, Error> {
        match self.fail {
            Some(f) => Err(Error::Database(f())),
            None => std::future::pending().await,
        }
    }
}

#[async_trait]
impl Store for Broken {
    fn backend(&self) -> &'static str {
        "postgres"
    }
    async fn put(&self, _: Write) -> Result<Written, Error> {
        self.answer().await
    }
    async fn get(&self, _: Kind, _: &str) -> Result<Option<Record>, Error> {
        self.answer().await
    }
    async fn list(&self, _: Kind, _: Option<&str>, _: u32) -> Result<Vec<Record>, Error> {
        self.answer().await
    }
    async fn delete(&self, _: Kind, _: &str, _: Option<i64>) -> Result<Vec<Record>, Error> {
        self.answer().await
    }
    async fn snapshot(&self) -> Result<Snapshot, Error> {
        self.answer().await
    }
    async fn revision(&self) -> Result<i64, Error> {
        self.answer().await
    }
    fn watch(&self) -> watch::Receiver<i64> {
        self.revision.subscribe()
    }
    async fn proxy_tokens(&self) -> Result<Vec<xds_server::store::ProxyToken>, Error> {
        self.answer().await
    }
    async fn proxy_token_create(&self, _: &xds_server::store::ProxyToken) -> Result<(), Error> {
        self.answer().await
    }
    async fn proxy_token_revoke(&self, _: &str) -> Result<bool, Error> {
        self.answer().await
    }
}

#[tokio::test]
async fn connection_failures_are_503_store_unavailable_other_database_errors_500() {
    let app = router(AppState::new(Broken::store(Some(|| {
        sqlx::Error::PoolTimedOut
    }))));
    let resp = call(&app, "PUT", "/api/v1/services/web", Some(HTTP), &[]).await;
    assert_error(&resp, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
    assert_eq!(resp.1.get(header::RETRY_AFTER).unwrap(), "1");
    let resp = call(&app, "GET", "/readyz", None, &[]).await;
    assert_error(&resp, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");

    let app = router(AppState::new(Broken::store(Some(|| {
        sqlx::Error::RowNotFound
    }))));
    let resp = call(&app, "PUT", "/api/v1/services/web", Some(HTTP), &[]).await;
    let err = assert_error(&resp, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert!(resp.1.get(header::RETRY_AFTER).is_none());
    assert!(
        !err["message"].as_str().unwrap().contains("RowNotFound"),
        "{err}"
    );
}

#[tokio::test]
async fn readyz_answers_503_when_the_store_hangs() {
    let app = router(AppState::new(Broken::store(None)));
    let started = Instant::now();
    let resp = call(&app, "GET", "/readyz", None, &[]).await;
    assert_error(&resp, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
    let took = started.elapsed();
    assert!(
        took >= READY_TIMEOUT && took < READY_TIMEOUT + Duration::from_secs(1),
        "/readyz took {took:?}"
    );
}
