//! The control-plane metrics of the real server binary, on each backend: a REST write is timed
//! as a store `put`, a read as a `get`, and a mesh load as a `snapshot`; an xDS stream shows in
//! `xds_streams`, its responses in `xds_pushes_total` and its rejection in `xds_nacks_total`
//! for the rejected type. Every metric family the server exposes is documented in
//! `docs/observability.md`.

use std::time::{Duration, Instant};

use integration::control_plane::{Backend, ControlPlane};
use serde_json::json;
use xds_core::{TypeUrl, testing::AdsClient, type_url};

const WAIT: Duration = Duration::from_secs(10);

fn store_count(operation: &str, backend: &str) -> String {
    format!(
        "xds_store_operation_duration_seconds_count{{operation=\"{operation}\",backend=\"{backend}\"}}"
    )
}

/// Polls `series` until it is `want`, failing with the last value after [`WAIT`].
async fn wait_for_metric(plane: &ControlPlane, series: &str, want: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = plane.metric(series).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{series} is {got}, want {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn store_latency_is_recorded(backend: Backend, label: &str) {
    let Some(plane) = ControlPlane::start(backend).await else {
        return;
    };
    let puts = store_count("put", label);
    let gets = store_count("get", label);
    // The watcher loaded the mesh once at start-up.
    assert!(plane.metric(&store_count("snapshot", label)).await >= 1.0);
    assert_eq!(plane.metric(&store_count("delete", label)).await, 0.0);

    let before = plane.metric(&puts).await;
    plane
        .put("/api/v1/services/web", json!({ "protocol": "http" }))
        .await;
    assert_eq!(plane.metric(&puts).await, before + 1.0, "one PUT, one put");

    let before = plane.metric(&gets).await;
    let (status, _) = plane.get("/api/v1/services/web").await;
    assert!(status.is_success());
    assert_eq!(plane.metric(&gets).await, before + 1.0, "one GET, one get");
    assert_eq!(
        plane
            .metric(&format!(
                "xds_store_errors_total{{operation=\"put\",backend=\"{label}\"}}"
            ))
            .await,
        0.0
    );
}

#[tokio::test]
async fn store_latency_is_recorded_on_sqlite() {
    store_latency_is_recorded(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn store_latency_is_recorded_on_postgres() {
    store_latency_is_recorded(Backend::Postgres, "postgres").await;
}

#[tokio::test]
async fn streams_pushes_and_nacks_by_type_are_counted() {
    let plane = ControlPlane::start(Backend::Sqlite).await.unwrap();
    let cds = TypeUrl::from(type_url::CLUSTER);
    let series = |name: &str, t: &str| format!("{name}{{type_url=\"{t}\",variant=\"sotw\"}}");
    let streams = "xds_streams{variant=\"sotw\"}";
    assert_eq!(plane.metric(streams).await, 0.0);
    assert_eq!(
        plane
            .metric(&series("xds_nacks_total", type_url::CLUSTER))
            .await,
        0.0
    );

    let addr = format!("127.0.0.1:{}", plane.xds_port).parse().unwrap();
    let mut proxy = AdsClient::sotw(xds_core::testing::node("metrics-test", ""))
        .wildcard(cds.clone())
        .timeout(WAIT)
        .connect(addr)
        .await
        .unwrap();
    proxy.nack_next(cds, "refused by the test");
    let first = proxy.next().await.unwrap();
    assert!(
        first.rejected.is_some(),
        "the client NACKed the first CDS response"
    );

    wait_for_metric(&plane, streams, 1.0).await;
    wait_for_metric(&plane, &series("xds_nacks_total", type_url::CLUSTER), 1.0).await;
    assert!(
        plane
            .metric(&series("xds_pushes_total", type_url::CLUSTER))
            .await
            >= 1.0
    );
    assert_eq!(
        plane
            .metric(&series("xds_nacks_total", type_url::LISTENER))
            .await,
        0.0
    );

    drop(proxy);
    wait_for_metric(&plane, streams, 0.0).await;
}

#[tokio::test]
async fn every_metric_family_is_documented() {
    let plane = ControlPlane::start(Backend::Sqlite).await.unwrap();
    let text = integration::net::local_client()
        .get(plane.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/observability.md");
    let doc = std::fs::read_to_string(doc).expect("docs/observability.md");
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(families.len() > 10, "{text}");
    let missing: Vec<&&str> = families
        .iter()
        .filter(|f| !doc.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "/metrics serves {missing:?}, which docs/observability.md does not list: add each with \
         its type, labels and meaning"
    );
}
