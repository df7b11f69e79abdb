//! The `status` block of mesh objects: the real store, watch, translation cache and
//! last-known-good verdicts, with the streams' sent/acknowledged state written straight into
//! the registry (as `xds/stream.rs` writes it). Counts per object, a rejection held back and
//! shown on the route whose part was rejected (not on the route beside it), the rejection
//! gone as soon as the route is fixed, a NACK seen live, and a `status` in a PUT body ignored.

use std::{sync::Arc, time::Duration};

use axum::Router;
use serde_json::{Value, json};
use tokio::sync::watch;
use xds_core::type_url;
use xds_server::{
    api::{AppState, router},
    status::{StreamGuard, SyncState, TypeStatus, Variant},
    translate::{Delivery, NodeInfo, Resources},
    watch::Published,
    xds::{
        cache::Cache,
        verdicts::{Verdict, Verdicts},
    },
};

use super::{common, get, proxy, state};

const WAIT: Duration = Duration::from_secs(10);

/// Writes one object over the API; it must be accepted.
async fn put(app: &Router, uri: &str, body: Value) -> Value {
    let (status, _, answer) =
        common::http::call(app, "PUT", uri, Some(&body.to_string()), &[]).await;
    assert!(status.is_success(), "PUT {uri}: {status} {answer}");
    answer
}

fn route(path: &str) -> Value {
    json!({ "hosts": [format!("{}.example.com", path.trim_matches('/'))],
            "rules": [{ "match": { "path": { "prefix": path } },
                        "destinations": [{ "service": "web" }] }] })
}

/// The mesh: service `web` with endpoints, routes `good` and `bad` on listener `ingress`.
async fn mesh(app: &Router) {
    put(app, "/api/v1/services/web", json!({ "protocol": "http" })).await;
    put(
        app,
        "/api/v1/services/web/endpoints",
        json!({ "endpoints": [{ "address": "127.0.0.1", "port": 8080 }] }),
    )
    .await;
    put(app, "/api/v1/routes/good", route("/good")).await;
    put(app, "/api/v1/routes/bad", route("/bad")).await;
    put(
        app,
        "/api/v1/listeners/ingress",
        json!({ "port": 10000, "protocol": "http", "routes": ["good", "bad"] }),
    )
    .await;
}

/// The mesh the watcher publishes once it has caught up with the store.
async fn caught_up(state: &AppState, mesh: &mut watch::Receiver<Arc<Published>>) -> Arc<Published> {
    let wanted = *state.store.watch().borrow();
    tokio::time::timeout(WAIT, mesh.wait_for(|p| p.mesh.revision >= wanted))
        .await
        .expect("the watcher loads the store's revision")
        .expect("the watcher runs")
        .clone()
}

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        cluster: "ingress".into(),
        metadata: Default::default(),
    }
}

/// Every type of `r` as a stream that fetched it and acknowledged it.
fn synced(r: &Resources) -> Vec<(String, TypeStatus)> {
    r.by_type
        .keys()
        .map(|t| {
            let v = r.fetched(t).version.clone();
            (t.clone(), status(SyncState::Synced, &v, Some(&v), None))
        })
        .collect()
}

fn status(state: SyncState, sent: &str, acked: Option<&str>, error: Option<&str>) -> TypeStatus {
    super::type_status(state, sent, acked, error)
}

/// A connected ADS stream of `id` on `r`, with these types.
fn connect(
    state: &AppState,
    id: &str,
    r: &Arc<Resources>,
    types: Vec<(String, TypeStatus)>,
) -> StreamGuard {
    let guard = state
        .registry
        .connect(proxy(id, Variant::Sotw, "ads", vec![]));
    let r = r.clone();
    guard.update(move |s| {
        s.resources = Some(r.clone());
        s.held_back = r.held_back.clone();
        s.types = types.into_iter().map(|(t, v)| (t, Box::new(v))).collect();
    });
    guard
}

