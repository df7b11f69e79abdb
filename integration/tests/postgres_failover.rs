//! Postgres failover: two xds-server replicas on a private Postgres cluster, one Envoy on each
//! (ADS Delta on A, SotW on B), and a steady writer on each replica. Postgres is restarted
//! (`pg_ctl restart -m fast`), then stopped for 30 s and started again. Throughout, both Envoys
//! keep serving through the last configuration; while Postgres is down `/readyz` is 503 on
//! both replicas and writes get 503 `store_unavailable`, each answered within seconds; once it
//! is back both replicas answer `/readyz` 200, LISTEN again (a change written through either
//! replica reaches both Envoys, with polling an hour apart), agree on the latest revision, and
//! every write that was acknowledged (2xx) is in the store.
//!
//! The cluster is this test's own (`postgres::Cluster`): the shared server of scripts/test.sh
//! is never stopped. Skipped without Envoy or the Postgres server binaries; fails under
//! `CI=true`. Takes about a minute, 30 s of it the outage.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use integration::{
    mesh::{ControlPlane, DataPlane, Variant},
    net::{self, POLL, free_port, local_client},
    postgres::{self, Cluster},
    proxy::Proxy,
    upstream::Upstream,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

// === constants ===

/// The outage the issue asks for.
const OUTAGE: Duration = Duration::from_secs(30);

/// The longest any awaited condition may take.
const WAIT: Duration = Duration::from_secs(30);

/// Longer than the test: a replica learns of the other's writes by NOTIFY (or the read that
/// follows a re-established LISTEN), never by polling.
const NO_POLL: &str = "1h";

/// How long an answer may take while the store is down: the pool's 3 s acquire timeout (the
/// readiness probe's 2 s) plus a loaded machine's slack. A server that hangs on a dead
/// database (sqlx's default is 30 s) fails this.
const FAIL_FAST: Duration = Duration::from_secs(6);

/// Pause between two writes of one writer, and between two requests through the proxies.
const PACE: Duration = Duration::from_millis(100);

/// How many writes each writer gets acknowledged before the restart and after the outage.
const LOAD: usize = 10;

/// What the replicas log once their LISTEN connection is back (store/postgres.rs).
const RELISTENED: &str = "LISTEN re-established";

// === the test ===

