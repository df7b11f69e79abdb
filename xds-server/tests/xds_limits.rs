//! Every limit of `xds::limits` against a hostile client on the real gRPC server (tonic on
//! 127.0.0.1, embedded SQLite store): the client is refused with the expected code and a
//! message naming the flag, the refusal is counted, and a well-behaved proxy on another
//! connection, connected at the same time, still gets its config.

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use envoy_types::pb::envoy::{
    config::core::v3::Node,
    service::discovery::v3::{
        DeltaDiscoveryRequest, DiscoveryRequest, DiscoveryResponse,
        aggregated_discovery_service_client::AggregatedDiscoveryServiceClient,
    },
};
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming, transport::Channel};
use xds_core::{
    TypeUrl,
    testing::{self, AdsClient},
    type_url,
};
use xds_server::{
    model::{Kind, Reference},
    store::{Store, Write},
    xds::{embedded::Embedded, limits::Limits},
};

// === helpers ===

/// The most any one wait in these tests may take.
const WAIT: Duration = Duration::from_secs(20);
/// Pause between two polls of a condition.
const POLL: Duration = Duration::from_millis(10);

struct Server {
    store: Arc<dyn Store>,
    embedded: Embedded,
    _dir: TempDir,
}

impl Server {
    /// Serves a mesh of one service, `web`, with `limits`.
    async fn start(limits: Limits) -> Server {
        let (store, dir) = common::sqlite().await;
        put_service(&*store, "web").await;
        let embedded = Embedded::start_with(store.clone(), Duration::from_millis(20), limits)
            .await
            .unwrap();
        Server {
            store,
            embedded,
            _dir: dir,
        }
    }

    /// A fresh connection (HTTP/2 streams on it share its limits).
    async fn channel(&self) -> Channel {
        let endpoint = Channel::from_shared(format!("http://{}", self.embedded.addr)).unwrap();
        tokio::time::timeout(WAIT, endpoint.connect())
            .await
            .expect("connect within the deadline")
            .expect("connect to the xDS server")
    }

    /// A well-behaved proxy on its own connection, holding the cluster `web`.
    async fn good_proxy(&self, id: &str) -> AdsClient {
        let mut proxy = AdsClient::sotw(testing::node(id, ""))
            .wildcard(TypeUrl::Cluster)
            .timeout(WAIT)
            .open(self.channel().await)
            .await
            .expect("a well-behaved proxy is served");
        proxy
            .wait_for("cluster web", |p| p.has(&TypeUrl::Cluster, "web"))
            .await
            .unwrap();
        proxy
    }

    /// Refusals counted for `limit`, as `/metrics` shows them.
    fn refusals(&self, limit: &str) -> u64 {
        let text = self.embedded.metrics.render(&self.embedded.registry, 0);
        let series = format!("xds_limit_refusals_total{{limit=\"{limit}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
            .parse()
            .unwrap()
    }

    /// Adds the service `name`, and checks `proxy` (connected all along) receives it.
    async fn still_served(&self, proxy: &mut AdsClient, name: &str) {
        put_service(&*self.store, name).await;
        proxy
            .wait_for(&format!("cluster {name}"), |p| {
                p.has(&TypeUrl::Cluster, name)
            })
            .await
            .unwrap();
    }
}

/// Adds the TCP service `name`, its endpoints and a listener for it (on a port of its own)
/// that every node gets: one more cluster for every proxy.
async fn put_service(store: &dyn Store, name: &str) {
    static PORT: AtomicU32 = AtomicU32::new(20_000);
    let write = |kind, spec, references| Write {
        kind,
        name: name.into(),
        spec,
        references,
        expected_version: None,
    };
    store
        .put(write(Kind::Service, json!({ "protocol": "tcp" }), vec![]))
        .await
        .unwrap();
    let owner = Reference {
        owned: true,
        ..Reference::to(Kind::Service, name, "service")
    };
    let endpoints = json!({ "endpoints": [{ "address": "127.0.0.1", "port": 8080 }] });
    store
        .put(write(Kind::Endpoints, endpoints, vec![owner]))
        .await
        .unwrap();
    let port = PORT.fetch_add(1, Ordering::Relaxed);
    let listener = json!({ "address": "127.0.0.1", "port": port, "protocol": "tcp",
                           "service": name, "selector": {} });
    let to_service = Reference::to(Kind::Service, name, "service");
    store
        .put(write(Kind::Listener, listener, vec![to_service]))
        .await
        .unwrap();
}

fn node(id: &str) -> Option<Node> {
    Some(testing::node(id, ""))
}

/// A raw SotW ADS stream on `channel` that sends `requests` (and nothing else, while the
/// returned sender lives).
async fn raw_sotw(
    channel: &Channel,
    requests: Vec<DiscoveryRequest>,
) -> (mpsc::Sender<DiscoveryRequest>, Streaming<DiscoveryResponse>) {
    let (tx, rx) = mpsc::channel(requests.len() + 1);
    for r in requests {
        tx.try_send(r).unwrap();
    }
    let mut client = AggregatedDiscoveryServiceClient::new(channel.clone());
    let call = client.stream_aggregated_resources(ReceiverStream::new(rx));
    let inbound = tokio::time::timeout(WAIT, call)
        .await
        .expect("answered")
        .expect("stream opened")
        .into_inner();
    (tx, inbound)
}

/// Reads `inbound` until the server ends it; the status it ended with.
async fn ending<T>(inbound: &mut Streaming<T>) -> Status {
    let read = async {
        loop {
            match inbound.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the stream ended without an error"),
                Err(status) => return status,
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the server ends the stream")
}

fn assert_refused(status: &Status, code: Code, flag: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(flag), "{}", status.message());
}

/// Polls `done` until it holds, for at most [`WAIT`].
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(POLL).await;
    }
}

