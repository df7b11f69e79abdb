//! `cluster_from_proto`: discovery types, load-balancing policies, defaults and refusals of
//! the cluster's own fields.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use std::time::Duration;

use envoy_types::pb::envoy::config::{
    cluster::v3::{
        Cluster,
        cluster::{
            ClusterDiscoveryType, CommonLbConfig, DiscoveryType, DnsLookupFamily, EdsClusterConfig,
        },
    },
    core::v3::{
        Address, AggregatedConfigSource, ApiConfigSource, ConfigSource, GrpcService,
        PathConfigSource, SocketAddress, TransportSocket, address,
        api_config_source::ApiType,
        config_source::ConfigSourceSpecifier,
        grpc_service::{GoogleGrpc, TargetSpecifier},
        socket_address::PortSpecifier,
    },
    endpoint::v3::{
        ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
        lb_endpoint::HostIdentifier,
    },
};

use super::{millis, refused, secs, u32v};
use crate::config::{
    CircuitBreakers, Discovery, DnsFamily, EndpointAddress, LbPolicy, UpstreamProtocol,
    cluster_from_proto,
};

pub(super) fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        resource_api_version: 2, // V3
        ..ConfigSource::default()
    }
}

pub(super) fn eds(name: &str) -> Cluster {
    Cluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: String::new(),
        }),
        ..Cluster::default()
    }
}

fn with_type(t: DiscoveryType, host: &str) -> Cluster {
    Cluster {
        name: "c".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(t as i32)),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: "c".into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
                        address: Some(Address {
                            address: Some(address::Address::SocketAddress(SocketAddress {
                                address: host.into(),
                                port_specifier: Some(PortSpecifier::PortValue(8080)),
                                ..SocketAddress::default()
                            })),
                        }),
                        ..EnvoyEndpoint::default()
                    })),
                    ..LbEndpoint::default()
                }],
                ..LocalityLbEndpoints::default()
            }],
            ..ClusterLoadAssignment::default()
        }),
        ..Cluster::default()
    }
}

pub(super) const WEB: &str = "cluster 'web'";

#[test]
fn eds_cluster_gets_envoy_defaults() {
    let c = cluster_from_proto(&eds("web")).unwrap();
    assert_eq!(c.name, "web");
    assert_eq!(
        c.discovery,
        Discovery::Eds {
            service_name: "web".into()
        }
    );
    assert_eq!(c.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.lb_policy, LbPolicy::RoundRobin);
    assert_eq!(c.protocol, UpstreamProtocol::Http1);
    assert_eq!(c.circuit_breakers, CircuitBreakers::default());
    assert_eq!(c.circuit_breakers.max_retries, 3);
    assert_eq!(c.circuit_breakers.max_connections, 1024);
    assert!(c.outlier_detection.is_none() && c.health_checks.is_empty() && c.subsets.is_none());
}

#[test]
fn eds_service_name_and_connect_timeout() {
    let mut c = eds("web");
    c.eds_cluster_config.as_mut().unwrap().service_name = "web-v2".into();
    c.connect_timeout = millis(250);
    let c = cluster_from_proto(&c).unwrap();
    assert_eq!(
        c.discovery,
        Discovery::Eds {
            service_name: "web-v2".into()
        }
    );
    assert_eq!(c.connect_timeout, Duration::from_millis(250));
}

#[test]
fn eds_refusals_name_the_field() {
    let mut c = eds("web");
    c.connect_timeout = secs(0);
    refused(
        cluster_from_proto(&c),
        WEB,
        "connect_timeout",
        "greater than 0s",
    );

    let mut c = eds("web");
    c.eds_cluster_config = None;
    refused(
        cluster_from_proto(&c),
        WEB,
        "eds_cluster_config",
        "is required",
    );

    let mut c = eds("web");
    c.eds_cluster_config.as_mut().unwrap().eds_config = Some(ConfigSource {
        config_source_specifier: Some(ConfigSourceSpecifier::PathConfigSource(
            PathConfigSource::default(),
        )),
        ..ConfigSource::default()
    });
    refused(
        cluster_from_proto(&c),
        WEB,
        "eds_cluster_config.eds_config.path_config_source",
        "not supported",
    );

    let mut c = with_type(DiscoveryType::Eds, "10.0.0.1");
    c.name = "web".into();
    c.eds_cluster_config = eds("web").eds_cluster_config;
    refused(
        cluster_from_proto(&c),
        WEB,
        "load_assignment",
        "not supported",
    );

    let source = |specifier| {
        let mut c = eds("web");
        c.eds_cluster_config.as_mut().unwrap().eds_config = Some(ConfigSource {
            config_source_specifier: specifier,
            ..ConfigSource::default()
        });
        cluster_from_proto(&c)
    };
    refused(
        source(None),
        WEB,
        "eds_cluster_config.eds_config",
        "ads or api_config_source",
    );
    let rest = ApiConfigSource {
        api_type: ApiType::Rest as i32,
        ..ApiConfigSource::default()
    };
    refused(
        source(Some(ConfigSourceSpecifier::ApiConfigSource(rest))),
        WEB,
        "eds_cluster_config.eds_config.api_config_source.api_type",
        "'REST' is not supported by minimal-proxy; supported: GRPC, DELTA_GRPC",
    );
    let google = ApiConfigSource {
        api_type: ApiType::Grpc as i32,
        grpc_services: vec![GrpcService {
            target_specifier: Some(TargetSpecifier::GoogleGrpc(GoogleGrpc::default())),
            ..GrpcService::default()
        }],
        ..ApiConfigSource::default()
    };
    refused(
        source(Some(ConfigSourceSpecifier::ApiConfigSource(google))),
        WEB,
        "eds_cluster_config.eds_config.api_config_source.grpc_services[0].google_grpc",
        "not supported",
    );
}

