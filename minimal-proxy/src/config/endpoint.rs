//! EDS `ClusterLoadAssignment` → [`LoadAssignment`] (also the `load_assignment` of STATIC and
//! STRICT_DNS clusters), and endpoint metadata → subset labels.

use std::collections::BTreeMap;

use envoy_types::pb::{
    envoy::config::{
        core::v3::{HealthStatus, Locality, Metadata},
        endpoint::v3::{
            ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
            cluster_load_assignment::Policy, endpoint::HealthCheckConfig,
            lb_endpoint::HostIdentifier,
        },
    },
    google::protobuf::{Struct, value::Kind},
};

use super::{
    Endpoint, EndpointHealth, LoadAssignment, LocalityEndpoints, Rejection,
    check::{self, Refusal, Result, endpoint_address, not_supported, required, unset},
};

/// The metadata namespace Envoy's subset load balancer reads endpoint labels from, and
/// routes' `metadata_match` writes subset criteria to.
pub(super) const LB_METADATA: &str = "envoy.lb";

/// Envoy's default overprovisioning factor (140 %); the only one implemented.
const OVERPROVISIONING_FACTOR: u32 = 140;

/// Converts an EDS assignment, refusing what is not implemented (priorities above 0, drop
/// overloads, host names: EDS endpoints are addresses).
pub fn load_assignment_from_proto(
    cla: &ClusterLoadAssignment,
) -> std::result::Result<LoadAssignment, Rejection> {
    assignment(cla, false)
        .map_err(|r| r.into_rejection(format!("cluster load assignment '{}'", cla.cluster_name)))
}

/// An assignment; host names are allowed only for STRICT_DNS clusters (`allow_dns`).
pub(super) fn assignment(cla: &ClusterLoadAssignment, allow_dns: bool) -> Result<LoadAssignment> {
    let ClusterLoadAssignment {
        cluster_name,
        endpoints,
        named_endpoints,
        policy,
    } = cla;
    unset!(named_endpoints);
    if let Some(policy) = policy {
        check_policy(policy).map_err(|r| r.under("policy"))?;
    }
    let localities = endpoints
        .iter()
        .enumerate()
        .map(|(i, l)| locality(l, allow_dns).map_err(|r| r.under(format!("endpoints[{i}]"))))
        .collect::<Result<_>>()?;
    Ok(LoadAssignment {
        cluster_name: cluster_name.clone(),
        localities,
    })
}

fn check_policy(policy: &Policy) -> Result<()> {
    let Policy {
        drop_overloads,
        overprovisioning_factor,
        endpoint_stale_after,
        weighted_priority_health,
    } = policy;
    unset!(
        drop_overloads,
        endpoint_stale_after,
        weighted_priority_health
    );
    match check::uint32(overprovisioning_factor) {
        None | Some(OVERPROVISIONING_FACTOR) => Ok(()),
        Some(other) => Err(check::unsupported_value(
            "overprovisioning_factor",
            other,
            "140 (Envoy's default)",
        )),
    }
}

#[allow(deprecated)] // `lb_config` holds a deprecated variant, named to be refused.
fn locality(l: &LocalityLbEndpoints, allow_dns: bool) -> Result<LocalityEndpoints> {
    let LocalityLbEndpoints {
        locality,
        // Inert: locality metadata is read by no load balancer the proxy accepts.
        metadata: _,
        lb_endpoints,
        load_balancing_weight,
        priority,
        proximity,
        lb_config,
    } = l;
    if *priority != 0 {
        return Err(check::unsupported_value("priority", priority, "0"));
    }
    unset!(proximity, lb_config);
    let weight = check::uint32(load_balancing_weight);
    if weight == Some(0) {
        return Err(Refusal::new("load_balancing_weight", "must be at least 1"));
    }
    let zone = match locality {
        Some(Locality {
            // Region and sub-zone name the locality; only the zone is kept, for stats and
            // the admin API (zone-aware routing needs a local cluster, which is refused).
            region: _,
            zone,
            sub_zone: _,
        }) => zone.clone(),
        None => String::new(),
    };
    let endpoints = lb_endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| lb_endpoint(e, allow_dns).map_err(|r| r.under(format!("lb_endpoints[{i}]"))))
        .collect::<Result<_>>()?;
    Ok(LocalityEndpoints {
        zone,
        weight,
        endpoints,
    })
}

