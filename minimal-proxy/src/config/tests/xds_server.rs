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
                HeaderValue, HeaderValueOption, HealthCheck, HealthStatus, Http2ProtocolOptions,
                Locality, Metadata,
                api_config_source::ApiType,
                config_source::ConfigSourceSpecifier,
                grpc_service::{EnvoyGrpc, TargetSpecifier},
                header_value_option::HeaderAppendAction,
                health_check::{HealthChecker, HttpHealthCheck, TcpHealthCheck},
            },
            endpoint::v3::{
                ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
                lb_endpoint::HostIdentifier,
            },
            listener::v3::Listener,
            route::v3::{
                HeaderMatcher, RetryPolicy, Route as EnvoyRoute, RouteAction, RouteConfiguration,
                RouteMatch, VirtualHost, WeightedCluster, header_matcher::HeaderMatchSpecifier,
                retry_policy::RetryBackOff, route::Action, route_action::ClusterSpecifier,
                route_match::PathSpecifier, weighted_cluster::ClusterWeight,
            },
        },
        extensions::{
            filters::network::{
                http_connection_manager::v3::{
                    HttpConnectionManager, Rds,
                    http_connection_manager::{CodecType, RouteSpecifier},
                },
                tcp_proxy::v3::{TcpProxy, tcp_proxy::ClusterSpecifier as TcpCluster},
            },
            upstreams::http::v3::{
                HttpProtocolOptions,
                http_protocol_options::{
                    ExplicitHttpConfig, UpstreamProtocolOptions,
                    explicit_http_config::ProtocolConfig,
                },
            },
        },
        r#type::{
            matcher::v3::{RegexMatcher, StringMatcher, string_matcher::MatchPattern},
            v3::CodecClientType,
        },
    },
    google::protobuf::{Struct, Value, value::Kind},
};
use prost::Name;

use super::{
    any,
    listener::{listener_with, router, socket},
    millis, secs, u32v,
};
use crate::config::{
    Discovery, DnsFamily, EndpointAddress, EndpointHealth, LbPolicy, ListenerFilter,
    RouteAction as ProxyAction, RouteSource, SubsetFallback, UpstreamProtocol, cluster_from_proto,
    listener_from_proto, load_assignment_from_proto, route_configuration_from_proto,
};

/// translate's `config_source`: ADS, or per-type gRPC streams to the xDS cluster.
fn sources() -> Vec<ConfigSource> {
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

fn labels(pairs: &[(&str, &str)]) -> Option<Metadata> {
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

#[test]
fn http_and_tcp_listeners_convert() {
    for source in sources() {
        let hcm = HttpConnectionManager {
            stat_prefix: "ingress".into(),
            codec_type: CodecType::Auto as i32,
            route_specifier: Some(RouteSpecifier::Rds(Rds {
                config_source: Some(source),
                route_config_name: "ingress".into(),
            })),
            http_filters: vec![router()],
            ..HttpConnectionManager::default()
        };
        let mut l = listener_with(any(&hcm));
        l.filter_chains[0].filters[0].name = "envoy.filters.network.http_connection_manager".into();
        let l = listener_from_proto(&l).unwrap();
        let ListenerFilter::Http(h) = l.filter else {
            panic!("{:?}", l.filter)
        };
        assert_eq!(h.routes, RouteSource::Rds("ingress".into()));
    }
    let tcp = TcpProxy {
        stat_prefix: "grpc-in".into(),
        cluster_specifier: Some(TcpCluster::Cluster("greeter".into())),
        ..TcpProxy::default()
    };
    let l = Listener {
        name: "grpc-in".into(),
        address: socket("127.0.0.1", 15051),
        ..listener_with(any(&tcp))
    };
    let l = listener_from_proto(&l).unwrap();
    assert_eq!(l.address, "127.0.0.1:15051".parse().unwrap());
    let ListenerFilter::Tcp(t) = l.filter else {
        panic!("{:?}", l.filter)
    };
    assert_eq!(t.cluster, "greeter");
    let v6 = Listener {
        address: socket("::", 8080),
        ..listener_with(any(&tcp))
    };
    assert_eq!(
        listener_from_proto(&v6).unwrap().address,
        "[::]:8080".parse().unwrap()
    );
}

fn string_header(name: &str, pattern: MatchPattern) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(pattern),
            ..StringMatcher::default()
        })),
        ..HeaderMatcher::default()
    }
}