#[test]
fn static_and_strict_dns_clusters() {
    let c = cluster_from_proto(&with_type(DiscoveryType::Static, "10.0.0.1")).unwrap();
    let Discovery::Static(a) = &c.discovery else {
        panic!("{:?}", c.discovery)
    };
    assert_eq!(
        a.localities[0].endpoints[0].address,
        EndpointAddress::Socket("10.0.0.1:8080".parse().unwrap())
    );

    refused(
        cluster_from_proto(&with_type(DiscoveryType::Static, "db.internal")),
        "cluster 'c'",
        "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address",
        "only STRICT_DNS clusters resolve host names",
    );

    let mut dns = with_type(DiscoveryType::StrictDns, "db.internal");
    dns.dns_lookup_family = DnsLookupFamily::V4Preferred as i32;
    let c = cluster_from_proto(&dns).unwrap();
    let Discovery::StrictDns {
        assignment,
        refresh,
        family,
    } = &c.discovery
    else {
        panic!("{:?}", c.discovery)
    };
    assert_eq!(*refresh, Duration::from_secs(5), "Envoy's default");
    assert_eq!(*family, DnsFamily::V4Preferred);
    assert_eq!(
        assignment.localities[0].endpoints[0].address,
        EndpointAddress::Dns {
            host: "db.internal".into(),
            port: 8080
        }
    );

    dns.dns_refresh_rate = secs(30);
    dns.dns_lookup_family = DnsLookupFamily::V4Only as i32;
    let c = cluster_from_proto(&dns).unwrap();
    assert!(matches!(
        c.discovery,
        Discovery::StrictDns { refresh, family: DnsFamily::V4Only, .. } if refresh == Duration::from_secs(30)
    ));

    dns.dns_lookup_family = DnsLookupFamily::V6Only as i32;
    refused(
        cluster_from_proto(&dns),
        "cluster 'c'",
        "dns_lookup_family",
        "'V6_ONLY'",
    );

    let mut c = eds("web");
    c.dns_refresh_rate = secs(1);
    refused(
        cluster_from_proto(&c),
        WEB,
        "dns_refresh_rate",
        "not supported",
    );
}

#[test]
fn other_discovery_types_are_refused() {
    for t in [DiscoveryType::LogicalDns, DiscoveryType::OriginalDst] {
        let c = with_type(t, "10.0.0.1");
        refused(
            cluster_from_proto(&c),
            "cluster 'c'",
            "type",
            &format!(
                "'{}' is not supported by minimal-proxy; supported: STATIC, STRICT_DNS, EDS",
                t.as_str_name()
            ),
        );
    }
    // Unset is STATIC.
    let mut c = with_type(DiscoveryType::Static, "10.0.0.1");
    c.cluster_discovery_type = None;
    assert!(matches!(
        cluster_from_proto(&c).unwrap().discovery,
        Discovery::Static(_)
    ));
}

/// Sets one field of a cluster.
type Set = fn(&mut Cluster);

#[test]
fn unimplemented_cluster_fields_are_refused_by_name() {
    let cases: [(&str, Set); 7] = [
        ("per_connection_buffer_limit_bytes", |c| {
            c.per_connection_buffer_limit_bytes = u32v(1)
        }),
        // TLS is in tls.rs; another transport socket is refused.
        ("transport_socket.typed_config", |c| {
            c.transport_socket = Some(TransportSocket {
                name: "envoy.transport_sockets.alts".into(),
                config_type: Some(
                    envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(
                        super::any(&Cluster::default()),
                    ),
                ),
            })
        }),
        ("common_lb_config.ignore_new_hosts_until_first_hc", |c| {
            c.common_lb_config = Some(CommonLbConfig {
                ignore_new_hosts_until_first_hc: true,
                ..Default::default()
            })
        }),
        ("respect_dns_ttl", |c| c.respect_dns_ttl = true),
        ("ignore_health_on_host_removal", |c| {
            c.ignore_health_on_host_removal = true
        }),
        ("lrs_server", |c| c.lrs_server = Some(ads())),
        ("protocol_selection", |c| c.protocol_selection = 1),
    ];
    for (field, set) in cases {
        let mut c = eds("web");
        set(&mut c);
        refused(
            cluster_from_proto(&c),
            WEB,
            field,
            "is not supported by minimal-proxy",
        );
    }
    let mut c = eds("web");
    c.wait_for_warm_on_init = super::boolv(false);
    refused(
        cluster_from_proto(&c),
        WEB,
        "wait_for_warm_on_init",
        "supported: true",
    );
    c.wait_for_warm_on_init = super::boolv(true);
    cluster_from_proto(&c).unwrap();
    // Stat names are inert.
    let mut c = eds("web");
    c.alt_stat_name = "web_stats".into();
    cluster_from_proto(&c).unwrap();
}
