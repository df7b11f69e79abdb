//! The store conformance suite: every case runs against SQLite and against a real Postgres.
//!
//! A backend passes when it keeps these promises: versions and revisions move forward on each
//! write; stale writers get a conflict and change nothing; references are enforced inside the
//! transaction; deletes cascade to owned resources only; lists page in byte order; the watch
//! sees local writes and, within the poll interval, other replicas' writes.

mod common;

use std::{path::PathBuf, sync::Arc, time::Duration};

use serde_json::json;
use xds_server::{
    model::{Kind, Reference},
    store::{Error, PostgresStore, ProxyToken, SqliteStore, Store, Write},
};

/// Where a backend's data lives, so a case can open a second handle (another replica, or the
/// same server after a restart).
enum Location {
    Sqlite(PathBuf, #[allow(dead_code)] tempfile::TempDir),
    Postgres(String),
}

impl Location {
    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Location::Sqlite(path, _) => {
                Arc::new(SqliteStore::open(path, common::POLL).await.unwrap())
            }
            Location::Postgres(url) => {
                Arc::new(PostgresStore::connect(url, common::POLL).await.unwrap())
            }
        }
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let location = super::Location::Sqlite(dir.path().join("mesh.db"), dir);
                    super::$case(location).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(server) = crate::common::postgres_server() else { return };
                    let url = crate::common::fresh_postgres_database(&server).await;
                    super::$case(super::Location::Postgres(url)).await;
                }
            )*
        }
    };
}

conformance!(
    proxy_tokens_are_kept_as_hashes_and_revoked_everywhere,
    put_creates_then_replaces,
    get_missing_is_none,
    list_pages_in_byte_order_per_kind,
    stale_version_conflicts_and_changes_nothing,
    dangling_reference_is_refused_and_nothing_written,
    delete_refused_while_referenced_names_referrers,
    delete_cascades_to_owned_resources_only,
    replaced_references_release_old_targets,
    delete_checks_version_and_existence,
    snapshot_holds_everything_at_one_revision,
    watch_sees_local_writes_at_once,
    watch_sees_another_replicas_writes,
    concurrent_writers_one_wins_no_lost_update,
    concurrent_creates_all_land_with_distinct_revisions,
    data_survives_a_restart,
    traffic_permissions_are_kept_and_hold_their_services,
);

/// Proxy tokens: created, listed oldest first, unique by id and hash, deleted once; a
/// revocation moves the revision so another replica's watch sees it.
async fn proxy_tokens_are_kept_as_hashes_and_revoked_everywhere(location: Location) {
    let store = location.open().await;
    let other = location.open().await;
    let token = |id: &str, hash: &str, description: Option<&str>| ProxyToken {
        id: id.into(),
        secret_sha256: hash.into(),
        node_id: "web".into(),
        node_cluster: "prod".into(),
        description: description.map(Into::into),
        created_at: chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .into(),
    };
    assert!(store.proxy_tokens().await.unwrap().is_empty());
    let first = token("pt-1", "aa", Some("first"));
    store.proxy_token_create(&first).await.unwrap();
    store
        .proxy_token_create(&token("pt-2", "bb", None))
        .await
        .unwrap();
    assert!(
        store
            .proxy_token_create(&token("pt-1", "cc", None))
            .await
            .is_err(),
        "same id"
    );
    assert!(
        store
            .proxy_token_create(&token("pt-3", "aa", None))
            .await
            .is_err(),
        "same hash"
    );
    let listed = other.proxy_tokens().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], first);

    let mut watch = other.watch();
    let before = *watch.borrow_and_update();
    assert!(store.proxy_token_revoke("pt-1").await.unwrap());
    assert!(!store.proxy_token_revoke("pt-1").await.unwrap());
    assert!(!store.proxy_token_revoke("pt-nope").await.unwrap());
    tokio::time::timeout(Duration::from_secs(5), watch.wait_for(|r| *r > before))
        .await
        .expect("the other replica sees the revocation's revision")
        .unwrap();
    let left: Vec<String> = other
        .proxy_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(left, ["pt-2"]);
}

