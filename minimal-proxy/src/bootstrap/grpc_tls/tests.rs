//! The xDS cluster's transport socket: what xds-server's bootstrap carries is taken (and
//! reaches every gRPC channel on the cluster); everything else is refused by field path.

use serde_json::{Value, json};

use super::super::{Overrides, from_document};

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
const AT: &str = "static_resources.clusters[0].transport_socket";

/// xds-server's TLS bootstrap, with `context` as the UpstreamTlsContext.
fn document(context: Value) -> Value {
    json!({
        "node": { "id": "n1", "cluster": "c1" },
        "dynamic_resources": {
            "ads_config": { "api_type": "GRPC", "transport_api_version": "V3",
                "grpc_services": [{ "envoy_grpc": { "cluster_name": "xds" } }] },
            "cds_config": { "ads": {}, "resource_api_version": "V3" },
            "lds_config": { "ads": {}, "resource_api_version": "V3" },
        },
        "stats_sinks": [{ "name": "envoy.stat_sinks.metrics_service", "typed_config": {
            "@type": "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig",
            "transport_api_version": "V3",
            "grpc_service": { "envoy_grpc": { "cluster_name": "xds" } } } }],
        "static_resources": { "clusters": [{ "name": "xds", "type": "STATIC", "connect_timeout": "1s",
            "transport_socket": { "name": "envoy.transport_sockets.tls", "typed_config": context },
            "load_assignment": { "cluster_name": "xds", "endpoints": [{ "lb_endpoints": [{ "endpoint": {
                "address": { "socket_address": { "address": "127.0.0.1", "port_value": 18000 } } } }] }] } }] },
    })
}

/// What xds-server renders for `host`.
fn server_context(sni: Option<&str>, san_type: &str, host: &str) -> Value {
    let mut context = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "validation_context": {
                "trusted_ca": { "inline_string": CA },
                "match_typed_subject_alt_names": [{ "san_type": san_type, "matcher": { "exact": host } }],
            },
        },
    });
    if let Some(sni) = sni {
        context["sni"] = sni.into();
    }
    context
}

fn refused(context: Value) -> String {
    match from_document(document(context), &Overrides::default()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn assert_refused(context: Value, expected_start: &str) {
    let message = refused(context);
    assert!(
        message.starts_with(expected_start),
        "got: {message}\nwanted: {expected_start}…"
    );
}

#[test]
fn the_servers_tls_bootstrap_reaches_every_grpc_channel_on_the_cluster() {
    let doc = document(server_context(Some("xds.example"), "DNS", "xds.example"));
    let b = from_document(doc, &Overrides::default()).unwrap();
    let channel = &b.dynamic.as_ref().unwrap().cds.as_ref().unwrap().channel;
    let tls = channel.target.tls.as_ref().expect("TLS on the xDS channel");
    assert_eq!(tls.trusted_ca_pem, CA);
    assert_eq!(tls.server_name.as_deref(), Some("xds.example"));
    assert!(tls.client_cert.is_none());
    let sink = b.metrics_sink.as_ref().unwrap();
    assert_eq!(
        sink.target.tls, channel.target.tls,
        "the metrics stream too"
    );
    assert_eq!(
        crate::xds::endpoint::uri(&channel.target),
        "https://127.0.0.1:18000"
    );
    assert!(crate::xds::endpoint::endpoint(&channel.target).is_ok());

    // An IP literal: no SNI, the IP SAN is the name verified.
    let doc = document(server_context(None, "IP_ADDRESS", "127.0.0.1"));
    let b = from_document(doc, &Overrides::default()).unwrap();
    let target = &b.dynamic.unwrap().cds.unwrap().channel.target;
    assert_eq!(
        target.tls.as_ref().unwrap().server_name.as_deref(),
        Some("127.0.0.1")
    );
}

#[test]
fn the_ca_and_a_client_certificate_may_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&ca, CA).unwrap();
    std::fs::write(&key, KEY).unwrap();
    let mut context = server_context(None, "DNS", "localhost");
    let common = &mut context["common_tls_context"];
    common["validation_context"]["trusted_ca"] = json!({ "filename": ca });
    common["tls_certificates"] = json!([{
        "certificate_chain": { "filename": ca },
        "private_key": { "filename": key },
    }]);
    let b = from_document(document(context), &Overrides::default()).unwrap();
    let tls = b.dynamic.unwrap().cds.unwrap().channel.target.tls.unwrap();
    assert_eq!(tls.trusted_ca_pem, CA);
    assert!(tls.client_cert.is_some());
    assert!(
        !format!("{tls:?}").contains("PRIVATE KEY"),
        "the key is never printed"
    );
}

