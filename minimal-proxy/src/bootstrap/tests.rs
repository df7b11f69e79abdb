//! Bootstrap parsing: the bootstraps xds-server renders (in `testdata/`, taken from the real
//! server: ADS and per-type, GRPC and DELTA_GRPC, IP and DNS name), and every refusal by its
//! field path.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

fn accepted(doc: Value) -> Bootstrap {
    from_document(doc, &Overrides::default()).unwrap_or_else(|e| panic!("refused: {e}"))
}

fn refused(doc: Value) -> String {
    match from_document(doc, &Overrides::default()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn assert_refused(doc: Value, expected_start: &str) {
    let message = refused(doc);
    assert!(
        message.starts_with(expected_start),
        "got: {message}\nwanted: {expected_start}…"
    );
}

/// The smallest document with an xDS server: ADS over `api_type`, a static xDS cluster.
fn minimal(api_type: &str) -> Value {
    json!({
        "node": { "id": "n1", "cluster": "c1" },
        "dynamic_resources": {
            "ads_config": { "api_type": api_type, "transport_api_version": "V3",
                "grpc_services": [{ "envoy_grpc": { "cluster_name": "xds" } }] },
            "cds_config": { "ads": {}, "resource_api_version": "V3" },
            "lds_config": { "ads": {}, "resource_api_version": "V3" },
        },
        "static_resources": { "clusters": [{ "name": "xds", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": { "cluster_name": "xds", "endpoints": [{ "lb_endpoints": [{ "endpoint": {
                "address": { "socket_address": { "address": "127.0.0.1", "port_value": 18000 } } } }] }] } }] },
    })
}

