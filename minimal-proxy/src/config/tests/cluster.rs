//! `cluster_from_proto`: discovery types, load-balancing policies, defaults and refusals of
//! the cluster's own fields.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use std::time::Duration;

use envoy_types::pb::envoy::config::{
    cluster::v3::{
        Cluster,
        cluster::{
            ClusterDiscoveryType, CommonLbConfig, DiscoveryType, DnsLookupFamily, EdsClusterConfig,
            LbConfig, LbPolicy as EnvoyLb, LeastRequestLbConfig, MaglevLbConfig, RingHashLbConfig,
            ring_hash_lb_config::HashFunction,
        },
    },
    core::v3::{
        Address, AggregatedConfigSource, ConfigSource, PathConfigSource, SocketAddress,
        TransportSocket, address, config_source::ConfigSourceSpecifier,
        socket_address::PortSpecifier,
    },
    endpoint::v3::{
        ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
        lb_endpoint::HostIdentifier,
    },
};
use envoy_types::pb::google::protobuf::UInt64Value;

use super::{millis, refused, secs, u32v};
use crate::config::{
    CircuitBreakers, Discovery, DnsFamily, EndpointAddress, LbPolicy, UpstreamProtocol,
    cluster_from_proto,
};

fn ads() -> ConfigSource {
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

const WEB: &str = "cluster 'web'";

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

fn lb(policy: EnvoyLb, config: Option<LbConfig>) -> Cluster {
    Cluster {
        lb_policy: policy as i32,
        lb_config: config,
        ..eds("web")
    }
}

#[test]
fn lb_policies_with_defaults_and_configs() {
    let cases = [
        (lb(EnvoyLb::RoundRobin, None), LbPolicy::RoundRobin),
        (lb(EnvoyLb::Random, None), LbPolicy::Random),
        (
            lb(EnvoyLb::LeastRequest, None),
            LbPolicy::LeastRequest { choice_count: 2 },
        ),
        (
            lb(
                EnvoyLb::LeastRequest,
                Some(LbConfig::LeastRequestLbConfig(LeastRequestLbConfig {
                    choice_count: u32v(5),
                    ..Default::default()
                })),
            ),
            LbPolicy::LeastRequest { choice_count: 5 },
        ),
        (
            lb(EnvoyLb::RingHash, None),
            LbPolicy::RingHash {
                min_ring_size: 1024,
                max_ring_size: 8 * 1024 * 1024,
            },
        ),
        (
            lb(
                EnvoyLb::RingHash,
                Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
                    minimum_ring_size: Some(UInt64Value { value: 64 }),
                    maximum_ring_size: Some(UInt64Value { value: 4096 }),
                    ..Default::default()
                })),
            ),
            LbPolicy::RingHash {
                min_ring_size: 64,
                max_ring_size: 4096,
            },
        ),
        (
            lb(EnvoyLb::Maglev, None),
            LbPolicy::Maglev { table_size: 65537 },
        ),
        (
            lb(
                EnvoyLb::Maglev,
                Some(LbConfig::MaglevLbConfig(MaglevLbConfig {
                    table_size: Some(UInt64Value { value: 251 }),
                })),
            ),
            LbPolicy::Maglev { table_size: 251 },
        ),
    ];
    for (cluster, want) in cases {
        assert_eq!(cluster_from_proto(&cluster).unwrap().lb_policy, want);
    }
}

#[test]
fn lb_refusals_name_the_field() {
    refused(
        cluster_from_proto(&lb(EnvoyLb::ClusterProvided, None)),
        WEB,
        "lb_policy",
        "'CLUSTER_PROVIDED' is not supported by minimal-proxy; supported: ROUND_ROBIN",
    );
    refused(
        cluster_from_proto(&lb(
            EnvoyLb::RoundRobin,
            Some(LbConfig::MaglevLbConfig(MaglevLbConfig::default())),
        )),
        WEB,
        "maglev_lb_config",
        "does not apply to lb_policy ROUND_ROBIN",
    );
    refused(
        cluster_from_proto(&lb(
            EnvoyLb::LeastRequest,
            Some(LbConfig::LeastRequestLbConfig(LeastRequestLbConfig {
                choice_count: u32v(1),
                ..Default::default()
            })),
        )),
        WEB,
        "least_request_lb_config.choice_count",
        "at least 2",
    );
    refused(
        cluster_from_proto(&lb(
            EnvoyLb::RingHash,
            Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
                hash_function: HashFunction::MurmurHash2 as i32,
                ..Default::default()
            })),
        )),
        WEB,
        "ring_hash_lb_config.hash_function",
        "'MURMUR_HASH_2'",
    );
    refused(
        cluster_from_proto(&lb(
            EnvoyLb::RingHash,
            Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
                minimum_ring_size: Some(UInt64Value { value: 10_000 }),
                maximum_ring_size: Some(UInt64Value { value: 100 }),
                ..Default::default()
            })),
        )),
        WEB,
        "ring_hash_lb_config.minimum_ring_size",
        "greater than maximum_ring_size",
    );
    refused(
        cluster_from_proto(&lb(
            EnvoyLb::Maglev,
            Some(LbConfig::MaglevLbConfig(MaglevLbConfig {
                table_size: Some(UInt64Value { value: 1000 }),
            })),
        )),
        WEB,
        "maglev_lb_config.table_size",
        "prime",
    );
}

#[test]
fn unimplemented_cluster_fields_are_refused_by_name() {
    let cases: Vec<(&str, Box<dyn Fn(&mut Cluster)>)> = vec![
        (
            "per_connection_buffer_limit_bytes",
            Box::new(|c| c.per_connection_buffer_limit_bytes = u32v(1)),
        ),
        (
            "transport_socket",
            Box::new(|c| c.transport_socket = Some(TransportSocket::default())),
        ),
        (
            "common_lb_config",
            Box::new(|c| c.common_lb_config = Some(CommonLbConfig::default())),
        ),
        ("respect_dns_ttl", Box::new(|c| c.respect_dns_ttl = true)),
        (
            "ignore_health_on_host_removal",
            Box::new(|c| c.ignore_health_on_host_removal = true),
        ),
        ("lrs_server", Box::new(|c| c.lrs_server = Some(ads()))),
        ("protocol_selection", Box::new(|c| c.protocol_selection = 1)),
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
