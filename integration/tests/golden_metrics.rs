//! Golden metrics end to end, on both data planes: the proxy bootstrapped from
//! `GET /api/v1/bootstrap` streams its stats to the real xds-server (Envoy's metrics-service
//! sink; minimal-proxy's client of the same service), which serves requests/s, success rate
//! and latency per service, per route and per calling proxy at
//! `GET /api/v1/services/{name}/stats`.
//!
//! The service `web` has two real upstreams, one answering every request 503. The figures the
//! server computes must equal the proxy's own counters (`cluster.web.*`,
//! `vhost.main.route.main.*` from its admin `/stats`): exact aggregation, not an estimate. The
//! proxy is fresh and the test takes well under a minute, so the 1m window holds everything it
//! counted.

use std::time::{Duration, Instant};

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Stage, Variant},
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// Requests sent through the proxy after it answers.
const REQUESTS: usize = 60;

conformance!(figures_per_service_route_and_proxy_match_the_proxys_own_counters);

async fn figures_per_service_route_and_proxy_match_the_proxys_own_counters(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let (_ok, _failing) = stage.serve_web_partly_failing().await;

    let (mut good, mut bad) = (0, 0);
    for i in 0..REQUESTS {
        match stage.send(&format!("/golden/{i}"), &[]).await {
            Ok(reply) if reply.status == 200 => good += 1,
            Ok(reply) if reply.status == 503 => bad += 1,
            other => stage
                .proxy()
                .fail(&format!("request {i}: neither 200 nor 503: {other:?}")),
        }
    }
    // Round robin over one good and one failing endpoint.
    assert!(good >= 20 && bad >= 20, "{good} good, {bad} failed");

    // The proxy's own counters: what the server must arrive at.
    let proxy = stage.proxy();
    let completed = proxy.stat("cluster.web.upstream_rq_completed").await;
    let completed = completed.unwrap_or_else(|| proxy.fail("no cluster.web.upstream_rq_completed"));
    let failed = proxy.stat("cluster.web.upstream_rq_5xx").await.unwrap_or(0);
    let route = "vhost.main.route.main.upstream_rq_completed";
    let route_completed = proxy
        .stat(route)
        .await
        .unwrap_or_else(|| proxy.fail(&format!("no {route}")));
    assert!(
        completed >= REQUESTS as u64 && failed >= bad,
        "{completed} / {failed}"
    );

    let uri = "/api/v1/services/web/stats?window=1m";
    let stats = wait_stats(&stage, uri, |s| {
        s["requests"] == completed && s["routes"][0]["requests"] == route_completed
    })
    .await;
    let expected_rate = round4((completed - failed) as f64 / completed as f64);
    assert_eq!(stats["success_rate"], expected_rate, "{stats:#}");
    let rate = stats["success_rate"].as_f64().unwrap();
    assert!(
        (0.3..=0.7).contains(&rate),
        "one of two endpoints fails: {stats:#}"
    );
    assert!(
        stats["requests_per_second"].as_f64().unwrap() > 0.0,
        "{stats:#}"
    );
    let latency = |l: &Value| {
        ["p50", "p95", "p99"].map(|p| l[p].as_f64().unwrap_or_else(|| panic!("{p}: {stats:#}")))
    };
    let [p50, p95, p99] = latency(&stats["latency_ms"]);
    assert!(p50 > 0.0 && p50 <= p95 && p95 <= p99, "{stats:#}");

    // Per route: the one route, all of it; per proxy: this proxy, all of it.
    let routes = stats["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1, "{stats:#}");
    assert_eq!(routes[0]["route"], "main");
    assert!(latency(&routes[0]["latency_ms"])[0] > 0.0, "{stats:#}");
    let proxies = stats["proxies"].as_array().unwrap();
    assert_eq!(proxies.len(), 1, "{stats:#}");
    assert_eq!(proxies[0]["node_id"], stage.node_id.as_str());
    assert_eq!(proxies[0]["requests"], completed);
    assert_eq!(proxies[0]["success_rate"], expected_rate);
    assert!(latency(&proxies[0]["latency_ms"])[2] > 0.0, "{stats:#}");

    // The 10 s window is a part of the minute; the list of every service has the same figures.
    let (_, short) = stage.cp.get("/api/v1/services/web/stats?window=10s").await;
    assert_eq!(short["window_seconds"], 10, "{short:#}");
    assert!(
        short["requests"].as_u64().unwrap() <= completed,
        "{short:#}"
    );
    let (_, all) = stage.cp.get("/api/v1/stats").await;
    assert_eq!(all["items"][0]["service"], "web", "{all:#}");
    assert_eq!(all["items"][0]["requests"], completed, "{all:#}");

    // Prometheus finds the proxy through the server and scrapes Envoy's names from it.
    let (_, targets) = stage.cp.get("/api/v1/prometheus/targets").await;
    let group = targets
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["labels"]["node_id"] == stage.node_id.as_str())
        .unwrap_or_else(|| panic!("{} is not a target: {targets:#}", stage.node_id));
    assert_eq!(group["labels"]["__metrics_path__"], "/stats/prometheus");
    assert_eq!(group["labels"]["node_cluster"], "mesh-test");
    let target = group["targets"][0].as_str().unwrap();
    let scrape = reqwest::get(format!("http://{target}/stats/prometheus"))
        .await
        .and_then(|r| r.error_for_status());
    let text = match scrape {
        Ok(resp) => resp.text().await.unwrap_or_default(),
        Err(e) => stage.proxy().fail(&format!("scraping {target}: {e}")),
    };
    let line =
        format!("envoy_cluster_upstream_rq_completed{{envoy_cluster_name=\"web\"}} {completed}");
    assert!(text.contains(&line), "{target}: no '{line}' in the scrape");
}

/// Polls `uri` until `accept` holds for its body; fails with the last one and the proxy's log.
async fn wait_stats(stage: &Stage, uri: &str, accept: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = stage.cp.get(uri).await;
        if status.is_success() && accept(&body) {
            return body;
        }
        if Instant::now() > deadline {
            let own = stage
                .proxy()
                .stats_matching(&["cluster.web.upstream_rq", "vhost.main"])
                .await;
            stage.proxy().fail(&format!(
                "GET {uri} never matched the proxy's own counters:\n{own}\nlast: {status} {body:#}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}
