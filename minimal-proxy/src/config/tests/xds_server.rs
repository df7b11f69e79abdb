//! Everything xds-server sends today converts: resources built the way
//! `xds-server/src/translate/*.rs` builds them (the shapes of its golden files
//! `testdata/full_example.json` and `tcp_grpc.json`), over ADS and over per-type streams,
//! and the static xDS cluster of the bootstrap it renders (`api/bootstrap.rs`).

use std::time::Duration;

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::{
                CircuitBreakers, Cluster, OutlierDetection,
                circuit_breakers::Thresholds,
                cluster::{
                    ClusterDiscoveryType, DiscoveryType, DnsLookupFamily, EdsClusterConfig,
                    LbPolicy as EnvoyLb, LbSubsetConfig,
                    lb_subset_config::{
                        LbSubsetFallbackPolicy, LbSubsetSelector,
                        lb_subset_selector::LbSubsetSelectorFallbackPolicy,
                    },
                },
            },
            core::v3::{
                AggregatedConfigSource, ApiConfigSource, ApiVersion, ConfigSource, GrpcService,
                HealthCheck, HealthStatus, Http2ProtocolOptions, Locality, Metadata,
                api_config_source::ApiType,
                config_source::ConfigSourceSpecifier,
                grpc_service::{EnvoyGrpc, TargetSpecifier},
                health_check::{HealthChecker, HttpHealthCheck, TcpHealthCheck},
            },
            endpoint::v3::{
                ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
                lb_endpoint::HostIdentifier,
            },
        },
        extensions::upstreams::http::v3::{
            HttpProtocolOptions,
            http_protocol_options::{
                ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
            },
        },
        r#type::v3::CodecClientType,
    },
    google::protobuf::{Struct, Value, value::Kind},
};
use prost::Name;

use super::{any, listener::socket, millis, secs, u32v};
use crate::config::{
    Discovery, DnsFamily, EndpointAddress, EndpointHealth, LbPolicy, SubsetFallback,
    UpstreamProtocol, cluster_from_proto, load_assignment_from_proto,
};

/// translate's `config_source`: ADS, or per-type gRPC streams to the xDS cluster.
pub(super) fn sources() -> Vec<ConfigSource> {
    let ads = ConfigSourceSpecifier::Ads(AggregatedConfigSource {});
    let api = |api_type: ApiType| {
        ConfigSourceSpecifier::ApiConfigSource(ApiConfigSource {
            api_type: api_type as i32,
            transport_api_version: ApiVersion::V3 as i32,
            grpc_services: vec![GrpcService {
                target_specifier: Some(TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                    cluster_name: "xds_cluster".into(),
                    ..EnvoyGrpc::default()
                })),
                ..GrpcService::default()
            }],
            ..ApiConfigSource::default()
        })
    };
    [ads, api(ApiType::Grpc), api(ApiType::DeltaGrpc)]
        .into_iter()
        .map(|s| ConfigSource {
            config_source_specifier: Some(s),
            resource_api_version: ApiVersion::V3 as i32,
            ..ConfigSource::default()
        })
        .collect()
}

fn http2_options() -> (String, envoy_types::pb::google::protobuf::Any) {
    let options = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                    Http2ProtocolOptions::default(),
                )),
            },
        )),
        ..HttpProtocolOptions::default()
    };
    (HttpProtocolOptions::full_name(), any(&options))
}

fn health_check(checker: HealthChecker) -> HealthCheck {
    HealthCheck {
        timeout: millis(500),
        interval: secs(2),
        no_traffic_interval: secs(2),
        healthy_threshold: u32v(1),
        unhealthy_threshold: u32v(3),
        health_checker: Some(checker),
        ..HealthCheck::default()
    }
}

