//! Malformed xDS requests get a clear gRPC error and never take the server down: a stream
//! without a node, a malformed type URL, another type on a per-type service, fetch (not
//! served). After each, a well-formed stream still works. Too many names are served up to the
//! cap and reported in the proxy status.

mod common;

use std::time::Duration;

use envoy_types::pb::envoy::{
    config::core::v3::Node,
    service::{
        cluster::v3::cluster_discovery_service_client::ClusterDiscoveryServiceClient,
        discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest},
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, transport::Channel};
use xds_core::{
    TypeUrl,
    testing::{AdsClient, Builder, Error},
    type_url,
};
use xds_server::xds::embedded::Embedded;

const WAIT: Duration = Duration::from_secs(10);

async fn server() -> (Embedded, Channel, tempfile::TempDir) {
    let (store, dir) = common::sqlite().await;
    let server = Embedded::start(store, Duration::from_millis(50))
        .await
        .unwrap();
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (server, channel, dir)
}

const NO_NAMES: [&str; 0] = [];

fn node() -> Option<Node> {
    Some(xds_core::testing::node("grpc-test", ""))
}

/// A SotW ADS stream for the test node.
fn proxy() -> Builder {
    AdsClient::sotw(xds_core::testing::node("grpc-test", "")).timeout(WAIT)
}

/// Opens `proxy`'s stream and returns the type of the first response, or the gRPC status the
/// server ended the stream with.
async fn first_answer(channel: &Channel, proxy: Builder) -> Result<TypeUrl, tonic::Status> {
    let status = |e: Error| match e {
        Error::Status(status) => *status,
        other => panic!("expected a response or a gRPC status, got: {other}"),
    };
    let mut proxy = proxy.open(channel.clone()).await.map_err(status)?;
    Ok(proxy.next().await.map_err(status)?.type_url)
}

#[tokio::test]
async fn a_stream_without_a_node_is_invalid_argument() {
    let (_server, channel, _dir) = server().await;
    let proxy = proxy().without_node().wildcard(TypeUrl::Cluster);
    let err = first_answer(&channel, proxy).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("node"), "{}", err.message());
}

#[tokio::test]
async fn malformed_type_urls_are_invalid_argument_and_the_server_keeps_serving() {
    let (_server, channel, _dir) = server().await;
    for bad in [
        "",
        "clusters",
        "type.googleapis.com/",
        "type.googleapis.com/a b",
    ] {
        let proxy = proxy().subscribe(bad, NO_NAMES);
        let err = first_answer(&channel, proxy).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "type URL {bad:?}");
        assert!(err.message().contains("type URL"), "{}", err.message());
    }
    // A well-formed but unknown type is answered (with nothing), and CDS still works.
    for t in [TypeUrl::Secret, TypeUrl::Cluster] {
        let proxy = proxy().subscribe(t.clone(), NO_NAMES);
        assert_eq!(first_answer(&channel, proxy).await.unwrap(), t);
    }
}

#[tokio::test]
async fn a_per_type_service_refuses_other_types_and_fetch() {
    let (_server, channel, _dir) = server().await;
    let mut client = ClusterDiscoveryServiceClient::new(channel.clone());
    let (tx, rx) = mpsc::channel(4);
    tx.send(DeltaDiscoveryRequest {
        node: node(),
        type_url: type_url::LISTENER.into(),
        ..DeltaDiscoveryRequest::default()
    })
    .await
    .unwrap();
    let mut inbound = client
        .delta_clusters(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let err = tokio::time::timeout(WAIT, inbound.message())
        .await
        .expect("answered")
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("Cluster"), "{}", err.message());

    let err = client
        .fetch_clusters(DiscoveryRequest {
            node: node(),
            ..DiscoveryRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}

/// More names than a stream may hold are not a stream error (that would only make the proxy
/// reconnect and ask again, in a loop): the first are served and the proxy status says why the
/// rest are not.
#[tokio::test]
async fn too_many_names_are_served_up_to_the_cap_and_reported() {
    let (server, channel, _dir) = server().await;
    let names = (0..=xds_server::xds::MAX_NAMES).map(|i| format!("c{i}"));
    let proxy = proxy().subscribe(TypeUrl::Endpoint, names);
    let mut proxy = proxy.open(channel.clone()).await.unwrap();
    assert_eq!(proxy.next().await.unwrap().type_url, TypeUrl::Endpoint);
    let status = server.registry.get("grpc-test").expect("connected");
    let eds = &status.types[type_url::ENDPOINT];
    let detail = eds.error_detail.as_deref().unwrap_or_default();
    assert!(detail.contains("only the first"), "{detail}");
}

/// The count the binary's heap trimmer watches moves when a stream ends (it is process-wide,
/// and other tests end streams too: only that it grows is asserted).
#[tokio::test]
async fn an_ended_stream_is_counted() {
    let (_server, channel, _dir) = server().await;
    let before = xds_server::xds::streams_ended();
    let proxy = proxy().wildcard(TypeUrl::Cluster);
    assert_eq!(
        first_answer(&channel, proxy).await.unwrap(),
        TypeUrl::Cluster
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while xds_server::xds::streams_ended() <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream was never counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