/// Moves a stream to `r` with these types.
fn update(guard: &StreamGuard, r: &Arc<Resources>, types: Vec<(String, TypeStatus)>) {
    let r = r.clone();
    guard.update(move |s| {
        s.resources = Some(r.clone());
        s.held_back = r.held_back.clone();
        s.types = types.into_iter().map(|(t, v)| (t, Box::new(v))).collect();
    });
}

/// The `status` of the object at `uri`.
async fn status_of(app: &Router, uri: &str) -> Value {
    let (code, body) = get(app, uri).await;
    assert!(code.is_success(), "GET {uri}: {code} {body}");
    body["status"].clone()
}

fn counts(status: &Value) -> (u64, u64, u64, usize) {
    let n = |k: &str| {
        status[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {status}"))
    };
    let rejected = status["rejected"].as_array().expect("rejected").len();
    (n("proxies"), n("received"), n("accepted"), rejected)
}

#[tokio::test]
async fn objects_show_who_received_accepted_and_rejected_them() {
    let (state, _dir) = state().await;
    let app = router(state.clone());
    mesh(&app).await;
    let (mut published, _watcher) =
        xds_server::watch::spawn(state.store.clone(), Duration::ZERO, |_| {})
            .await
            .expect("the watcher starts");
    let cache = Cache::new(published.clone());
    let rev1 = caught_up(&state, &mut published).await;
    let r1 = cache
        .resources(&rev1, &node("edge-1"), &Delivery::Ads)
        .await;

    // Nothing connected: every object is known to no proxy.
    let idle = json!({ "proxies": 0, "received": 0, "accepted": 0, "rejected": [] });
    assert_eq!(status_of(&app, "/api/v1/routes/good").await, idle);

    // Three proxies of one group; edge-3 has not acknowledged its routes yet.
    let edge1 = connect(&state, "edge-1", &r1, synced(&r1));
    let edge2 = connect(&state, "edge-2", &r1, synced(&r1));
    let mut types = synced(&r1);
    for (t, s) in &mut types {
        if t == type_url::ROUTE {
            *s = status(
                SyncState::Stale,
                &s.version_sent.clone().unwrap(),
                Some("0"),
                None,
            );
        }
    }
    let edge3 = connect(&state, "edge-3", &r1, types);
    assert_eq!(
        counts(&status_of(&app, "/api/v1/routes/good").await),
        (3, 3, 2, 0)
    );
    assert_eq!(
        counts(&status_of(&app, "/api/v1/listeners/ingress").await),
        (3, 3, 2, 0),
        "the listener made the route configuration too"
    );
    assert_eq!(
        counts(&status_of(&app, "/api/v1/services/web").await),
        (3, 3, 3, 0),
        "its cluster and assignment: all acknowledged"
    );
    assert_eq!(
        counts(&status_of(&app, "/api/v1/services/web/endpoints").await),
        (3, 3, 3, 0)
    );
    // A list shows each item's own status.
    let (_, list) = get(&app, "/api/v1/routes").await;
    for item in list["items"].as_array().unwrap() {
        assert_eq!(counts(&item["status"]), (3, 3, 2, 0), "{item}");
    }
    update(&edge3, &r1, synced(&r1));

    // `bad` changes; edge-1 rejects the new route configuration. Last-known-good holds it
    // back: the group keeps the version it accepted.
    let verdicts: &Verdicts = cache.verdicts();
    let group = r1.group.clone();
    let routes = |r: &Resources| r.fetched(type_url::ROUTE).items.to_vec();
    verdicts.record(&group, type_url::ROUTE, &routes(&r1), Verdict::Accepted);
    put(&app, "/api/v1/routes/bad", route("/bad-v2")).await;
    let rev2 = caught_up(&state, &mut published).await;
    let raw = cache
        .resources(&rev2, &node("edge-1"), &Delivery::Ads)
        .await;
    let message = "regex '^/[a-z]{300}$' RE2 program size of 304 > max program size of 100";
    let rejected = Verdict::Rejected {
        node_id: "edge-1",
        message,
    };
    assert!(verdicts.record(&group, type_url::ROUTE, &routes(&raw), rejected));
    drop(raw);
    let r2 = cache
        .resources(&rev2, &node("edge-1"), &Delivery::Ads)
        .await;
    assert_eq!(r2.held_back.len(), 1, "{:?}", r2.held_back);
    for guard in [&edge1, &edge2, &edge3] {
        update(guard, &r2, synced(&r2));
    }
    let bad = status_of(&app, "/api/v1/routes/bad").await;
    assert_eq!(
        counts(&bad),
        (3, 0, 0, 1),
        "nobody runs bad's current version: {bad}"
    );
    assert_eq!(
        bad["rejected"][0],
        json!({ "node_id": "edge-1", "type_url": type_url::ROUTE, "resource": "ingress",
                "message": message })
    );
    assert_eq!(
        counts(&status_of(&app, "/api/v1/routes/good").await),
        (3, 3, 3, 0),
        "good's part of the held-back configuration is what the group runs"
    );
    assert_eq!(
        counts(&status_of(&app, "/api/v1/listeners/ingress").await),
        (3, 3, 3, 0),
        "so is the listener's"
    );

    // The operator fixes `bad`: the rejection is gone at once (the streams still hold the
    // translation from before the fix, so nobody has the fix yet)…
    put(&app, "/api/v1/routes/bad", route("/bad-v3")).await;
    let fixed = status_of(&app, "/api/v1/routes/bad").await;
    assert_eq!(counts(&fixed), (3, 0, 0, 0), "{fixed}");
    // …then the group moves to it: sent, and acknowledged one by one.
    let rev3 = caught_up(&state, &mut published).await;
    let r3 = cache
        .resources(&rev3, &node("edge-1"), &Delivery::Ads)
        .await;
    assert!(r3.held_back.is_empty(), "the fix is not held back");
    let mut sent = synced(&r3);
    for (t, s) in &mut sent {
        if t == type_url::ROUTE {
            *s = status(
                SyncState::Stale,
                &s.version_sent.clone().unwrap(),
                Some("0"),
                None,
            );
        }
    }
    for guard in [&edge1, &edge2, &edge3] {
        update(guard, &r3, sent.clone());
    }
    assert_eq!(
        counts(&status_of(&app, "/api/v1/routes/bad").await),
        (3, 3, 0, 0)
    );
    update(&edge1, &r3, synced(&r3));
    update(&edge3, &r3, synced(&r3));
    assert_eq!(
        counts(&status_of(&app, "/api/v1/routes/bad").await),
        (3, 3, 2, 0)
    );

    // A NACK last-known-good did not take over (e.g. `--last-known-good false`): seen live on
    // every object that made the rejected resource.
    let mut nacked = synced(&r3);
    for (t, s) in &mut nacked {
        if t == type_url::ROUTE {
            let sent = s.version_sent.clone().unwrap();
            *s = status(
                SyncState::Nacked,
                &sent,
                Some("0"),
                Some("route 'ingress': no"),
            );
        }
    }
    update(&edge2, &r3, nacked);
    for uri in ["/api/v1/routes/bad", "/api/v1/routes/good"] {
        let s = status_of(&app, uri).await;
        assert_eq!(counts(&s), (3, 3, 2, 1), "{uri}: {s}");
        assert_eq!(s["rejected"][0]["node_id"], "edge-2");
        assert_eq!(s["rejected"][0]["message"], "route 'ingress': no");
    }
    assert_eq!(
        counts(&status_of(&app, "/api/v1/services/web").await),
        (3, 3, 3, 0),
        "the service made nothing of the route configuration"
    );

    // `status` is read-only: a PUT carrying it (what GET returned) ignores it.
    let (_, read) = get(&app, "/api/v1/routes/good").await;
    let answer = put(&app, "/api/v1/routes/good", read.clone()).await;
    assert!(answer.get("status").is_none(), "{answer}");
    let mut bogus = read;
    bogus["status"] = json!({ "proxies": 99 });
    bogus.as_object_mut().unwrap().remove("version");
    put(&app, "/api/v1/routes/good", bogus).await;
}
