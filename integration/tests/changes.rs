//! Changes made over REST reach a running proxy without restarting it (both data planes, ADS
//! SotW and Delta; the route change also on Postgres): an added endpoint gets traffic and a
//! removed one stops getting it; a route's destination changes under a steady stream of
//! requests with none failing.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use integration::{
    conformance, conformance_with_postgres,
    mesh::{Backend, DataPlane, Stage, Variant},
    net::{self, POLL, local_client},
    proxy::Proxy,
    upstream::Upstream,
};
use serde_json::json;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(30);

conformance!(endpoints_follow_rest);
conformance_with_postgres!(route_change_under_load_drops_nothing);

/// (c) Endpoints [a] → [a, b]: b starts getting requests. → [b]: a stops getting them. All in
/// the same proxy process.
async fn endpoints_follow_rest(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    stage.service("web", &[(&a, json!({}))]).await;
    stage.route_to("main", "web").await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
    let pid = stage.proxy().pid();
    stage
        .wait_reply("a reply from a", "/", &[], WAIT, |r| r.from("a"))
        .await;
    assert_eq!(b.hits(), 0);

    stage
        .endpoints("web", &[(&a, json!({})), (&b, json!({}))])
        .await;
    stage
        .wait_reply("a reply from the added endpoint b", "/", &[], WAIT, |r| {
            r.from("b")
        })
        .await;
    // Round robin over both: a still gets its share.
    let mut seen_a = false;
    for _ in 0..20 {
        let reply = stage.send("/both", &[]).await.unwrap();
        assert!(reply.from("a") || reply.from("b"), "{reply:?}");
        seen_a |= reply.from("a");
    }
    assert!(seen_a, "a keeps getting requests while both are endpoints");

    stage.endpoints("web", &[(&b, json!({}))]).await;
    // Removed once 30 replies in a row came from b.
    let deadline = Instant::now() + WAIT;
    let mut in_a_row = 0;
    while in_a_row < 30 {
        let reply = stage.send("/only-b", &[]).await.unwrap();
        assert_eq!(
            reply.status, 200,
            "no request fails while a is removed: {reply:?}"
        );
        in_a_row = if reply.from("b") { in_a_row + 1 } else { 0 };
        if Instant::now() > deadline {
            stage
                .proxy()
                .fail("a kept getting requests after its removal");
        }
    }
    let a_hits = a.hits();
    for _ in 0..50 {
        let reply = stage.send("/only-b", &[]).await.unwrap();
        assert!(reply.from("b"), "{reply:?}");
    }
    assert_eq!(a.hits(), a_hits, "the removed endpoint gets nothing");

    let proxy = stage.proxy();
    assert!(proxy.is_running(), "the proxy was not restarted");
    assert_eq!(proxy.pid(), pid);
    assert_eq!(
        proxy.stat("cluster.web.membership_total").await,
        Some(1),
        "the proxy's cluster holds b alone"
    );
}

/// What the request loop saw.
#[derive(Default)]
struct Tally {
    from_a: AtomicU64,
    from_b: AtomicU64,
    failed: AtomicU64,
    failures: Mutex<Vec<String>>,
}

/// (d) Requests run back to back (at most 2000, for at most 20 s) while the route's
/// destination moves from a to b: b starts answering, and not one request fails.
async fn route_change_under_load_drops_nothing(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    stage.service("svc-a", &[(&a, json!({}))]).await;
    stage.service("svc-b", &[(&b, json!({}))]).await;
    stage.route_to("main", "svc-a").await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
    stage
        .wait_reply("a reply from a", "/", &[], WAIT, |r| r.from("a"))
        .await;

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let port = stage.listener_port;
    let looping = tokio::spawn({
        let (tally, stop) = (tally.clone(), stop.clone());
        async move {
            let client = local_client();
            let until = Instant::now() + Duration::from_secs(20);
            let mut sent = 0u32;
            while sent < 2000 && Instant::now() < until && !stop.load(Ordering::SeqCst) {
                sent += 1;
                match net::send(&client, port, &format!("/load/{sent}"), &[]).await {
                    Ok(r) if r.from("a") => tally.from_a.fetch_add(1, Ordering::SeqCst),
                    Ok(r) if r.from("b") => tally.from_b.fetch_add(1, Ordering::SeqCst),
                    outcome => {
                        let mut failures = tally.failures.lock().unwrap();
                        failures.push(format!("request {sent}: {outcome:?}"));
                        tally.failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
            sent
        }
    });
    let from_a = || tally.from_a.load(Ordering::SeqCst) >= 20;
    wait_until("20 replies from a", &looping, stage.proxy(), from_a).await;

    stage.route_to("main", "svc-b").await;
    let from_b = || tally.from_b.load(Ordering::SeqCst) >= 50;
    wait_until("50 replies from b", &looping, stage.proxy(), from_b).await;
    stop.store(true, Ordering::SeqCst);
    let sent = looping.await.expect("the request loop panicked");

    let (from_a, from_b) = (
        tally.from_a.load(Ordering::SeqCst),
        tally.from_b.load(Ordering::SeqCst),
    );
    let failures = tally.failures.lock().unwrap().clone();
    if !failures.is_empty() {
        let stats = stage
            .proxy()
            .stats_matching(&[
                "no_cluster",
                "no_route",
                "warming",
                "cds.",
                "rds.",
                "rq_5xx",
            ])
            .await;
        panic!(
            "{} of {sent} requests failed during the route change (a: {from_a}, b: {from_b}); \
             first: {:#?}\nproxy stats:\n{stats}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
    }
    assert_eq!(tally.failed.load(Ordering::SeqCst), 0);
    assert_eq!(from_a + from_b, u64::from(sent));
    let after = stage.send("/after", &[]).await.unwrap();
    assert!(after.from("b"), "the new destination stays: {after:?}");
}

/// Polls `done` for up to 20 s, failing early if the request loop has ended.
async fn wait_until(what: &str, looping: &JoinHandle<u32>, proxy: &Proxy, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        if looping.is_finished() {
            proxy.fail(&format!("the request loop ended before {what}"));
        }
        if Instant::now() > deadline {
            proxy.fail(&format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(POLL).await;
    }
}
