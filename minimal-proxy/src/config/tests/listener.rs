//! `listener_from_proto`: the listener, its one filter chain and the HTTP connection
//! manager, with refusals by field path.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use std::time::Duration;

use envoy_types::pb::envoy::{
    config::{
        core::v3::{
            Address, AggregatedConfigSource, ConfigSource, Http2ProtocolOptions, SocketAddress,
            address, config_source::ConfigSourceSpecifier, socket_address::PortSpecifier,
        },
        listener::v3::{Filter, FilterChain, Listener, filter},
        route::v3::{RouteConfiguration, VirtualHost},
    },
    extensions::filters::{
        http::router::v3::Router,
        network::http_connection_manager::v3::{
            HttpConnectionManager as EnvoyHcm, HttpFilter, Rds, ScopedRoutes,
            http_connection_manager::{CodecType, RouteSpecifier, Tracing},
            http_filter,
        },
    },
};

use super::{any, boolv, refused, secs};
use crate::config::{
    Codec, HttpConnectionManager, ListenerConfig, ListenerFilter as Proxied, RouteSource,
    listener_from_proto,
};

pub(super) const L: &str = "listener 'ingress'";
const HCM_AT: &str = "filter_chains[0].filters[0].typed_config";

pub(super) fn socket(host: &str, port: u32) -> Option<Address> {
    Some(Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: host.into(),
            port_specifier: Some(PortSpecifier::PortValue(port)),
            ..SocketAddress::default()
        })),
    })
}

pub(super) fn router() -> HttpFilter {
    HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(
            any(&Router::default()),
        )),
        ..HttpFilter::default()
    }
}

pub(super) fn hcm() -> EnvoyHcm {
    EnvoyHcm {
        stat_prefix: "ingress".into(),
        codec_type: CodecType::Auto as i32,
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ConfigSource {
                config_source_specifier: Some(ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                resource_api_version: 2,
                ..ConfigSource::default()
            }),
            route_config_name: "ingress".into(),
        })),
        http_filters: vec![router()],
        ..EnvoyHcm::default()
    }
}

/// A listener on 0.0.0.0:10000 whose one filter has `config` as its typed config.
pub(super) fn listener_with(config: envoy_types::pb::google::protobuf::Any) -> Listener {
    Listener {
        name: "ingress".into(),
        address: socket("0.0.0.0", 10000),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "any-name".into(),
                config_type: Some(filter::ConfigType::TypedConfig(config)),
            }],
            ..FilterChain::default()
        }],
        ..Listener::default()
    }
}

fn http(h: EnvoyHcm) -> Result<ListenerConfig, crate::config::Rejection> {
    listener_from_proto(&listener_with(any(&h)))
}

fn converted(h: EnvoyHcm) -> HttpConnectionManager {
    match http(h).unwrap().chains.remove(0).filter {
        Proxied::Http(h) => h,
        other => panic!("{other:?}"),
    }
}

#[test]
fn http_listener_with_rds_and_envoy_defaults() {
    let l = http(hcm()).unwrap();
    assert_eq!(l.name, "ingress");
    assert_eq!(l.address, "0.0.0.0:10000".parse().unwrap());
    assert_eq!(
        l.chains[0].filter,
        Proxied::Http(HttpConnectionManager {
            stat_prefix: "ingress".into(),
            codec: Codec::Auto,
            routes: RouteSource::Rds("ingress".into()),
            access_log: vec![],
            grpc_access_log: vec![],
            stream_idle_timeout: Some(Duration::from_secs(300)),
            forward_client_cert: Default::default(),
            rbac: vec![],
        })
    );
}

#[test]
fn codec_idle_timeout_router_without_config_and_explicit_defaults() {
    let h = converted(EnvoyHcm {
        codec_type: CodecType::Http2 as i32,
        stream_idle_timeout: secs(0),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            ..HttpFilter::default()
        }],
        generate_request_id: boolv(true),
        use_remote_address: boolv(false),
        http2_protocol_options: Some(Http2ProtocolOptions::default()),
        ..hcm()
    });
    assert_eq!(h.codec, Codec::Http2);
    assert_eq!(h.stream_idle_timeout, None, "zero disables it");
}