/// translate's `cluster` for the full example's `web` service.
fn web_cluster(eds_config: ConfigSource) -> Cluster {
    Cluster {
        name: "web".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(eds_config),
            service_name: String::new(),
        }),
        connect_timeout: secs(1),
        lb_policy: EnvoyLb::LeastRequest as i32,
        circuit_breakers: Some(CircuitBreakers {
            thresholds: vec![Thresholds {
                max_connections: u32v(1024),
                max_pending_requests: u32v(256),
                max_requests: u32v(2048),
                max_retries: u32v(3),
                ..Thresholds::default()
            }],
            ..CircuitBreakers::default()
        }),
        outlier_detection: Some(OutlierDetection {
            consecutive_5xx: u32v(5),
            interval: secs(10),
            base_ejection_time: secs(30),
            max_ejection_percent: u32v(10),
            ..OutlierDetection::default()
        }),
        health_checks: vec![health_check(HealthChecker::HttpHealthCheck(
            HttpHealthCheck {
                path: "/healthz".into(),
                codec_client_type: CodecClientType::Http1 as i32,
                ..HttpHealthCheck::default()
            },
        ))],
        lb_subset_config: Some(LbSubsetConfig {
            fallback_policy: LbSubsetFallbackPolicy::AnyEndpoint as i32,
            subset_selectors: vec![LbSubsetSelector {
                keys: vec!["version".into()],
                fallback_policy: LbSubsetSelectorFallbackPolicy::NoFallback as i32,
                ..LbSubsetSelector::default()
            }],
            ..LbSubsetConfig::default()
        }),
        ..Cluster::default()
    }
}

#[test]
fn clusters_convert_over_every_delivery() {
    for source in sources() {
        let c = cluster_from_proto(&web_cluster(source)).unwrap();
        assert_eq!(
            c.discovery,
            Discovery::Eds {
                service_name: "web".into()
            }
        );
        assert_eq!(c.connect_timeout, Duration::from_secs(1));
        assert_eq!(c.lb_policy, LbPolicy::LeastRequest { choice_count: 2 });
        assert_eq!(c.circuit_breakers.max_pending_requests, 256);
        assert_eq!(c.outlier_detection.unwrap().consecutive_5xx, 5);
        assert_eq!(c.health_checks.len(), 1);
        assert_eq!(
            c.subsets.unwrap().selectors[0].fallback,
            SubsetFallback::NoFallback
        );
    }
    // tcp_grpc.json's gRPC service: HTTP/2 upstream and probes, ring hash; a TCP service's
    // connect-only probe.
    let mut grpc = web_cluster(sources().remove(0));
    grpc.lb_policy = EnvoyLb::RingHash as i32;
    grpc.typed_extension_protocol_options = [http2_options()].into();
    grpc.health_checks = vec![health_check(HealthChecker::HttpHealthCheck(
        HttpHealthCheck {
            path: "/grpc.health.v1.Health/Check".into(),
            codec_client_type: CodecClientType::Http2 as i32,
            ..HttpHealthCheck::default()
        },
    ))];
    let c = cluster_from_proto(&grpc).unwrap();
    assert_eq!(c.protocol, UpstreamProtocol::Http2);
    assert!(matches!(c.lb_policy, LbPolicy::RingHash { .. }));
    let mut tcp = web_cluster(sources().remove(0));
    tcp.health_checks = vec![health_check(HealthChecker::TcpHealthCheck(
        TcpHealthCheck::default(),
    ))];
    cluster_from_proto(&tcp).unwrap();
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> Option<Metadata> {
    let fields = pairs
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Value {
                    kind: Some(Kind::StringValue(v.to_string())),
                },
            )
        })
        .collect();
    Some(Metadata {
        filter_metadata: [("envoy.lb".to_string(), Struct { fields })].into(),
        ..Metadata::default()
    })
}

fn lb_endpoint(
    host: &str,
    port: u32,
    health: HealthStatus,
    weight: u32,
    l: &[(&str, &str)],
) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
            address: socket(host, port),
            ..EnvoyEndpoint::default()
        })),
        health_status: health as i32,
        metadata: (!l.is_empty()).then(|| labels(l)).flatten(),
        load_balancing_weight: u32v(weight),
    }
}

