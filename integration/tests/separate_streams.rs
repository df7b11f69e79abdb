//! Both data planes configured over separate CDS, EDS, LDS and RDS streams (no ADS), SotW and
//! Delta: the server points clusters and listeners at the per-type services instead of ADS,
//! traffic flows, an endpoint change arrives over EDS, and the proxy status merges the four
//! streams into one SYNCED view.

use std::time::Duration;

use integration::{
    conformance_case,
    mesh::{Backend, DataPlane, Stage, Variant, all_synced},
    upstream::Upstream,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn traffic_flows_over_separate_streams(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    stage.service("svc", &[(&a, json!({}))]).await;
    stage.route_to("main", "svc").await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
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
            p["streams"] == 4 && all_synced(p)
        })
        .await;
    assert_eq!(status["variant"], variant.as_str());
    assert_ne!(status["service"], "ads", "{status:#}");
}

mod traffic_flows_over_separate_streams {
    use super::conformance_case;

    conformance_case!(
        traffic_flows_over_separate_streams,
        envoy_sotw,
        Envoy,
        SotwSeparate,
        Sqlite
    );
    conformance_case!(
        traffic_flows_over_separate_streams,
        envoy_delta,
        Envoy,
        DeltaSeparate,
        Sqlite
    );
    conformance_case!(
        traffic_flows_over_separate_streams,
        minimal_sotw,
        Minimal,
        SotwSeparate,
        Sqlite
    );
    conformance_case!(
        traffic_flows_over_separate_streams,
        minimal_delta,
        Minimal,
        DeltaSeparate,
        Sqlite
    );
}