fn set(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..HeaderValue::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.into(),
        engine_type: None,
    }
}

/// translate's `route_configuration` for the full example.
fn full_example_routes() -> RouteConfiguration {
    let weighted = |version: &str, weight| ClusterWeight {
        name: "web".into(),
        weight: u32v(weight),
        metadata_match: labels(&[("version", version)]),
        ..ClusterWeight::default()
    };
    let api = EnvoyRoute {
        r#match: Some(RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix("/api/".into())),
            headers: vec![
                string_header("x-canary", MatchPattern::Exact("1".into())),
                string_header("x-trace", MatchPattern::SafeRegex(regex("[0-9a-f]+"))),
                HeaderMatcher {
                    name: "x-debug".into(),
                    header_match_specifier: Some(HeaderMatchSpecifier::PresentMatch(true)),
                    ..HeaderMatcher::default()
                },
                string_header(":method", MatchPattern::Exact("GET".into())),
            ],
            ..RouteMatch::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
                clusters: vec![weighted("v1", 80), weighted("v2", 20)],
                ..WeightedCluster::default()
            })),
            timeout: secs(5),
            retry_policy: Some(RetryPolicy {
                retry_on: "5xx,gateway-error,connect-failure,reset".into(),
                num_retries: u32v(2),
                per_try_timeout: secs(1),
                retry_back_off: Some(RetryBackOff {
                    base_interval: millis(25),
                    max_interval: millis(250),
                }),
                ..RetryPolicy::default()
            }),
            prefix_rewrite: "/".into(),
            ..RouteAction::default()
        })),
        request_headers_to_add: vec![set("x-from", "mesh")],
        request_headers_to_remove: vec!["x-debug".into()],
        response_headers_to_add: vec![set("x-served-by", "mesh")],
        response_headers_to_remove: vec!["server".into()],
        ..EnvoyRoute::default()
    };
    let to_web = |path: PathSpecifier, retry: Option<RetryPolicy>| EnvoyRoute {
        r#match: Some(RouteMatch {
            path_specifier: Some(path),
            ..RouteMatch::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(ClusterSpecifier::Cluster("web".into())),
            retry_policy: retry,
            ..RouteAction::default()
        })),
        ..EnvoyRoute::default()
    };
    let default_retry = RetryPolicy {
        retry_on: "5xx,connect-failure,reset".into(),
        num_retries: u32v(1),
        ..RetryPolicy::default()
    };
    RouteConfiguration {
        name: "ingress".into(),
        virtual_hosts: vec![VirtualHost {
            name: "web".into(),
            domains: vec!["web.example.com".into(), "*".into()],
            routes: vec![
                api,
                to_web(
                    PathSpecifier::SafeRegex(regex("/v[0-9]+/.*")),
                    Some(default_retry),
                ),
                to_web(PathSpecifier::Path("/exact".into()), None),
                to_web(PathSpecifier::Prefix("/".into()), None),
            ],
            ..VirtualHost::default()
        }],
        ..RouteConfiguration::default()
    }
}

#[test]
fn route_configurations_convert() {
    let rc = route_configuration_from_proto(&full_example_routes()).unwrap();
    let routes = &rc.virtual_hosts[0].routes;
    assert_eq!(routes.len(), 4);
    let ProxyAction::Forward(api) = &routes[0].action else {
        panic!("{:?}", routes[0].action)
    };
    assert_eq!(api.retry.as_ref().unwrap().num_retries, 2);
    assert_eq!(routes[0].request_headers.add.len(), 1);
    let ProxyAction::Forward(fallback) = &routes[3].action else {
        panic!()
    };
    assert_eq!(fallback.timeout, Some(Duration::from_secs(15)));
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