#[tokio::test(flavor = "multi_thread")]
async fn replicas_and_envoy_ride_out_a_postgres_restart_and_outage() {
    if DataPlane::Envoy.binary().is_none() {
        return;
    }
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let test_start = Instant::now();
    let url = postgres::fresh_database(&cluster.url()).await;
    let mut a = ControlPlane::start_on(&url, NO_POLL);
    let mut b = ControlPlane::start_on(&url, NO_POLL);
    let http = local_client();

    // The mesh: route `main` to `before`; one listener per proxy.
    let before = Upstream::start("before");
    let after_a = Upstream::start("after-a");
    let after_b = Upstream::start("after-b");
    for up in [&before, &after_a, &after_b] {
        a.service(up.name(), up.port()).await;
    }
    a.route_to("before").await;
    let pid = std::process::id();
    let mut proxies = Vec::new();
    for (cp, side, variant) in [(&a, "a", Variant::Delta), (&b, "b", Variant::Sotw)] {
        let node_id = format!("failover-{side}-{pid}");
        let port = free_port();
        a.put(
            &format!("/api/v1/listeners/ingress-{side}"),
            json!({ "address": "127.0.0.1", "port": port, "protocol": "http",
                    "routes": ["main"], "selector": { "node_id": node_id } }),
        )
        .await;
        let bootstrap = cp.bootstrap(&node_id, variant, free_port()).await;
        proxies.push((Proxy::start(DataPlane::Envoy, &bootstrap), port));
    }
    for (proxy, port) in &proxies {
        wait_reply_from(proxy, *port, "before").await;
    }
    let ports: Vec<u16> = proxies.iter().map(|(_, port)| *port).collect();

    // Steady load: a writer on each replica, requests through both proxies.
    let stop_writes = Arc::new(AtomicBool::new(false));
    let stop_traffic = Arc::new(AtomicBool::new(false));
    let writers = [&a, &b].map(|cp| spawn_writer(cp.url(""), stop_writes.clone()));
    let mut traffic = spawn_traffic(ports.clone(), "before", stop_traffic.clone());
    wait_acked_after(&writers, Instant::now(), LOAD, "before the restart").await;

    // 1. A fast restart.
    let restart_start = Instant::now();
    cluster.restart_fast();
    let restarted = restart_start.elapsed();
    wait_ready(&http, &[&a, &b]).await;
    wait_acked_after(&writers, Instant::now(), 1, "after the restart").await;
    let restart_recovered = restart_start.elapsed();

    // 2. Down for 30 s. Envoy keeps serving (the traffic task); /readyz says 503, promptly.
    let relistened_before = [relistened(&mut a), relistened(&mut b)];
    cluster.stop_fast();
    let down_at = Instant::now();
    let mut probes = [0u32; 2];
    while down_at.elapsed() < OUTAGE {
        if traffic.is_finished() {
            (&mut traffic)
                .await
                .expect("traffic through the proxies during the outage");
        }
        for (i, cp) in [&a, &b].into_iter().enumerate() {
            let asked = Instant::now();
            let (status, body) = get(&http, cp, "/readyz").await;
            assert_eq!(
                (status, &body["error"]["code"]),
                (StatusCode::SERVICE_UNAVAILABLE, &json!("store_unavailable")),
                "replica {i} /readyz {:?} into the outage: {body}",
                down_at.elapsed()
            );
            assert!(
                asked.elapsed() < FAIL_FAST,
                "/readyz took {:?} with the store down",
                asked.elapsed()
            );
            probes[i] += 1;
        }
        tokio::time::sleep(POLL * 4).await;
    }
    assert!(probes.iter().all(|n| *n >= 3), "/readyz probes: {probes:?}");

    // 3. Back: ready, LISTENing, converged.
    cluster.start_again();
    let up_at = Instant::now();
    wait_ready(&http, &[&a, &b]).await;
    let ready_after = up_at.elapsed();
    for (cp, before_count, name) in [
        (&mut a, relistened_before[0], "A"),
        (&mut b, relistened_before[1], "B"),
    ] {
        wait_log(cp, name, RELISTENED, before_count + 1).await;
    }
    let relistened_after = up_at.elapsed();
    wait_acked_after(&writers, up_at, LOAD, "after the outage").await;

    // Traffic stops before the route moves on: until now every request must have come back
    // from `before`.
    stop_traffic.store(true, Ordering::Relaxed);
    let sent = traffic.await.expect("traffic through the proxies");
    let outage_window = down_at..up_at;
    let during_outage = sent.iter().filter(|at| outage_window.contains(at)).count();
    assert!(
        during_outage >= 20,
        "only {during_outage} requests went through the proxies during the outage"
    );

    // A change through A reaches the Envoy on B (B heard A's NOTIFY), and one through B the
    // Envoy on A.
    let written = Instant::now();
    a.route_to("after-a").await;
    for (proxy, port) in &proxies {
        wait_reply_from(proxy, *port, "after-a").await;
    }
    let propagated = written.elapsed();
    b.route_to("after-b").await;
    for (proxy, port) in &proxies {
        wait_reply_from(proxy, *port, "after-b").await;
    }

    stop_writes.store(true, Ordering::Relaxed);

    // The writers' record: 2xx or 503 store_unavailable, nothing else; only 503 while down.
    let mut acked = Vec::new();
    let mut refused_in_outage = [0u32; 2];
    for (i, writer) in writers.into_iter().enumerate() {
        for w in writer.finish().await {
            match &w.outcome {
                Outcome::Acked(version) => {
                    assert!(
                        !(outage_window.contains(&w.started) && outage_window.contains(&w.ended)),
                        "write {} acknowledged while Postgres was down",
                        w.name
                    );
                    acked.push((w.name, *version));
                }
                Outcome::Refused(status, code) => {
                    assert_eq!(
                        (*status, code.as_str()),
                        (503, "store_unavailable"),
                        "write {}",
                        w.name
                    );
                    if outage_window.contains(&w.started) {
                        assert!(
                            w.ended - w.started < FAIL_FAST,
                            "write {} took {:?} to be refused",
                            w.name,
                            w.ended - w.started
                        );
                        refused_in_outage[i] += 1;
                    }
                }
                Outcome::Failed(e) => panic!("write {} got no HTTP answer: {e}", w.name),
            }
        }
    }
    assert!(
        refused_in_outage.iter().all(|n| *n >= 3),
        "writes refused during the outage per replica: {refused_in_outage:?}"
    );

    // Both replicas at the database's revision; every acknowledged write stored.
    let revision = wait_converged(&http, &a, &b).await;
    for (name, version) in &acked {
        let (status, body) = get(&http, &b, &format!("/api/v1/services/{name}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged write {name} lost: {body}"
        );
        assert_eq!(body["version"], json!(version), "{name}: {body}");
    }
    for (proxy, _) in &proxies {
        assert!(proxy.is_running());
    }

    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "postgres_failover: restart took {restarted:?}, writes acknowledged again \
             {restart_recovered:?} after it began; outage {OUTAGE:?}: both /readyz 200 \
             {ready_after:?} after Postgres was back, both LISTENing {relistened_after:?}; a \
             change through A on both Envoys {propagated:?} after it was written; {} writes acknowledged, {} \
             refused during the outage, {during_outage} requests served during it, final \
             revision {revision}; test took {:?}\n",
            acked.len(),
            refused_in_outage.iter().sum::<u32>(),
            test_start.elapsed()
        )
        .as_bytes(),
    );
}

