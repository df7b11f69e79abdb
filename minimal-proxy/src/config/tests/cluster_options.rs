//! `cluster_from_proto`, nested messages: circuit breakers, outlier detection, health checks,
//! subsets and upstream protocol options.

use std::time::Duration;

use envoy_types::pb::envoy::{
    config::{
        cluster::v3::{
            Cluster,
            cluster::{
                LbSubsetConfig,
                lb_subset_config::{
                    LbSubsetFallbackPolicy, LbSubsetMetadataFallbackPolicy, LbSubsetSelector,
                    lb_subset_selector::LbSubsetSelectorFallbackPolicy,
                },
            },
        },
        core::v3::{
            HealthCheck as EnvoyHc, Http1ProtocolOptions, Http2ProtocolOptions,
            HttpProtocolOptions as CommonOptions,
            health_check::{GrpcHealthCheck, HealthChecker, HttpHealthCheck, TcpHealthCheck},
        },
    },
    extensions::upstreams::http::v3::{
        HttpProtocolOptions,
        http_protocol_options::{
            AutoHttpConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
            explicit_http_config::ProtocolConfig,
        },
    },
    r#type::v3::{CodecClientType, Int64Range},
};
use prost::Name;

use super::{any, cluster::eds, refused, secs, u32v};
use crate::config::{
    HealthCheck, HealthCheckKind, SubsetConfig, SubsetFallback, SubsetSelector, UpstreamProtocol,
    cluster_from_proto,
};

const WEB: &str = "cluster 'web'";

fn with(f: impl FnOnce(&mut Cluster)) -> Cluster {
    let mut c = eds("web");
    f(&mut c);
    c
}

fn hc(checker: HealthChecker) -> EnvoyHc {
    EnvoyHc {
        timeout: secs(1),
        interval: secs(5),
        healthy_threshold: u32v(1),
        unhealthy_threshold: u32v(3),
        health_checker: Some(checker),
        ..Default::default()
    }
}

fn health(h: EnvoyHc) -> Result<Vec<HealthCheck>, crate::config::Rejection> {
    cluster_from_proto(&with(|c| c.health_checks = vec![h])).map(|c| c.health_checks)
}

#[test]
fn http_and_tcp_health_checks() {
    let http = HealthChecker::HttpHealthCheck(HttpHealthCheck {
        path: "/healthz".into(),
        codec_client_type: CodecClientType::Http2 as i32,
        ..Default::default()
    });
    assert_eq!(
        health(hc(http)).unwrap(),
        vec![HealthCheck {
            timeout: Duration::from_secs(1),
            interval: Duration::from_secs(5),
            healthy_threshold: 1,
            unhealthy_threshold: 3,
            no_traffic_interval: Duration::from_secs(60),
            kind: HealthCheckKind::Http {
                path: "/healthz".into(),
                host: String::new(),
                http2: true
            },
        }]
    );
    let tcp = health(hc(HealthChecker::TcpHealthCheck(TcpHealthCheck::default()))).unwrap();
    assert_eq!(tcp[0].kind, HealthCheckKind::Tcp);
}

#[test]
fn no_traffic_interval_is_taken_when_set() {
    let tcp = || hc(HealthChecker::TcpHealthCheck(TcpHealthCheck::default()));
    let set = health(EnvoyHc {
        no_traffic_interval: secs(2),
        ..tcp()
    })
    .unwrap();
    assert_eq!(set[0].no_traffic_interval, Duration::from_secs(2));
    let zero = health(EnvoyHc {
        no_traffic_interval: secs(0),
        ..tcp()
    })
    .unwrap_err();
    assert!(zero.field.contains("no_traffic_interval"), "{zero}");
}

#[test]
fn health_check_refusals_name_the_field() {
    let http = |f: fn(&mut HttpHealthCheck)| {
        let mut h = HttpHealthCheck {
            path: "/h".into(),
            ..Default::default()
        };
        f(&mut h);
        hc(HealthChecker::HttpHealthCheck(h))
    };
    let cases = [
        (
            http(|h| h.path.clear()),
            "http_health_check.path",
            "is required",
        ),
        (
            http(|h| {
                h.expected_statuses = vec![Int64Range {
                    start: 200,
                    end: 300,
                }]
            }),
            "http_health_check.expected_statuses",
            "not supported",
        ),
        (
            http(|h| h.codec_client_type = CodecClientType::Http3 as i32),
            "http_health_check.codec_client_type",
            "'HTTP3'",
        ),
        (http(|h| h.method = 3), "http_health_check.method", "'POST'"),
        (
            hc(HealthChecker::GrpcHealthCheck(GrpcHealthCheck::default())),
            "grpc_health_check",
            "not supported",
        ),
        (
            EnvoyHc {
                timeout: None,
                ..http(|_| {})
            },
            "timeout",
            "is required",
        ),
        (
            EnvoyHc {
                healthy_threshold: None,
                ..http(|_| {})
            },
            "healthy_threshold",
            "is required",
        ),
        (
            EnvoyHc {
                no_traffic_healthy_interval: secs(60),
                ..http(|_| {})
            },
            "no_traffic_healthy_interval",
            "not supported",
        ),
        (
            EnvoyHc {
                reuse_connection: super::boolv(false),
                ..http(|_| {})
            },
            "reuse_connection",
            "supported: true",
        ),
    ];
    for (h, field, reason) in cases {
        refused(health(h), WEB, &format!("health_checks[0].{field}"), reason);
    }
}

