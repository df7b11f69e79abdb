//! `route_configuration_from_proto`: forwarding (clusters, weights, rewrite, timeout,
//! retries, hashing), direct responses and header changes, with Envoy's defaults.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use std::time::Duration;

use envoy_types::pb::{
    envoy::config::{
        core::v3::Metadata,
        route::v3::{
            RetryPolicy as EnvoyRetry, RouteAction as EnvoyAction,
            WeightedCluster as EnvoyWeighted, retry_policy::RetryBackOff, route::Action,
            route_action::ClusterSpecifier, weighted_cluster::ClusterWeight,
        },
    },
    google::protobuf::{Struct, Value, value::Kind},
};

use super::{
    millis, refused,
    route::{convert, prefix, route},
    secs, u32v,
};
use crate::config::{
    ClusterTarget, Forward, HeaderMutation, RetryOn, RetryPolicy, RouteAction, RouteConfig,
    WeightedCluster,
};

pub(super) const RC: &str = "route configuration 'ingress'";
pub(super) const AT: &str = "virtual_hosts[0].routes[0]";

pub(super) fn forward(a: EnvoyAction) -> Result<RouteConfig, crate::config::Rejection> {
    convert(vec![route(prefix("/"), Some(Action::Route(a)))])
}

pub(super) fn cluster(name: &str) -> Option<ClusterSpecifier> {
    Some(ClusterSpecifier::Cluster(name.into()))
}

pub(super) fn forwarded(a: EnvoyAction) -> Forward {
    match &forward(a).unwrap().virtual_hosts[0].routes[0].action {
        RouteAction::Forward(f) => f.clone(),
        other => panic!("{other:?}"),
    }
}

pub(super) fn subset(version: &str) -> Option<Metadata> {
    let value = Value {
        kind: Some(Kind::StringValue(version.into())),
    };
    Some(Metadata {
        filter_metadata: [(
            "envoy.lb".to_string(),
            Struct {
                fields: [("version".to_string(), value)].into(),
            },
        )]
        .into(),
        ..Metadata::default()
    })
}

#[test]
fn cluster_with_envoy_defaults() {
    let f = forwarded(EnvoyAction {
        cluster_specifier: cluster("web"),
        ..Default::default()
    });
    assert_eq!(
        f,
        Forward {
            target: ClusterTarget::Cluster("web".into()),
            prefix_rewrite: None,
            timeout: Some(Duration::from_secs(15)),
            retry: None,
            hash_policy: vec![],
        }
    );
    let f = forwarded(EnvoyAction {
        cluster_specifier: cluster("web"),
        timeout: secs(0),
        ..Default::default()
    });
    assert_eq!(f.timeout, None, "zero disables the timeout");
}

#[test]
fn weighted_clusters_with_subsets_rewrite_timeout_and_retries() {
    let f = forwarded(EnvoyAction {
        cluster_specifier: Some(ClusterSpecifier::WeightedClusters(EnvoyWeighted {
            clusters: vec![
                ClusterWeight {
                    name: "web".into(),
                    weight: u32v(80),
                    metadata_match: subset("v1"),
                    ..Default::default()
                },
                ClusterWeight {
                    name: "web".into(),
                    weight: u32v(20),
                    metadata_match: subset("v2"),
                    ..Default::default()
                },
            ],
            total_weight: u32v(100),
            ..Default::default()
        })),
        prefix_rewrite: "/".into(),
        timeout: secs(5),
        retry_policy: Some(EnvoyRetry {
            retry_on: "5xx,gateway-error,connect-failure,reset".into(),
            num_retries: u32v(2),
            per_try_timeout: secs(1),
            retry_back_off: Some(RetryBackOff {
                base_interval: millis(25),
                max_interval: millis(250),
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let weighted = |version: &str, weight| WeightedCluster {
        name: "web".into(),
        weight,
        metadata_match: [("version".to_string(), version.to_string())].into(),
        request_headers: HeaderMutation::default(),
        response_headers: HeaderMutation::default(),
    };
    assert_eq!(
        f.target,
        ClusterTarget::Weighted(vec![weighted("v1", 80), weighted("v2", 20)])
    );
    assert_eq!(f.prefix_rewrite.as_deref(), Some("/"));
    assert_eq!(f.timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        f.retry,
        Some(RetryPolicy {
            retry_on: RetryOn {
                server_error: true,
                gateway_error: true,
                connect_failure: true,
                reset: true,
                retriable_status_codes: false
            },
            num_retries: 2,
            per_try_timeout: Some(Duration::from_secs(1)),
            retriable_status_codes: vec![],
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
        })
    );
}

#[test]
fn action_refusals_name_the_field() {
    let weighted = |clusters, total| EnvoyAction {
        cluster_specifier: Some(ClusterSpecifier::WeightedClusters(EnvoyWeighted {
            clusters,
            total_weight: total,
            ..Default::default()
        })),
        ..Default::default()
    };
    let w = |name: &str, weight| ClusterWeight {
        name: name.into(),
        weight: u32v(weight),
        ..Default::default()
    };
    let cases = [
        (
            weighted(vec![w("a", 0), w("b", 0)], None),
            "weighted_clusters.clusters",
            "greater than 0",
        ),
        (
            weighted(vec![w("a", 1), w("b", 2)], u32v(100)),
            "weighted_clusters.total_weight",
            "is 100 but the weights sum to 3",
        ),
        (
            weighted(
                vec![ClusterWeight {
                    cluster_header: "x".into(),
                    ..w("a", 1)
                }],
                None,
            ),
            "weighted_clusters.clusters[0].cluster_header",
            "not supported",
        ),
        (
            EnvoyAction {
                cluster_specifier: cluster(""),
                ..Default::default()
            },
            "cluster",
            "must not be empty",
        ),
        (
            EnvoyAction {
                cluster_specifier: Some(ClusterSpecifier::ClusterHeader("x".into())),
                ..Default::default()
            },
            "cluster_header",
            "not supported",
        ),
        (
            EnvoyAction {
                cluster_specifier: cluster("web"),
                idle_timeout: secs(1),
                ..Default::default()
            },
            "idle_timeout",
            "not supported",
        ),
        (
            EnvoyAction {
                cluster_specifier: cluster("web"),
                priority: 1,
                ..Default::default()
            },
            "priority",
            "not supported",
        ),
        (
            EnvoyAction {
                cluster_specifier: cluster("web"),
                metadata_match: subset("v1"),
                ..Default::default()
            },
            "metadata_match",
            "not supported",
        ),
    ];
    for (a, field, reason) in cases {
        refused(forward(a), RC, &format!("{AT}.route.{field}"), reason);
    }
}
