//! Services → EDS `Cluster`s, plus the small proto helpers the other translators share.

use std::collections::BTreeSet;

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::{
                CircuitBreakers, Cluster, OutlierDetection,
                circuit_breakers::Thresholds,
                cluster::{
                    ClusterDiscoveryType, DiscoveryType, EdsClusterConfig, LbPolicy as EnvoyLb,
                    LbSubsetConfig,
                    lb_subset_config::{
                        LbSubsetFallbackPolicy, LbSubsetSelector,
                        lb_subset_selector::LbSubsetSelectorFallbackPolicy,
                    },
                },
            },
            core::v3::{
                AggregatedConfigSource, ApiConfigSource, ApiVersion, ConfigSource, GrpcService,
                HealthCheck, Http2ProtocolOptions,
                api_config_source::ApiType,
                config_source::ConfigSourceSpecifier,
                grpc_service::{EnvoyGrpc, TargetSpecifier},
                health_check::{HealthChecker, HttpHealthCheck, TcpHealthCheck},
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
    google::protobuf::{Any, Duration as ProtoDuration, UInt32Value},
};
use prost::{Message, Name};

use super::Delivery;
use crate::model::{self, LbPolicy, Protocol, Service};

/// A model duration as a protobuf `Duration` (model durations are at most a day, so the
/// seconds always fit).
pub(super) fn duration(d: model::Duration) -> ProtoDuration {
    let d = d.get();
    ProtoDuration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub(super) fn uint32(value: u32) -> UInt32Value {
    UInt32Value { value }
}

/// Packs a message as an `Any` with its canonical type URL.
pub(super) fn to_any<M: Message + Name>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

/// Where a proxy fetches what its clusters and listeners refer to (EDS, RDS): over the ADS
/// stream it is on, or over per-type gRPC streams to its xDS cluster.
pub(super) fn config_source(delivery: &Delivery) -> ConfigSource {
    let specifier = match delivery {
        Delivery::Ads => ConfigSourceSpecifier::Ads(AggregatedConfigSource {}),
        Delivery::Separate { delta, xds_cluster } => {
            let api_type = if *delta {
                ApiType::DeltaGrpc
            } else {
                ApiType::Grpc
            };
            ConfigSourceSpecifier::ApiConfigSource(ApiConfigSource {
                api_type: api_type as i32,
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                        cluster_name: xds_cluster.clone(),
                        ..EnvoyGrpc::default()
                    })),
                    ..GrpcService::default()
                }],
                ..ApiConfigSource::default()
            })
        }
    };
    ConfigSource {
        config_source_specifier: Some(specifier),
        resource_api_version: ApiVersion::V3 as i32,
        ..ConfigSource::default()
    }
}

/// The EDS cluster for `service`. `subset_keys` are the label-key sets that routes select
/// subsets on; each becomes one subset selector.
pub(super) fn cluster(
    name: &str,
    service: &Service,
    subset_keys: &BTreeSet<Vec<String>>,
    eds_config: &ConfigSource,
) -> Cluster {
    Cluster {
        name: name.to_string(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(eds_config.clone()),
            // Empty: the assignment is named after the cluster.
            service_name: String::new(),
        }),
        // Absent: Envoy's default (5s).
        connect_timeout: service.connect_timeout.map(duration),
        lb_policy: lb_policy(service.lb_policy) as i32,
        circuit_breakers: service.circuit_breaker.as_ref().map(|cb| CircuitBreakers {
            thresholds: vec![Thresholds {
                max_connections: cb.max_connections.map(uint32),
                max_pending_requests: cb.max_pending_requests.map(uint32),
                max_requests: cb.max_requests.map(uint32),
                max_retries: cb.max_retries.map(uint32),
                ..Thresholds::default()
            }],
            ..CircuitBreakers::default()
        }),
        outlier_detection: service
            .outlier_detection
            .as_ref()
            .map(|od| OutlierDetection {
                consecutive_5xx: od.consecutive_5xx.map(uint32),
                interval: od.interval.map(duration),
                base_ejection_time: od.base_ejection_time.map(duration),
                max_ejection_percent: od.max_ejection_percent.map(uint32),
                ..OutlierDetection::default()
            }),
        health_checks: service
            .health_check
            .iter()
            .map(|hc| health_check(service.protocol, hc))
            .collect(),
        typed_extension_protocol_options: protocol_options(service.protocol).into_iter().collect(),
        lb_subset_config: subset_config(subset_keys),
        ..Cluster::default()
    }
}

