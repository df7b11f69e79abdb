//! Stream churn against the in-process xDS server (tonic on 127.0.0.1, embedded SQLite store):
//! rounds of 50 delta and 50 SotW ADS streams, each node selected by its own listener, come
//! and go; after each round the status registry is empty and no proxy group is left in the
//! cache, each round translates once per distinct group, and a mesh change between rounds
//! reaches the next round. Streams whose selections are equal share one translation.

mod common;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use envoy_types::pb::envoy::config::{
    core::v3::{address, socket_address::PortSpecifier},
    listener::v3::Listener,
};
use futures::future::join_all;
use prost::Message;
use serde_json::json;
use tempfile::TempDir;
use tonic::transport::Channel;
use xds_core::{
    TypeUrl,
    testing::{self, AdsClient},
};
use xds_server::{
    model::{Kind, Reference},
    status::{Registry, Variant},
    store::{Store, Write},
    xds::{cache::Cache, embedded::Embedded},
};

// === helpers ===

/// Listeners selected by one node id each: that many distinct proxy groups.
const GROUPS: usize = 50;
const ROUNDS: usize = 5;
/// Connections the streams of one round are spread over (HTTP/2 multiplexes the rest).
const CHANNELS: usize = 10;
/// The most any one wait in these tests may take.
const WAIT: Duration = Duration::from_secs(30);
/// Pause between two polls of the registry and the cache.
const POLL: Duration = Duration::from_millis(10);

/// The port of the listener every node gets, in `round`: moved between rounds.
fn shared_port(round: usize) -> u32 {
    19000 + round as u32
}

/// The port of the listener only node `n{i}` gets.
fn own_port(i: usize) -> u32 {
    20000 + i as u32
}

/// The xDS server in-process, with what the tests look into.
struct Server {
    store: Arc<dyn Store>,
    cache: Arc<Cache>,
    registry: Registry,
    addr: std::net::SocketAddr,
    _embedded: Embedded,
    _dir: TempDir,
}

impl Server {
    /// Seeds the mesh (a service, a route, listener `l{i}` for node `n{i}` and the listener
    /// `shared` for every node), then serves xDS on 127.0.0.1.
    async fn start() -> Server {
        let (store, dir) = common::sqlite().await;
        seed(&*store).await;
        let embedded = Embedded::start(store.clone(), Duration::from_millis(50))
            .await
            .unwrap();
        Server {
            store,
            cache: embedded.cache.clone(),
            registry: embedded.registry.clone(),
            addr: embedded.addr,
            _embedded: embedded,
            _dir: dir,
        }
    }