fn testdata(name: &str) -> Bootstrap {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/bootstrap/testdata")
        .join(name);
    load(&path, &Overrides::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

// === what xds-server renders ===

#[test]
fn the_ads_bootstraps_of_xds_server_are_taken_with_their_protocol() {
    for (file, protocol) in [
        ("ads-grpc.yaml", Protocol::Sotw),
        ("ads-delta-grpc.yaml", Protocol::Delta),
    ] {
        let b = testdata(file);
        assert_eq!(b.node.id, "proxy-1");
        assert_eq!(b.node.cluster, "ingress");
        assert_eq!(b.admin, Some("127.0.0.1:9901".parse().unwrap()));
        let d = b.dynamic.expect("dynamic resources");
        let cds = d.cds.expect("cds");
        assert_eq!(cds, d.lds.expect("lds"), "{file}: one ADS channel for both");
        assert!(cds.channel.aggregated && cds.channel.node_on_first_message_only);
        assert_eq!(cds.channel.protocol, protocol, "{file}");
        assert_eq!(cds.channel.cluster, "xds_cluster");
        assert_eq!(
            (cds.channel.target.host.as_str(), cds.channel.target.port),
            ("127.0.0.1", 19180)
        );
        assert_eq!(cds.channel.target.connect_timeout, Duration::from_secs(1));
        assert_eq!(
            cds.initial_fetch_timeout,
            Some(DEFAULT_INITIAL_FETCH_TIMEOUT)
        );
        assert_eq!(b.clusters.len(), 1);
        assert_eq!(b.clusters[0].config.name, "xds_cluster");
    }
}

#[test]
fn the_per_type_bootstraps_of_xds_server_use_separate_streams() {
    for (file, protocol) in [
        ("per-type-grpc.yaml", Protocol::Sotw),
        ("per-type-delta-grpc.yaml", Protocol::Delta),
    ] {
        let d = testdata(file).dynamic.expect("dynamic resources");
        for source in [d.cds.expect("cds"), d.lds.expect("lds")] {
            assert!(!source.channel.aggregated, "{file}");
            assert_eq!(source.channel.protocol, protocol, "{file}");
            assert_eq!(source.channel.cluster, "xds_cluster");
        }
    }
}

#[test]
fn a_dns_xds_server_and_node_metadata_are_taken() {
    let b = testdata("ads-dns-metadata.yaml");
    assert_eq!(b.node.metadata.get("role"), Some(&json!("edge")));
    let channel = b.dynamic.unwrap().cds.unwrap().channel;
    assert_eq!(channel.cluster, "control");
    assert_eq!(channel.target.host, "localhost");
    assert!(matches!(
        b.clusters[0].config.discovery,
        crate::config::Discovery::StrictDns { .. }
    ));
}

#[test]
fn the_static_xds_cluster_keeps_its_message_for_the_config_dump() {
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use prost::Message;
    let b = accepted(minimal("GRPC"));
    let any = &b.clusters[0].resource;
    assert_eq!(any.type_url, xds_core::type_url::CLUSTER);
    let cluster = Cluster::decode(any.value.as_slice()).expect("a Cluster");
    assert_eq!(cluster.name, "xds");
    assert_eq!(cluster.connect_timeout.map(|d| d.seconds), Some(1));
}

#[test]
fn command_line_overrides_fill_the_node() {
    let mut doc = minimal("GRPC");
    doc["node"] = json!({});
    let overrides = Overrides {
        node_id: Some("from-cli".into()),
        node_cluster: Some("edge".into()),
    };
    let b = from_document(doc, &overrides).expect("the overrides complete the node");
    assert_eq!(
        (b.node.id.as_str(), b.node.cluster.as_str()),
        ("from-cli", "edge")
    );
}

#[test]
fn initial_fetch_timeout_defaults_to_15s_and_zero_means_for_ever() {
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]["cds_config"]["initial_fetch_timeout"] = "0s".into();
    doc["dynamic_resources"]["lds_config"]["initial_fetch_timeout"] = "2.5s".into();
    let d = accepted(doc).dynamic.unwrap();
    assert_eq!(d.cds.unwrap().initial_fetch_timeout, None);
    assert_eq!(
        d.lds.unwrap().initial_fetch_timeout,
        Some(Duration::from_millis(2500))
    );
}

#[test]
fn a_rich_static_cluster_and_a_static_listener_go_through_envoys_descriptors() {
    let mut doc = minimal("GRPC");
    doc["static_resources"]["clusters"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({ "name": "web", "type": "STATIC", "lb_policy": "LEAST_REQUEST",
            "load_assignment": { "cluster_name": "web", "endpoints": [] } }),
        );
    doc["static_resources"]["listeners"] = json!([{
        "name": "tcp", "address": { "socket_address": { "address": "127.0.0.1", "port_value": 10000 } },
        "filter_chains": [{ "filters": [{ "name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "tcp", "cluster": "web" } }] }] }]);
    let b = accepted(doc);
    assert_eq!(b.clusters[1].config.name, "web");
    assert_eq!(b.listeners[0].config.name, "tcp");
}

// === refusals, each by path ===

#[test]
fn top_level_features_not_implemented_are_refused_by_name() {
    for field in [
        "layered_runtime",
        "stats_config",
        "tracing",
        "overload_manager",
        "watchdogs",
        "cluster_manager",
    ] {
        let mut doc = minimal("GRPC");
        doc[field] = json!({});
        assert_refused(doc, &format!("{field}: not supported by minimal-proxy"));
    }
}

#[test]
fn an_admin_access_log_or_a_name_as_admin_address_is_refused() {
    let mut doc = minimal("GRPC");
    doc["admin"] = json!({ "access_log": [], "address": { "socket_address": { "address": "127.0.0.1", "port_value": 9901 } } });
    assert_refused(doc, "admin.access_log: not supported by minimal-proxy");
    let mut doc = minimal("GRPC");
    doc["admin"] =
        json!({ "address": { "socket_address": { "address": "localhost", "port_value": 9901 } } });
    assert_refused(
        doc,
        "admin.address.socket_address.address: 'localhost' is not an IP address",
    );
    let mut doc = minimal("GRPC");
    doc["admin"] =
        json!({ "address": { "socket_address": { "address": "127.0.0.1", "port_value": 70000 } } });
    assert_refused(
        doc,
        "admin.address.socket_address.port_value: 70000 is not a port",
    );
}

#[test]
fn xds_sources_other_than_grpc_and_delta_grpc_over_v3_are_refused() {
    assert_refused(
        minimal("REST"),
        "dynamic_resources.ads_config.api_type: REST is not supported",
    );
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]["ads_config"]["transport_api_version"] = "V2".into();
    assert_refused(
        doc,
        "dynamic_resources.ads_config.transport_api_version: V2 is not supported",
    );
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]["cds_config"]["resource_api_version"] = "V2".into();
    assert_refused(
        doc,
        "dynamic_resources.cds_config.resource_api_version: V2 is not supported",
    );
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]["cds_config"] =
        json!({ "path_config_source": { "path": "/etc/cds.yaml" } });
    assert_refused(
        doc,
        "dynamic_resources.cds_config.path_config_source: not supported by minimal-proxy",
    );
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]["cds_config"] = json!({});
    assert_refused(
        doc,
        "dynamic_resources.cds_config: needs 'ads: {}' or 'api_config_source'",
    );
}

#[test]
fn an_xds_channel_must_name_one_static_cluster_with_an_address() {
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]["ads_config"]["grpc_services"][0]["envoy_grpc"]["cluster_name"] =
        "nope".into();
    assert_refused(
        doc,
        "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: 'nope' is not a static cluster",
    );
    let mut doc = minimal("GRPC");
    let service = doc["dynamic_resources"]["ads_config"]["grpc_services"][0].clone();
    doc["dynamic_resources"]["ads_config"]["grpc_services"] = json!([service.clone(), service]);
    assert_refused(
        doc,
        "dynamic_resources.ads_config.grpc_services: exactly one gRPC service",
    );
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]["ads_config"]["grpc_services"][0] = json!({ "google_grpc": {} });
    assert_refused(
        doc,
        "dynamic_resources.ads_config.grpc_services[0].google_grpc: not supported",
    );
}

#[test]
fn ads_sources_need_an_ads_config_and_one_source_each() {
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]
        .as_object_mut()
        .unwrap()
        .remove("ads_config");
    assert_refused(
        doc,
        "dynamic_resources.cds_config.ads: needs dynamic_resources.ads_config",
    );
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]["lds_config"]["api_config_source"] =
        doc["dynamic_resources"]["ads_config"].clone();
    assert_refused(
        doc,
        "dynamic_resources.lds_config: set either 'ads' or 'api_config_source'",
    );
}

