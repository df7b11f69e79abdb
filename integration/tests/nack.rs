//! Config no proxy can run (both data planes, ADS SotW and Delta): the refusal is a NACK,
//! shown in the proxy status with the proxy's own words (as held back: `last_known_good.rs`),
//! and the config from before keeps serving. (Config that only minimal-proxy refuses: `unsupported.rs`.)

use std::time::Duration;

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Stage, Variant},
    upstream::Upstream,
};
use serde_json::json;
use xds_core::type_url;

const WAIT: Duration = Duration::from_secs(30);

conformance!(rejected_resource_is_nacked);

/// (e) A raw Cluster that decodes (so the API accepts it) but that no proxy can run: a STATIC
/// cluster cannot use the CLUSTER_PROVIDED load balancer. The proxy status shows it held back
/// with the proxy's words naming the cluster; the config from before keeps serving; deleting
/// the resource clears it.
async fn rejected_resource_is_nacked(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.serve("svc-a", &a).await;
    let proxy = stage.proxy();
    let rejected_before = proxy
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
    // The NACK shows in the status; then last-known-good holds the cluster back from the
    // proxy's group (nobody accepted a version of it, so it is left out), the proxy acknowledges
    // what it is sent instead, and the rejection stays visible in `held_back`.
    let status = stage
        .wait_proxy("bad-cluster held back, CDS SYNCED again", WAIT, |p| {
            p["types"][type_url::CLUSTER]["status"] == "SYNCED"
                && p["held_back"]
                    .as_array()
                    .is_some_and(|h| h.iter().any(|x| x["name"] == "bad-cluster"))
        })
        .await;
    let held = &status["held_back"][0];
    let detail = held["message"].as_str().unwrap_or_default();
    // Envoy words it as its cluster manager does; minimal-proxy names the resource and field.
    let because = match plane {
        DataPlane::Envoy => "cluster provided LB",
        DataPlane::Minimal => "lb_policy",
    };
    assert!(
        detail.contains("bad-cluster") && detail.contains(because),
        "{}: the held-back entry gives the proxy's words, naming the cluster and saying '{because}': {held:#}",
        plane.as_str()
    );
    assert_eq!(held["rejected_by"], stage.node_id.as_str(), "{held:#}");
    assert!(
        held["serving_version"].is_null(),
        "never accepted: left out: {held:#}"
    );
    for t in [type_url::LISTENER, type_url::ROUTE] {
        assert_eq!(status["types"][t]["status"], "SYNCED", "{t}: {status:#}");
    }
    let rejected = proxy
        .stat("cluster_manager.cds.update_rejected")
        .await
        .unwrap_or(0);
    assert!(
        rejected > rejected_before,
        "the proxy itself counted the rejection (cluster_manager.cds.update_rejected)"
    );

    stage.all_from("a", 20, "after-nack").await;
    let dump = proxy.config_dump().await.expect("config_dump");
    assert!(
        !dump.to_string().contains("\"bad-cluster\""),
        "the proxy runs no part of the rejected cluster"
    );

    stage.cp.delete("/api/v1/envoy-resources/bad-cluster").await;
    stage
        .wait_proxy("nothing held back, CDS SYNCED", WAIT, |p| {
            p["types"][type_url::CLUSTER]["status"] == "SYNCED" && p.get("held_back").is_none()
        })
        .await;
    stage.all_from("a", 5, "after-delete").await;
}
