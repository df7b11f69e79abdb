//! xDS over TLS, in process: a stream opened over TLS (trusting the mesh CA the bootstrap
//! names) keeps receiving updates across a renewal of the serving certificate, while new
//! handshakes get the new one; GET /api/v1/bootstrap puts the TLS transport socket on the xds
//! cluster only when TLS is on, with the name the server is reached by (SNI and a SAN
//! matcher for a DNS name, an IP SAN matcher for an IP literal).

mod common;

use std::{sync::Arc, time::Duration};

use axum::http::StatusCode;
use common::http::call;
use serde_json::{Value, json};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use xds_core::{TypeUrl, testing::AdsClient};
use xds_server::{
    api::{AppState, router},
    ca::{Authority, Source, TrustDomain},
    proxy_auth::ProxyAuth,
    xds::{
        embedded::Embedded,
        limits::Limits,
        tls::{XdsTlsConfig, XdsTlsMode, setup},
    },
};

const WAIT: Duration = Duration::from_secs(10);

fn authority(ttl: Duration) -> Arc<Authority> {
    let td: TrustDomain = "mesh.local".parse().unwrap();
    let (cert, key) = Authority::generate(&td).unwrap();
    let src = Source {
        cert: "ca.pem",
        key: "ca.key",
    };
    Arc::new(Authority::from_pem(&cert, &key, None, src, td, ttl).unwrap())
}

/// The TCP service `name` on `port`, with one endpoint and a listener every node gets: one
/// more cluster for every proxy.
async fn put_service(api: &axum::Router, name: &str, port: u16) {
    let puts = [
        (
            format!("/api/v1/services/{name}"),
            json!({ "protocol": "tcp" }),
        ),
        (
            format!("/api/v1/services/{name}/endpoints"),
            json!({ "endpoints": [{ "address": "127.0.0.1", "port": 8080 }] }),
        ),
        (
            format!("/api/v1/listeners/{name}"),
            json!({ "address": "127.0.0.1", "port": port, "protocol": "tcp",
                    "service": name, "selector": {} }),
        ),
    ];
    for (path, body) in puts {
        let (status, _, body) = call(api, "PUT", &path, Some(&body.to_string()), &[]).await;
        assert!(status.is_success(), "PUT {path}: {status}: {body}");
    }
}

#[tokio::test]
async fn a_stream_over_tls_survives_the_renewal_of_the_serving_certificate() {
    let (store, _dir) = common::sqlite().await;
    let api = router(AppState::new(store.clone()));
    put_service(&api, "first", 20_101).await;
    let ca = authority(Duration::from_secs(2));
    let config = XdsTlsConfig {
        mode: XdsTlsMode::Builtin,
        ..XdsTlsConfig::default()
    };
    let tls = setup(&config, Some(&ca), "127.0.0.1:0".parse().unwrap())
        .unwrap()
        .unwrap();
    let rotating = tls.current.clone();
    let first_cert = rotating.current().cert[0].clone();
    let trusted = tls.trusted_ca_pem.to_string();
    let server = Embedded::start_with_tls(
        store,
        Duration::from_millis(10),
        Limits::default(),
        ProxyAuth::off(),
        Some(tls),
    )
    .await
    .unwrap();
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{}", server.addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&trusted))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .expect("TLS to the xDS port, trusting the mesh CA");
    let mut proxy = AdsClient::sotw(xds_core::testing::node("tls-proxy", ""))
        .timeout(WAIT)
        .wildcard(TypeUrl::Cluster)
        .open(channel)
        .await
        .unwrap();
    proxy
        .wait_for("the first cluster", |p| {
            p.names(&TypeUrl::Cluster).len() == 1
        })
        .await
        .unwrap();

    // The certificate is re-issued at half of its 2 s lifetime.
    let deadline = tokio::time::Instant::now() + WAIT;
    while rotating.current().cert[0] == first_cert {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the serving certificate was not renewed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The stream opened before the renewal still gets what changes.
    put_service(&api, "second", 20_102).await;
    proxy
        .wait_for("the second cluster on the same stream", |p| {
            p.names(&TypeUrl::Cluster).len() == 2
        })
        .await
        .unwrap();
}

async fn bootstrap(state: &AppState, host: &str) -> Value {
    let (status, _, body) = call(
        &router(state.clone()),
        "GET",
        "/api/v1/bootstrap?node_id=n1&cluster=c1",
        None,
        &[("host", host)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn the_bootstrap_trusts_the_ca_and_names_the_server_only_with_tls_on() {
    let (store, _dir) = common::sqlite().await;
    let plain = AppState {
        xds_addr: "0.0.0.0:18000".parse().unwrap(),
        ..AppState::new(store)
    };
    let b = bootstrap(&plain, "xds.mesh.example:9090").await;
    let cluster = &b["static_resources"]["clusters"][0];
    assert!(cluster.get("transport_socket").is_none(), "{cluster}");

    let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let tls = AppState {
        xds_tls_ca: Some(ca.into()),
        ..plain
    };
    let b = bootstrap(&tls, "xds.mesh.example:9090").await;
    let socket = &b["static_resources"]["clusters"][0]["transport_socket"];
    assert_eq!(socket["name"], "envoy.transport_sockets.tls");
    let context = &socket["typed_config"];
    assert_eq!(
        context["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    );
    assert_eq!(context["sni"], "xds.mesh.example");
    let validation = &context["common_tls_context"]["validation_context"];
    assert_eq!(validation["trusted_ca"]["inline_string"], ca);
    assert_eq!(
        validation["match_typed_subject_alt_names"],
        json!([{ "san_type": "DNS", "matcher": { "exact": "xds.mesh.example" } }])
    );

    // An IP literal: verified as an IP SAN, and not sent as SNI (TLS allows names only).
    let b = bootstrap(&tls, "127.0.0.1:9090").await;
    let context = &b["static_resources"]["clusters"][0]["transport_socket"]["typed_config"];
    assert!(context.get("sni").is_none(), "{context}");
    assert_eq!(
        context["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"][0]["san_type"],
        "IP_ADDRESS"
    );
}