// === helpers ===

fn service(name: &str, protocol: &str) -> Write {
    Write {
        kind: Kind::Service,
        name: name.into(),
        spec: json!({ "protocol": protocol }),
        references: vec![],
        expected_version: None,
    }
}

fn route_to(name: &str, services: &[&str]) -> Write {
    Write {
        kind: Kind::Route,
        name: name.into(),
        spec: json!({ "hosts": ["*"], "services": services }),
        references: services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Reference::to(
                    Kind::Service,
                    *s,
                    format!("rules[0].destinations[{i}].service"),
                )
            })
            .collect(),
        expected_version: None,
    }
}

fn endpoints_of(service: &str) -> Write {
    Write {
        kind: Kind::Endpoints,
        name: service.into(),
        spec: json!({ "endpoints": [{ "address": "127.0.0.1", "port": 8080 }] }),
        references: vec![Reference {
            kind: Kind::Service,
            name: service.into(),
            field: "service".into(),
            owned: true,
        }],
        expected_version: None,
    }
}

/// Waits until the watch reaches `revision`, failing after `deadline`.
async fn wait_for_revision(store: &dyn Store, revision: i64, deadline: Duration) {
    let mut rx = store.watch();
    tokio::time::timeout(deadline, rx.wait_for(|r| *r >= revision))
        .await
        .unwrap_or_else(|_| panic!("watch did not reach revision {revision} within {deadline:?}"))
        .unwrap();
}

// === cases ===

async fn put_creates_then_replaces(at: Location) {
    let store = at.open().await;
    let before = store.revision().await.unwrap();
    let first = store.put(service("web", "http")).await.unwrap();
    assert!(first.created);
    assert_eq!(first.record.version, 1);
    assert_eq!(first.record.revision, before + 1);
    assert_eq!(first.record.created_at, first.record.updated_at);

    let second = store.put(service("web", "grpc")).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.record.version, 2);
    assert_eq!(second.record.revision, before + 2);
    assert_eq!(second.record.created_at, first.record.created_at);
    assert!(second.record.updated_at >= first.record.updated_at);

    let read = store.get(Kind::Service, "web").await.unwrap().unwrap();
    assert_eq!(read.spec, json!({ "protocol": "grpc" }));
    assert_eq!(read.version, 2);
    // Timestamps survive the round trip through the database (to the microsecond).
    let micros = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
    assert_eq!(micros(read.created_at), micros(first.record.created_at));
    assert_eq!(store.revision().await.unwrap(), before + 2);
}

async fn get_missing_is_none(at: Location) {
    let store = at.open().await;
    store.put(service("web", "http")).await.unwrap();
    assert!(store.get(Kind::Service, "other").await.unwrap().is_none());
    // Same name, other kind.
    assert!(store.get(Kind::Route, "web").await.unwrap().is_none());
}

