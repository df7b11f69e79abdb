//! Admin API tests: each page rendered from a known engine state, in Envoy's shape (the shapes
//! were taken from Envoy 1.40's admin API configured by the same xds-server).

use std::{sync::Arc, time::Instant};

use envoy_types::pb::{envoy::service::discovery::v3::DiscoveryResponse, google::protobuf::Any};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::Notify;
use xds_core::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};

use super::{State, route};
use crate::{
    bootstrap::{self, Overrides},
    runtime::Runtime,
    xds::{
        Handle, Update,
        engine::Engine,
        live::Live,
        tests::{assignment, eds_cluster, listener, route as route_config},
    },
};

/// The admin state of a proxy started from xds-server's ADS bootstrap, nothing received yet.
fn state() -> State {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/bootstrap/testdata/ads-grpc.yaml");
    let bootstrap =
        Arc::new(bootstrap::load(&path, &Overrides::default()).expect("xds-server's bootstrap"));
    let now = Instant::now();
    let mut engine = Engine::new(&bootstrap, now);
    engine.start(now);
    engine.complete(Vec::new(), now);
    State {
        bootstrap,
        xds: Handle::new(engine),
        runtime: Runtime::new(),
        quit: Arc::new(Notify::new()),
        started: now,
    }
}

/// Feeds one SotW response through the engine and publishes the runtime, as the client does.
fn respond(state: &State, live: &mut Live, type_url: &str, version: &str, resources: Vec<Any>) {
    let mut engine = state.xds.lock();
    let update = Update::from_sotw(DiscoveryResponse {
        version_info: version.into(),
        resources,
        type_url: type_url.into(),
        nonce: version.into(),
        ..Default::default()
    });
    let now = Instant::now();
    engine.on_response(update, now);
    engine.complete(Vec::new(), now);
    live.publish(engine.store(), &state.runtime);
}

/// A state after the whole exchange: cluster `web`, listener and route `ingress`.
fn configured() -> State {
    let state = state();
    let mut live = Live::default();
    live.publish(state.xds.lock().store(), &state.runtime);
    respond(
        &state,
        &mut live,
        CLUSTER,
        "c1",
        vec![eds_cluster("web", "")],
    );
    respond(
        &state,
        &mut live,
        ENDPOINT,
        "e1",
        vec![assignment("web", 8081)],
    );
    respond(
        &state,
        &mut live,
        LISTENER,
        "l1",
        vec![listener("ingress", 10000, "ingress")],
    );
    respond(
        &state,
        &mut live,
        ROUTE,
        "r1",
        vec![route_config("ingress", "web")],
    );
    state
}

async fn get(state: &State, path_and_query: &str) -> (StatusCode, String) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let response = route(state, &Method::GET, path, query);
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("in memory")
        .to_bytes();
    (status, String::from_utf8(body.to_vec()).expect("utf-8"))
}