// === load ===

/// One write a writer sent, and what came of it.
struct WriteRecord {
    name: String,
    started: Instant,
    ended: Instant,
    outcome: Outcome,
}

enum Outcome {
    /// 2xx, with the version the server returned.
    Acked(i64),
    /// Any other status and the error code.
    Refused(u16, String),
    /// No HTTP answer at all.
    Failed(String),
}

/// A writer's task and what its writes got so far.
struct Writer {
    records: Arc<Mutex<Vec<WriteRecord>>>,
    task: JoinHandle<()>,
}

impl Writer {
    /// Waits for the task to stop (after `stop` was set); returns every record.
    async fn finish(self) -> Vec<WriteRecord> {
        self.task.await.expect("writer task");
        std::mem::take(&mut *self.records.lock().expect("records"))
    }
}

/// PUTs a new service every [`PACE`] through the admin API at `admin` until `stop`.
fn spawn_writer(admin: String, stop: Arc<AtomicBool>) -> Writer {
    let records = Arc::new(Mutex::new(Vec::new()));
    let shared = records.clone();
    let task = tokio::spawn(async move {
        let http = local_client();
        let tag = admin.rsplit(':').next().unwrap_or("x").to_string();
        for i in 0.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let name = format!("w{tag}-{i}");
            let started = Instant::now();
            let sent = http
                .put(format!("{admin}/api/v1/services/{name}"))
                .json(&json!({ "protocol": "http", "connect_timeout": "1s" }))
                .send()
                .await;
            let outcome = match sent {
                Err(e) => Outcome::Failed(e.to_string()),
                Ok(resp) => {
                    let status = resp.status();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    if status.is_success() {
                        Outcome::Acked(body["version"].as_i64().unwrap_or(-1))
                    } else {
                        let code = body["error"]["code"].as_str().unwrap_or("?").to_string();
                        Outcome::Refused(status.as_u16(), code)
                    }
                }
            };
            shared.lock().expect("records").push(WriteRecord {
                name,
                started,
                ended: Instant::now(),
                outcome,
            });
            tokio::time::sleep(PACE).await;
        }
    });
    Writer { records, task }
}

