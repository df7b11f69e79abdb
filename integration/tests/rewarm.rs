//! A changed cluster re-warms in the proxy and waits for its assignment again, even though the
//! endpoints did not change. That wait must end at once: the new cluster has to become active
//! well before the 15 s initial fetch timeout, on ADS and on separate streams, SotW and Delta,
//! on both data planes. Envoy 1.40 on ADS waits for the assignment to be sent again (with the
//! server's re-send turned off, the ADS cases fail: the cluster stays warming until the initial
//! fetch timeout), so the server re-sends the assignments of changed clusters only; on separate
//! streams Envoy needs no re-send. minimal-proxy re-warms from the assignment it holds and says
//! so (`xds_core::node::REWARMS_FROM_HELD_ASSIGNMENTS`), so it is sent nothing twice.

use std::time::Duration;

use integration::{
    conformance_case,
    mesh::{Backend, DataPlane, Stage, Variant},
    upstream::Upstream,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
/// Well under the 15 s initial fetch timeout, which would otherwise end the wait.
const REWARM: Duration = Duration::from_secs(8);

/// The active and warming clusters named `name` in a config dump.
fn cluster_states<'a>(dump: &'a Value, name: &str) -> (Vec<&'a Value>, usize) {
    let configs = dump["configs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let clusters = configs.iter().find(|c| {
        c["@type"]
            .as_str()
            .is_some_and(|t| t.ends_with("ClustersConfigDump"))
    });
    let Some(clusters) = clusters else {
        return (vec![], 0);
    };
    let named = |key: &str| -> Vec<&'a Value> {
        clusters[key]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter(|c| c["cluster"]["name"] == name)
                    .map(|c| &c["cluster"])
                    .collect()
            })
            .unwrap_or_default()
    };
    (
        named("dynamic_active_clusters"),
        named("dynamic_warming_clusters").len(),
    )
}

async fn changed_cluster_rewarms_at_once(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.service("svc", &[(&a, json!({}))]).await;
    stage.route_to("main", "svc").await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
    stage
        .wait_reply("a reply from a", "/", &[], WAIT, |r| r.from("a"))
        .await;

    // Only the cluster changes; its endpoints stay the same.
    stage
        .cp
        .put(
            "/api/v1/services/svc",
            json!({ "protocol": "http", "connect_timeout": "3s" }),
        )
        .await;
    stage
        .proxy()
        .wait_for("the changed cluster active, none warming", REWARM, |dump| {
            let (active, warming) = cluster_states(dump, "svc");
            warming == 0 && active.iter().any(|c| c["connect_timeout"] == "3s")
        })
        .await;
    let reply = stage.send("/after", &[]).await.unwrap();
    assert!(reply.from("a"), "{reply:?}");
}

mod changed_cluster_rewarms_at_once {
    use super::conformance_case;

    conformance_case!(
        changed_cluster_rewarms_at_once,
        envoy_sotw_ads,
        Envoy,
        Sotw,
        Sqlite
    );
    conformance_case!(
        changed_cluster_rewarms_at_once,
        envoy_delta_ads,
        Envoy,
        Delta,
        Sqlite
    );
    conformance_case!(
        changed_cluster_rewarms_at_once,
        envoy_sotw_separate,
        Envoy,
        SotwSeparate,
        Sqlite
    );
    conformance_case!(
        changed_cluster_rewarms_at_once,
        envoy_delta_separate,
        Envoy,
        DeltaSeparate,
        Sqlite
    );
    conformance_case!(
        changed_cluster_rewarms_at_once,
        minimal_sotw_ads,
        Minimal,
        Sotw,
        Sqlite
    );
    conformance_case!(
        changed_cluster_rewarms_at_once,
        minimal_delta_ads,
        Minimal,
        Delta,
        Sqlite
    );
    conformance_case!(
        changed_cluster_rewarms_at_once,
        minimal_sotw_separate,
        Minimal,
        SotwSeparate,
        Sqlite
    );
    conformance_case!(
        changed_cluster_rewarms_at_once,
        minimal_delta_separate,
        Minimal,
        DeltaSeparate,
        Sqlite
    );
}
