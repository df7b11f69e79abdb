//! Listener changes, removals, bind failures and drains, with real connections and requests
//! held in flight by the upstream until the test lets them go.

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tokio::sync::Semaphore;

use super::Manager;
use crate::{
    config::{RouteAction, UpstreamProtocol},
    http::tests::support::*,
    runtime::Runtime,
};

/// An upstream whose requests wait for a permit of the returned semaphore.
async fn holding() -> (Upstream, Arc<Semaphore>) {
    let hold = Arc::new(Semaphore::new(0));
    let held = hold.clone();
    let upstream = Upstream::start(move |_| {
        let held = held.clone();
        async move {
            let _permit = held.acquire().await;
            reply(200, "slow")
        }
    })
    .await;
    (upstream, hold)
}

/// Routes `/slow` to the holding upstream and `/v` to a direct response naming `version`.
fn versioned(address: SocketAddr, version: &'static str) -> crate::config::ListenerConfig {
    let r = routes(
        "r",
        vec![
            route("/slow", RouteAction::Forward(forward("slow"))),
            route("/v", direct(200, version)),
        ],
    );
    let mut listener = inline_listener("l", r);
    listener.address = address;
    listener
}

async fn started(runtime: &Runtime, version: &'static str) -> (Manager, SocketAddr) {
    let (manager, address) =
        serve(runtime, versioned("127.0.0.1:0".parse().unwrap(), version)).await;
    // Pin the port so the next versions are changes "on the same address".
    let pinned = versioned(address, version);
    assert!(manager.apply(vec![pinned]).await.is_empty());
    (manager, address)
}

async fn wait_requests(upstream: &Upstream, n: u64) {
    let requests = upstream.requests.clone();
    eventually(Duration::from_secs(5), || {
        requests.load(Ordering::Relaxed) == n
    })
    .await;
}

#[tokio::test]
async fn a_change_keeps_the_socket_and_lets_the_request_in_flight_finish() {
    let (upstream, hold) = holding().await;
    let slow = cluster("slow", &[upstream.address], UpstreamProtocol::Http1);
    let runtime = runtime(vec![slow], vec![]);
    let (manager, address) = started(&runtime, "v1").await;
    assert_eq!(get(address, "/v").await.body, "v1");

    let in_flight = tokio::spawn(async move { get(address, "/slow").await });
    wait_requests(&upstream, 1).await;

    assert!(
        manager
            .apply(vec![versioned(address, "v2")])
            .await
            .is_empty()
    );
    // New connections get the new configuration at once, on the same socket.
    assert_eq!(get(address, "/v").await.body, "v2");

    hold.add_permits(1);
    let got = in_flight.await.unwrap();
    assert_eq!((got.status.as_u16(), got.body.as_str()), (200, "slow"));
    // The draining HTTP/1 connection announces its end.
    assert_eq!(got.headers["connection"], "close");
    manager.drain_all(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_http2_connection_gets_goaway_and_its_stream_finishes() {
    let (upstream, hold) = holding().await;
    let slow = cluster("slow", &[upstream.address], UpstreamProtocol::Http1);
    let runtime = runtime(vec![slow], vec![]);
    let (manager, address) = started(&runtime, "v1").await;
    let mut client = Client::h2(address).await;
    assert_eq!(client.get("/v").await.body, "v1");
    let mut in_flight_client = match &client {
        Client::H2(send) => Client::H2(send.clone()),
        Client::H1(_) => unreachable!(),
    };
    let in_flight = tokio::spawn(async move { in_flight_client.get("/slow").await });
    wait_requests(&upstream, 1).await;

    assert!(
        manager
            .apply(vec![versioned(address, "v2")])
            .await
            .is_empty()
    );
    hold.add_permits(1);
    assert_eq!(in_flight.await.unwrap().body, "slow");
    // After GOAWAY the old connection takes no new stream; a new connection sees v2.
    let refused = client
        .send(http::Request::get("/v").body(Default::default()).unwrap())
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(Client::h2(address).await.get("/v").await.body, "v2");
}

#[tokio::test]
async fn an_unchanged_listener_keeps_its_connections() {
    let runtime = runtime(vec![], vec![]);
    let (manager, address) = started(&runtime, "v1").await;
    let mut client = Client::h1(address).await;
    assert_eq!(client.get("/v").await.body, "v1");
    assert!(
        manager
            .apply(vec![versioned(address, "v1")])
            .await
            .is_empty()
    );
    assert_eq!(client.get("/v").await.body, "v1");
}

#[tokio::test]
async fn a_removed_listener_stops_accepting() {
    let runtime = runtime(vec![], vec![]);
    let (manager, address) = started(&runtime, "v1").await;
    assert_eq!(get(address, "/v").await.status, 200);
    assert!(manager.apply(vec![]).await.is_empty());
    assert!(manager.local_addr("l").await.is_none());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(address).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_listener_that_cannot_bind_is_rejected_by_name_and_the_others_apply() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let runtime = runtime(vec![], vec![]);
    let manager = Manager::new(runtime.clone(), Duration::from_secs(1));
    let mut blocked = versioned(taken.local_addr().unwrap(), "v1");
    blocked.name = "blocked".into();
    let fine = versioned("127.0.0.1:0".parse().unwrap(), "v1");
    let rejections = manager.apply(vec![blocked, fine]).await;
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0].resource, "listener 'blocked'");
    assert_eq!(rejections[0].field, "address");
    assert!(
        rejections[0].reason.starts_with("cannot bind"),
        "{}",
        rejections[0]
    );
    let address = manager
        .local_addr("l")
        .await
        .expect("the other listener runs");
    assert_eq!(get(address, "/v").await.body, "v1");
}

