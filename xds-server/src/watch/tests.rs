//! Coalescing against a real SQLite store (polling an hour apart, so only this process's
//! writes move the revision): an isolated write is published at once, a burst is folded
//! into a few rebuilds and its last write is always published, and a stored row that no
//! longer parses keeps the previous mesh without ending the watcher.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};
use tempfile::TempDir;

use super::{load::parse, *};
use crate::store::{Record, Snapshot, SqliteStore, Write};

// === helpers ===

/// Long enough that the store's poller never fires during a test.
const NO_POLL: Duration = Duration::from_secs(3600);

async fn sqlite() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mesh.db"), NO_POLL)
        .await
        .unwrap();
    (Arc::new(store), dir)
}

fn service(name: &str) -> Write {
    Write {
        kind: Kind::Service,
        name: name.into(),
        spec: json!({ "protocol": "http" }),
        references: vec![],
        expected_version: None,
    }
}

/// A rebuild counter and the `on_rebuild` callback feeding it.
fn counter() -> (Arc<AtomicUsize>, impl Fn(Duration) + Send + 'static) {
    let count = Arc::new(AtomicUsize::new(0));
    let fed = count.clone();
    (count, move |_| {
        fed.fetch_add(1, Ordering::SeqCst);
    })
}

/// Waits up to `limit` for a published mesh at `revision` or later.
async fn published_by(
    rx: &mut watch::Receiver<Arc<Published>>,
    revision: i64,
    limit: Duration,
) -> Arc<Published> {
    let wait = rx.wait_for(|p| p.mesh.revision >= revision);
    let outcome = tokio::time::timeout(limit, wait)
        .await
        .map(|r| r.map(|p| p.clone()));
    match outcome {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => panic!("the watcher ended before publishing revision {revision}"),
        Err(_) => panic!(
            "revision {revision} not published within {limit:?} (still at {})",
            rx.borrow().mesh.revision
        ),
    }
}

// === isolated changes ===

#[tokio::test]
async fn an_isolated_write_is_published_without_waiting_for_the_window() {
    let (store, _dir) = sqlite().await;
    let (rebuilds, on_rebuild) = counter();
    let (mut rx, task) = spawn(store.clone(), Duration::from_secs(10), on_rebuild)
        .await
        .unwrap();
    assert_eq!(
        rx.borrow().mesh.revision,
        0,
        "the empty mesh is loaded first"
    );
    let written = store.put(service("web")).await.unwrap().record.revision;
    let start = Instant::now();
    let p = published_by(&mut rx, written, Duration::from_secs(2)).await;
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(p.mesh.revision, written);
    assert!(p.mesh.services.contains_key("web"));
    assert_eq!(rebuilds.load(Ordering::SeqCst), 1);
    assert!(!task.is_finished());
    task.abort();
}

// === bursts ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_coalesced_and_its_last_write_always_published() {
    const WRITES: usize = 20;
    const BURSTS: usize = 3;
    let window = Duration::from_millis(300);
    let (store, _dir) = sqlite().await;
    let (rebuilds, on_rebuild) = counter();
    let (mut rx, task) = spawn(store.clone(), window, on_rebuild).await.unwrap();
    for burst in 0..BURSTS {
        let before = rebuilds.load(Ordering::SeqCst);
        let start = Instant::now();
        let mut last = 0;
        for i in 0..WRITES {
            let name = format!("s{burst}-{i}");
            last = store.put(service(&name)).await.unwrap().record.revision;
        }
        let took = start.elapsed();
        let p = published_by(&mut rx, last, took + 2 * window + Duration::from_secs(5)).await;
        assert_eq!(
            p.mesh.revision, last,
            "burst {burst}: the last write's revision"
        );
        assert_eq!(store.revision().await.unwrap(), last);
        for i in 0..WRITES {
            let name = format!("s{burst}-{i}");
            assert!(p.mesh.services.contains_key(&name), "burst {burst}: {name}");
        }
        // Loads start at least a window apart, except the first of an idle period.
        let n = rebuilds.load(Ordering::SeqCst) - before;
        let bound = 2 + (took.as_millis() / window.as_millis()) as usize;
        assert!(
            (1..=bound).contains(&n) && n < WRITES,
            "burst {burst}: {n} rebuilds for {WRITES} writes in {took:?} (at most {bound})"
        );
    }
    assert!(!task.is_finished());
    task.abort();
}

// === failures ===

#[tokio::test]
async fn a_garbled_row_keeps_the_previous_mesh_and_the_watcher_alive() {
    let (store, dir) = sqlite().await;
    let (mut rx, task) = spawn(store.clone(), Duration::from_millis(50), |_| {})
        .await
        .unwrap();
    let good = store.put(service("web")).await.unwrap().record.revision;
    published_by(&mut rx, good, Duration::from_secs(5)).await;

    // Another process on the same file writes a spec the model refuses.
    let options = SqliteConnectOptions::new().filename(dir.path().join("mesh.db"));
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::query("UPDATE resources SET spec = ? WHERE kind = 'services' AND name = 'web'")
        .bind(r#"{"protocol": "carrier-pigeon"}"#)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    // The next write makes the watcher load the garbled mesh: it must not publish it.
    let bad = store.put(service("other")).await.unwrap().record.revision;
    let wait = rx.wait_for(|p| p.mesh.revision >= bad);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), wait)
            .await
            .is_err(),
        "a mesh with an unreadable row is not published"
    );
    assert_eq!(rx.borrow().mesh.revision, good, "the previous mesh stays");
    assert!(!task.is_finished(), "the watcher survives the failed load");

    // Rewriting the row repairs it; the watcher, still retrying, publishes the repair.
    let fixed = store.put(service("web")).await.unwrap().record.revision;
    let p = published_by(&mut rx, fixed, Duration::from_secs(5)).await;
    assert!(p.mesh.services.contains_key("web") && p.mesh.services.contains_key("other"));
    task.abort();
}

#[test]
fn a_record_the_model_refuses_is_named_in_the_error() {
    let record = |kind, name: &str, spec| Record {
        kind,
        name: name.into(),
        version: 1,
        revision: 1,
        spec,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    };
    let good = Snapshot::new(
        2,
        [
            record(Kind::Service, "web", json!({ "protocol": "http" })),
            record(Kind::Endpoints, "web", json!({ "endpoints": [] })),
        ],
    );
    let mesh = parse(&good).unwrap();
    assert_eq!(mesh.revision, 2);
    assert!(mesh.services.contains_key("web") && mesh.endpoints.contains_key("web"));

    let bad = Snapshot::new(
        3,
        [record(Kind::Route, "r", json!({ "hosts": "not a list" }))],
    );
    let message = parse(&bad).unwrap_err().to_string();
    assert!(message.contains("stored routes 'r'"), "{message}");
}