    /// Waits until the cache's mesh is at `revision` or later.
    async fn wait_mesh(&self, revision: i64) {
        let mut mesh = self.cache.mesh();
        let wait = mesh.wait_for(|p| p.mesh.revision >= revision);
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("revision {revision} never reached the cache"))
            .expect("the mesh watch is alive");
    }

    /// `CHANNELS` fresh connections to the server.
    async fn channels(&self) -> Vec<Channel> {
        let mut channels = Vec::new();
        for _ in 0..CHANNELS {
            let endpoint = Channel::from_shared(format!("http://{}", self.addr)).unwrap();
            let channel = tokio::time::timeout(WAIT, endpoint.connect())
                .await
                .expect("connect within the deadline")
                .expect("connect to the xDS server");
            channels.push(channel);
        }
        channels
    }

    /// Polls until no stream is registered and no group is alive: everything the streams
    /// held has been freed.
    async fn wait_drained(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let (streams, groups) = (self.registry.list().len(), self.cache.groups());
            if streams == 0 && groups == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {streams} streams still registered and {groups} groups alive {WAIT:?} after every client went away"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

fn write(kind: Kind, name: &str, spec: serde_json::Value, references: Vec<Reference>) -> Write {
    Write {
        kind,
        name: name.into(),
        spec,
        references,
        expected_version: None,
    }
}

/// An HTTP listener serving the route `web` on `port` for the nodes `selector` picks.
fn listener(name: &str, port: u32, selector: serde_json::Value) -> Write {
    write(
        Kind::Listener,
        name,
        json!({ "address": "127.0.0.1", "port": port, "protocol": "http",
                "routes": ["web"], "selector": selector }),
        vec![Reference::to(Kind::Route, "web", "routes[0]")],
    )
}

async fn seed(store: &dyn Store) {
    store
        .put(write(
            Kind::Service,
            "web",
            json!({ "protocol": "http" }),
            vec![],
        ))
        .await
        .unwrap();
    let owner = Reference {
        owned: true,
        ..Reference::to(Kind::Service, "web", "service")
    };
    let endpoints = json!({ "endpoints": [{ "address": "127.0.0.1", "port": 8080 }] });
    store
        .put(write(Kind::Endpoints, "web", endpoints, vec![owner]))
        .await
        .unwrap();
    let route = json!({ "hosts": ["*"], "rules": [{ "destinations": [{ "service": "web" }] }] });
    let to_web = Reference::to(Kind::Service, "web", "rules[0].destinations[0].service");
    store
        .put(write(Kind::Route, "web", route, vec![to_web]))
        .await
        .unwrap();
    for i in 0..GROUPS {
        let selector = json!({ "node_id": format!("n{i}") });
        store
            .put(listener(&format!("l{i}"), own_port(i), selector))
            .await
            .unwrap();
    }
    store
        .put(listener("shared", shared_port(0), json!({})))
        .await
        .unwrap();
}

/// Opens an ADS stream of `variant` for node `id` asking for every listener (wildcard LDS);
/// returns it with the listeners of its first response, by name, with their ports. Dropping
/// the client closes the stream, as a proxy going away does.
async fn open(
    channel: Channel,
    variant: Variant,
    id: String,
) -> (AdsClient, BTreeMap<String, u32>) {
    let variant = match variant {
        Variant::Delta => testing::Variant::Delta,
        Variant::Sotw => testing::Variant::Sotw,
    };
    let mut proxy = AdsClient::builder(variant, testing::node(&id, "churn"))
        .wildcard(TypeUrl::Listener)
        .timeout(WAIT)
        .open(channel)
        .await
        .unwrap_or_else(|e| panic!("{id}: {variant:?} stream refused: {e}"));
    let first = proxy
        .next()
        .await
        .unwrap_or_else(|e| panic!("{id}: {variant:?} stream gave no first response: {e}"));
    assert_eq!(first.type_url, TypeUrl::Listener, "{id}");
    let listeners = first
        .resources
        .iter()
        .map(|(name, any)| {
            let l = Listener::decode(any.value.as_slice()).expect("a Listener");
            let port = match l.address.and_then(|a| a.address) {
                Some(address::Address::SocketAddress(s)) => match s.port_specifier {
                    Some(PortSpecifier::PortValue(p)) => p,
                    other => panic!("{id}: listener {name} has port {other:?}"),
                },
                other => panic!("{id}: listener {name} has address {other:?}"),
            };
            (name.clone(), port)
        })
        .collect();
    (proxy, listeners)
}

/// Opens one stream per `(variant, node id)`, all at once, spread over `channels`; each has
/// had its first LDS response when this returns (within [`WAIT`]).
async fn open_all(
    channels: &[Channel],
    streams: Vec<(Variant, String)>,
) -> Vec<(String, AdsClient, BTreeMap<String, u32>)> {
    let opening = streams.into_iter().enumerate().map(|(k, (variant, id))| {
        let channel = channels[k % channels.len()].clone();
        async move {
            let (open, listeners) = open(channel, variant, id.clone()).await;
            (id, open, listeners)
        }
    });
    tokio::time::timeout(WAIT, join_all(opening))
        .await
        .expect("every stream got its first LDS response in time")
}

fn count(registry: &Registry, variant: Variant) -> usize {
    registry
        .list()
        .iter()
        .filter(|s| s.variant == variant)
        .count()
}

// === churn ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_come_and_go_without_leaving_anything_behind() {
    let server = Server::start().await;
    for round in 0..ROUNDS {
        if round > 0 {
            // A mesh change between rounds: the shared listener moves.
            let moved = listener("shared", shared_port(round), json!({}));
            let revision = server.store.put(moved).await.unwrap().record.revision;
            server.wait_mesh(revision).await;
        }
        let translations = server.cache.translations();
        let channels = server.channels().await;
        let streams = (0..GROUPS)
            .flat_map(|i| {
                [
                    (Variant::Delta, format!("n{i}")),
                    (Variant::Sotw, format!("n{i}")),
                ]
            })
            .collect();
        let open = open_all(&channels, streams).await;

        for (id, _, listeners) in &open {
            let i: usize = id[1..].parse().unwrap();
            let expected = BTreeMap::from([
                (format!("l{i}"), own_port(i)),
                ("shared".to_string(), shared_port(round)),
            ]);
            assert_eq!(
                listeners, &expected,
                "round {round}: {id} gets its own listener and the shared one, as of now"
            );
        }
        assert_eq!(count(&server.registry, Variant::Delta), GROUPS);
        assert_eq!(count(&server.registry, Variant::Sotw), GROUPS);
        assert_eq!(
            server.cache.groups(),
            GROUPS,
            "round {round}: one group per node id"
        );
        let grew = server.cache.translations() - translations;
        assert!(
            grew <= GROUPS as u64,
            "round {round}: {grew} translations for {GROUPS} distinct groups (each group's two streams share one)"
        );
        assert_eq!(
            grew, GROUPS as u64,
            "round {round}: every group was gone before the round, so each is translated once"
        );

        drop(open);
        drop(channels);
        server.wait_drained(&format!("round {round}")).await;
    }
}

// === sharing ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_with_equal_selections_share_one_translation() {
    const STREAMS: usize = 20;
    let server = Server::start().await;
    let before = server.cache.translations();
    let channels = server.channels().await;
    // Same node cluster, node ids no listener names: all select just `shared`.
    let streams = (0..STREAMS)
        .map(|i| {
            let variant = if i % 2 == 0 {
                Variant::Delta
            } else {
                Variant::Sotw
            };
            (variant, format!("plain-{i}"))
        })
        .collect();
    let open = open_all(&channels, streams).await;
    for (id, _, listeners) in &open {
        let expected = BTreeMap::from([("shared".to_string(), shared_port(0))]);
        assert_eq!(listeners, &expected, "{id}");
    }
    assert_eq!(server.registry.list().len(), STREAMS);
    assert_eq!(
        server.cache.translations() - before,
        1,
        "{STREAMS} streams with one selection: one translation"
    );
    assert_eq!(server.cache.groups(), 1);

    drop(open);
    drop(channels);
    server.wait_drained("the shared group").await;
}