#[test]
fn a_node_is_required_with_dynamic_resources() {
    let mut doc = minimal("GRPC");
    doc["node"] = json!({ "id": "n1" });
    assert_refused(doc, "node: 'id' and 'cluster' are required");
}

#[test]
fn static_resources_are_refused_at_the_field_the_conversion_names() {
    let mut doc = minimal("GRPC");
    doc["static_resources"]["clusters"][0]["lb_policy"] = "CLUSTER_PROVIDED".into();
    assert_refused(
        doc,
        "static_resources.clusters[0].lb_policy: 'CLUSTER_PROVIDED' is not supported",
    );
    let mut doc = minimal("GRPC");
    doc["static_resources"]["clusters"][0]["conect_timeout"] = "1s".into();
    assert_refused(
        doc,
        "static_resources.clusters[0].conect_timeout: not a field of Envoy's envoy.config.cluster.v3.Cluster",
    );
    let mut doc = minimal("GRPC");
    doc["static_resources"]["secrets"] = json!([]);
    assert_refused(
        doc,
        "static_resources.secrets: not supported by minimal-proxy",
    );
    let mut doc = minimal("GRPC");
    let twice = doc["static_resources"]["clusters"][0].clone();
    doc["static_resources"]["clusters"]
        .as_array_mut()
        .unwrap()
        .push(twice);
    assert_refused(
        doc,
        "static_resources.clusters[1].name: cluster 'xds' is defined twice",
    );
}

#[test]
fn malformed_documents_say_which_format_failed() {
    let e = parse("node: [unclosed", false, &Overrides::default()).unwrap_err();
    assert!(
        e.to_string().starts_with("the bootstrap is not valid YAML"),
        "{e}"
    );
    let e = parse("{", true, &Overrides::default()).unwrap_err();
    assert!(
        e.to_string().starts_with("the bootstrap is not valid JSON"),
        "{e}"
    );
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]["cds_config"]["initial_fetch_timeout"] = "15".into();
    assert_refused(
        doc,
        "dynamic_resources.cds_config.initial_fetch_timeout: '15' is not a duration",
    );
}

#[test]
fn a_locality_is_taken_and_admin_extras_are_refused() {
    let mut doc = minimal("GRPC");
    doc["node"]["locality"] = json!({ "region": "eu", "zone": "eu-1a" });
    let b = accepted(doc);
    let locality = b.node.locality.expect("a locality");
    assert_eq!(
        (locality.region.as_str(), locality.zone.as_str()),
        ("eu", "eu-1a")
    );
    let mut doc = minimal("GRPC");
    doc["admin"] = json!({ "profile_path": "/tmp/p",
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": 9901 } } });
    assert_refused(doc, "admin.profile_path: not supported by minimal-proxy");
}

#[test]
fn a_static_listener_is_refused_at_the_field_the_conversion_names() {
    let mut doc = minimal("GRPC");
    doc["static_resources"]["listeners"] = json!([{
        "name": "redis", "address": { "socket_address": { "address": "127.0.0.1", "port_value": 6379 } },
        "filter_chains": [{ "filters": [{ "name": "envoy.filters.network.redis_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy",
            "stat_prefix": "redis" } }] }] }]);
    let message = refused(doc);
    assert!(
        message.starts_with("static_resources.listeners[0].filter_chains[0].filters[0]"),
        "{message}"
    );
}

#[test]
fn initial_metadata_is_sent_and_bad_metadata_is_refused_by_its_field() {
    let mut doc = minimal("GRPC");
    doc["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"] =
        json!([{ "key": "authorization", "value": "Bearer xdst_abc" }]);
    let boot = accepted(doc.clone());
    let channel = &boot.dynamic.unwrap().cds.unwrap().channel;
    assert_eq!(
        channel.initial_metadata,
        [("authorization".to_string(), "Bearer xdst_abc".to_string())]
    );
    for (entry, field) in [
        (json!({ "key": "Bad Key", "value": "x" }), "[0].key"),
        (json!({ "key": "token-bin", "value": "x" }), "[0].key"),
        (
            json!({ "key": "authorization", "value": "caf\u{e9}" }),
            "[0].value",
        ),
    ] {
        let mut bad = doc.clone();
        bad["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"] =
            json!([entry]);
        assert_refused(
            bad,
            &format!("dynamic_resources.ads_config.grpc_services[0].initial_metadata{field}"),
        );
    }
    let mut bad = doc;
    bad["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"] =
        json!([{ "key": "a", "value": "b", "raw_value": "c" }]);
    assert!(refused(bad).contains("raw_value"));
}