/// Envoy runs every health check of a cluster; the proxy runs one, so a second is refused.
#[test]
fn a_second_health_check_is_refused() {
    let tcp = || hc(HealthChecker::TcpHealthCheck(TcpHealthCheck::default()));
    let two = with(|c| c.health_checks = vec![tcp(), tcp()]);
    refused(
        cluster_from_proto(&two),
        WEB,
        "health_checks[1]",
        "only one health check per cluster is supported by minimal-proxy",
    );
    // The first is checked first.
    let untimed = EnvoyHc {
        timeout: None,
        ..tcp()
    };
    let bad_first = with(|c| c.health_checks = vec![untimed, tcp()]);
    refused(
        cluster_from_proto(&bad_first),
        WEB,
        "health_checks[0].timeout",
        "is required",
    );
}

fn subsets(s: LbSubsetConfig) -> Result<Option<SubsetConfig>, crate::config::Rejection> {
    cluster_from_proto(&with(|c| c.lb_subset_config = Some(s))).map(|c| c.subsets)
}

#[test]
fn subset_selectors_sorted_with_inherited_fallback() {
    let s = LbSubsetConfig {
        fallback_policy: LbSubsetFallbackPolicy::AnyEndpoint as i32,
        subset_selectors: vec![
            LbSubsetSelector {
                keys: vec!["version".into(), "stage".into()],
                fallback_policy: LbSubsetSelectorFallbackPolicy::NoFallback as i32,
                ..Default::default()
            },
            LbSubsetSelector {
                keys: vec!["zone".into()],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    assert_eq!(
        subsets(s).unwrap(),
        Some(SubsetConfig {
            fallback: SubsetFallback::AnyEndpoint,
            selectors: vec![
                SubsetSelector {
                    keys: vec!["stage".into(), "version".into()],
                    fallback: SubsetFallback::NoFallback
                },
                SubsetSelector {
                    keys: vec!["zone".into()],
                    fallback: SubsetFallback::AnyEndpoint
                },
            ],
        })
    );
    refused(
        subsets(LbSubsetConfig {
            fallback_policy: LbSubsetFallbackPolicy::DefaultSubset as i32,
            ..Default::default()
        }),
        WEB,
        "lb_subset_config.fallback_policy",
        "'DEFAULT_SUBSET' is not supported by minimal-proxy; supported: NO_FALLBACK, ANY_ENDPOINT",
    );
    let keys_subset = LbSubsetSelector {
        keys: vec!["a".into()],
        fallback_policy: LbSubsetSelectorFallbackPolicy::KeysSubset as i32,
        ..Default::default()
    };
    refused(
        subsets(LbSubsetConfig {
            subset_selectors: vec![keys_subset],
            ..Default::default()
        }),
        WEB,
        "lb_subset_config.subset_selectors[0].fallback_policy",
        "'KEYS_SUBSET'",
    );
    refused(
        subsets(LbSubsetConfig {
            panic_mode_any: true,
            ..Default::default()
        }),
        WEB,
        "lb_subset_config.panic_mode_any",
        "not supported",
    );
    refused(
        subsets(LbSubsetConfig {
            metadata_fallback_policy: LbSubsetMetadataFallbackPolicy::FallbackList as i32,
            ..Default::default()
        }),
        WEB,
        "lb_subset_config.metadata_fallback_policy",
        "not supported",
    );
}

fn protocol(options: HttpProtocolOptions) -> Result<UpstreamProtocol, crate::config::Rejection> {
    cluster_from_proto(&with(|c| {
        c.typed_extension_protocol_options =
            [(HttpProtocolOptions::full_name(), any(&options))].into();
    }))
    .map(|c| c.protocol)
}

fn explicit(config: ProtocolConfig) -> HttpProtocolOptions {
    HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(config),
            },
        )),
        ..Default::default()
    }
}

const OPTIONS: &str =
    "typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\"]";

#[test]
fn upstream_protocol_from_http_protocol_options() {
    let h2 = explicit(ProtocolConfig::Http2ProtocolOptions(
        Http2ProtocolOptions::default(),
    ));
    assert_eq!(protocol(h2).unwrap(), UpstreamProtocol::Http2);
    let h1 = explicit(ProtocolConfig::HttpProtocolOptions(
        Http1ProtocolOptions::default(),
    ));
    assert_eq!(protocol(h1).unwrap(), UpstreamProtocol::Http1);

    let tuned = explicit(ProtocolConfig::Http2ProtocolOptions(Http2ProtocolOptions {
        max_concurrent_streams: u32v(10),
        ..Default::default()
    }));
    refused(
        protocol(tuned),
        WEB,
        &format!("{OPTIONS}.explicit_http_config.http2_protocol_options.max_concurrent_streams"),
        "not supported",
    );
    let auto = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::AutoConfig(
            AutoHttpConfig::default(),
        )),
        ..Default::default()
    };
    refused(
        protocol(auto),
        WEB,
        &format!("{OPTIONS}.auto_config"),
        "not supported",
    );
    let common = HttpProtocolOptions {
        common_http_protocol_options: Some(CommonOptions {
            idle_timeout: secs(1),
            ..Default::default()
        }),
        ..explicit(ProtocolConfig::HttpProtocolOptions(
            Http1ProtocolOptions::default(),
        ))
    };
    refused(
        protocol(common),
        WEB,
        &format!("{OPTIONS}.common_http_protocol_options"),
        "not supported",
    );

    let other = with(|c| {
        c.typed_extension_protocol_options = [(
            "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions".to_string(),
            Default::default(),
        )]
        .into();
    });
    refused(
        cluster_from_proto(&other),
        WEB,
        "typed_extension_protocol_options[\"envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions\"]",
        "supported: envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    );
}