async fn list_pages_in_byte_order_per_kind(at: Location) {
    let store = at.open().await;
    // Byte order: "a" < "a-b" ('-' is 0x2d) < "a0" < "b"; locale collations disagree.
    for name in ["b", "a0", "a-b", "a"] {
        store.put(service(name, "http")).await.unwrap();
    }
    store.put(route_to("r", &["a"])).await.unwrap();
    let names = |records: Vec<xds_server::store::Record>| -> Vec<String> {
        records.into_iter().map(|r| r.name).collect()
    };
    let all = names(store.list(Kind::Service, None, 100).await.unwrap());
    assert_eq!(all, ["a", "a-b", "a0", "b"]);
    let page1 = names(store.list(Kind::Service, None, 2).await.unwrap());
    assert_eq!(page1, ["a", "a-b"]);
    let page2 = names(store.list(Kind::Service, Some("a-b"), 2).await.unwrap());
    assert_eq!(page2, ["a0", "b"]);
    assert!(
        store
            .list(Kind::Service, Some("b"), 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        names(store.list(Kind::Route, None, 100).await.unwrap()),
        ["r"]
    );
}

async fn stale_version_conflicts_and_changes_nothing(at: Location) {
    let store = at.open().await;
    store.put(service("web", "http")).await.unwrap();
    store.put(service("web", "http2")).await.unwrap();
    let revision = store.revision().await.unwrap();

    let stale = Write {
        expected_version: Some(1),
        ..service("web", "grpc")
    };
    match store.put(stale).await {
        Err(Error::Conflict {
            expected: 1,
            actual: Some(2),
            ..
        }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    let create_only = Write {
        expected_version: Some(0),
        ..service("web", "grpc")
    };
    assert!(matches!(
        store.put(create_only).await,
        Err(Error::Conflict {
            actual: Some(2),
            ..
        })
    ));
    let on_missing = Write {
        expected_version: Some(3),
        ..service("new", "tcp")
    };
    assert!(matches!(
        store.put(on_missing).await,
        Err(Error::Conflict { actual: None, .. })
    ));

    let read = store.get(Kind::Service, "web").await.unwrap().unwrap();
    assert_eq!(
        (read.version, read.spec),
        (2, json!({ "protocol": "http2" }))
    );
    assert!(store.get(Kind::Service, "new").await.unwrap().is_none());
    assert_eq!(
        store.revision().await.unwrap(),
        revision,
        "failed writes must not bump the revision"
    );

    let current = Write {
        expected_version: Some(2),
        ..service("web", "grpc")
    };
    assert_eq!(store.put(current).await.unwrap().record.version, 3);
    let create = Write {
        expected_version: Some(0),
        ..service("fresh", "tcp")
    };
    assert!(store.put(create).await.unwrap().created);
}

async fn dangling_reference_is_refused_and_nothing_written(at: Location) {
    let store = at.open().await;
    store.put(service("a", "http")).await.unwrap();
    let revision = store.revision().await.unwrap();
    match store.put(route_to("r", &["a", "missing"])).await {
        Err(Error::DanglingReference {
            field,
            kind: Kind::Service,
            name,
        }) => {
            assert_eq!(field, "rules[0].destinations[1].service");
            assert_eq!(name, "missing");
        }
        other => panic!("expected a dangling reference, got {other:?}"),
    }
    assert!(store.get(Kind::Route, "r").await.unwrap().is_none());
    assert_eq!(store.revision().await.unwrap(), revision);
    // Endpoints of a service that does not exist are refused the same way.
    assert!(matches!(
        store.put(endpoints_of("ghost")).await,
        Err(Error::DanglingReference { .. })
    ));
}

async fn delete_refused_while_referenced_names_referrers(at: Location) {
    let store = at.open().await;
    store.put(service("a", "http")).await.unwrap();
    store.put(route_to("r2", &["a"])).await.unwrap();
    store.put(route_to("r1", &["a", "a"])).await.unwrap();
    match store.delete(Kind::Service, "a", None).await {
        Err(Error::Referenced { referrers, .. }) => assert_eq!(
            referrers,
            [
                (Kind::Route, "r1".to_string()),
                (Kind::Route, "r2".to_string())
            ]
        ),
        other => panic!("expected referenced, got {other:?}"),
    }
    assert!(store.get(Kind::Service, "a").await.unwrap().is_some());
    store.delete(Kind::Route, "r1", None).await.unwrap();
    store.delete(Kind::Route, "r2", None).await.unwrap();
    store.delete(Kind::Service, "a", None).await.unwrap();
    assert!(store.get(Kind::Service, "a").await.unwrap().is_none());
}

async fn delete_cascades_to_owned_resources_only(at: Location) {
    let store = at.open().await;
    store.put(service("a", "http")).await.unwrap();
    store.put(service("b", "http")).await.unwrap();
    store.put(endpoints_of("a")).await.unwrap();
    store.put(endpoints_of("b")).await.unwrap();
    let deleted = store.delete(Kind::Service, "a", None).await.unwrap();
    let deleted: Vec<_> = deleted.iter().map(|r| (r.kind, r.name.as_str())).collect();
    assert_eq!(deleted, [(Kind::Service, "a"), (Kind::Endpoints, "a")]);
    assert!(store.get(Kind::Endpoints, "a").await.unwrap().is_none());
    assert!(store.get(Kind::Endpoints, "b").await.unwrap().is_some());
    // A recreated service starts without endpoints.
    store.put(service("a", "http")).await.unwrap();
    assert!(store.get(Kind::Endpoints, "a").await.unwrap().is_none());
}

async fn replaced_references_release_old_targets(at: Location) {
    let store = at.open().await;
    store.put(service("a", "http")).await.unwrap();
    store.put(service("b", "http")).await.unwrap();
    store.put(route_to("r", &["a"])).await.unwrap();
    store.put(route_to("r", &["b"])).await.unwrap();
    store.delete(Kind::Service, "a", None).await.unwrap();
    assert!(matches!(
        store.delete(Kind::Service, "b", None).await,
        Err(Error::Referenced { .. })
    ));
}

async fn delete_checks_version_and_existence(at: Location) {
    let store = at.open().await;
    assert!(matches!(
        store.delete(Kind::Service, "nope", None).await,
        Err(Error::NotFound {
            kind: Kind::Service,
            ..
        })
    ));
    store.put(service("a", "http")).await.unwrap();
    store.put(service("a", "http")).await.unwrap();
    assert!(matches!(
        store.delete(Kind::Service, "a", Some(1)).await,
        Err(Error::Conflict {
            actual: Some(2),
            ..
        })
    ));
    assert!(store.get(Kind::Service, "a").await.unwrap().is_some());
    store.delete(Kind::Service, "a", Some(2)).await.unwrap();
    assert!(store.get(Kind::Service, "a").await.unwrap().is_none());
}

async fn snapshot_holds_everything_at_one_revision(at: Location) {
    let store = at.open().await;
    store.put(service("a", "http")).await.unwrap();
    store.put(endpoints_of("a")).await.unwrap();
    store.put(route_to("r", &["a"])).await.unwrap();
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.revision, store.revision().await.unwrap());
    let keys: Vec<_> = snapshot
        .resources
        .keys()
        .map(|(k, n)| (*k, n.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            (Kind::Service, "a"),
            (Kind::Endpoints, "a"),
            (Kind::Route, "r")
        ]
    );
    assert!(
        snapshot
            .resources
            .values()
            .all(|r| r.revision <= snapshot.revision)
    );
}

async fn watch_sees_local_writes_at_once(at: Location) {
    let store = at.open().await;
    let mut rx = store.watch();
    let written = store.put(service("a", "http")).await.unwrap();
    // Published before put returns: no waiting on a poll.
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), written.record.revision);
}

