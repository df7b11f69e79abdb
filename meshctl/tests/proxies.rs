//! `meshctl proxy-status`, `proxy-config` and `bootstrap` with a real data plane: no proxies,
//! then a minimal-proxy started from the bootstrap meshctl prints, seen SYNCED on every type
//! (and `meshctl get` counting it on the objects it runs), then a resource it rejects, seen
//! held back with the proxy's own words, on the proxy and on the object.

mod support;

use integration::{
    net::free_port,
    proxy::{DataPlane, Proxy},
};
use serde_json::Value;
use support::{Env, Run};
use xds_core::TypeUrl;

const NODE: &str = "edge-1";

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run}"))
}

fn node(status: &Value) -> Option<&Value> {
    status["items"]
        .as_array()?
        .iter()
        .find(|p| p["node_id"] == NODE)
}

#[tokio::test]
async fn proxy_status_and_config_of_a_real_minimal_proxy() {
    let env = Env::start();

    // Nobody connected yet: said on stderr, success, and an empty list as JSON.
    let run = env.meshctl(&["proxy-status"]);
    assert!(
        run.ok().stderr.contains("no proxies are connected"),
        "{run}"
    );
    assert_eq!(
        json(env.meshctl(&["proxy-status", "-o", "json"]).ok())["items"],
        Value::Array(vec![])
    );
    let run = env.meshctl(&["proxy-status", NODE]);
    assert!(
        run.code(1)
            .stderr
            .contains("no proxy with node id 'edge-1'"),
        "{run}"
    );

    // The demo mesh on a free port of 127.0.0.1 (the listener is bound by the proxy).
    let port = free_port();
    let mesh = std::fs::read_to_string(support::repo().join("demo/mesh.yaml"))
        .unwrap()
        .replace("address: 0.0.0.0", "address: 127.0.0.1")
        .replace("port: 10000", &format!("port: {port}"));
    env.meshctl(&["apply", "-f", &env.file("mesh.yaml", &mesh)])
        .ok();

    let admin_port = free_port().to_string();
    let run = env.meshctl(&[
        "bootstrap",
        NODE,
        "--cluster",
        "ingress",
        "--admin-port",
        &admin_port,
    ]);
    let bootstrap = &run.ok().stdout;
    let proxy = Proxy::start(DataPlane::Minimal, bootstrap);

    let synced = |run: &Run| {
        let status: Value = serde_json::from_str(&run.stdout).unwrap_or_default();
        node(&status).is_some_and(|p| {
            TypeUrl::ADS_ORDER
                .iter()
                .all(|t| p["types"][t.as_str()]["status"] == "SYNCED")
        })
    };
    env.wait_for(&["proxy-status", "-o", "json"], "every type SYNCED", synced);

    // The fleet table: one row, every type SYNCED.
    let run = env.meshctl(&["proxy-status"]);
    let lines = run.ok().lines();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NODE",
            "CLUSTER",
            "VARIANT",
            "CDS",
            "EDS",
            "LDS",
            "RDS",
            "OTHER",
            "CONNECTED"
        ]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &row[..7],
        [
            NODE, "ingress", "sotw", "SYNCED", "SYNCED", "SYNCED", "SYNCED"
        ]
    );

    // One proxy: a row per type with the versions sent and acknowledged.
    let run = env.meshctl(&["proxy-status", NODE]);
    run.ok();
    assert!(
        run.stdout
            .contains("node:      edge-1\ncluster:   ingress\n"),
        "{run}"
    );
    let cds: Vec<&str> = run
        .stdout
        .lines()
        .find(|l| l.starts_with("CDS"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(cds[1], "SYNCED");
    assert_eq!(cds[2], cds[3], "acknowledged what was sent: {run}");

    // The objects count the proxy: it runs the route's current version.
    let run = env.meshctl(&["get", "route", "web"]);
    let lines = run.ok().lines();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    let at = header.iter().position(|h| *h == "PROXIES").unwrap();
    assert_eq!(row[at..at + 3], ["1", "1/1", "0"], "{run}");

    // What the proxy was computed: the web cluster, the ingress listener, by type.
    let run = env.meshctl(&["proxy-config", NODE, "--type", "cluster"]);
    let rows: Vec<Vec<&str>> = run
        .ok()
        .lines()
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["TYPE", "NAME", "VERSION"]);
    assert_eq!(rows[1][..2], ["CDS", "web"]);
    assert_eq!(rows.len(), 2, "{run}");
    let run = env.meshctl(&["proxy-config", NODE, "-o", "json"]);
    let config = json(run.ok());
    assert!(
        config[TypeUrl::Listener.as_str()]["ingress"]["resource"].is_object(),
        "{run}"
    );
    assert!(
        config[TypeUrl::Route.as_str()]["ingress"].is_object(),
        "{run}"
    );

    // A cluster no proxy can run (STATIC with the CLUSTER_PROVIDED balancer): the proxy
    // rejects it, and proxy-status shows it held back with the proxy's message.
    let bad = format!(
        "kind: envoy-resource\nname: bad-cluster\ntype_url: {}\n\
         resource: {{name: bad-cluster, connect_timeout: 1s, type: STATIC, lb_policy: CLUSTER_PROVIDED}}\n\
         selector: {{node_id: {NODE}}}\n",
        TypeUrl::Cluster.as_str()
    );
    env.meshctl(&["apply", "-f", &env.file("bad.yaml", &bad)])
        .ok();
    let held = |run: &Run| {
        let status: Value = serde_json::from_str(&run.stdout).unwrap_or_default();
        node(&status).is_some_and(|p| {
            p["held_back"]
                .as_array()
                .is_some_and(|h| h.iter().any(|x| x["name"] == "bad-cluster"))
        })
    };
    env.wait_for(
        &["proxy-status", "-o", "json"],
        "bad-cluster held back",
        held,
    );
    let run = env.meshctl(&["proxy-status"]);
    let note = run
        .ok()
        .stdout
        .lines()
        .find(|l| l.starts_with("edge-1 holds back CDS bad-cluster"))
        .unwrap_or_else(|| panic!("no held-back line: {run}"))
        .to_string();
    assert!(
        note.contains("rejected by edge-1") && note.contains("lb_policy"),
        "{note}"
    );
    let run = env.meshctl(&["proxy-status", NODE]);
    assert!(
        run.ok().stdout.contains("holds back CDS bad-cluster"),
        "{run}"
    );
    // The object shows it too, and its YAML (with the status) applies back unchanged.
    let run = env.meshctl(&["get", "envoy-resource", "bad-cluster"]);
    let note = run
        .ok()
        .stdout
        .lines()
        .find(|l| {
            l.starts_with("envoy-resource/bad-cluster: rejected by edge-1 (Cluster bad-cluster): ")
        })
        .unwrap_or_else(|| panic!("no rejection line: {run}"))
        .to_string();
    assert!(note.contains("lb_policy"), "{note}");
    let run = env.meshctl(&["get", "envoy-resource", "bad-cluster", "-o", "yaml"]);
    assert!(run.ok().stdout.contains("\nstatus:\n"), "{run}");
    let again = env.meshctl(&["apply", "-f", &env.file("got.yaml", &run.stdout)]);
    assert_eq!(again.ok().lines(), ["envoy-resource/bad-cluster unchanged"]);
    drop(proxy);
}
