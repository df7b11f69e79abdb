//! Two xds-server replicas on one Postgres database, one proxy on replica B (both data
//! planes, ADS SotW and Delta). The replicas poll the database an hour apart, so only Postgres NOTIFY tells one of
//! the other's writes: a mesh written through replica A reaches the proxy through B, and a route
//! change written through B is seen by A (its revision and its REST API agree with B's) and
//! reaches Envoy. Postgres only: skipped without it, failing under `CI=true`.

use std::time::{Duration, Instant};

use integration::{
    conformance_case,
    mesh::{Backend, ControlPlane, DataPlane, Reply, Variant, all_synced},
    net::{self, POLL, free_port, local_client},
    postgres,
    proxy::Proxy,
    upstream::Upstream,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use xds_core::type_url;

// === helpers ===

const WAIT: Duration = Duration::from_secs(30);

/// Longer than any test: a replica learns of the other's writes by NOTIFY or not at all.
const NO_POLL: &str = "1h";

/// Replicas A and B on one fresh database; `None` (skip announced) without the data plane or
/// Postgres.
async fn replicas(plane: DataPlane) -> Option<(ControlPlane, ControlPlane)> {
    plane.binary()?;
    let server = postgres::server()?;
    let url = postgres::fresh_database(&server).await;
    // One after the other: A migrates the empty database, B finds it migrated.
    let a = ControlPlane::start_on(&url, NO_POLL);
    let b = ControlPlane::start_on(&url, NO_POLL);
    Some((a, b))
}

/// The revision a replica knows of (the `xds_store_revision` gauge of its `/metrics`: its
/// watch, moved by its own writes and by NOTIFY, not read from the database).
async fn known_revision(cp: &ControlPlane) -> i64 {
    cp.metric("xds_store_revision").await as i64
}

/// The database's revision, as a replica's `/readyz` reads it.
async fn database_revision(cp: &ControlPlane) -> i64 {
    let (status, body) = cp.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "/readyz: {body}");
    body["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("/readyz has no revision: {body}"))
}

/// Polls until `cp` knows of `revision` (within [`WAIT`]).
async fn wait_known(cp: &ControlPlane, name: &str, revision: i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let known = known_revision(cp).await;
        if known >= revision {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica {name} still at revision {known}, not {revision}, {WAIT:?} after the other's write (NOTIFY lost?)"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Sends requests through the proxy's listener until one comes back from `upstream`.
async fn wait_reply_from(proxy: &Proxy, port: u16, upstream: &str) -> Reply {
    let client = local_client();
    let deadline = Instant::now() + WAIT;
    let mut last = String::from("nothing sent");
    for i in 0..2000 {
        match net::send(&client, port, &format!("/replicas/{i}"), &[]).await {
            Ok(reply) if reply.from(upstream) => return reply,
            Ok(reply) => last = format!("{} {}", reply.status, reply.body),
            Err(e) => last = e,
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    proxy.fail(&format!(
        "never got a reply from {upstream} through 127.0.0.1:{port} (last: {last})"
    ))
}

/// Polls `GET /api/v1/proxies/{node_id}` on `cp` until `accept` holds.
async fn wait_proxy(
    cp: &ControlPlane,
    proxy: &Proxy,
    node_id: &str,
    what: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    let mut last = Value::Null;
    loop {
        if let Some(status) = cp.proxy(node_id).await {
            if accept(&status) {
                return status;
            }
            last = status;
        }
        if Instant::now() > deadline {
            proxy.fail(&format!("proxy status never showed {what}; last: {last:#}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A node id unique to this test run, data plane and variant.
fn node_id(plane: DataPlane, what: &str, variant: Variant) -> String {
    format!(
        "{}-{what}-{}-{}",
        plane.as_str(),
        std::process::id(),
        variant.as_str()
    )
}

/// The listener `ingress` on `port`, routing with `main`, for `node_id` only.
async fn ingress(cp: &ControlPlane, port: u16, node_id: &str) {
    cp.put(
        "/api/v1/listeners/ingress",
        json!({ "address": "127.0.0.1", "port": port, "protocol": "http",
                "routes": ["main"], "selector": { "node_id": node_id } }),
    )
    .await;
}

// === replicas ===

mod a_write_to_either_replica_reaches_the_proxy {
    use super::conformance_case;

    conformance_case!(
        a_write_to_either_replica_reaches_the_proxy,
        envoy_sotw,
        Envoy,
        Sotw,
        Postgres
    );
    conformance_case!(
        a_write_to_either_replica_reaches_the_proxy,
        envoy_delta,
        Envoy,
        Delta,
        Postgres
    );
    conformance_case!(
        a_write_to_either_replica_reaches_the_proxy,
        minimal_sotw,
        Minimal,
        Sotw,
        Postgres
    );
    conformance_case!(
        a_write_to_either_replica_reaches_the_proxy,
        minimal_delta,
        Minimal,
        Delta,
        Postgres
    );
}

async fn a_write_to_either_replica_reaches_the_proxy(
    plane: DataPlane,
    variant: Variant,
    _postgres: Backend,
) {
    let Some((a, b)) = replicas(plane).await else {
        return;
    };
    let node_id = node_id(plane, "replicas", variant);
    let listener_port = free_port();
    let up_a = Upstream::start("a");
    let up_b = Upstream::start("b");

    // The proxy on B, before there is any mesh.
    let bootstrap = b.bootstrap(&node_id, variant, free_port()).await;
    let proxy = Proxy::start(plane, &bootstrap);
    wait_proxy(&b, &proxy, &node_id, "the proxy on B", |p| {
        p["variant"] == variant.as_str()
    })
    .await;
    assert!(
        a.proxy(&node_id).await.is_none(),
        "the proxy talks to B only"
    );

    // The whole mesh, written through A.
    a.service("svc-a", up_a.port()).await;
    a.service("svc-b", up_b.port()).await;
    a.route_to("svc-a").await;
    ingress(&a, listener_port, &node_id).await;
    let written_by_a = database_revision(&a).await;
    assert_eq!(known_revision(&a).await, written_by_a);
    wait_known(&b, "B", written_by_a).await;
    wait_reply_from(&proxy, listener_port, "a").await;
    proxy.wait_ready(WAIT).await;
    wait_proxy(&b, &proxy, &node_id, "every type SYNCED on B", all_synced).await;

    // The route moves to svc-b, written through B.
    let changed = b.route_to("svc-b").await;
    let version = changed["version"].as_i64().expect("a version");
    assert_eq!(version, 2, "the route's second write: {changed}");
    let written_by_b = database_revision(&b).await;
    assert!(written_by_b > written_by_a);
    wait_known(&a, "A", written_by_b).await;
    assert_eq!(known_revision(&b).await, written_by_b);
    let (status_a, on_a) = a.get("/api/v1/routes/main").await;
    let (status_b, on_b) = b.get("/api/v1/routes/main").await;
    assert_eq!((status_a, status_b), (StatusCode::OK, StatusCode::OK));
    assert_eq!(on_a["version"], version, "A: {on_a}");
    // The read-only status is each replica's own: what the proxies connected to it did.
    assert_eq!(on_a["status"]["proxies"], 0, "no proxy is on A: {on_a}");
    let (mut on_a, mut on_b) = (on_a, on_b);
    for object in [&mut on_a, &mut on_b] {
        object.as_object_mut().unwrap().remove("status");
    }
    assert_eq!(on_a, on_b, "both replicas read the same route");
    assert_eq!(on_a["rules"][0]["destinations"][0]["service"], "svc-b");

    wait_reply_from(&proxy, listener_port, "b").await;
    let client = local_client();
    for i in 0..10 {
        let reply = net::send(&client, listener_port, &format!("/after/{i}"), &[])
            .await
            .unwrap_or_else(|e| proxy.fail(&format!("request {i} after the change: {e}")));
        assert!(reply.from("b"), "request {i} after the change: {reply:?}");
    }
    assert!(proxy.is_running());
}

// === start-up before any mesh exists ===

/// How long a proxy may take to become LIVE when there is nothing to configure: well under the
/// default `initial_fetch_timeout` (15 s per type), so a server that leaves the first
/// wildcard CDS/LDS request unanswered shows here.
const READY_EMPTY: Duration = Duration::from_secs(5);

/// A proxy bootstrapped from B while the database is empty: the first wildcard CDS and LDS
/// requests must be answered (with nothing), or the proxy waits out its initial fetch timeout
/// for each before it is LIVE.
async fn proxy_on_an_empty_mesh_is_ready_at_once(
    plane: DataPlane,
    variant: Variant,
    _postgres: Backend,
) {
    let Some((_a, b)) = replicas(plane).await else {
        return;
    };
    let node_id = node_id(plane, "empty", variant);
    let bootstrap = b.bootstrap(&node_id, variant, free_port()).await;
    let proxy = Proxy::start(plane, &bootstrap);
    let start = Instant::now();
    proxy.wait_ready(READY_EMPTY).await;
    assert!(start.elapsed() < READY_EMPTY);
    let status = wait_proxy(&b, &proxy, &node_id, "CDS and LDS SYNCED", |p| {
        [type_url::CLUSTER, type_url::LISTENER]
            .iter()
            .all(|t| p["types"][*t]["status"] == "SYNCED")
    })
    .await;
    for t in [type_url::CLUSTER, type_url::LISTENER] {
        assert_eq!(status["types"][t]["resources_sent"], 0, "{t}: {status:#}");
    }
}

mod proxy_on_an_empty_mesh_is_ready_at_once {
    use super::conformance_case;

    conformance_case!(
        proxy_on_an_empty_mesh_is_ready_at_once,
        envoy_sotw,
        Envoy,
        Sotw,
        Postgres
    );
    conformance_case!(
        proxy_on_an_empty_mesh_is_ready_at_once,
        envoy_delta,
        Envoy,
        Delta,
        Postgres
    );
    conformance_case!(
        proxy_on_an_empty_mesh_is_ready_at_once,
        minimal_sotw,
        Minimal,
        Sotw,
        Postgres
    );
    conformance_case!(
        proxy_on_an_empty_mesh_is_ready_at_once,
        minimal_delta,
        Minimal,
        Delta,
        Postgres
    );
}

// === a reconnect after the mesh changed ===

/// What a request loop saw, in order: the name of the upstream that answered, or what went
/// wrong.
#[derive(Default)]
struct Seen {
    replies: std::sync::Mutex<Vec<String>>,
    stop: std::sync::atomic::AtomicBool,
}

impl Seen {
    fn count(&self, what: &str) -> usize {
        self.replies
            .lock()
            .unwrap()
            .iter()
            .filter(|r| *r == what)
            .count()
    }

    /// Everything that was not a 200 from one of `upstreams`.
    fn failures(&self, upstreams: &[&str]) -> Vec<String> {
        let replies = self.replies.lock().unwrap();
        replies
            .iter()
            .enumerate()
            .filter(|(_, r)| !upstreams.contains(&r.as_str()))
            .map(|(i, r)| format!("request {i}: {r}"))
            .collect()
    }
}

/// Sends requests back to back through `port` (at most 4000, for at most 40 s) until told to
/// stop. Refused connections before the first answer are not recorded: the listener is not
/// there yet.
fn request_loop(port: u16, seen: std::sync::Arc<Seen>) -> tokio::task::JoinHandle<()> {
    use std::sync::atomic::Ordering::SeqCst;
    tokio::spawn(async move {
        let client = local_client();
        let until = Instant::now() + Duration::from_secs(40);
        let mut answered = false;
        for i in 0..4000 {
            if seen.stop.load(SeqCst) || Instant::now() > until {
                return;
            }
            let what = match net::send(&client, port, &format!("/reconnect/{i}"), &[]).await {
                Ok(reply) => match reply.upstream.as_deref() {
                    Some(up) if reply.status == 200 => up.to_string(),
                    _ => format!("{} {}", reply.status, reply.body),
                },
                Err(_) if !answered => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                Err(e) => e,
            };
            answered = true;
            seen.replies.lock().unwrap().push(what);
        }
    })
}

/// Waits (within [`WAIT`]) until the loop has seen `n` replies from `upstream`.
async fn wait_seen(proxy: &Proxy, seen: &Seen, upstream: &str, n: usize) {
    let deadline = Instant::now() + WAIT;
    while seen.count(upstream) < n {
        if Instant::now() > deadline {
            let failures = seen.failures(&["a", "b"]);
            proxy.fail(&format!(
                "{n} replies from {upstream} never came ({} so far; failures: {:?})",
                seen.count(upstream),
                &failures[..failures.len().min(5)]
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Fails the test, with the proxy's warming and 5xx stats, if the loop saw anything but
/// replies from `upstreams`.
async fn fail_on_failures(proxy: &Proxy, seen: &Seen, upstreams: &[&str], when: &str) {
    let failures = seen.failures(upstreams);
    if !failures.is_empty() {
        let stats = proxy
            .stats_matching(&["no_cluster", "warming", "cds.", "rq_5xx"])
            .await;
        proxy.fail(&format!(
            "{} requests failed {when}; first: {:#?}\nproxy stats:\n{stats}",
            failures.len(),
            &failures[..failures.len().min(5)]
        ));
    }
}

/// The proxy's replica B is stopped while the route moves, through A, to a service the
/// proxy has never seen; when B is back the proxy reconnects and gets the changed mesh in its
/// first responses. The new cluster must be warm before the route that names it reaches the
/// proxy: requests running throughout see a, then b, and not one failure (Envoy answers 503
/// for a route to a cluster still warming).
async fn a_reconnect_after_the_mesh_changed_drops_nothing(
    plane: DataPlane,
    variant: Variant,
    _postgres: Backend,
) {
    let Some((a, mut b)) = replicas(plane).await else {
        return;
    };
    let node_id = node_id(plane, "reconnect", variant);
    let listener_port = free_port();
    let (up_a, up_b) = (Upstream::start("a"), Upstream::start("b"));
    a.service("svc-a", up_a.port()).await;
    a.route_to("svc-a").await;
    ingress(&a, listener_port, &node_id).await;
    wait_known(&b, "B", database_revision(&a).await).await;
    let bootstrap = b.bootstrap(&node_id, variant, free_port()).await;
    let proxy = Proxy::start(plane, &bootstrap);
    wait_reply_from(&proxy, listener_port, "a").await;

    let seen = std::sync::Arc::new(Seen::default());
    let looping = request_loop(listener_port, seen.clone());
    wait_seen(&proxy, &seen, "a", 20).await;

    b.stop();
    a.service("svc-b", up_b.port()).await;
    a.route_to("svc-b").await;
    b.start_again();
    wait_seen(&proxy, &seen, "b", 50).await;
    seen.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    looping.await.expect("the request loop panicked");

    fail_on_failures(&proxy, &seen, &["a", "b"], "across the reconnect").await;
    let replies = seen.replies.lock().unwrap().clone();
    let first_b = replies
        .iter()
        .position(|r| r == "b")
        .expect("replies from b");
    assert!(
        replies[first_b..].iter().all(|r| r == "b"),
        "once b answers, a never does again"
    );
}

mod a_reconnect_after_the_mesh_changed_drops_nothing {
    use super::conformance_case;

    conformance_case!(
        a_reconnect_after_the_mesh_changed_drops_nothing,
        envoy_sotw,
        Envoy,
        Sotw,
        Postgres
    );
    conformance_case!(
        a_reconnect_after_the_mesh_changed_drops_nothing,
        envoy_delta,
        Envoy,
        Delta,
        Postgres
    );
    conformance_case!(
        a_reconnect_after_the_mesh_changed_drops_nothing,
        minimal_sotw,
        Minimal,
        Sotw,
        Postgres
    );
    conformance_case!(
        a_reconnect_after_the_mesh_changed_drops_nothing,
        minimal_delta,
        Minimal,
        Delta,
        Postgres
    );
}

/// A proxy with no cluster at all (an empty mesh) loses its replica; meanwhile a service, its
/// route and a listener are written through A. When B is back, the reconnected proxy's first
/// EDS-typed cluster must warm before the listener that routes to it arrives: from the first
/// answer on the new listener, every request reaches the upstream.
async fn a_first_cluster_after_a_reconnect_is_warm_before_its_listener(
    plane: DataPlane,
    variant: Variant,
    _postgres: Backend,
) {
    let Some((a, mut b)) = replicas(plane).await else {
        return;
    };
    let node_id = node_id(plane, "first-cluster", variant);
    let listener_port = free_port();
    let up_a = Upstream::start("a");
    let bootstrap = b.bootstrap(&node_id, variant, free_port()).await;
    let proxy = Proxy::start(plane, &bootstrap);
    proxy.wait_ready(WAIT).await;
    wait_proxy(&b, &proxy, &node_id, "CDS and LDS SYNCED on B", |p| {
        [type_url::CLUSTER, type_url::LISTENER]
            .iter()
            .all(|t| p["types"][*t]["status"] == "SYNCED")
    })
    .await;

    b.stop();
    a.service("svc-a", up_a.port()).await;
    a.route_to("svc-a").await;
    ingress(&a, listener_port, &node_id).await;
    let seen = std::sync::Arc::new(Seen::default());
    let looping = request_loop(listener_port, seen.clone());
    b.start_again();
    wait_seen(&proxy, &seen, "a", 50).await;
    seen.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    looping.await.expect("the request loop panicked");

    fail_on_failures(&proxy, &seen, &["a"], "on the new listener").await;
}

mod a_first_cluster_after_a_reconnect_is_warm_before_its_listener {
    use super::conformance_case;

    conformance_case!(
        a_first_cluster_after_a_reconnect_is_warm_before_its_listener,
        envoy_sotw,
        Envoy,
        Sotw,
        Postgres
    );
    conformance_case!(
        a_first_cluster_after_a_reconnect_is_warm_before_its_listener,
        envoy_delta,
        Envoy,
        Delta,
        Postgres
    );
    conformance_case!(
        a_first_cluster_after_a_reconnect_is_warm_before_its_listener,
        minimal_sotw,
        Minimal,
        Sotw,
        Postgres
    );
    conformance_case!(
        a_first_cluster_after_a_reconnect_is_warm_before_its_listener,
        minimal_delta,
        Minimal,
        Delta,
        Postgres
    );
}
