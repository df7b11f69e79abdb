//! Features Envoy implements and minimal-proxy does not, one per xDS type (both data planes,
//! ADS SotW and Delta), sent as raw `envoy-resources`. The data planes differ here by design
//! and each assertion says how: Envoy ACKs the resource and serves it; minimal-proxy NACKs it
//! with the feature's name, the resource is held back (`held_back` in the proxy status), and
//! the config from before keeps serving. On both, deleting the resource brings the type back
//! to SYNCED with nothing held back.
//!
//! - LDS: a listener whose HTTP connection manager runs the CORS filter.
//! - RDS: the `ingress` route configuration replaced by one with a redirect route.
//! - CDS: a cluster with `close_connections_on_host_health_failure`.

use std::time::Duration;

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Stage, Variant},
    net::{self, free_port, local_client},
    proxy::dump_section,
    upstream::Upstream,
};
use serde_json::{Value, json};
use xds_core::type_url;

const WAIT: Duration = Duration::from_secs(30);

conformance!(unsupported_features_are_nacked_by_name);

/// The `held_back` entry of the proxy status for `name`, if any.
fn held<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["held_back"]
        .as_array()?
        .iter()
        .find(|h| h["name"] == name)
}

/// One raw resource only Envoy implements.
struct Unsupported {
    type_url: &'static str,
    name: &'static str,
    resource: Value,
    /// What minimal-proxy's NACK must name.
    feature: &'static str,
}

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const CORS: &str = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";

fn cases(cors_port: u16, upstream_port: u16) -> [Unsupported; 3] {
    let socket =
        |port: u16| json!({ "socket_address": { "address": "127.0.0.1", "port_value": port } });
    let cors_listener = json!({
        "name": "cors-ingress",
        "address": socket(cors_port),
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": HCM,
                "stat_prefix": "cors_ingress",
                "route_config": { "name": "cors-local", "virtual_hosts": [{
                    "name": "all", "domains": ["*"],
                    "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": "svc-a" } }] }] },
                "http_filters": [
                    { "name": "envoy.filters.http.cors", "typed_config": { "@type": CORS } },
                    { "name": "envoy.filters.http.router", "typed_config": { "@type": ROUTER } }
                ]
            }
        }] }]
    });
    let redirecting_routes = json!({
        "name": "ingress",
        "virtual_hosts": [{ "name": "all", "domains": ["*"], "routes": [
            { "match": { "prefix": "/moved" },
              "redirect": { "path_redirect": "/new-home", "response_code": "MOVED_PERMANENTLY" } },
            { "match": { "prefix": "/" }, "route": { "cluster": "svc-a" } }
        ] }]
    });
    let closing_cluster = json!({
        "name": "extra-cluster",
        "type": "STATIC",
        "connect_timeout": "1s",
        "close_connections_on_host_health_failure": true,
        "load_assignment": { "cluster_name": "extra-cluster", "endpoints": [{
            "lb_endpoints": [{ "endpoint": { "address": socket(upstream_port) } }] }] }
    });
    [
        Unsupported {
            type_url: type_url::LISTENER,
            name: "cors-ingress",
            resource: cors_listener,
            feature: "envoy.filters.http.cors",
        },
        Unsupported {
            type_url: type_url::ROUTE,
            name: "ingress",
            resource: redirecting_routes,
            feature: "redirect",
        },
        Unsupported {
            type_url: type_url::CLUSTER,
            name: "extra-cluster",
            resource: closing_cluster,
            feature: "close_connections_on_host_health_failure",
        },
    ]
}

/// What Envoy does with each case once it has ACKed it.
async fn envoy_serves(stage: &Stage, case: &Unsupported, cors_port: u16) {
    let proxy = stage.proxy();
    match case.type_url {
        type_url::LISTENER => {
            proxy.listener_port_ready(cors_port, WAIT).await;
            let reply = net::send(&local_client(), cors_port, "/cors", &[]).await;
            assert!(
                reply.as_ref().is_ok_and(|r| r.from("a")),
                "Envoy serves through its CORS filter: {reply:?}"
            );
        }
        type_url::ROUTE => {
            let no_follow = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(WAIT)
                .build()
                .expect("an HTTP client");
            let reply = net::send(&no_follow, stage.listener_port, "/moved", &[]).await;
            let reply = reply.unwrap_or_else(|e| proxy.fail(&format!("GET /moved: {e}")));
            let location = reply.response_headers.get("location");
            assert_eq!(
                (reply.status, location.and_then(|l| l.to_str().ok())),
                (
                    301,
                    Some(format!("http://127.0.0.1:{}/new-home", stage.listener_port).as_str())
                ),
                "Envoy redirects: {reply:?}"
            );
        }
        _ => {
            let dump = proxy.config_dump().await.expect("config_dump");
            let clusters = dump_section(&dump, "ClustersConfigDump").cloned();
            assert!(
                clusters.is_some_and(|c| c.to_string().contains("\"extra-cluster\"")),
                "Envoy runs the cluster"
            );
        }
    }
}

async fn unsupported_features_are_nacked_by_name(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.serve("svc-a", &a).await;
    let cors_port = free_port();
    for case in cases(cors_port, a.port()) {
        let t = case.type_url;
        let acked = |p: &Value| p["types"][t]["version_acked"].clone();
        let before = acked(&stage.wait_synced(WAIT).await);
        let path = format!("/api/v1/envoy-resources/{}", case.name);
        let body = json!({ "type_url": t, "resource": case.resource,
                           "selector": { "node_id": stage.node_id } });
        stage.cp.put(&path, body).await;

        let with_it = match plane {
            DataPlane::Envoy => {
                let what = format!("{t} SYNCED with {}", case.name);
                let status = stage
                    .wait_proxy(&what, WAIT, |p| {
                        p["types"][t]["status"] == "SYNCED" && acked(p) != before
                    })
                    .await;
                envoy_serves(&stage, &case, cors_port).await;
                acked(&status)
            }
            DataPlane::Minimal => {
                // The NACK pins the resource: last-known-good holds it back from the proxy's
                // group, which is sent its last accepted version (or nothing) instead.
                let what = format!("{t}: {} held back after the NACK", case.name);
                let status = stage
                    .wait_proxy(&what, WAIT, |p| {
                        p["types"][t]["status"] == "SYNCED" && held(p, case.name).is_some()
                    })
                    .await;
                let entry = held(&status, case.name).expect("held back");
                let detail = entry["message"].as_str().unwrap_or_default();
                assert!(
                    detail.contains(case.feature) && detail.contains(case.name),
                    "minimal-proxy names the unsupported {} and {}: {entry:#}",
                    case.feature,
                    case.name
                );
                if t == type_url::LISTENER {
                    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], cors_port));
                    let connect =
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500));
                    assert!(
                        connect.is_err(),
                        "minimal-proxy must not listen for a listener it refused"
                    );
                }
                Value::Null
            }
        };
        stage
            .all_from("a", 10, &format!("with-{}", case.name))
            .await;

        stage.cp.delete(&path).await;
        let what = format!("{t} SYNCED without {}", case.name);
        stage
            .wait_proxy(&what, WAIT, |p| {
                let moved = match plane {
                    DataPlane::Envoy => acked(p) != with_it,
                    DataPlane::Minimal => held(p, case.name).is_none(),
                };
                p["types"][t]["status"] == "SYNCED" && moved
            })
            .await;
        stage
            .all_from("a", 5, &format!("without-{}", case.name))
            .await;
    }
}
