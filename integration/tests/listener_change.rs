//! A listener changed while a long request is in flight (both data planes, ADS SotW and Delta):
//! the `ingress` listener moves to another port while a request through it is held at the
//! upstream; the new port serves, the held request still completes with its answer, and the
//! old port stops accepting once the old listener has drained.

use std::time::{Duration, Instant};

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Stage, Variant},
    net::{self, POLL, free_port, local_client},
    upstream::Upstream,
};

const WAIT: Duration = Duration::from_secs(30);

conformance!(in_flight_request_survives_a_listener_change);

async fn in_flight_request_survives_a_listener_change(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.serve("svc-a", &a).await;
    let old_port = stage.listener_port;

    let held = tokio::spawn(async move {
        let started = Instant::now();
        let reply = net::send(&local_client(), old_port, "/long", &[("x-hold", "1")]).await;
        (reply, started.elapsed())
    });
    let deadline = Instant::now() + WAIT;
    while a.held() < 1 {
        if Instant::now() > deadline {
            stage
                .proxy()
                .fail("the long request never reached the upstream");
        }
        tokio::time::sleep(POLL).await;
    }

    // The same listener, on a new port: the proxy replaces it and drains the old one.
    stage.listener_port = free_port();
    stage.listener(&["main"]).await;
    stage
        .wait_reply("a reply through the new port", "/new", &[], WAIT, |r| {
            r.from("a")
        })
        .await;
    assert!(!held.is_finished(), "the long request is still in flight");
    assert_eq!(a.held(), 1);
    a.release_held();
    let (reply, took) = held.await.expect("the long request's task");
    assert!(
        reply
            .as_ref()
            .is_ok_and(|r| r.from("a") && r.path.as_deref() == Some("/long")),
        "the request in flight across the change completes with its answer (after {took:?}): \
         {reply:?}"
    );

    // The old listener is gone once drained (--drain-time-s 1).
    let deadline = Instant::now() + WAIT;
    let old = std::net::SocketAddr::from(([127, 0, 0, 1], old_port));
    while std::net::TcpStream::connect_timeout(&old, Duration::from_millis(200)).is_ok() {
        if Instant::now() > deadline {
            stage.proxy().fail(&format!(
                "127.0.0.1:{old_port} still accepts after the listener moved"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    stage.all_from("a", 5, "after-drain").await;
    stage.wait_synced(WAIT).await;
}