async fn get_json(state: &State, path_and_query: &str) -> Value {
    let (status, body) = get(state, path_and_query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

#[tokio::test]
async fn ready_says_where_start_up_is_as_envoy_does() {
    let state = state();
    assert_eq!(
        get(&state, "/ready").await,
        (StatusCode::SERVICE_UNAVAILABLE, "PRE_INITIALIZING\n".into())
    );
    let state = configured();
    assert_eq!(
        get(&state, "/ready").await,
        (StatusCode::OK, "LIVE\n".into())
    );
    assert_eq!(get_json(&state, "/server_info").await["state"], "LIVE");
}

#[tokio::test]
async fn the_config_dump_has_envoys_sections_and_resources_as_proto3_json() {
    let state = configured();
    let dump = get_json(&state, "/config_dump").await;
    let types: Vec<&str> = dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["@type"].as_str().unwrap())
        .collect();
    let admin = |t: &str| format!("type.googleapis.com/envoy.admin.v3.{t}");
    assert_eq!(
        types,
        [
            "BootstrapConfigDump",
            "ClustersConfigDump",
            "ListenersConfigDump",
            "ScopedRoutesConfigDump",
            "RoutesConfigDump",
            "SecretsConfigDump"
        ]
        .map(admin)
    );
    let configs = &dump["configs"];
    assert_eq!(configs[0]["bootstrap"]["node"]["id"], "proxy-1");
    assert_eq!(
        configs[0]["bootstrap"]["node"]["user_agent_name"],
        "minimal-proxy"
    );
    let clusters = &configs[1];
    assert_eq!(clusters["version_info"], "c1");
    assert_eq!(
        clusters["static_clusters"][0]["cluster"]["name"],
        "xds_cluster"
    );
    assert_eq!(
        clusters["static_clusters"][0]["cluster"]["connect_timeout"],
        "1s"
    );
    let web = &clusters["dynamic_active_clusters"][0];
    assert_eq!(web["version_info"], "c1");
    assert_eq!(web["cluster"]["@type"], CLUSTER);
    assert_eq!(web["cluster"]["type"], "EDS");
    assert!(web["last_updated"].as_str().unwrap().ends_with('Z'));
    let ingress = &configs[2]["dynamic_listeners"][0];
    assert_eq!(ingress["name"], "ingress");
    assert_eq!(ingress["active_state"]["version_info"], "l1");
    assert_eq!(
        ingress["active_state"]["listener"]["address"]["socket_address"]["port_value"],
        10000
    );
    assert_eq!(
        configs[4]["dynamic_route_configs"][0]["route_config"]["name"],
        "ingress"
    );
}

#[tokio::test]
async fn one_resource_field_is_listed_alone_with_its_item_type() {
    let state = configured();
    let dump = get_json(&state, "/config_dump?resource=dynamic_active_clusters").await;
    let item = &dump["configs"][0];
    assert_eq!(
        item["@type"],
        "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster"
    );
    assert_eq!(item["cluster"]["name"], "web");
    let (status, body) = get(&state, "/config_dump?resource=nope").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "nope not found in config dump\n")
    );
    let dump = get_json(&state, "/config_dump?include_eds").await;
    let eds = dump["configs"].as_array().unwrap().last().unwrap();
    assert_eq!(
        eds["@type"],
        "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump"
    );
    assert_eq!(
        eds["static_endpoint_configs"][0]["endpoint_config"]["cluster_name"],
        "xds_cluster"
    );
    assert_eq!(
        eds["dynamic_endpoint_configs"][0]["endpoint_config"]["cluster_name"],
        "web"
    );
}

#[tokio::test]
async fn a_warming_cluster_and_a_rejected_listener_show_as_envoy_shows_them() {
    let state = configured();
    let mut live = Live::default();
    respond(
        &state,
        &mut live,
        CLUSTER,
        "c2",
        vec![eds_cluster("web", ""), eds_cluster("api", "")],
    );
    let broken = crate::xds::tests::any(LISTENER, serde_json::json!({ "name": "broken" }));
    respond(
        &state,
        &mut live,
        LISTENER,
        "l2",
        vec![listener("ingress", 10000, "ingress"), broken],
    );
    let dump = get_json(&state, "/config_dump").await;
    let warming = &dump["configs"][1]["dynamic_warming_clusters"][0];
    assert_eq!(
        (&warming["cluster"]["name"], &warming["version_info"]),
        (&"api".into(), &"c2".into())
    );
    let broken = &dump["configs"][2]["dynamic_listeners"][0];
    assert_eq!(broken["name"], "broken");
    assert!(
        broken["error_state"]["details"]
            .as_str()
            .unwrap()
            .starts_with("listener 'broken'")
    );
    assert_eq!(
        broken["error_state"]["failed_configuration"]["name"],
        "broken"
    );
}

