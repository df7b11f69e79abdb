//! The Envoy harness against the real Envoy binary, with no control plane: a static bootstrap
//! routes a listener to an upstream; every request must get there, and the admin helpers
//! (ready, config_dump, stats, logs) must see what Envoy runs.

use std::time::Duration;

use integration::{
    envoy::{self, Envoy, free_port, local_client},
    mesh,
    upstream::Upstream,
};
use serde_json::{Value, json};

/// A listener on 127.0.0.1:`listen_port` sending every request to a STATIC cluster that holds
/// `upstream_port`. JSON is YAML, so this is a valid `-c` file.
fn static_bootstrap(listen_port: u16, upstream_port: u16) -> String {
    let socket =
        |port: u16| json!({ "socket_address": { "address": "127.0.0.1", "port_value": port } });
    json!({
        "node": { "id": "harness", "cluster": "harness" },
        "admin": { "address": socket(0) },
        "static_resources": {
            "listeners": [{
                "name": "ingress",
                "address": socket(listen_port),
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        "route_config": {
                            "name": "local",
                            "virtual_hosts": [{
                                "name": "all",
                                "domains": ["*"],
                                "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": "upstream" } }],
                            }],
                        },
                        "http_filters": [{
                            "name": "envoy.filters.http.router",
                            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
                        }],
                    },
                }] }],
            }],
            "clusters": [{
                "name": "upstream",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": "upstream",
                    "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(upstream_port) } }] }],
                },
            }],
        },
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_through_a_static_envoy_reach_the_upstream() {
    if envoy::envoy_bin().is_none() {
        return;
    }
    let upstream = Upstream::start("static-a");
    let port = free_port();
    let envoy = Envoy::start(&static_bootstrap(port, upstream.port()));
    envoy.wait_ready(Duration::from_secs(30)).await;
    envoy
        .listener_port_ready(port, Duration::from_secs(10))
        .await;

    let dump = envoy
        .wait_for("the static listener", Duration::from_secs(10), |dump| {
            envoy::dump_section(dump, "ListenersConfigDump")
                .is_some_and(|l| l.to_string().contains("\"ingress\""))
        })
        .await;
    assert!(envoy::dump_section(&dump, "ClustersConfigDump").is_some());

    let client = local_client();
    for i in 0..20 {
        let path = format!("/hello/{i}");
        let reply = mesh::send(&client, port, &path, &[("x-test", "Harness")])
            .await
            .unwrap_or_else(|e| envoy.fail(&format!("request {i}: {e}")));
        assert_eq!(reply.status, 200, "request {i}: {}", reply.body);
        assert_eq!(reply.upstream.as_deref(), Some("static-a"));
        assert_eq!(reply.path.as_deref(), Some(path.as_str()));
        assert_eq!(
            reply.headers["x-test"], "Harness",
            "headers arrive lowercased"
        );
        assert!(
            reply.headers["x-request-id"].is_string(),
            "Envoy adds its request id: {}",
            reply.headers
        );
    }
    assert_eq!(
        upstream.hits(),
        20,
        "every request reached the upstream once"
    );

    let stats: Value = envoy.stats().await;
    assert!(stats["stats"].as_array().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        envoy.stat("cluster.upstream.upstream_rq_200").await,
        Some(20)
    );
    assert!(envoy.is_running());
    envoy.kill();
    assert!(!envoy.is_running(), "kill() stops Envoy");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_bootstrap_fails_with_envoys_log() {
    if envoy::envoy_bin().is_none() {
        return;
    }
    let envoy = Envoy::start("static_resources: { clusters: [ { name: x, type: NOPE } ] }\n");
    let waited = tokio::spawn(async move {
        envoy.wait_ready(Duration::from_secs(20)).await;
    })
    .await;
    let panic = waited.expect_err("a bootstrap Envoy refuses never becomes ready");
    let message = panic
        .into_panic()
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(
        message.contains("Envoy exited") && message.contains("NOPE"),
        "the failure says Envoy exited and shows its log: {message}"
    );
}