#[test]
fn inline_route_config_is_converted_and_its_refusals_are_prefixed() {
    let rc = RouteConfiguration {
        name: "inline".into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let h = converted(EnvoyHcm {
        route_specifier: Some(RouteSpecifier::RouteConfig(rc.clone())),
        ..hcm()
    });
    let RouteSource::Inline(r) = &h.routes else {
        panic!("{:?}", h.routes)
    };
    assert_eq!(r.name, "inline");
    assert_eq!(r.virtual_hosts[0].domains, ["*"]);

    let mut bad = rc;
    bad.virtual_hosts[0].domains.clear();
    refused(
        http(EnvoyHcm {
            route_specifier: Some(RouteSpecifier::RouteConfig(bad)),
            ..hcm()
        }),
        L,
        &format!("{HCM_AT}.route_config.virtual_hosts[0].domains"),
        "is required",
    );
}

#[test]
fn http_filters_other_than_the_router_are_refused_by_name() {
    let cors = HttpFilter {
        name: "envoy.filters.http.cors".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(
            envoy_types::pb::google::protobuf::Any {
                type_url: "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors".into(),
                value: vec![],
            },
        )),
        ..HttpFilter::default()
    };
    refused(
        http(EnvoyHcm {
            http_filters: vec![cors, router()],
            ..hcm()
        }),
        L,
        &format!("{HCM_AT}.http_filters[0].name"),
        "'envoy.filters.http.cors' (envoy.extensions.filters.http.cors.v3.Cors) is not supported by minimal-proxy; supported: envoy.filters.http.router",
    );
    refused(
        http(EnvoyHcm {
            http_filters: vec![router(), router()],
            ..hcm()
        }),
        L,
        &format!("{HCM_AT}.http_filters[1]"),
        "must be the only and last filter",
    );
    refused(
        http(EnvoyHcm {
            http_filters: vec![],
            ..hcm()
        }),
        L,
        &format!("{HCM_AT}.http_filters"),
        "must hold the router",
    );
    let tuned = HttpFilter {
        config_type: Some(http_filter::ConfigType::TypedConfig(any(&Router {
            suppress_envoy_headers: true,
            ..Router::default()
        }))),
        ..router()
    };
    refused(
        http(EnvoyHcm {
            http_filters: vec![tuned],
            ..hcm()
        }),
        L,
        &format!("{HCM_AT}.http_filters[0].typed_config.suppress_envoy_headers"),
        "not supported",
    );
}

#[test]
fn connection_manager_refusals_name_the_field() {
    let cases = [
        (
            EnvoyHcm {
                codec_type: CodecType::Http3 as i32,
                ..hcm()
            },
            "codec_type",
            "'HTTP3' is not supported by minimal-proxy; supported: AUTO, HTTP1, HTTP2",
        ),
        (
            EnvoyHcm {
                use_remote_address: boolv(true),
                ..hcm()
            },
            "use_remote_address",
            "supported: false",
        ),
        (
            EnvoyHcm {
                generate_request_id: boolv(false),
                ..hcm()
            },
            "generate_request_id",
            "supported: true",
        ),
        (
            EnvoyHcm {
                tracing: Some(Tracing::default()),
                ..hcm()
            },
            "tracing",
            "not supported",
        ),
        (
            EnvoyHcm {
                server_name: "edge".into(),
                ..hcm()
            },
            "server_name",
            "not supported",
        ),
        (
            EnvoyHcm {
                xff_num_trusted_hops: 1,
                ..hcm()
            },
            "xff_num_trusted_hops",
            "not supported",
        ),
        (
            EnvoyHcm {
                route_specifier: Some(RouteSpecifier::ScopedRoutes(ScopedRoutes::default())),
                ..hcm()
            },
            "scoped_routes",
            "not supported",
        ),
        (
            EnvoyHcm {
                route_specifier: None,
                ..hcm()
            },
            "rds",
            "is required",
        ),
        (
            EnvoyHcm {
                http2_protocol_options: Some(Http2ProtocolOptions {
                    allow_connect: true,
                    ..Default::default()
                }),
                ..hcm()
            },
            "http2_protocol_options.allow_connect",
            "not supported",
        ),
        (
            EnvoyHcm {
                stat_prefix: String::new(),
                ..hcm()
            },
            "stat_prefix",
            "is required",
        ),
    ];
    for (h, field, reason) in cases {
        refused(http(h), L, &format!("{HCM_AT}.{field}"), reason);
    }
}
