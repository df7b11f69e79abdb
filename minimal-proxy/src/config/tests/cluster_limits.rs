//! `cluster_from_proto`: circuit breakers and outlier detection.

use super::cluster::WEB;
use std::time::Duration;

use envoy_types::pb::envoy::config::{
    cluster::v3::{
        CircuitBreakers as EnvoyBreakers, Cluster, OutlierDetection as EnvoyOutlier,
        circuit_breakers::{Thresholds, thresholds::RetryBudget},
    },
    core::v3::RoutingPriority,
};

use super::{cluster::eds, millis, refused, secs, u32v};
use crate::config::{CircuitBreakers, OutlierDetection, cluster_from_proto};

fn with(f: impl FnOnce(&mut Cluster)) -> Cluster {
    let mut c = eds("web");
    f(&mut c);
    c
}

fn breakers(t: Thresholds) -> Cluster {
    with(|c| {
        c.circuit_breakers = Some(EnvoyBreakers {
            thresholds: vec![t],
            ..Default::default()
        })
    })
}

#[test]
fn circuit_breakers_keep_envoy_defaults_for_unset_thresholds() {
    let c = cluster_from_proto(&breakers(Thresholds {
        max_pending_requests: u32v(256),
        max_requests: u32v(2048),
        ..Default::default()
    }))
    .unwrap();
    assert_eq!(
        c.circuit_breakers,
        CircuitBreakers {
            max_connections: 1024,
            max_pending_requests: 256,
            max_requests: 2048,
            max_retries: 3,
        }
    );
    refused(
        cluster_from_proto(&breakers(Thresholds {
            priority: RoutingPriority::High as i32,
            ..Default::default()
        })),
        WEB,
        "circuit_breakers.thresholds[0].priority",
        "'HIGH' is not supported by minimal-proxy; supported: DEFAULT",
    );
    refused(
        cluster_from_proto(&breakers(Thresholds {
            retry_budget: Some(RetryBudget::default()),
            ..Default::default()
        })),
        WEB,
        "circuit_breakers.thresholds[0].retry_budget",
        "not supported",
    );
    let two = with(|c| {
        c.circuit_breakers = Some(EnvoyBreakers {
            thresholds: vec![Thresholds::default(), Thresholds::default()],
            ..Default::default()
        })
    });
    refused(
        cluster_from_proto(&two),
        WEB,
        "circuit_breakers.thresholds",
        "only one entry",
    );
}

fn outlier(od: EnvoyOutlier) -> Result<Option<OutlierDetection>, crate::config::Rejection> {
    cluster_from_proto(&with(|c| c.outlier_detection = Some(od))).map(|c| c.outlier_detection)
}

#[test]
fn outlier_detection_consecutive_5xx_with_envoy_defaults() {
    assert_eq!(
        outlier(EnvoyOutlier::default()).unwrap(),
        Some(OutlierDetection {
            consecutive_5xx: 5,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
        })
    );
    let od = EnvoyOutlier {
        consecutive_5xx: u32v(3),
        interval: secs(2),
        base_ejection_time: millis(500),
        max_ejection_percent: u32v(50),
        // Explicitly off detectors, with inert tuning, are accepted.
        enforcing_success_rate: u32v(0),
        success_rate_minimum_hosts: u32v(3),
        enforcing_consecutive_gateway_failure: u32v(0),
        consecutive_gateway_failure: u32v(2),
        failure_percentage_threshold: u32v(80),
        enforcing_consecutive_5xx: u32v(100),
        ..Default::default()
    };
    assert_eq!(
        outlier(od).unwrap(),
        Some(OutlierDetection {
            consecutive_5xx: 3,
            interval: Duration::from_secs(2),
            base_ejection_time: Duration::from_millis(500),
            max_ejection_percent: 50,
        })
    );
}

#[test]
fn outlier_detectors_that_could_eject_are_refused() {
    let cases = [
        (
            EnvoyOutlier {
                enforcing_success_rate: u32v(50),
                ..Default::default()
            },
            "enforcing_success_rate",
            "'50'",
        ),
        (
            EnvoyOutlier {
                success_rate_minimum_hosts: u32v(2),
                ..Default::default()
            },
            "success_rate_minimum_hosts",
            "not supported",
        ),
        (
            EnvoyOutlier {
                enforcing_consecutive_gateway_failure: u32v(100),
                ..Default::default()
            },
            "enforcing_consecutive_gateway_failure",
            "'100'",
        ),
        (
            EnvoyOutlier {
                enforcing_failure_percentage: u32v(10),
                ..Default::default()
            },
            "enforcing_failure_percentage",
            "'10'",
        ),
        (
            EnvoyOutlier {
                enforcing_consecutive_5xx: u32v(0),
                ..Default::default()
            },
            "enforcing_consecutive_5xx",
            "'0'",
        ),
        (
            EnvoyOutlier {
                split_external_local_origin_errors: true,
                ..Default::default()
            },
            "split_external_local_origin_errors",
            "not supported",
        ),
        (
            EnvoyOutlier {
                max_ejection_time: secs(60),
                ..Default::default()
            },
            "max_ejection_time",
            "not supported",
        ),
        (
            EnvoyOutlier {
                max_ejection_percent: u32v(101),
                ..Default::default()
            },
            "max_ejection_percent",
            "at most 100",
        ),
        (
            EnvoyOutlier {
                interval: secs(0),
                ..Default::default()
            },
            "interval",
            "greater than 0s",
        ),
        (
            EnvoyOutlier {
                successful_active_health_check_uneject_host: super::boolv(false),
                ..Default::default()
            },
            "successful_active_health_check_uneject_host",
            "supported: true",
        ),
    ];
    for (od, field, reason) in cases {
        refused(
            outlier(od),
            WEB,
            &format!("outlier_detection.{field}"),
            reason,
        );
    }
}