async fn watch_sees_another_replicas_writes(at: Location) {
    let replica_a = at.open().await;
    let replica_b = at.open().await;
    let written = replica_b.put(service("a", "http")).await.unwrap();
    wait_for_revision(
        &*replica_a,
        written.record.revision,
        Duration::from_secs(10),
    )
    .await;
    assert!(replica_a.get(Kind::Service, "a").await.unwrap().is_some());
}

async fn concurrent_writers_one_wins_no_lost_update(at: Location) {
    let store = at.open().await;
    store.put(service("web", "http")).await.unwrap();
    let other = at.open().await; // a second replica races the first
    let write = |protocol: &str| Write {
        expected_version: Some(1),
        ..service("web", protocol)
    };
    let (a, b) = tokio::join!(store.put(write("grpc")), other.put(write("tcp")));
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(e)) | (Err(e), Ok(w)) => (w, e),
        (a, b) => panic!("exactly one writer must win: {a:?} / {b:?}"),
    };
    assert!(matches!(loser, Error::Conflict { .. }), "{loser:?}");
    let read = store.get(Kind::Service, "web").await.unwrap().unwrap();
    assert_eq!(read.version, 2);
    assert_eq!(read.spec, winner.record.spec);
}

async fn concurrent_creates_all_land_with_distinct_revisions(at: Location) {
    let store = at.open().await;
    let before = store.revision().await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.put(service(&format!("s{i}"), "http")).await })
        })
        .collect();
    let mut revisions = Vec::new();
    for t in tasks {
        revisions.push(t.await.unwrap().unwrap().record.revision);
    }
    revisions.sort();
    revisions.dedup();
    assert_eq!(revisions.len(), 20, "each write gets its own revision");
    assert_eq!(store.revision().await.unwrap(), before + 20);
    assert_eq!(
        store.list(Kind::Service, None, 100).await.unwrap().len(),
        20
    );
}

