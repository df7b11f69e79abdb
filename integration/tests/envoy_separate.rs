//! Real Envoy configured over separate CDS, EDS, LDS and RDS streams (no ADS), SotW and
//! Delta: the server points clusters and listeners at the per-type services instead of ADS,
//! traffic flows, an endpoint change arrives over EDS, and the proxy status merges the four
//! streams into one SYNCED view.

use std::time::Duration;

use integration::{
    mesh::{Backend, Stage, Variant, type_url},
    upstream::Upstream,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn traffic_flows_over_separate_streams(variant: Variant) {
    let Some(mut stage) = Stage::new(variant, Backend::Sqlite).await else {
        return;
    };
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    stage.service("svc", &[(&a, json!({}))]).await;
    stage.route_to("main", "svc").await;
    stage.listener(&["main"]).await;
    stage.start_envoy().await;
    stage
        .wait_reply("a reply from a", "/", &[], WAIT, |r| r.from("a"))
        .await;

    // The endpoint moves from a to b: the change arrives over the EDS stream.
    stage.endpoints("svc", &[(&b, json!({}))]).await;
    stage
        .wait_reply("a reply from b", "/", &[], WAIT, |r| r.from("b"))
        .await;

    let status = stage
        .wait_proxy("four streams, every type SYNCED", WAIT, |p| {
            p["streams"] == 4
                && type_url::ALL
                    .iter()
                    .all(|t| p["types"][*t]["status"] == "SYNCED")
        })
        .await;
    assert_eq!(status["variant"], variant.as_str());
    assert_ne!(status["service"], "ads", "{status:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sotw_over_separate_streams() {
    traffic_flows_over_separate_streams(Variant::SotwSeparate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delta_over_separate_streams() {
    traffic_flows_over_separate_streams(Variant::DeltaSeparate).await;
}