#[tokio::test]
async fn clusters_are_listed_in_envoys_text_and_json_formats() {
    let state = configured();
    let (status, text) = get(&state, "/clusters").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "xds_cluster::added_via_api::false",
        "xds_cluster::127.0.0.1:19180::health_flags::healthy",
        "web::observability_name::web",
        "web::default_priority::max_connections::1024",
        "web::added_via_api::true",
        "web::127.0.0.1:8081::health_flags::healthy",
        "web::127.0.0.1:8081::weight::1",
        "web::127.0.0.1:8081::rq_total::0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line} in:\n{text}"
        );
    }
    let json = get_json(&state, "/clusters?format=json").await;
    let web = &json["cluster_statuses"][1];
    assert_eq!(
        (&web["name"], &web["added_via_api"]),
        (&"web".into(), &true.into())
    );
    let host = &web["host_statuses"][0];
    assert_eq!(host["address"]["socket_address"]["port_value"], 8081);
    assert_eq!(host["health_status"]["eds_health_status"], "HEALTHY");
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_are_refused() {
    let state = state();
    let response = route(&state, &Method::POST, "/ready", "");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = route(&state, &Method::GET, "/quitquitquit", "");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get(&state, "/nope").await.0, StatusCode::NOT_FOUND);
    let response = route(&state, &Method::POST, "/quitquitquit", "");
    assert_eq!(response.status(), StatusCode::OK);
    // The notification is stored until the app waits for it.
    tokio::time::timeout(std::time::Duration::from_secs(1), state.quit.notified())
        .await
        .expect("quit was signalled");
}

#[test]
fn timestamps_are_rfc3339_utc_with_milliseconds() {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_137_835_287);
    assert_eq!(super::config_dump::timestamp(t), "2026-12-01T15:10:35.287Z");
}

#[tokio::test]
async fn stats_are_listed_as_envoys_text_filtered_by_a_regex() {
    let state = configured();
    let (status, text) = get(&state, "/stats?filter=^cluster\\.web\\.").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.lines()
            .any(|l| l == "cluster.web.upstream_rq_total: 0"),
        "{text}"
    );
    assert!(
        text.lines().all(|l| l.starts_with("cluster.web.")),
        "{text}"
    );
    let json = get_json(&state, "/stats?format=json&filter=upstream_rq_total").await;
    let names: Vec<&str> = json["stats"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"cluster.web.upstream_rq_total"),
        "{names:?}"
    );
    assert_eq!(
        get(&state, "/stats?filter=(").await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, prometheus) = get(&state, "/stats/prometheus").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        prometheus.contains("envoy_cluster_upstream_rq_total{envoy_cluster_name=\"web\"} 0"),
        "{prometheus}"
    );
}

#[tokio::test]
async fn the_config_dump_shows_secrets_with_their_private_keys_redacted() {
    use crate::xds::tests::secrets::{API, bundle, certificate, pem, tls_cluster};
    let state = state();
    let mut live = Live::default();
    respond(&state, &mut live, CLUSTER, "c1", vec![tls_cluster("web")]);
    let (_, key) = pem(API);
    let secrets = vec![certificate(API, &key), bundle()];
    respond(&state, &mut live, xds_core::type_url::SECRET, "s1", secrets);
    assert!(
        state.runtime.secrets.get(API).is_some(),
        "published for handshakes"
    );

    let dump = get_json(&state, "/config_dump").await;
    let body = key.lines().nth(1).unwrap();
    assert!(!dump.to_string().contains(body), "the key never shows");
    let configs = dump["configs"].as_array().unwrap();
    let secrets = configs
        .iter()
        .find(|c| c["@type"].as_str().unwrap().ends_with("SecretsConfigDump"))
        .unwrap();
    let active = secrets["dynamic_active_secrets"].as_array().unwrap();
    let names: Vec<&str> = active.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["mesh-trust-bundle", API]);
    let cert = &active[1]["secret"]["tls_certificate"];
    assert_eq!(cert["private_key"]["inline_string"], "[redacted]");
    assert!(
        cert["certificate_chain"]["inline_string"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(active[1]["version_info"], "s1");
}