/// Sends a request through each of `ports` every [`PACE`] until `stop`, requiring each to come
/// back from `upstream`; returns when each pair was sent.
fn spawn_traffic(
    ports: Vec<u16>,
    upstream: &'static str,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<Instant>> {
    tokio::spawn(async move {
        let client = local_client();
        let mut sent = Vec::new();
        for i in 0.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let at = Instant::now();
            for port in &ports {
                let reply = net::send(&client, *port, &format!("/failover/{i}"), &[]).await;
                match reply {
                    Ok(r) if r.from(upstream) => {}
                    other => panic!(
                        "request {i} through 127.0.0.1:{port} did not come back from {upstream}: {other:?}"
                    ),
                }
            }
            sent.push(at);
            tokio::time::sleep(PACE).await;
        }
        sent
    })
}

/// Waits until every writer has had `count` writes acknowledged that it sent after `since`.
async fn wait_acked_after(writers: &[Writer], since: Instant, count: usize, what: &str) {
    let deadline = Instant::now() + WAIT;
    for (i, writer) in writers.iter().enumerate() {
        loop {
            let acked = writer
                .records
                .lock()
                .expect("records")
                .iter()
                .filter(|w| w.started >= since && matches!(w.outcome, Outcome::Acked(_)))
                .count();
            if acked >= count {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "writer {i}: {acked} writes acknowledged {what}, not {count}, within {WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

// === helpers ===

/// `GET path` on `cp`: status and JSON body; panics when no answer comes back.
async fn get(http: &Client, cp: &ControlPlane, path: &str) -> (StatusCode, Value) {
    let resp = http
        .get(cp.url(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits until `/readyz` answers 200 on every replica.
async fn wait_ready(http: &Client, replicas: &[&ControlPlane]) {
    let deadline = Instant::now() + WAIT;
    for cp in replicas {
        loop {
            let (status, body) = get(http, cp, "/readyz").await;
            if status == StatusCode::OK {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz still {status} {WAIT:?} after Postgres came back: {body}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

/// How many times `cp` has logged that its LISTEN connection is back.
fn relistened(cp: &mut ControlPlane) -> usize {
    cp.server()
        .logs()
        .iter()
        .filter(|l| l.contains(RELISTENED))
        .count()
}

/// Waits until `cp` has logged `needle` `count` times.
async fn wait_log(cp: &mut ControlPlane, name: &str, needle: &str, count: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = cp.server().logs();
        if lines.iter().filter(|l| l.contains(needle)).count() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica {name} never logged '{needle}' (x{count}); last lines:\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The revision a replica knows of: the `xds_store_revision` gauge of its `/metrics` (its
/// watch, moved by its own writes and by NOTIFY).
async fn known_revision(cp: &ControlPlane) -> i64 {
    cp.metric("xds_store_revision").await as i64
}

/// Waits until both replicas know of the database's revision; returns it.
async fn wait_converged(http: &Client, a: &ControlPlane, b: &ControlPlane) -> i64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, ready) = get(http, a, "/readyz").await;
        assert_eq!(status, StatusCode::OK, "/readyz: {ready}");
        let database = ready["revision"]
            .as_i64()
            .expect("/readyz names the revision");
        let known = (known_revision(a).await, known_revision(b).await);
        if known == (database, database) {
            return database;
        }
        assert!(
            Instant::now() < deadline,
            "replicas know revisions {known:?}, the database is at {database}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Sends requests through the proxy's listener until one comes back from `upstream`.
async fn wait_reply_from(proxy: &Proxy, port: u16, upstream: &str) {
    let client = local_client();
    let deadline = Instant::now() + WAIT;
    let mut last = String::from("nothing sent");
    for i in 0.. {
        match net::send(&client, port, &format!("/wait/{i}"), &[]).await {
            Ok(reply) if reply.from(upstream) => return,
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
