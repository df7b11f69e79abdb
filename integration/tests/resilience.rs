//! The proxy when the control plane goes away (both data planes, ADS SotW and Delta; the
//! restart also on Postgres): with xds-server stopped the proxy keeps serving its last config
//! (every endpoint, the listener, readiness) for as long as it is down; after a restart on the
//! same port and database it resyncs and takes new changes.

use std::time::{Duration, Instant};

use integration::{
    conformance, conformance_with_postgres,
    mesh::{Backend, DataPlane, Stage, Variant, all_synced},
    net::POLL,
    proxy::{Proxy, dump_section},
    upstream::Upstream,
};
use serde_json::{Value, json};
use xds_core::type_url;

const WAIT: Duration = Duration::from_secs(30);

conformance_with_postgres!(proxy_survives_a_server_restart);
conformance!(last_config_serves_while_the_server_is_down);

/// Polls until the proxy's `control_plane.connected_state` is 0: it noticed the stream is gone.
async fn wait_disconnected(proxy: &Proxy) {
    let deadline = Instant::now() + WAIT;
    while proxy.stat("control_plane.connected_state").await != Some(0) {
        if Instant::now() > deadline {
            proxy.fail("the proxy never noticed the control plane went away");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// (f) SIGTERM the server: the proxy keeps serving what it has. Start it again on the same
/// xDS port and database: the proxy reconnects, and a change made after the restart (the route
/// moving to b) reaches it and is acked.
async fn proxy_survives_a_server_restart(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    stage.service("svc-b", &[(&b, json!({}))]).await;
    stage.serve("svc-a", &a).await;
    let pid = stage.proxy().pid();

    stage.cp.stop();
    stage.all_from("a", 20, "server-down").await;
    wait_disconnected(stage.proxy()).await;
    stage.all_from("a", 5, "server-down-noticed").await;

    stage.cp.start_again();
    stage
        .wait_proxy("the proxy reconnected", Duration::from_secs(60), |p| {
            p["variant"] == variant.as_str()
        })
        .await;
    stage.all_from("a", 5, "reconnected").await;

    stage.route_to("main", "svc-b").await;
    stage
        .wait_reply("a reply from b after the restart", "/", &[], WAIT, |r| {
            r.from("b")
        })
        .await;
    stage.all_from("b", 10, "after-change").await;
    assert_eq!(
        stage.proxy().pid(),
        pid,
        "the same proxy process throughout"
    );
    // The change touched clusters, assignments and routes: each was sent on the new stream
    // and acked. (A Delta stream that reconnects with `initial_resource_versions` equal to
    // the server's is sent nothing, so types the change did not touch may be absent there.)
    let changed = [type_url::CLUSTER, type_url::ENDPOINT, type_url::ROUTE];
    let status = stage
        .wait_proxy("every type sent since the restart SYNCED", WAIT, |p| {
            changed.iter().all(|t| p["types"][*t]["status"] == "SYNCED")
                && p["types"]
                    .as_object()
                    .is_some_and(|types| types.values().all(|t| t["status"] == "SYNCED"))
        })
        .await;
    if variant == Variant::Sotw {
        assert_eq!(
            status["types"][type_url::LISTENER]["status"],
            "SYNCED",
            "a SotW stream is sent every type on reconnect: {status:#}"
        );
    }
}

/// The names of the active clusters and of the listeners in a config dump.
fn running(dump: &Value) -> (Vec<String>, Vec<String>) {
    let names = |section: &str, key: &str, name: fn(&Value) -> &Value| -> Vec<String> {
        dump_section(dump, section)
            .and_then(|s| s[key].as_array())
            .into_iter()
            .flatten()
            .filter_map(|entry| name(entry).as_str().map(str::to_string))
            .collect()
    };
    (
        names("ClustersConfigDump", "dynamic_active_clusters", |c| {
            &c["cluster"]["name"]
        }),
        names("ListenersConfigDump", "dynamic_listeners", |l| &l["name"]),
    )
}

/// With the server stopped, the proxy keeps its whole last config, not just open
/// connections: both endpoints of the service keep sharing 60 requests sent over at least 3 s
/// (longer than the proxies' first reconnect backoffs), `/ready` stays `LIVE`, and the config
/// dump still holds the cluster and the listener. Back up, the server finds the proxy on the
/// config it had: every type SYNCED at the versions acked before.
async fn last_config_serves_while_the_server_is_down(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    stage
        .service("web", &[(&a, json!({})), (&b, json!({}))])
        .await;
    stage.route_to("main", "web").await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
    stage
        .wait_reply("a reply from b", "/", &[], WAIT, |r| r.from("b"))
        .await;
    let synced = stage.wait_synced(WAIT).await;

    stage.cp.stop();
    let proxy = stage.proxy();
    wait_disconnected(proxy).await;
    let started = Instant::now();
    let (before_a, before_b) = (a.hits(), b.hits());
    for i in 0..60 {
        let reply = stage
            .send(&format!("/down/{i}"), &[])
            .await
            .unwrap_or_else(|e| proxy.fail(&format!("request {i} with the server down: {e}")));
        assert!(
            reply.from("a") || reply.from("b"),
            "request {i} with the server down: {reply:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(
        a.hits() > before_a && b.hits() > before_b,
        "both endpoints kept getting requests (a: {}, b: {})",
        a.hits() - before_a,
        b.hits() - before_b
    );
    proxy.wait_ready(Duration::from_secs(1)).await;
    let dump = proxy.config_dump().await.expect("config_dump");
    let (clusters, listeners) = running(&dump);
    assert!(
        clusters.iter().any(|c| c == "web") && listeners.iter().any(|l| l == "ingress"),
        "the config dump still holds cluster web and listener ingress: clusters {clusters:?}, \
         listeners {listeners:?}"
    );

    stage.cp.start_again();
    let status = stage
        .wait_proxy(
            "the proxy back, every type it was sent SYNCED",
            Duration::from_secs(60),
            |p| {
                p["types"]
                    .as_object()
                    .is_some_and(|t| !t.is_empty() && t.values().all(|t| t["status"] == "SYNCED"))
            },
        )
        .await;
    for (url, ty) in status["types"].as_object().into_iter().flatten() {
        assert_eq!(
            ty["version_acked"], synced["types"][url]["version_acked"],
            "{url}: nothing changed, so the proxy is at the version it had: {status:#}"
        );
    }
    if variant == Variant::Sotw {
        assert!(all_synced(&status), "SotW resends every type: {status:#}");
    }
    for i in 0..10 {
        let reply = stage.send(&format!("/server-back/{i}"), &[]).await;
        assert!(
            reply.as_ref().is_ok_and(|r| r.from("a") || r.from("b")),
            "request {i} after the server came back: {reply:?}"
        );
    }
}