#[test]
fn anything_else_in_the_transport_socket_is_refused_by_field() {
    let mut c = server_context(None, "DNS", "x");
    c["allow_renegotiation"] = true.into();
    assert_refused(
        c,
        &format!("{AT}.typed_config.allow_renegotiation: not supported by minimal-proxy"),
    );

    let mut c = server_context(None, "DNS", "x");
    c["common_tls_context"]["tls_params"] = json!({});
    assert_refused(
        c,
        &format!("{AT}.typed_config.common_tls_context.tls_params: not supported"),
    );

    let mut c = server_context(None, "DNS", "x");
    c["@type"] =
        "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer".into();
    assert_refused(
        c,
        &format!("{AT}.typed_config.@type: minimal-proxy supports only"),
    );

    let mut c = server_context(None, "DNS", "x");
    c["common_tls_context"]
        .as_object_mut()
        .unwrap()
        .remove("validation_context");
    assert_refused(
        c,
        &format!("{AT}.typed_config.common_tls_context.validation_context: is required"),
    );

    let c = server_context(None, "URI", "spiffe://mesh.local/service/xds");
    assert_refused(
        c,
        &format!(
            "{AT}.typed_config.common_tls_context.validation_context.match_typed_subject_alt_names[0].san_type: 'URI' is not supported"
        ),
    );

    let c = server_context(Some("a.example"), "DNS", "b.example");
    assert_refused(c, &format!("{AT}.typed_config.sni: 'a.example' differs"));

    let mut c = server_context(None, "DNS", "x");
    c["common_tls_context"]["validation_context"]["trusted_ca"] =
        json!({ "inline_string": "not pem" });
    assert_refused(
        c,
        &format!(
            "{AT}.typed_config.common_tls_context.validation_context.trusted_ca: holds no 'BEGIN CERTIFICATE'"
        ),
    );

    let mut c = server_context(None, "DNS", "x");
    c["common_tls_context"]["validation_context"]["trusted_ca"] =
        json!({ "filename": "/nonexistent/ca.pem" });
    assert_refused(
        c,
        &format!(
            "{AT}.typed_config.common_tls_context.validation_context.trusted_ca.filename: cannot read '/nonexistent/ca.pem'"
        ),
    );

    let mut c = server_context(None, "DNS", "x");
    c["common_tls_context"]["validation_context"]["trusted_ca"] =
        json!({ "inline_string": CA, "filename": "/x" });
    assert_refused(
        c,
        &format!(
            "{AT}.typed_config.common_tls_context.validation_context.trusted_ca: give exactly one"
        ),
    );

    let mut c = server_context(None, "DNS", "x");
    c["common_tls_context"]["tls_certificates"] = json!([{
        "certificate_chain": { "inline_string": CA },
        "private_key": { "inline_string": "secret" },
    }]);
    let message = refused(c);
    assert!(
        message.starts_with(&format!(
            "{AT}.typed_config.common_tls_context.tls_certificates[0].private_key: is not a PEM private key"
        )) && !message.contains("secret"),
        "{message}"
    );

    let mut c = server_context(None, "DNS", "x");
    c["common_tls_context"]["alpn_protocols"] = json!(["http/1.1"]);
    assert_refused(
        c,
        &format!("{AT}.typed_config.common_tls_context.alpn_protocols: gRPC runs over HTTP/2"),
    );

    let mut doc = document(server_context(None, "DNS", "x"));
    doc["static_resources"]["clusters"][0]["transport_socket"]["name"] =
        "envoy.transport_sockets.alts".into();
    let message = from_document(doc, &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(&format!(
            "{AT}.name: 'envoy.transport_sockets.alts' is not supported"
        )),
        "{message}"
    );
}

#[test]
fn a_tls_cluster_beside_static_listeners_is_refused_rather_than_downgraded() {
    let mut doc = document(server_context(None, "DNS", "x"));
    doc["static_resources"]["listeners"] = json!([{
        "name": "l", "address": { "socket_address": { "address": "127.0.0.1", "port_value": 10000 } },
        "filter_chains": [{ "filters": [{ "name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "l", "cluster": "xds" } }] }],
    }]);
    let message = from_document(doc, &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(&format!(
            "{AT}: minimal-proxy applies a static cluster's transport socket to gRPC services"
        )),
        "{message}"
    );
}