fn lb_endpoint(e: &LbEndpoint, allow_dns: bool) -> Result<Endpoint> {
    let LbEndpoint {
        health_status,
        metadata,
        load_balancing_weight,
        host_identifier,
    } = e;
    let endpoint = match host_identifier {
        Some(HostIdentifier::Endpoint(endpoint)) => endpoint,
        Some(HostIdentifier::EndpointName(_)) => return Err(not_supported("endpoint_name")),
        None => return Err(required("endpoint")),
    };
    let EnvoyEndpoint {
        address,
        health_check_config,
        hostname,
        additional_addresses,
        // Inert: a display name for stats and the admin API.
        observability_name: _,
    } = endpoint;
    let in_endpoint = |r: Refusal| r.under("endpoint");
    let address = address
        .as_ref()
        .ok_or_else(|| required("address"))
        .and_then(|a| endpoint_address(a, allow_dns).map_err(|r| r.under("address")))
        .map_err(in_endpoint)?;
    check::nested(|| {
        // Envoy uses `hostname` for auto host rewrite and health-check hosts, neither
        // implemented.
        unset!(hostname, additional_addresses);
        if let Some(hc) = health_check_config {
            let HealthCheckConfig {
                port_value,
                hostname,
                address,
                disable_active_health_check,
            } = hc;
            check::nested(|| {
                unset!(port_value, hostname, address, disable_active_health_check);
                Ok(())
            })
            .map_err(|r| r.under("health_check_config"))?;
        }
        Ok(())
    })
    .map_err(in_endpoint)?;
    let weight = check::uint32(load_balancing_weight).unwrap_or(1);
    if weight == 0 {
        return Err(Refusal::new("load_balancing_weight", "must be at least 1"));
    }
    let health = match HealthStatus::try_from(*health_status) {
        Ok(HealthStatus::Unknown | HealthStatus::Healthy) => EndpointHealth::Healthy,
        Ok(HealthStatus::Unhealthy | HealthStatus::Timeout) => EndpointHealth::Unhealthy,
        Ok(HealthStatus::Draining) => EndpointHealth::Draining,
        Ok(HealthStatus::Degraded) => EndpointHealth::Degraded,
        Err(_) => {
            return Err(check::unknown_enum(
                "health_status",
                *health_status,
                "UNKNOWN, HEALTHY, UNHEALTHY, DRAINING, TIMEOUT, DEGRADED",
            ));
        }
    };
    let labels = match metadata {
        Some(m) => labels(m).map_err(|r| r.under("metadata"))?,
        None => BTreeMap::new(),
    };
    Ok(Endpoint {
        address,
        weight,
        health,
        labels,
    })
}

/// `filter_metadata["envoy.lb"]` as string labels. Other namespaces and typed metadata are
/// read by no feature the proxy accepts, so they are inert; non-string `envoy.lb` values
/// (which Envoy's subset matching would compare as numbers or booleans) are refused.
pub(super) fn labels(metadata: &Metadata) -> Result<BTreeMap<String, String>> {
    let Metadata {
        filter_metadata,
        typed_filter_metadata: _,
    } = metadata;
    let Some(Struct { fields }) = filter_metadata.get(LB_METADATA) else {
        return Ok(BTreeMap::new());
    };
    fields
        .iter()
        .map(|(key, value)| match &value.kind {
            Some(Kind::StringValue(s)) => Ok((key.clone(), s.clone())),
            _ => Err(Refusal::new(
                format!("filter_metadata[\"{LB_METADATA}\"].{key}"),
                "only string values are supported by minimal-proxy",
            )),
        })
        .collect()
}
