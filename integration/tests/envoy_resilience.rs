//! Envoy and the control plane when things go wrong (ADS SotW and Delta, SQLite and
//! Postgres): a raw resource Envoy rejects is NACKed, shown as such, and the previous config
//! keeps serving; with xds-server stopped Envoy keeps serving, and after a restart on the same
//! port and database it resyncs and takes new changes.

use std::time::Duration;

use integration::{
    each_variant_and_backend,
    mesh::{Backend, Stage, Variant, type_url},
    upstream::Upstream,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

each_variant_and_backend!(rejected_resource_is_nacked, envoy_survives_a_server_restart);

/// A service `svc-a` on upstream a behind the `ingress` listener, with Envoy serving it.
async fn serving_a(stage: &mut Stage, a: &Upstream) {
    stage.service("svc-a", &[(a, json!({}))]).await;
    stage.route_to("main", "svc-a").await;
    stage.listener(&["main"]).await;
    stage.start_envoy().await;
    stage
        .wait_reply("a reply from a", "/", &[], WAIT, |r| r.from("a"))
        .await;
    stage.wait_synced(WAIT).await;
}

async fn all_from(stage: &Stage, upstream: &str, count: usize, what: &str) {
    for i in 0..count {
        let reply = stage
            .send(&format!("/{what}/{i}"), &[])
            .await
            .unwrap_or_else(|e| stage.envoy().fail(&format!("{what}: request {i}: {e}")));
        assert!(reply.from(upstream), "{what}: request {i}: {reply:?}");
    }
}

/// (e) A raw Cluster that decodes (so the API accepts it) but that Envoy refuses: a STATIC
/// cluster cannot use the CLUSTER_PROVIDED load balancer. The proxy status shows CDS NACKED
/// with Envoy's words; the config from before keeps serving; deleting the resource gets CDS
/// back to SYNCED (the next change is sent as usual).
async fn rejected_resource_is_nacked(variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    serving_a(&mut stage, &a).await;
    let envoy = stage.envoy();
    let rejected_before = envoy
        .stat("cluster_manager.cds.update_rejected")
        .await
        .unwrap_or(0);

    stage
        .cp
        .put(
            "/api/v1/envoy-resources/bad-cluster",
            json!({
                "type_url": type_url::CLUSTER,
                "resource": { "name": "bad-cluster", "connect_timeout": "1s",
                              "type": "STATIC", "lb_policy": "CLUSTER_PROVIDED" },
                "selector": { "node_id": stage.node_id }
            }),
        )
        .await;
    let status = stage
        .wait_proxy("CDS NACKED", WAIT, |p| {
            p["types"][type_url::CLUSTER]["status"] == "NACKED"
        })
        .await;
    let cds = &status["types"][type_url::CLUSTER];
    let detail = cds["error_detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("bad-cluster") && detail.contains("cluster provided LB"),
        "error_detail carries Envoy's message: {cds:#}"
    );
    assert_ne!(
        cds["version_sent"], cds["version_acked"],
        "the rejected version is not the acked one: {cds:#}"
    );
    for t in [type_url::LISTENER, type_url::ROUTE] {
        assert_eq!(status["types"][t]["status"], "SYNCED", "{t}: {status:#}");
    }
    let rejected = envoy
        .stat("cluster_manager.cds.update_rejected")
        .await
        .unwrap_or(0);
    assert!(
        rejected > rejected_before,
        "Envoy itself counted the rejection"
    );

    all_from(&stage, "a", 20, "after-nack").await;
    let dump = envoy.config_dump().await.expect("config_dump");
    assert!(
        !dump.to_string().contains("\"bad-cluster\""),
        "Envoy runs no part of the rejected cluster"
    );

    stage.cp.delete("/api/v1/envoy-resources/bad-cluster").await;
    stage
        .wait_proxy("CDS SYNCED again", WAIT, |p| {
            p["types"][type_url::CLUSTER]["status"] == "SYNCED"
        })
        .await;
    all_from(&stage, "a", 5, "after-delete").await;
}

/// (f) SIGTERM the server: Envoy keeps serving what it has. Start it again on the same xDS
/// port and database: Envoy reconnects, and a change made after the restart (the route moving
/// to b) reaches it and is acked.
async fn envoy_survives_a_server_restart(variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    stage.service("svc-b", &[(&b, json!({}))]).await;
    serving_a(&mut stage, &a).await;
    let pid = stage.envoy().pid();

    stage.cp.stop();
    all_from(&stage, "a", 20, "server-down").await;
    // Envoy has noticed the stream is gone, and still serves.
    let envoy = stage.envoy();
    let deadline = std::time::Instant::now() + WAIT;
    while envoy.stat("control_plane.connected_state").await != Some(0) {
        if std::time::Instant::now() > deadline {
            envoy.fail("Envoy never noticed the control plane went away");
        }
        tokio::time::sleep(integration::envoy::POLL).await;
    }
    all_from(&stage, "a", 5, "server-down-noticed").await;

    stage.cp.start_again();
    stage
        .wait_proxy("the proxy reconnected", Duration::from_secs(60), |p| {
            p["variant"] == variant.as_str()
        })
        .await;
    all_from(&stage, "a", 5, "reconnected").await;

    stage.route_to("main", "svc-b").await;
    stage
        .wait_reply("a reply from b after the restart", "/", &[], WAIT, |r| {
            r.from("b")
        })
        .await;
    all_from(&stage, "b", 10, "after-change").await;
    assert_eq!(
        stage.envoy().pid(),
        pid,
        "the same Envoy process throughout"
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
