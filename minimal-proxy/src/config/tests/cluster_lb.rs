//! `cluster_from_proto`: load-balancing policies, their configs, defaults and bounds; locality
//! weighting from `common_lb_config`.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use super::cluster::{WEB, eds};

use envoy_types::pb::envoy::config::cluster::v3::{
    Cluster,
    cluster::{
        CommonLbConfig, LbConfig, LbPolicy as EnvoyLb, LeastRequestLbConfig, MaglevLbConfig,
        RingHashLbConfig,
        common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig, ZoneAwareLbConfig},
        ring_hash_lb_config::HashFunction,
    },
};
use envoy_types::pb::google::protobuf::UInt64Value;

use super::{refused, u32v};
use crate::config::{LbPolicy, cluster_from_proto};

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

fn common(specifier: Option<LocalityConfigSpecifier>) -> Cluster {
    Cluster {
        common_lb_config: Some(CommonLbConfig {
            locality_config_specifier: specifier,
            ..Default::default()
        }),
        ..eds("web")
    }
}

/// Envoy applies locality weights only with `locality_weighted_lb_config`.
#[test]
fn locality_weights_apply_only_with_locality_weighted_lb_config() {
    assert!(!cluster_from_proto(&eds("web")).unwrap().locality_weighted);
    assert!(!cluster_from_proto(&common(None)).unwrap().locality_weighted);
    let weighted = common(Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(
        LocalityWeightedLbConfig {},
    )));
    assert!(cluster_from_proto(&weighted).unwrap().locality_weighted);
    refused(
        cluster_from_proto(&common(Some(LocalityConfigSpecifier::ZoneAwareLbConfig(
            ZoneAwareLbConfig::default(),
        )))),
        WEB,
        "common_lb_config.zone_aware_lb_config",
        "zone-aware routing is not supported by minimal-proxy",
    );
    let mut random = weighted.clone();
    random.lb_policy = EnvoyLb::Random as i32;
    refused(
        cluster_from_proto(&random),
        WEB,
        "common_lb_config.locality_weighted_lb_config",
        "is not supported with lb_policy RANDOM",
    );
    let mut panic_threshold = weighted.clone();
    if let Some(c) = &mut panic_threshold.common_lb_config {
        c.healthy_panic_threshold = Some(Default::default());
    }
    refused(
        cluster_from_proto(&panic_threshold),
        WEB,
        "common_lb_config.healthy_panic_threshold",
        "is not supported by minimal-proxy",
    );
}
