//! `meshctl stat` against the real server with a real minimal-proxy carrying real traffic:
//! the demo mesh with its v2 endpoint failing every request, the proxy bootstrapped from
//! `meshctl bootstrap` (which streams its stats to the server), figures equal to the proxy's
//! own counters; the table, YAML and JSON; `--watch`; and the errors a script relies on.

mod support;

use std::time::{Duration, Instant};

use integration::{
    net::{free_port, local_client, send},
    proxy::{DataPlane, Proxy},
    upstream::Upstream,
};
use serde_json::Value;
use support::{Env, Run};

const NODE: &str = "edge-1";
const REQUESTS: usize = 40;

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run}"))
}

/// The words of the first line starting with `first`.
fn row<'a>(run: &'a Run, first: &str) -> Vec<&'a str> {
    run.stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row '{first}': {run}"))
}

#[tokio::test]
async fn stat_shows_the_golden_metrics_of_real_traffic() {
    let env = Env::start();
    let v1 = Upstream::start("v1");
    let v2 = Upstream::start("v2");
    v2.set_failing(true);
    let port = free_port();
    let mesh = std::fs::read_to_string(support::repo().join("demo/mesh.yaml"))
        .unwrap()
        .replace("address: 0.0.0.0", "address: 127.0.0.1")
        .replace("port: 10000", &format!("port: {port}"))
        .replace("port: 8081", &format!("port: {}", v1.port()))
        .replace("port: 8082", &format!("port: {}", v2.port()));
    env.meshctl(&["apply", "-f", &env.file("mesh.yaml", &mesh)])
        .ok();

    // Before any traffic: the service is there, with no figures.
    let quiet = env.meshctl(&["stat"]);
    assert_eq!(
        row(quiet.ok(), "web"),
        ["web", "0.0", "-", "-", "-", "-", "0"],
        "{quiet}"
    );

    let admin_port = free_port().to_string();
    let run = env.meshctl(&[
        "bootstrap",
        NODE,
        "--cluster",
        "ingress",
        "--admin-port",
        &admin_port,
    ]);
    let proxy = Proxy::start(DataPlane::Minimal, &run.ok().stdout);
    let client = local_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(send(&client, port, "/", &[]).await, Ok(r) if r.status == 200) {
        if Instant::now() > deadline {
            proxy.fail("the ingress listener never answered 200");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..REQUESTS {
        if let Err(e) = send(&client, port, &format!("/stat/{i}"), &[]).await {
            proxy.fail(&format!("request {i}: {e}"));
        }
    }
    let completed = proxy
        .stat("cluster.web.upstream_rq_completed")
        .await
        .unwrap_or_else(|| proxy.fail("no cluster.web.upstream_rq_completed"));
    let failed = proxy.stat("cluster.web.upstream_rq_5xx").await.unwrap_or(0);
    assert!(
        failed > 0 && failed < completed,
        "{failed} of {completed} failed"
    );

    // JSON: the server's figures, equal to the proxy's own counters.
    let want = completed.to_string();
    let run = env.wait_for(
        &["stat", "web", "-o", "json"],
        "every request counted",
        |r| r.code == 0 && json(r)["requests"] == completed,
    );
    let stats = json(&run);
    assert_eq!(stats["window"], "1m");
    assert_eq!(stats["proxies"][0]["node_id"], NODE, "{run}");
    let success = stats["success_rate"].as_f64().unwrap();

    // The table: the service, its route, the proxy that called it.
    let run = env.meshctl(&["stat", "web"]);
    run.ok();
    assert_eq!(run.lines()[0], "window: 1m", "{run}");
    let header: Vec<&str> = run.lines()[1].split_whitespace().collect();
    assert_eq!(
        header,
        ["SERVICE", "RPS", "SUCCESS", "P50", "P95", "P99", "REQUESTS"]
    );
    let web = row(&run, "web");
    assert_eq!(web[2], format!("{:.2}%", success * 100.0), "{run}");
    assert!(
        web[3].ends_with("ms") || web[3].ends_with('s'),
        "a latency: {run}"
    );
    assert_eq!(web[6], want, "{run}");
    assert_eq!(row(&run, "ROUTE")[0], "ROUTE", "{run}");
    assert_eq!(row(&run, "PROXY")[0], "PROXY", "{run}");
    assert_eq!(row(&run, NODE)[6], want, "{run}");

    // Every service; the 10 s window as YAML.
    assert_eq!(row(env.meshctl(&["stat"]).ok(), "web")[6], want);
    let run = env.meshctl(&["stat", "web", "--window", "10s", "-o", "yaml"]);
    let yaml: Value = serde_yaml_ng::from_str(&run.ok().stdout).unwrap();
    assert_eq!(yaml["window"], "10s", "{run}");
    assert_eq!(yaml["window_seconds"], 10, "{run}");

    // --watch refreshes (here twice, a second apart), one JSON document each time.
    let run = env.meshctl(&[
        "stat",
        "--watch",
        "--interval",
        "1",
        "--count",
        "2",
        "-o",
        "json",
    ]);
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&run.ok().stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON documents ({e}): {run}"));
    assert_eq!(docs.len(), 2, "{run}");
    assert!(
        docs.iter().all(|d| d["items"][0]["service"] == "web"),
        "{run}"
    );
}

#[test]
fn stat_errors_have_the_documented_exit_codes() {
    let env = Env::start();
    // The server refuses: 1, with its message.
    let run = env.meshctl(&["stat", "nope"]);
    assert!(run.code(1).stderr.contains("no service 'nope'"), "{run}");
    // meshctl refuses before asking: 2.
    let run = env.meshctl(&["stat", "Web"]);
    assert!(run.code(2).stderr.contains("not a service name"), "{run}");
    for args in [
        &["stat", "--window", "5m"][..],
        &["stat", "--count", "2"],
        &["stat", "--watch", "--interval", "0"],
    ] {
        env.meshctl(args).code(2);
    }
}