// === streams ===

#[tokio::test]
async fn streams_over_the_total_cap_are_resource_exhausted() {
    let server = Server::start(Limits {
        max_streams: 2,
        ..Limits::default()
    })
    .await;
    let mut good = server.good_proxy("good").await;
    let other = server.good_proxy("other").await;

    // Refused at once, before any request is read.
    let refused = AdsClient::sotw(testing::node("third", ""))
        .wildcard(TypeUrl::Cluster)
        .timeout(WAIT)
        .open(server.channel().await)
        .await
        .unwrap_err();
    let status = refused.status().expect("a gRPC status");
    assert_refused(status, Code::ResourceExhausted, "--xds-max-streams");
    assert_eq!(server.refusals("streams"), 1);
    server.still_served(&mut good, "api").await;

    // A closed stream frees its slot.
    drop(other);
    let deadline = Instant::now() + WAIT;
    loop {
        let attempt = AdsClient::sotw(testing::node("next", ""))
            .wildcard(TypeUrl::Cluster)
            .timeout(WAIT)
            .open(server.channel().await)
            .await;
        match attempt {
            Ok(mut next) => {
                next.next().await.unwrap();
                break;
            }
            Err(e) => {
                let status = e.status().expect("a gRPC status");
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert!(Instant::now() < deadline, "the slot was never freed");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

#[tokio::test]
async fn streams_over_the_per_connection_cap_wait_for_a_free_one() {
    let server = Server::start(Limits {
        max_streams_per_connection: 2,
        ..Limits::default()
    })
    .await;
    let shared = server.channel().await;
    let open = |id: &'static str, channel: Channel| async move {
        let mut proxy = AdsClient::sotw(testing::node(id, ""))
            .wildcard(TypeUrl::Cluster)
            .timeout(WAIT)
            .open(channel)
            .await?;
        proxy.next().await?;
        Ok::<_, testing::Error>(proxy)
    };
    let first = open("first", shared.clone()).await.unwrap();
    let _second = open("second", shared.clone()).await.unwrap();
    // The server advertised SETTINGS_MAX_CONCURRENT_STREAMS = 2: the client holds the third
    // stream back until one of the two ends.
    let mut third = tokio::spawn(open("third", shared.clone()));
    let mut good = server.good_proxy("good").await;
    server.still_served(&mut good, "api").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut third)
            .await
            .is_err(),
        "a third stream was opened on a connection limited to two"
    );
    assert!(server.embedded.registry.get("third").is_none());
    drop(first);
    tokio::time::timeout(WAIT, third)
        .await
        .expect("the third stream opens once the first has ended")
        .unwrap()
        .unwrap();
}

// === requests ===

#[tokio::test]
async fn a_stream_that_sends_nothing_is_closed_after_the_first_request_timeout() {
    let server = Server::start(Limits {
        first_request_timeout: Duration::from_millis(200),
        ..Limits::default()
    })
    .await;
    let mut good = server.good_proxy("good").await;
    let (_tx, mut silent) = raw_sotw(&server.channel().await, vec![]).await;
    let status = ending(&mut silent).await;
    assert_refused(
        &status,
        Code::DeadlineExceeded,
        "--xds-first-request-timeout",
    );
    assert_eq!(server.refusals("first_request_timeout"), 1);
    server.still_served(&mut good, "api").await;
}

#[tokio::test]
async fn type_urls_over_the_per_stream_cap_are_refused() {
    let server = Server::start(Limits {
        max_types_per_stream: 2,
        ..Limits::default()
    })
    .await;
    let mut good = server.good_proxy("good").await;
    let request = |n: Option<Node>, t: String| DiscoveryRequest {
        node: n,
        type_url: t,
        ..DiscoveryRequest::default()
    };
    let requests = vec![
        request(node("hostile"), type_url::CLUSTER.into()),
        request(None, type_url::LISTENER.into()),
        // The same type again is no new type.
        request(None, type_url::CLUSTER.into()),
        request(None, "type.googleapis.com/made.up.Thing".into()),
    ];
    let (_tx, mut hostile) = raw_sotw(&server.channel().await, requests).await;
    let status = ending(&mut hostile).await;
    assert_refused(
        &status,
        Code::ResourceExhausted,
        "--xds-max-types-per-stream",
    );
    assert!(status.message().contains("made.up.Thing"), "{status:?}");
    assert_eq!(server.refusals("types_per_stream"), 1);
    server.still_served(&mut good, "api").await;
}

#[tokio::test]
async fn initial_resource_versions_over_the_cap_are_refused() {
    let server = Server::start(Limits {
        max_initial_resource_versions: 3,
        ..Limits::default()
    })
    .await;
    let mut good = server.good_proxy("good").await;
    let versions: HashMap<String, String> =
        (0..4).map(|i| (format!("c{i}"), "1".to_string())).collect();
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(DeltaDiscoveryRequest {
        node: node("hostile"),
        type_url: type_url::CLUSTER.into(),
        initial_resource_versions: versions,
        ..DeltaDiscoveryRequest::default()
    })
    .unwrap();
    let mut client = AggregatedDiscoveryServiceClient::new(server.channel().await);
    let mut hostile = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let status = ending(&mut hostile).await;
    assert_refused(
        &status,
        Code::ResourceExhausted,
        "--xds-max-initial-resource-versions",
    );
    assert_eq!(server.refusals("initial_resource_versions"), 1);
    server.still_served(&mut good, "api").await;
}

#[tokio::test]
async fn a_request_over_the_size_cap_is_refused() {
    let server = Server::start(Limits {
        max_request_bytes: 4096,
        ..Limits::default()
    })
    .await;
    let mut good = server.good_proxy("good").await;
    // A first request that fits, then one of about 6 KB (100 names of 60 bytes).
    let names: Vec<String> = (0..100)
        .map(|i| format!("{i:03}-{}", "n".repeat(56)))
        .collect();
    let requests = vec![
        DiscoveryRequest {
            node: node("hostile"),
            type_url: type_url::ENDPOINT.into(),
            resource_names: vec!["web".into()],
            ..DiscoveryRequest::default()
        },
        DiscoveryRequest {
            type_url: type_url::ENDPOINT.into(),
            resource_names: names,
            ..DiscoveryRequest::default()
        },
    ];
    let (_tx, mut hostile) = raw_sotw(&server.channel().await, requests).await;
    let status = ending(&mut hostile).await;
    assert_refused(&status, Code::ResourceExhausted, "--xds-max-request-bytes");
    assert_eq!(server.refusals("request_bytes"), 1);
    server.still_served(&mut good, "api").await;
}

#[tokio::test]
async fn long_resource_names_are_refused_in_every_field() {
    let server = Server::start(Limits {
        max_name_bytes: 100,
        ..Limits::default()
    })
    .await;
    let mut good = server.good_proxy("good").await;
    let long = "n".repeat(101);

    // SotW: a later request of an open stream.
    let requests = vec![
        DiscoveryRequest {
            node: node("hostile"),
            type_url: type_url::ENDPOINT.into(),
            resource_names: vec!["web".into()],
            ..DiscoveryRequest::default()
        },
        DiscoveryRequest {
            type_url: type_url::ENDPOINT.into(),
            resource_names: vec!["web".into(), long.clone()],
            ..DiscoveryRequest::default()
        },
    ];
    let (_tx, mut hostile) = raw_sotw(&server.channel().await, requests).await;
    let status = ending(&mut hostile).await;
    assert_refused(
        &status,
        Code::ResourceExhausted,
        "--xds-max-resource-name-bytes",
    );
    assert!(status.message().contains("resource_names"), "{status:?}");

    // Delta: unsubscribing is measured too.
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(DeltaDiscoveryRequest {
        node: node("hostile"),
        type_url: type_url::ENDPOINT.into(),
        resource_names_unsubscribe: vec![long],
        ..DeltaDiscoveryRequest::default()
    })
    .unwrap();
    let mut client = AggregatedDiscoveryServiceClient::new(server.channel().await);
    let mut hostile = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let status = ending(&mut hostile).await;
    assert_refused(
        &status,
        Code::ResourceExhausted,
        "--xds-max-resource-name-bytes",
    );
    assert!(
        status.message().contains("resource_names_unsubscribe"),
        "{status:?}"
    );
    assert_eq!(server.refusals("resource_name_bytes"), 2);
    server.still_served(&mut good, "api").await;
}

#[tokio::test]
async fn a_node_over_the_size_cap_is_refused_whatever_field_is_large() {
    let server = Server::start(Limits::default()).await;
    let mut good = server.good_proxy("good").await;
    // No metadata at all: the bytes are in another field.
    let mut big = testing::node("hostile", "");
    big.user_agent_name = "x".repeat(65 * 1024);
    let requests = vec![DiscoveryRequest {
        node: Some(big),
        type_url: type_url::CLUSTER.into(),
        ..DiscoveryRequest::default()
    }];
    let (_tx, mut hostile) = raw_sotw(&server.channel().await, requests).await;
    let status = ending(&mut hostile).await;
    assert_refused(&status, Code::ResourceExhausted, "--xds-max-node-bytes");
    assert_eq!(server.refusals("node_bytes"), 1);
    assert!(server.embedded.registry.get("hostile").is_none());
    server.still_served(&mut good, "api").await;
}

// === status ===

#[tokio::test]
async fn a_long_nack_message_is_cut_in_the_proxy_status() {
    let max = 64;
    let server = Server::start(Limits {
        max_error_detail_bytes: max,
        ..Limits::default()
    })
    .await;
    let mut good = server.good_proxy("good").await;
    let mut nacking = server.good_proxy("nacking").await;
    // Two-byte characters, so a cut at `max` bytes could split one if done carelessly.
    nacking.nack_next(TypeUrl::Cluster, "é".repeat(10_000));
    put_service(&*server.store, "api").await;
    nacking.next().await.unwrap();
    // Where the message is kept (the type's error_detail while it is NACKed, and the
    // last-known-good record of what was held back), it is cut and marked.
    let status = || {
        let s = server.embedded.registry.get("nacking").unwrap();
        serde_json::to_string(&s).unwrap()
    };
    eventually("the cut message is in the proxy status", || {
        status().contains(xds_server::xds::limits::TRUNCATED)
    })
    .await;
    let json = status();
    let run = |n: usize| "é".repeat(n);
    assert!(json.contains(&run(max / 2)), "{json}");
    assert!(!json.contains(&run(max / 2 + 1)), "{json}");
    assert!(server.refusals("error_detail_bytes") >= 1);
    server.still_served(&mut good, "other").await;
}

// === stalled readers ===

#[tokio::test]
async fn a_proxy_that_stops_reading_loses_its_connection() {
    let server = Server::start(Limits {
        write_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    // Responses of some size: a hundred clusters with long names.
    let names: Vec<String> = (0..100)
        .map(|i| format!("{i:03}-{}", "s".repeat(60)))
        .collect();
    for name in &names {
        put_service(&*server.store, name).await;
    }
    let mut good = server.good_proxy("good").await;
    // Small HTTP/2 windows: the hostile client's transport stops accepting data soon.
    let endpoint = Channel::from_shared(format!("http://{}", server.embedded.addr))
        .unwrap()
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535));
    let stalled_channel = endpoint.connect().await.unwrap();
    let requests = vec![DiscoveryRequest {
        node: node("stalled"),
        type_url: type_url::CLUSTER.into(),
        ..DiscoveryRequest::default()
    }];
    let (_tx, mut stalled) = raw_sotw(&stalled_channel, requests).await;
    eventually("the stalled proxy connects", || {
        server.embedded.registry.get("stalled").is_some()
    })
    .await;

    // Every mesh change is one more CDS response the stalled proxy does not read.
    let deadline = Instant::now() + WAIT;
    let mut changes = 0;
    while server.refusals("write_timeout") == 0 {
        assert!(
            Instant::now() < deadline,
            "the stalled proxy kept its stream through {changes} changes"
        );
        changes += 1;
        put_service(&*server.store, &format!("change-{changes}")).await;
        // The well-behaved proxy reads each change meanwhile.
        let last = format!("change-{changes}");
        good.wait_for(&last, |p| p.has(&TypeUrl::Cluster, &last))
            .await
            .unwrap();
    }
    eventually("the stalled proxy's stream is gone", || {
        server.embedded.registry.get("stalled").is_none()
    })
    .await;
    // Its connection was closed: what it reads now ends in an error, not more config.
    let status = ending(&mut stalled).await;
    assert_ne!(status.code(), Code::Ok, "{status:?}");
    server.still_served(&mut good, "after").await;
}
