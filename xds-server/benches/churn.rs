//! Churn benchmark: does memory stay flat while proxies come and go and the mesh changes?
//!
//! Runs the real xDS server in-process over an embedded store with 100 listeners, each
//! selected by one node id (100 proxy groups). Each round connects 1000 delta ADS streams
//! (10 per group), waits until every one has its listeners, makes one mesh change, waits until
//! every stream got it, then drops them all and waits until the registry and the group cache
//! are empty. Prints the process's resident memory after each tenth round.
//!
//!     cargo bench -p xds-server --bench churn -- [rounds=30] [streams=1000]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::sync::mpsc;
use tonic::transport::Channel;
use xds_core::{
    TypeUrl,
    testing::{AdsClient, node},
};
use xds_server::{
    model::{Kind, Reference},
    store::{SqliteStore, Store, Write},
    xds::embedded::Embedded,
};

const GROUPS: usize = 100;
const CHANNELS: usize = 20;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(30);
    let streams: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("mesh.db"), Duration::from_secs(1))
            .await
            .unwrap(),
    );
    seed(&*store).await;
    let server = Embedded::start(store.clone(), Duration::from_millis(50))
        .await
        .unwrap();
    println!("churn: {rounds} rounds of {streams} delta ADS streams over {GROUPS} groups");
    let started = Instant::now();
    for round in 1..=rounds {
        let mut channels = Vec::new();
        for _ in 0..CHANNELS {
            let endpoint = Channel::from_shared(format!("http://{}", server.addr)).unwrap();
            channels.push(endpoint.connect().await.unwrap());
        }
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<usize>();
        let mut tasks = Vec::new();
        for i in 0..streams {
            let channel = channels[i % CHANNELS].clone();
            tasks.push(tokio::spawn(stream(channel, i, seen_tx.clone())));
        }
        wait_count(&mut seen_rx, streams, "every stream got its listeners").await;
        // One change per round (the shared listener moves): every stream hears of it.
        store
            .put(listener("shared", 30_000 + round as u32, json!({})))
            .await
            .unwrap();
        wait_count(&mut seen_rx, streams, "every stream got the change").await;
        for t in tasks {
            t.abort();
        }
        drop(channels);
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.registry.list().len() + server.cache.groups() > 0 {
            assert!(Instant::now() < deadline, "streams or groups left behind");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if round == 1 || round % 10 == 0 {
            println!(
                "  after round {round:>3}: resident {:>6.1} MiB, streams 0, groups 0, {:.1} s",
                rss_mib(),
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Resident set size of this process, from /proc.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

async fn wait_count(rx: &mut mpsc::UnboundedReceiver<usize>, n: usize, what: &str) {
    let mut seen = vec![false; n];
    let mut count = 0;
    while count < n {
        let i = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: only {count} of {n}"))
            .unwrap();
        if !seen[i] {
            seen[i] = true;
            count += 1;
        }
    }
}

/// A delta ADS stream that subscribes to LDS and reports each listener update.
async fn stream(channel: Channel, i: usize, seen: mpsc::UnboundedSender<usize>) {
    let opened = AdsClient::delta(node(&format!("n{}", i % GROUPS), ""))
        .wildcard(TypeUrl::Listener)
        .timeout(Duration::from_secs(600))
        .open(channel)
        .await;
    let Ok(mut proxy) = opened else {
        return;
    };
    while let Ok(r) = proxy.next().await {
        if !r.resources.is_empty() {
            let _ = seen.send(i);
        }
    }
}

fn listener(name: &str, port: u32, selector: serde_json::Value) -> Write {
    Write {
        kind: Kind::Listener,
        name: name.into(),
        spec: json!({ "address": "127.0.0.1", "port": port, "protocol": "http",
                      "routes": ["web"], "selector": selector }),
        references: vec![Reference::to(Kind::Route, "web", "routes[0]")],
        expected_version: None,
    }
}

async fn seed(store: &dyn Store) {
    let write = |kind, name: &str, spec, references| Write {
        kind,
        name: name.into(),
        spec,
        references,
        expected_version: None,
    };
    store
        .put(write(
            Kind::Service,
            "web",
            json!({ "protocol": "http" }),
            vec![],
        ))
        .await
        .unwrap();
    let route = json!({ "hosts": ["*"], "rules": [{ "destinations": [{ "service": "web" }] }] });
    let to_web = vec![Reference::to(
        Kind::Service,
        "web",
        "rules[0].destinations[0].service",
    )];
    store
        .put(write(Kind::Route, "web", route, to_web))
        .await
        .unwrap();
    for i in 0..GROUPS {
        let selector = json!({ "node_id": format!("n{i}") });
        store
            .put(listener(&format!("l{i}"), 20_000 + i as u32, selector))
            .await
            .unwrap();
    }
    store
        .put(listener("shared", 30_000, json!({})))
        .await
        .unwrap();
}