#[tokio::test]
async fn a_listener_moved_to_another_address_serves_there() {
    let runtime = runtime(vec![], vec![]);
    let (manager, old) = started(&runtime, "v1").await;
    let rejections = manager
        .apply(vec![versioned("127.0.0.1:0".parse().unwrap(), "v2")])
        .await;
    assert!(rejections.is_empty());
    let new = manager.local_addr("l").await.unwrap();
    assert_ne!(new, old);
    assert_eq!(get(new, "/v").await.body, "v2");
}

#[tokio::test]
async fn drain_all_cuts_what_is_still_running_at_the_deadline() {
    let (upstream, _hold) = holding().await;
    let slow = cluster("slow", &[upstream.address], UpstreamProtocol::Http1);
    let runtime = runtime(vec![slow], vec![]);
    let (manager, address) = started(&runtime, "v1").await;
    let in_flight = tokio::spawn(async move {
        Client::h1(address)
            .await
            .send(
                http::Request::get("/slow")
                    .body(Default::default())
                    .unwrap(),
            )
            .await
    });
    wait_requests(&upstream, 1).await;
    let started = tokio::time::Instant::now();
    manager.drain_all(Duration::from_millis(200)).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        in_flight.await.unwrap().is_err(),
        "the held request was not cut"
    );
    let stats = runtime.stats.http("ingress");
    assert_eq!(stats.downstream_cx_active.get(), 0);
}

#[tokio::test]
async fn a_renamed_listener_takes_over_the_socket_of_the_removed_one() {
    let runtime = runtime(vec![], vec![]);
    let (manager, address) = started(&runtime, "v1").await;
    let mut renamed = versioned(address, "v2");
    renamed.name = "renamed".into();
    // Binding again would fail: the address is still bound by "l" when the update arrives.
    let rejections = manager.apply(vec![renamed]).await;
    assert!(rejections.is_empty(), "{rejections:?}");
    assert_eq!(manager.local_addr("renamed").await, Some(address));
    assert!(manager.local_addr("l").await.is_none());
    assert_eq!(get(address, "/v").await.body, "v2");
}
