//! The proxy harness against both data planes, with no control plane: a static bootstrap
//! routes a listener to an upstream; every request must get there, and the admin helpers
//! (ready, config_dump, stats, logs) must see what the proxy runs. A bootstrap the proxy
//! refuses fails with the proxy's own words.

use std::time::Duration;

use integration::{
    net::{self, free_port, local_client},
    proxy::{self, DataPlane, Proxy},
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
async fn envoy_serves_a_static_bootstrap() {
    requests_through_a_static_proxy_reach_the_upstream(DataPlane::Envoy).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn minimal_serves_a_static_bootstrap() {
    requests_through_a_static_proxy_reach_the_upstream(DataPlane::Minimal).await;
}

async fn requests_through_a_static_proxy_reach_the_upstream(plane: DataPlane) {
    if plane.binary().is_none() {
        return;
    }
    let upstream = Upstream::start("static-a");
    let port = free_port();
    let proxy = Proxy::start(plane, &static_bootstrap(port, upstream.port()));
    proxy.wait_ready(Duration::from_secs(30)).await;
    proxy
        .listener_port_ready(port, Duration::from_secs(10))
        .await;

    let dump = proxy
        .wait_for("the static listener", Duration::from_secs(10), |dump| {
            proxy::dump_section(dump, "ListenersConfigDump")
                .is_some_and(|l| l.to_string().contains("\"ingress\""))
        })
        .await;
    assert!(proxy::dump_section(&dump, "ClustersConfigDump").is_some());

    let client = local_client();
    for i in 0..20 {
        let path = format!("/hello/{i}");
        let reply = net::send(&client, port, &path, &[("x-test", "Harness")])
            .await
            .unwrap_or_else(|e| proxy.fail(&format!("request {i}: {e}")));
        assert_eq!(reply.status, 200, "request {i}: {}", reply.body);
        assert_eq!(reply.upstream.as_deref(), Some("static-a"));
        assert_eq!(reply.path.as_deref(), Some(path.as_str()));
        assert_eq!(
            reply.headers["x-test"], "Harness",
            "headers arrive lowercased"
        );
        assert!(
            reply.headers["x-request-id"].is_string(),
            "the proxy adds its request id (x-request-id), as Envoy does: {}",
            reply.headers
        );
    }
    assert_eq!(
        upstream.hits(),
        20,
        "every request reached the upstream once"
    );

    let stats: Value = proxy.stats().await;
    assert!(stats["stats"].as_array().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        proxy.stat("cluster.upstream.upstream_rq_200").await,
        Some(20)
    );
    assert!(proxy.is_running());
    proxy.kill();
    assert!(!proxy.is_running(), "kill() stops the proxy");
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_refuses_a_bad_bootstrap() {
    a_bad_bootstrap_fails_with_the_proxys_log(DataPlane::Envoy).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn minimal_refuses_a_bad_bootstrap() {
    a_bad_bootstrap_fails_with_the_proxys_log(DataPlane::Minimal).await;
}

async fn a_bad_bootstrap_fails_with_the_proxys_log(plane: DataPlane) {
    if plane.binary().is_none() {
        return;
    }
    let proxy = Proxy::start(
        plane,
        "static_resources: { clusters: [ { name: x, type: NOPE } ] }\n",
    );
    let waited = tokio::spawn(async move {
        proxy.wait_ready(Duration::from_secs(20)).await;
    })
    .await;
    let panic = waited.expect_err("a refused bootstrap never becomes ready");
    let message = panic
        .into_panic()
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(
        message.contains("the process exited") && message.contains("NOPE"),
        "the failure says the proxy exited and shows its log naming the bad value: {message}"
    );
}
