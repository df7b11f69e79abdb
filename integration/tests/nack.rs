//! Config a proxy refuses (both data planes, ADS SotW and Delta): the refusal is a NACK, shown
//! in the proxy status with the proxy's own words, and the config from before keeps serving.
//!
//! Where the data planes differ, the assertions say how: a raw listener using the CORS HTTP
//! filter is ACKed and served by Envoy, which implements it, and NACKed by minimal-proxy, which
//! does not and must name the filter.

use std::time::Duration;

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Stage, Variant},
    net::free_port,
    upstream::Upstream,
};
use serde_json::{Value, json};
use xds_core::type_url;

const WAIT: Duration = Duration::from_secs(30);

conformance!(
    rejected_resource_is_nacked,
    unsupported_filter_is_nacked_by_name
);

/// (e) A raw Cluster that decodes (so the API accepts it) but that no proxy can run: a STATIC
/// cluster cannot use the CLUSTER_PROVIDED load balancer. The proxy status shows CDS NACKED
/// with the proxy's words naming the cluster; the config from before keeps serving; deleting
/// the resource gets CDS back to SYNCED.
async fn rejected_resource_is_nacked(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.serve("svc-a", &a).await;
    let proxy = stage.proxy();
    let rejected_before = proxy
        .stat("cluster_manager.cds.update_rejected")
        .await
        .unwrap_or(0);

    stage
        .cp
        .put(
            "/api/v1/envoy-resources/bad-cluster",
            json!({
                "type_url": type_url::CLUSTER,
                "resource": { "name": "bad-cluster", "connect_timeout": "1s",
                              "type": "STATIC", "lb_policy": "CLUSTER_PROVIDED" },
                "selector": { "node_id": stage.node_id }
            }),
        )
        .await;
    let status = stage
        .wait_proxy("CDS NACKED", WAIT, |p| {
            p["types"][type_url::CLUSTER]["status"] == "NACKED"
        })
        .await;
    let cds = &status["types"][type_url::CLUSTER];
    let detail = cds["error_detail"].as_str().unwrap_or_default();
    // Envoy words it as its cluster manager does; minimal-proxy names the resource and field.
    let because = match plane {
        DataPlane::Envoy => "cluster provided LB",
        DataPlane::Minimal => "lb_policy",
    };
    assert!(
        detail.contains("bad-cluster") && detail.contains(because),
        "{}: error_detail names the cluster and says '{because}': {cds:#}",
        plane.as_str()
    );
    assert_ne!(
        cds["version_sent"], cds["version_acked"],
        "the rejected version is not the acked one: {cds:#}"
    );
    for t in [type_url::LISTENER, type_url::ROUTE] {
        assert_eq!(status["types"][t]["status"], "SYNCED", "{t}: {status:#}");
    }
    let rejected = proxy
        .stat("cluster_manager.cds.update_rejected")
        .await
        .unwrap_or(0);
    assert!(
        rejected > rejected_before,
        "the proxy itself counted the rejection (cluster_manager.cds.update_rejected)"
    );

    stage.all_from("a", 20, "after-nack").await;
    let dump = proxy.config_dump().await.expect("config_dump");
    assert!(
        !dump.to_string().contains("\"bad-cluster\""),
        "the proxy runs no part of the rejected cluster"
    );

    stage.cp.delete("/api/v1/envoy-resources/bad-cluster").await;
    stage
        .wait_proxy("CDS SYNCED again", WAIT, |p| {
            p["types"][type_url::CLUSTER]["status"] == "SYNCED"
        })
        .await;
    stage.all_from("a", 5, "after-delete").await;
}

/// A raw Listener (`cors-ingress`, on its own port) whose HTTP connection manager runs the CORS
/// filter before the router, routing everything to `cluster`.
fn cors_listener(port: u16, cluster: &str) -> Value {
    json!({
        "name": "cors-ingress",
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } },
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "cors_ingress",
                "route_config": {
                    "name": "cors-local",
                    "virtual_hosts": [{
                        "name": "all",
                        "domains": ["*"],
                        "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": cluster } }]
                    }]
                },
                "http_filters": [
                    { "name": "envoy.filters.http.cors",
                      "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" } },
                    { "name": "envoy.filters.http.router",
                      "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }
                ]
            }
        }] }]
    })
}

/// An unsupported feature is refused by name. Envoy implements the CORS filter: the listener
/// is ACKed and serves. minimal-proxy does not: LDS is NACKED with `envoy.filters.http.cors`
/// in the proxy status, nothing listens on that port, and the `ingress` listener keeps
/// serving. Deleting the raw listener gets LDS back to SYNCED on both.
async fn unsupported_filter_is_nacked_by_name(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.serve("svc-a", &a).await;
    let lds_version = |p: &Value| p["types"][type_url::LISTENER]["version_acked"].clone();
    let before = stage.wait_synced(WAIT).await;
    let before = lds_version(&before);
    let cors_port = free_port();
    stage
        .cp
        .put(
            "/api/v1/envoy-resources/cors-ingress",
            json!({
                "type_url": type_url::LISTENER,
                "resource": cors_listener(cors_port, "svc-a"),
                "selector": { "node_id": stage.node_id }
            }),
        )
        .await;

    let with_cors = match plane {
        DataPlane::Envoy => {
            let status = stage
                .wait_proxy("LDS SYNCED with the CORS listener", WAIT, |p| {
                    let lds = &p["types"][type_url::LISTENER];
                    lds["status"] == "SYNCED" && lds_version(p) != before
                })
                .await;
            assert!(integration::mesh::all_synced(&status), "{status:#}");
            stage.proxy().listener_port_ready(cors_port, WAIT).await;
            let client = integration::net::local_client();
            let reply = integration::net::send(&client, cors_port, "/cors", &[])
                .await
                .unwrap_or_else(|e| {
                    stage
                        .proxy()
                        .fail(&format!("through the CORS listener: {e}"))
                });
            assert!(
                reply.from("a"),
                "Envoy serves through its CORS filter: {reply:?}"
            );
            lds_version(&status)
        }
        DataPlane::Minimal => {
            let status = stage
                .wait_proxy("LDS NACKED", WAIT, |p| {
                    p["types"][type_url::LISTENER]["status"] == "NACKED"
                })
                .await;
            let lds = &status["types"][type_url::LISTENER];
            let detail = lds["error_detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains("envoy.filters.http.cors") && detail.contains("cors-ingress"),
                "minimal-proxy names the unsupported filter and the listener: {lds:#}"
            );
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], cors_port));
            let connect = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500));
            assert!(
                connect.is_err(),
                "minimal-proxy must not listen for a listener it refused"
            );
            lds["version_sent"].clone()
        }
    };
    stage.all_from("a", 10, "ingress-after-cors").await;

    stage
        .cp
        .delete("/api/v1/envoy-resources/cors-ingress")
        .await;
    stage
        .wait_proxy("LDS SYNCED without the CORS listener", WAIT, |p| {
            p["types"][type_url::LISTENER]["status"] == "SYNCED" && lds_version(p) != with_cors
        })
        .await;
    stage.all_from("a", 5, "after-delete").await;
}
