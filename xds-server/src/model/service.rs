//! A service: a named set of endpoints reached with one protocol and one balancing policy.
//! It becomes one EDS-typed Envoy `Cluster` of the same name.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Duration, Inbound, Kind, Labels, MtlsMode, Reference, Spec, ValidationError, check_range,
    invalid,
    labels::{labels_schema, validate_labels},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub protocol: Protocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lb_policy: Option<LbPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1s")]
    pub connect_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// The service's sidecars: where they listen and the application they forward to. Absent
    /// for a service reached directly (through gateways), as before sidecars existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<Inbound>,
    /// How its sidecars accept calls (only with `inbound`); absent = the mesh default
    /// (`--mtls-default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsMode>,
    /// The operator's labels (Kubernetes-style keys and values, at most 64): found by
    /// `?selector=` on lists; never sent to proxies.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    #[schema(schema_with = labels_schema)]
    pub labels: Labels,
}

/// How the proxy talks to the service's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    RoundRobin,
    LeastRequest,
    Random,
    RingHash,
    Maglev,
}

/// Envoy's per-cluster thresholds; each absent one keeps Envoy's default (1024, or 3 retries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// Passive health checking: eject endpoints that keep failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutlierDetection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_5xx: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "10s")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "30s")]
    pub base_ejection_time: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
}

/// Active health checking. HTTP-family services probe `path`; TCP services only connect, so
/// they must not set a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[schema(example = "5s")]
    pub interval: Duration,
    #[schema(example = "1s")]
    pub timeout: Duration,
    #[serde(default = "one")]
    pub healthy_threshold: u32,
    #[serde(default = "three")]
    pub unhealthy_threshold: u32,
}

fn one() -> u32 {
    1
}

fn three() -> u32 {
    3
}

/// Upper bound for circuit-breaker thresholds: large enough for any real deployment, small
/// enough to catch a mistyped number.
const MAX_THRESHOLD: u32 = 1_000_000;

impl Spec for Service {
    const KIND: Kind = Kind::Service;

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        validate_labels("labels", &self.labels)?;
        if let Some(inbound) = &self.inbound {
            inbound.validate("inbound")?;
        }
        if self.mtls.is_some() && self.inbound.is_none() {
            return Err(invalid(
                "mtls",
                "only a service with sidecars terminates mTLS: declare inbound, or remove mtls",
            ));
        }
        if let Some(t) = self.connect_timeout {
            positive("connect_timeout", t)?;
        }
        if let Some(cb) = &self.circuit_breaker {
            for (field, value) in [
                ("max_connections", cb.max_connections),
                ("max_pending_requests", cb.max_pending_requests),
                ("max_requests", cb.max_requests),
                ("max_retries", cb.max_retries),
            ] {
                if let Some(v) = value {
                    check_range(&format!("circuit_breaker.{field}"), v, 0..=MAX_THRESHOLD)?;
                }
            }
        }
        if let Some(od) = &self.outlier_detection {
            if let Some(v) = od.consecutive_5xx {
                check_range("outlier_detection.consecutive_5xx", v, 1..=MAX_THRESHOLD)?;
            }
            if let Some(v) = od.max_ejection_percent {
                check_range("outlier_detection.max_ejection_percent", v, 0..=100)?;
            }
            if let Some(d) = od.interval {
                positive("outlier_detection.interval", d)?;
            }
            if let Some(d) = od.base_ejection_time {
                positive("outlier_detection.base_ejection_time", d)?;
            }
        }
        if let Some(hc) = &self.health_check {
            positive("health_check.interval", hc.interval)?;
            positive("health_check.timeout", hc.timeout)?;
            check_range(
                "health_check.healthy_threshold",
                hc.healthy_threshold,
                1..=100,
            )?;
            check_range(
                "health_check.unhealthy_threshold",
                hc.unhealthy_threshold,
                1..=100,
            )?;
            match (self.protocol, &hc.path) {
                (Protocol::Tcp, Some(_)) => {
                    return Err(invalid(
                        "health_check.path",
                        "a tcp service is checked by connecting; remove the path",
                    ));
                }
                (Protocol::Tcp, None) => {}
                (_, None) => {
                    return Err(invalid(
                        "health_check.path",
                        "required for http, http2 and grpc services (e.g. \"/healthz\")",
                    ));
                }
                (_, Some(path)) => check_http_path("health_check.path", path)?,
            }
        }
        Ok(())
    }

    fn references(&self, _name: &str) -> Vec<Reference> {
        Vec::new()
    }
}

pub(crate) fn positive(field: &str, d: Duration) -> Result<(), ValidationError> {
    if d.is_zero() {
        Err(invalid(field, "must be greater than zero"))
    } else {
        Ok(())
    }
}

/// An absolute request path: starts with `/`, printable ASCII, no spaces.
pub(crate) fn check_http_path(field: &str, path: &str) -> Result<(), ValidationError> {
    if !path.starts_with('/') || path.len() > 1024 || !path.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            field,
            format!("'{path}' must start with '/' and hold only printable ASCII without spaces"),
        ));
    }
    Ok(())
}
