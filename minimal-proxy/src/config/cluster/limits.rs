//! `circuit_breakers` → [`CircuitBreakers`] and `outlier_detection` → [`OutlierDetection`].
//!
//! Outlier detection implements consecutive-5xx ejection only. Envoy's other detectors are
//! accepted only when they cannot eject: consecutive gateway failure and failure percentage
//! are off by default (0 % enforcement) and must stay off; success rate is on by default
//! (100 %) but ejects only when at least 5 hosts each saw 100 requests in one interval, so an
//! unset `enforcing_success_rate` is accepted as a known gap and any explicit setting other
//! than 0 (off) is refused. Tuning of a detector that is off is inert and accepted.

use std::time::Duration;

use envoy_types::pb::{
    envoy::config::{
        cluster::v3::{
            CircuitBreakers as EnvoyBreakers, OutlierDetection as EnvoyOutlier,
            circuit_breakers::Thresholds,
        },
        core::v3::RoutingPriority,
    },
    google::protobuf::UInt32Value,
};

use crate::config::{
    CircuitBreakers, OutlierDetection,
    check::{self, Refusal, Result, unset},
};

/// Envoy's defaults.
const CONSECUTIVE_5XX: u32 = 5;
const INTERVAL: Duration = Duration::from_secs(10);
const BASE_EJECTION_TIME: Duration = Duration::from_secs(30);
const MAX_EJECTION_PERCENT: u32 = 10;

pub(super) fn circuit_breakers(cb: &EnvoyBreakers) -> Result<CircuitBreakers> {
    let EnvoyBreakers {
        thresholds,
        per_host_thresholds,
    } = cb;
    unset!(per_host_thresholds);
    match thresholds.as_slice() {
        [] => Ok(CircuitBreakers::default()),
        [t] => self::thresholds(t).map_err(|r| r.under("thresholds[0]")),
        _ => Err(Refusal::new(
            "thresholds",
            "only one entry (priority DEFAULT) is supported by minimal-proxy",
        )),
    }
}

fn thresholds(t: &Thresholds) -> Result<CircuitBreakers> {
    let Thresholds {
        priority,
        max_connections,
        max_pending_requests,
        max_requests,
        max_retries,
        retry_budget,
        track_remaining,
        max_connection_pools,
    } = t;
    match RoutingPriority::try_from(*priority) {
        Ok(RoutingPriority::Default) => {}
        Ok(other) => {
            return Err(check::unsupported_value(
                "priority",
                other.as_str_name(),
                "DEFAULT",
            ));
        }
        Err(_) => return Err(check::unknown_enum("priority", *priority, "DEFAULT")),
    }
    unset!(retry_budget, track_remaining, max_connection_pools);
    let d = CircuitBreakers::default();
    Ok(CircuitBreakers {
        max_connections: check::uint32(max_connections).unwrap_or(d.max_connections),
        max_pending_requests: check::uint32(max_pending_requests).unwrap_or(d.max_pending_requests),
        max_requests: check::uint32(max_requests).unwrap_or(d.max_requests),
        max_retries: check::uint32(max_retries).unwrap_or(d.max_retries),
    })
}

pub(super) fn outlier_detection(od: &EnvoyOutlier) -> Result<OutlierDetection> {
    let EnvoyOutlier {
        consecutive_5xx,
        interval,
        base_ejection_time,
        max_ejection_percent,
        enforcing_consecutive_5xx,
        enforcing_success_rate,
        success_rate_minimum_hosts,
        success_rate_request_volume,
        success_rate_stdev_factor,
        consecutive_gateway_failure,
        enforcing_consecutive_gateway_failure,
        split_external_local_origin_errors,
        consecutive_local_origin_failure,
        enforcing_consecutive_local_origin_failure,
        enforcing_local_origin_success_rate,
        failure_percentage_threshold,
        enforcing_failure_percentage,
        enforcing_failure_percentage_local_origin,
        failure_percentage_minimum_hosts,
        failure_percentage_request_volume,
        max_ejection_time,
        max_ejection_time_jitter,
        successful_active_health_check_uneject_host,
        monitors,
        always_eject_one_host,
        detect_degraded_hosts,
    } = od;
    percent(
        "enforcing_consecutive_5xx",
        enforcing_consecutive_5xx,
        &[100],
        "100 (Envoy's default)",
    )?;
    // Success rate: unset is Envoy's 100 % (see the module doc); 0 turns it off.
    percent(
        "enforcing_success_rate",
        enforcing_success_rate,
        &[0],
        "0 (off)",
    )?;
    if check::uint32(enforcing_success_rate) != Some(0) {
        unset!(
            success_rate_minimum_hosts,
            success_rate_request_volume,
            success_rate_stdev_factor
        );
    }
    percent(
        "enforcing_consecutive_gateway_failure",
        enforcing_consecutive_gateway_failure,
        &[0],
        "0 (Envoy's default, off)",
    )?;
    // Off, so its threshold is inert.
    let _ = consecutive_gateway_failure;
    percent(
        "enforcing_failure_percentage",
        enforcing_failure_percentage,
        &[0],
        "0 (Envoy's default, off)",
    )?;
    percent(
        "enforcing_failure_percentage_local_origin",
        enforcing_failure_percentage_local_origin,
        &[0],
        "0 (Envoy's default, off)",
    )?;
    // Off (both enforcements 0), so their tuning is inert.
    let _ = (
        failure_percentage_threshold,
        failure_percentage_minimum_hosts,
        failure_percentage_request_volume,
    );
    unset!(
        split_external_local_origin_errors,
        consecutive_local_origin_failure,
        enforcing_consecutive_local_origin_failure,
        enforcing_local_origin_success_rate,
        max_ejection_time,
        max_ejection_time_jitter,
        monitors,
        always_eject_one_host,
        detect_degraded_hosts,
    );
    check::bool_default(
        "successful_active_health_check_uneject_host",
        successful_active_health_check_uneject_host,
        true,
    )?;
    let max_ejection_percent = check::uint32(max_ejection_percent).unwrap_or(MAX_EJECTION_PERCENT);
    if max_ejection_percent > 100 {
        return Err(Refusal::new(
            "max_ejection_percent",
            format!("must be at most 100, got {max_ejection_percent}"),
        ));
    }
    Ok(OutlierDetection {
        consecutive_5xx: check::uint32(consecutive_5xx).unwrap_or(CONSECUTIVE_5XX),
        interval: positive_or("interval", interval, INTERVAL)?,
        base_ejection_time: positive_or(
            "base_ejection_time",
            base_ejection_time,
            BASE_EJECTION_TIME,
        )?,
        max_ejection_percent,
    })
}

/// An enforcement percentage that may be unset or one of `allowed`.
fn percent(
    field: &str,
    value: &Option<UInt32Value>,
    allowed: &[u32],
    supported: &str,
) -> Result<()> {
    match check::uint32(value) {
        Some(v) if !allowed.contains(&v) => Err(check::unsupported_value(field, v, supported)),
        _ => Ok(()),
    }
}

fn positive_or(
    field: &str,
    value: &Option<envoy_types::pb::google::protobuf::Duration>,
    default: Duration,
) -> Result<Duration> {
    match check::duration(field, value)? {
        None => Ok(default),
        Some(d) if d.is_zero() => Err(Refusal::new(field, "must be greater than 0s")),
        Some(d) => Ok(d),
    }
}
