//! Last-known-good, end to end on both data planes (ADS SotW and Delta): a resource version the
//! proxy rejects is held back from its group, which keeps the last version a proxy accepted;
//! the proxy status and `/metrics` say what is held back and why; a proxy that restarts boots
//! on the accepted version, never on the rejected one; and the operator's fix goes out.

use std::time::Duration;

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Stage, Variant, all_synced},
    upstream::Upstream,
};
use serde_json::{Value, json};
use xds_core::type_url;

const WAIT: Duration = Duration::from_secs(30);
const REJECTED: &str = "cluster_manager.cds.update_rejected";

conformance!(a_rejected_version_is_held_back_from_the_group_and_restarts);

/// A STATIC cluster `extra` on `port`; `lb_policy` CLUSTER_PROVIDED makes it one no proxy
/// runs (the API accepts it: it decodes).
fn extra(node_id: &str, port: u16, connect_timeout: &str, lb_policy: &str) -> Value {
    json!({
        "type_url": type_url::CLUSTER,
        "resource": {
            "name": "extra", "connect_timeout": connect_timeout, "type": "STATIC",
            "lb_policy": lb_policy,
            "load_assignment": { "cluster_name": "extra", "endpoints": [{ "lb_endpoints": [
                { "endpoint": { "address": { "socket_address": {
                    "address": "127.0.0.1", "port_value": port } } } }
            ] }] }
        },
        "selector": { "node_id": node_id }
    })
}

/// The `xds_held_back_resources` gauge of the server's `/metrics`.
async fn held_back_gauge(stage: &Stage) -> u64 {
    stage.cp.metric("xds_held_back_resources").await as u64
}

fn held_back(status: &Value) -> Vec<Value> {
    status["held_back"].as_array().cloned().unwrap_or_default()
}

async fn a_rejected_version_is_held_back_from_the_group_and_restarts(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.serve("svc-a", &a).await;
    let node = stage.node_id.clone();
    let path = "/api/v1/envoy-resources/extra";

    // A version the proxy accepts.
    let before = stage.cp.proxy(&node).await.expect("connected");
    let before = before["types"][type_url::CLUSTER]["version_acked"].clone();
    stage
        .cp
        .put(path, extra(&node, a.port(), "1s", "ROUND_ROBIN"))
        .await;
    let good = stage
        .wait_proxy("the extra cluster accepted", WAIT, |p| {
            all_synced(p) && p["types"][type_url::CLUSTER]["version_acked"] != before
        })
        .await;
    let good_version = good["types"][type_url::CLUSTER]["version_acked"].clone();

    // A version it rejects: held back, the group keeps the accepted one.
    stage
        .cp
        .put(path, extra(&node, a.port(), "1s", "CLUSTER_PROVIDED"))
        .await;
    let status = stage
        .wait_proxy(
            "extra held back, CDS synced on the accepted version",
            WAIT,
            |p| !held_back(p).is_empty() && p["types"][type_url::CLUSTER]["status"] == "SYNCED",
        )
        .await;
    let held = &held_back(&status)[0];
    assert_eq!(held["name"], "extra", "{held:#}");
    assert_eq!(held["type_url"], type_url::CLUSTER);
    assert_eq!(held["rejected_by"], node.as_str());
    assert!(held["serving_version"].is_string(), "{held:#}");
    assert!(
        held["message"]
            .as_str()
            .is_some_and(|m| m.contains("extra")),
        "the proxy's own words: {held:#}"
    );
    let cds = &status["types"][type_url::CLUSTER];
    assert_eq!(
        cds["version_acked"], good_version,
        "the proxy runs (and acknowledged) the accepted version again: {cds:#}"
    );
    assert!(stage.proxy().stat(REJECTED).await.unwrap_or(0) >= 1);
    assert_eq!(held_back_gauge(&stage).await, 1);
    stage.all_from("a", 5, "while-held-back").await;

    // The proxy restarts: it boots on the accepted version and rejects nothing.
    stage.proxy().kill();
    stage.start_proxy().await;
    let restarted = stage.wait_synced(WAIT).await;
    assert_eq!(
        restarted["types"][type_url::CLUSTER]["version_acked"],
        good_version,
        "{restarted:#}"
    );
    assert_eq!(
        stage.proxy().stat(REJECTED).await.unwrap_or(0),
        0,
        "a restarted proxy never gets the version its group rejected"
    );
    assert_eq!(
        held_back(&restarted).len(),
        1,
        "still held back: {restarted:#}"
    );
    stage.all_from("a", 5, "after-restart").await;

    // The operator fixes the object: the new version goes out, nothing is held back.
    stage
        .cp
        .put(path, extra(&node, a.port(), "2s", "ROUND_ROBIN"))
        .await;
    let fixed = stage
        .wait_proxy("the fixed version accepted", WAIT, |p| {
            held_back(p).is_empty()
                && all_synced(p)
                && p["types"][type_url::CLUSTER]["version_acked"] != good_version
        })
        .await;
    assert!(fixed.get("held_back").is_none(), "{fixed:#}");
    assert_eq!(held_back_gauge(&stage).await, 0);
    assert_eq!(stage.proxy().stat(REJECTED).await.unwrap_or(0), 0);
}