async fn data_survives_a_restart(at: Location) {
    let store = at.open().await;
    store.put(service("web", "http")).await.unwrap();
    store.put(endpoints_of("web")).await.unwrap();
    store.put(route_to("r", &["web"])).await.unwrap();
    let revision = store.revision().await.unwrap();
    drop(store);
    let reopened = at.open().await;
    assert_eq!(reopened.revision().await.unwrap(), revision);
    assert_eq!(*reopened.watch().borrow(), revision);
    let route = reopened.get(Kind::Route, "r").await.unwrap().unwrap();
    assert_eq!(route.spec["services"], json!(["web"]));
    // References survive too.
    assert!(matches!(
        reopened.delete(Kind::Service, "web", None).await,
        Err(Error::Referenced { .. })
    ));
}

/// A traffic permission is stored like any kind, names its services as references (a missing
/// one refuses the write, naming the field), and holds them against deletion.
async fn traffic_permissions_are_kept_and_hold_their_services(at: Location) {
    use xds_server::model::{Spec, TrafficPermission};
    let permission = |name: &str, spec: serde_json::Value| {
        let parsed: TrafficPermission = serde_json::from_value(spec.clone()).unwrap();
        Write {
            kind: Kind::TrafficPermission,
            name: name.into(),
            references: parsed.references(name),
            spec,
            expected_version: None,
        }
    };
    let store = at.open().await;
    store.put(service("web", "http")).await.unwrap();
    store.put(service("api", "http")).await.unwrap();
    let revision = store.revision().await.unwrap();
    let ghost = json!({ "from": ["web", "ghost"], "to": "api", "action": "deny" });
    match store.put(permission("p", ghost)).await {
        Err(Error::DanglingReference {
            field,
            kind: Kind::Service,
            name,
        }) => {
            assert_eq!((field.as_str(), name.as_str()), ("from[1]", "ghost"));
        }
        other => panic!("expected a dangling reference, got {other:?}"),
    }
    assert_eq!(store.revision().await.unwrap(), revision, "nothing written");
    let spec = json!({ "from": ["web", "*"], "to": "api", "action": "deny", "shadow": true });
    store.put(permission("p", spec.clone())).await.unwrap();
    let stored = store
        .get(Kind::TrafficPermission, "p")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.spec, spec);
    let snapshot = store.snapshot().await.unwrap();
    assert!(
        snapshot
            .resources
            .contains_key(&(Kind::TrafficPermission, "p".to_string()))
    );
    for held in ["web", "api"] {
        match store.delete(Kind::Service, held, None).await {
            Err(Error::Referenced { referrers, .. }) => {
                assert_eq!(referrers, [(Kind::TrafficPermission, "p".to_string())]);
            }
            other => panic!("deleting {held}: expected referenced, got {other:?}"),
        }
    }
    store
        .delete(Kind::TrafficPermission, "p", None)
        .await
        .unwrap();
    store.delete(Kind::Service, "web", None).await.unwrap();
}