#[test]
fn load_assignments_convert() {
    let zone = |zone: &str, lb_endpoints| LocalityLbEndpoints {
        locality: Some(Locality {
            zone: zone.into(),
            ..Locality::default()
        }),
        lb_endpoints,
        ..LocalityLbEndpoints::default()
    };
    let cla = ClusterLoadAssignment {
        cluster_name: "web".into(),
        endpoints: vec![
            zone(
                "",
                vec![lb_endpoint("10.0.3.1", 8080, HealthStatus::Healthy, 1, &[])],
            ),
            zone(
                "z1",
                vec![
                    lb_endpoint(
                        "10.0.1.1",
                        8080,
                        HealthStatus::Healthy,
                        2,
                        &[("version", "v1")],
                    ),
                    lb_endpoint(
                        "10.0.1.2",
                        8080,
                        HealthStatus::Draining,
                        1,
                        &[("version", "v1")],
                    ),
                    lb_endpoint("10.0.1.3", 8080, HealthStatus::Unhealthy, 1, &[]),
                ],
            ),
            zone(
                "z2",
                vec![lb_endpoint(
                    "::1",
                    50051,
                    HealthStatus::Healthy,
                    1,
                    &[("version", "v2")],
                )],
            ),
        ],
        ..ClusterLoadAssignment::default()
    };
    let a = load_assignment_from_proto(&cla).unwrap();
    assert_eq!(a.localities.len(), 3);
    let z1 = &a.localities[1];
    assert_eq!((z1.zone.as_str(), z1.endpoints[0].weight), ("z1", 2));
    assert_eq!(z1.endpoints[1].health, EndpointHealth::Draining);
    assert_eq!(z1.endpoints[2].health, EndpointHealth::Unhealthy);
    assert_eq!(
        a.localities[2].endpoints[0].address,
        EndpointAddress::Socket("[::1]:50051".parse().unwrap())
    );
    // An empty assignment (a service without endpoints) converts too.
    let empty = ClusterLoadAssignment {
        cluster_name: "idle".into(),
        ..ClusterLoadAssignment::default()
    };
    assert!(
        load_assignment_from_proto(&empty)
            .unwrap()
            .localities
            .is_empty()
    );
}

/// The bootstrap's static xDS cluster: STATIC for an IP, STRICT_DNS (V4_PREFERRED when xDS
/// listens on IPv4, AUTO otherwise) for a name; HTTP/2 upstream.
#[test]
fn the_bootstrap_xds_cluster_converts() {
    let xds_cluster = |host: &str, kind: DiscoveryType, family: DnsLookupFamily| Cluster {
        name: "xds_cluster".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        connect_timeout: secs(1),
        typed_extension_protocol_options: [http2_options()].into(),
        dns_lookup_family: family as i32,
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: "xds_cluster".into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
                        address: socket(host, 18000),
                        ..EnvoyEndpoint::default()
                    })),
                    ..LbEndpoint::default()
                }],
                ..LocalityLbEndpoints::default()
            }],
            ..ClusterLoadAssignment::default()
        }),
        ..Cluster::default()
    };
    let c = cluster_from_proto(&xds_cluster(
        "127.0.0.1",
        DiscoveryType::Static,
        DnsLookupFamily::Auto,
    ))
    .unwrap();
    assert_eq!(c.protocol, UpstreamProtocol::Http2);
    assert_eq!(c.connect_timeout, Duration::from_secs(1));
    let Discovery::Static(a) = &c.discovery else {
        panic!("{:?}", c.discovery)
    };
    assert_eq!(
        a.localities[0].endpoints[0].address,
        EndpointAddress::Socket("127.0.0.1:18000".parse().unwrap())
    );

    for (family, want) in [
        (DnsLookupFamily::V4Preferred, DnsFamily::V4Preferred),
        (DnsLookupFamily::Auto, DnsFamily::Auto),
    ] {
        let c = cluster_from_proto(&xds_cluster(
            "xds.example.com",
            DiscoveryType::StrictDns,
            family,
        ))
        .unwrap();
        let Discovery::StrictDns {
            family: got,
            assignment,
            ..
        } = &c.discovery
        else {
            panic!("{:?}", c.discovery)
        };
        assert_eq!(*got, want);
        assert_eq!(
            assignment.localities[0].endpoints[0].address,
            EndpointAddress::Dns {
                host: "xds.example.com".into(),
                port: 18000
            }
        );
    }
}