fn lb_policy(policy: Option<LbPolicy>) -> EnvoyLb {
    match policy {
        None | Some(LbPolicy::RoundRobin) => EnvoyLb::RoundRobin,
        Some(LbPolicy::LeastRequest) => EnvoyLb::LeastRequest,
        Some(LbPolicy::Random) => EnvoyLb::Random,
        Some(LbPolicy::RingHash) => EnvoyLb::RingHash,
        Some(LbPolicy::Maglev) => EnvoyLb::Maglev,
    }
}

/// A path means an HTTP probe (over HTTP/2 for http2 and gRPC services, which may not speak
/// HTTP/1); no path (TCP services) means "connect and succeed". The operator's interval also
/// applies before the service carries traffic (Envoy would otherwise probe an unused cluster
/// only every 60 s, its `no_traffic_interval` default, so a new endpoint's health would show
/// a minute late).
fn health_check(protocol: Protocol, hc: &model::HealthCheck) -> HealthCheck {
    let checker = match &hc.path {
        Some(path) => HealthChecker::HttpHealthCheck(HttpHealthCheck {
            path: path.clone(),
            codec_client_type: match protocol {
                Protocol::Http2 | Protocol::Grpc => CodecClientType::Http2,
                Protocol::Http | Protocol::Tcp => CodecClientType::Http1,
            } as i32,
            ..HttpHealthCheck::default()
        }),
        None => HealthChecker::TcpHealthCheck(TcpHealthCheck::default()),
    };
    HealthCheck {
        timeout: Some(duration(hc.timeout)),
        interval: Some(duration(hc.interval)),
        no_traffic_interval: Some(duration(hc.interval)),
        healthy_threshold: Some(uint32(hc.healthy_threshold)),
        unhealthy_threshold: Some(uint32(hc.unhealthy_threshold)),
        health_checker: Some(checker),
        ..HealthCheck::default()
    }
}

/// HTTP/2 to the upstream for http2 and gRPC services; Envoy's default (HTTP/1.1) otherwise.
pub(super) fn protocol_options(protocol: Protocol) -> Option<(String, Any)> {
    if !matches!(protocol, Protocol::Http2 | Protocol::Grpc) {
        return None;
    }
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
    Some((HttpProtocolOptions::full_name(), to_any(&options)))
}

/// One selector per label-key set. A request that names no subset may use any endpoint
/// (`ANY_ENDPOINT` at the top); a request for a subset that has no endpoints fails with 503
/// (`NO_FALLBACK` on its selector) rather than silently reaching the wrong version.
fn subset_config(subset_keys: &BTreeSet<Vec<String>>) -> Option<LbSubsetConfig> {
    if subset_keys.is_empty() {
        return None;
    }
    // Sorted keys, sets in lexicographic order: a key set comes before every longer set it
    // prefixes, which Envoy needs to record each selector's own fallback policy.
    let sorted: BTreeSet<Vec<String>> = subset_keys
        .iter()
        .map(|keys| {
            let mut keys = keys.clone();
            keys.sort();
            keys
        })
        .collect();
    let subset_selectors = sorted
        .into_iter()
        .map(|keys| LbSubsetSelector {
            keys,
            fallback_policy: LbSubsetSelectorFallbackPolicy::NoFallback as i32,
            ..LbSubsetSelector::default()
        })
        .collect();
    Some(LbSubsetConfig {
        fallback_policy: LbSubsetFallbackPolicy::AnyEndpoint as i32,
        subset_selectors,
        ..LbSubsetConfig::default()
    })
}
