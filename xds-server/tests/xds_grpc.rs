//! Malformed xDS requests get a clear gRPC error and never take the server down: a stream
//! without a node, a malformed type URL, another type on a per-type service, fetch (not
//! served). After each, a well-formed stream still works.

mod common;

use std::time::Duration;

use envoy_types::pb::envoy::{
    config::core::v3::Node,
    service::{
        cluster::v3::cluster_discovery_service_client::ClusterDiscoveryServiceClient,
        discovery::v3::{
            DeltaDiscoveryRequest, DiscoveryRequest,
            aggregated_discovery_service_client::AggregatedDiscoveryServiceClient,
        },
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, transport::Channel};
use xds_core::type_url;
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

fn node() -> Option<Node> {
    Some(Node {
        id: "grpc-test".into(),
        ..Node::default()
    })
}

/// Opens an ADS SotW stream with `first` and returns the first thing it yields.
async fn first_answer(channel: &Channel, first: DiscoveryRequest) -> Result<String, tonic::Status> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(first).await.unwrap();
    let mut client = AggregatedDiscoveryServiceClient::new(channel.clone());
    let call = client.stream_aggregated_resources(ReceiverStream::new(rx));
    let mut inbound = tokio::time::timeout(WAIT, call)
        .await
        .expect("answered")?
        .into_inner();
    let msg = tokio::time::timeout(WAIT, inbound.message())
        .await
        .expect("answered")?;
    Ok(msg.expect("a response, not the end of the stream").type_url)
}

#[tokio::test]
async fn a_stream_without_a_node_is_invalid_argument() {
    let (_server, channel, _dir) = server().await;
    let req = DiscoveryRequest {
        type_url: type_url::CLUSTER.into(),
        ..DiscoveryRequest::default()
    };
    let err = first_answer(&channel, req).await.unwrap_err();
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
        let req = DiscoveryRequest {
            node: node(),
            type_url: bad.into(),
            ..DiscoveryRequest::default()
        };
        let err = first_answer(&channel, req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "type URL {bad:?}");
        assert!(err.message().contains("type URL"), "{}", err.message());
    }
    // A well-formed but unknown type is answered (with nothing), and CDS still works.
    let unknown = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
    for t in [unknown, type_url::CLUSTER] {
        let req = DiscoveryRequest {
            node: node(),
            type_url: t.into(),
            ..DiscoveryRequest::default()
        };
        assert_eq!(first_answer(&channel, req).await.unwrap(), t);
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

#[tokio::test]
async fn too_many_names_is_invalid_argument() {
    let (_server, channel, _dir) = server().await;
    let req = DiscoveryRequest {
        node: node(),
        type_url: type_url::ENDPOINT.into(),
        resource_names: (0..=xds_server::xds::MAX_NAMES)
            .map(|i| format!("c{i}"))
            .collect(),
        ..DiscoveryRequest::default()
    };
    let err = first_answer(&channel, req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("at most"), "{}", err.message());
}
