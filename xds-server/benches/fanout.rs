//! Fan-out benchmark: how long one endpoint change takes to reach N connected ADS streams.
//!
//! Starts the real xDS server in-process on 127.0.0.1 with an embedded store, connects N
//! streams that behave like Envoy (wildcard CDS/LDS, EDS/RDS by name, ACK every response),
//! then writes endpoint changes to the store and measures, per change, the time from the write
//! until the last stream received its new `ClusterLoadAssignment`. Also prints how many
//! translations ran: streams with equal inputs share one.
//!
//!     cargo bench -p xds-server --bench fanout -- [streams=1000] [changes=20] [sotw|delta]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::sync::mpsc;
use tonic::transport::Channel;
use xds_core::{
    TypeUrl,
    testing::{AdsClient, Variant, node},
};
use xds_server::{
    model::{Kind, Reference},
    store::{SqliteStore, Store, Write},
    xds::embedded::Embedded,
};

const CHANNELS: usize = 20;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let streams: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let changes: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let variant = match args.get(2).map(String::as_str) {
        Some("sotw") => Variant::Sotw,
        _ => Variant::Delta,
    };

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
    let (addr, cache) = (server.addr, server.cache.clone());

    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    // Each stream reports every assignment it receives: (stream, when).
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    for i in 0..streams {
        let channel = channels[i % CHANNELS].clone();
        tokio::spawn(stream(channel, variant, i, seen_tx.clone()));
    }
    // Wait until every stream has its first assignment.
    let mut ready = vec![false; streams];
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while count < streams {
        let (i, _) = tokio::time::timeout_at(deadline.into(), seen_rx.recv())
            .await
            .expect("streams connect")
            .unwrap();
        if !ready[i] {
            ready[i] = true;
            count += 1;
        }
    }
    let translations_before = cache.translations();
    let mut latencies = Vec::new();
    for change in 0..changes {
        // Space the changes beyond the coalescing window, so each one is an isolated change
        // (a burst would be folded into one rebuild by design).
        tokio::time::sleep(Duration::from_millis(100)).await;
        while seen_rx.try_recv().is_ok() {}
        let start = Instant::now();
        store.put(endpoints(9000 + change as u32)).await.unwrap();
        let mut got = vec![false; streams];
        let mut n = 0;
        let mut last = start;
        while n < streams {
            let (i, at) = tokio::time::timeout(Duration::from_secs(30), seen_rx.recv())
                .await
                .expect("fan-out")
                .unwrap();
            if !got[i] {
                got[i] = true;
                n += 1;
                last = last.max(at);
            }
        }
        latencies.push(last - start);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "fanout: {streams} {} ADS streams, {changes} endpoint changes: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms; translations per change {:.2}",
        match variant {
            Variant::Sotw => "sotw",
            Variant::Delta => "delta",
        },
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.9).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        (cache.translations() - translations_before) as f64 / changes as f64,
    );
}

async fn seed(store: &dyn Store) {
    let put = |kind, name: &str, spec, references| Write {
        kind,
        name: name.into(),
        spec,
        references,
        expected_version: None,
    };
    store
        .put(put(
            Kind::Service,
            "web",
            json!({ "protocol": "http" }),
            vec![],
        ))
        .await
        .unwrap();
    store.put(endpoints(8999)).await.unwrap();
    let route_ref = vec![Reference::to(
        Kind::Service,
        "web",
        "rules[0].destinations[0].service",
    )];
    store.put(put(Kind::Route, "web", json!({ "hosts": ["*"], "rules": [{ "destinations": [{ "service": "web", "weight": 1 }] }] }), route_ref)).await.unwrap();
    let listener_ref = vec![Reference::to(Kind::Route, "web", "routes[0]")];
    store.put(put(Kind::Listener, "ingress", json!({ "address": "0.0.0.0", "port": 10000, "protocol": "http", "routes": ["web"], "selector": {} }), listener_ref)).await.unwrap();
}

fn endpoints(port: u32) -> Write {
    Write {
        kind: Kind::Endpoints,
        name: "web".into(),
        spec: json!({ "endpoints": [{ "address": "127.0.0.1", "port": port, "weight": 1, "health": "healthy" }] }),
        references: vec![Reference {
            kind: Kind::Service,
            name: "web".into(),
            field: "service".into(),
            owned: true,
        }],
        expected_version: None,
    }
}

/// Behaves like Envoy on ADS: wildcard CDS, EDS for each cluster, ACK everything; reports
/// every non-empty assignment response.
async fn stream(
    channel: Channel,
    variant: Variant,
    i: usize,
    seen: mpsc::UnboundedSender<(usize, Instant)>,
) {
    let opened = AdsClient::builder(variant, node(&format!("bench-{i}"), "bench"))
        .wildcard(TypeUrl::Cluster)
        .follow_references()
        .timeout(Duration::from_secs(600))
        .open(channel)
        .await;
    let mut proxy = opened.expect("the xDS server accepts the stream");
    while let Ok(r) = proxy.next().await {
        if r.type_url == TypeUrl::Endpoint && !r.resources.is_empty() {
            let _ = seen.send((i, Instant::now()));
        }
    }
}
