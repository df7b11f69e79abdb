//! CDS `Cluster` (and the bootstrap's static clusters) → [`ClusterConfig`].
//!
//! Every field of `Cluster` is named below: used, accepted as inert (with why), or refused
//! unless at its default. The nested messages live in `cluster/`: health checks, circuit
//! breakers and outlier detection, subsets, upstream protocol options.

mod health;
mod lb;
mod limits;
mod protocol;
mod subset;

pub(super) use protocol::{http1_defaults, http2_defaults};

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    Cluster,
    cluster::{ClusterDiscoveryType, DiscoveryType, DnsLookupFamily, EdsClusterConfig},
};

use super::{
    ClusterConfig, Discovery, DnsFamily, LoadAssignment, Rejection,
    check::{self, Refusal, Result, config_source, not_supported, required, unset},
    endpoint,
};

/// Envoy's default `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Envoy's default `dns_refresh_rate`.
const DNS_REFRESH_RATE: Duration = Duration::from_secs(5);

const DISCOVERY_TYPES: &str = "STATIC, STRICT_DNS, EDS";
const DNS_FAMILIES: &str = "AUTO, V4_ONLY, V4_PREFERRED";

/// Converts a cluster, refusing any field that would change behaviour and is not implemented.
pub fn cluster_from_proto(cluster: &Cluster) -> std::result::Result<ClusterConfig, Rejection> {
    convert(cluster).map_err(|r| r.into_rejection(format!("cluster '{}'", cluster.name)))
}

#[allow(deprecated)] // Deprecated fields are named so that they are refused.
fn convert(c: &Cluster) -> Result<ClusterConfig> {
    let Cluster {
        transport_socket_matches,
        transport_socket_matcher,
        name,
        // Inert: only renames the cluster's stats.
        alt_stat_name: _,
        stats_matcher,
        eds_cluster_config,
        connect_timeout,
        per_connection_buffer_limit_bytes,
        per_connection_buffer_high_watermark_timeout,
        lb_policy,
        load_assignment,
        health_checks,
        max_requests_per_connection,
        circuit_breakers,
        upstream_http_protocol_options,
        common_http_protocol_options,
        http_protocol_options,
        http2_protocol_options,
        typed_extension_protocol_options,
        dns_refresh_rate,
        dns_jitter,
        dns_failure_refresh_rate,
        respect_dns_ttl,
        dns_lookup_family,
        dns_resolvers,
        use_tcp_for_dns_lookups,
        dns_resolution_config,
        typed_dns_resolver_config,
        wait_for_warm_on_init,
        outlier_detection,
        cleanup_interval,
        upstream_bind_config,
        lb_subset_config,
        common_lb_config,
        transport_socket,
        // Inert: cluster metadata is read by no feature the proxy accepts.
        metadata: _,
        protocol_selection,
        upstream_connection_options,
        close_connections_on_host_health_failure,
        ignore_health_on_host_removal,
        filters,
        load_balancing_policy,
        lrs_server,
        lrs_report_endpoint_metrics,
        track_timeout_budgets,
        upstream_config,
        track_cluster_stats,
        preconnect_policy,
        connection_pool_per_downstream_connection,
        queuing_policies,
        cluster_discovery_type,
        lb_config,
    } = c;
    if name.is_empty() {
        return Err(required("name"));
    }
    unset!(
        transport_socket_matches,
        transport_socket_matcher,
        stats_matcher,
        per_connection_buffer_limit_bytes,
        per_connection_buffer_high_watermark_timeout,
        max_requests_per_connection,
        upstream_http_protocol_options,
        common_http_protocol_options,
        http_protocol_options,
        http2_protocol_options,
        dns_jitter,
        dns_failure_refresh_rate,
        respect_dns_ttl,
        dns_resolvers,
        use_tcp_for_dns_lookups,
        dns_resolution_config,
        typed_dns_resolver_config,
        cleanup_interval,
        upstream_bind_config,
        protocol_selection,
        upstream_connection_options,
        close_connections_on_host_health_failure,
        ignore_health_on_host_removal,
        filters,
        load_balancing_policy,
        lrs_server,
        lrs_report_endpoint_metrics,
        track_timeout_budgets,
        upstream_config,
        track_cluster_stats,
        preconnect_policy,
        connection_pool_per_downstream_connection,
        queuing_policies,
    );
    // Envoy waits for a cluster's first assignment before using it; so does the proxy.
    check::bool_default("wait_for_warm_on_init", wait_for_warm_on_init, true)?;
    let connect_timeout = match check::duration("connect_timeout", connect_timeout)? {
        None => CONNECT_TIMEOUT,
        Some(d) if d.is_zero() => {
            return Err(Refusal::new("connect_timeout", "must be greater than 0s"));
        }
        Some(d) => d,
    };
    let discovery = discovery(
        name,
        cluster_discovery_type,
        eds_cluster_config,
        load_assignment,
        dns_refresh_rate,
        *dns_lookup_family,
    )?;
    let health_checks = health::health_checks(health_checks)?;
    let lb_policy = lb::lb_policy(*lb_policy, lb_config)?;
    let locality_weighted = lb::locality_weighted(common_lb_config, &lb_policy)?;
    Ok(ClusterConfig {
        name: name.clone(),
        discovery,
        connect_timeout,
        lb_policy,
        protocol: protocol::upstream_protocol(typed_extension_protocol_options)?,
        circuit_breakers: match circuit_breakers {
            Some(cb) => limits::circuit_breakers(cb).map_err(|r| r.under("circuit_breakers"))?,
            None => Default::default(),
        },
        outlier_detection: outlier_detection
            .as_ref()
            .map(|od| limits::outlier_detection(od).map_err(|r| r.under("outlier_detection")))
            .transpose()?,
        health_checks,
        subsets: lb_subset_config
            .as_ref()
            .map(|s| subset::subset_config(s).map_err(|r| r.under("lb_subset_config")))
            .transpose()?,
        locality_weighted,
        tls: super::tls::upstream_transport_socket(transport_socket)?,
    })
}

/// Where the endpoints come from; the DNS settings only make sense for STRICT_DNS, the
/// assignment only for STATIC and STRICT_DNS, the EDS config only for EDS.
fn discovery(
    name: &str,
    discovery_type: &Option<ClusterDiscoveryType>,
    eds_cluster_config: &Option<EdsClusterConfig>,
    load_assignment: &Option<envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment>,
    dns_refresh_rate: &Option<envoy_types::pb::google::protobuf::Duration>,
    dns_lookup_family: i32,
) -> Result<Discovery> {
    let kind = match discovery_type {
        // Unset is STATIC, the enum's zero.
        None => DiscoveryType::Static,
        Some(ClusterDiscoveryType::Type(t)) => DiscoveryType::try_from(*t)
            .map_err(|_| check::unknown_enum("type", *t, DISCOVERY_TYPES))?,
        Some(ClusterDiscoveryType::ClusterType(_)) => return Err(not_supported("cluster_type")),
    };
    if kind != DiscoveryType::StrictDns {
        unset!(dns_refresh_rate);
        if dns_lookup_family != 0 {
            return Err(Refusal::new(
                "dns_lookup_family",
                "only STRICT_DNS clusters resolve names; leave it unset",
            ));
        }
    }
    if kind != DiscoveryType::Eds {
        unset!(eds_cluster_config);
    }
    let assignment = |allow_dns: bool| -> Result<LoadAssignment> {
        match load_assignment {
            Some(cla) => {
                endpoint::assignment(cla, allow_dns).map_err(|r| r.under("load_assignment"))
            }
            // No endpoints: the cluster exists and answers 503, as in Envoy.
            None => Ok(LoadAssignment {
                cluster_name: name.to_string(),
                localities: Vec::new(),
            }),
        }
    };
    match kind {
        DiscoveryType::Static => Ok(Discovery::Static(assignment(false)?)),
        DiscoveryType::StrictDns => Ok(Discovery::StrictDns {
            assignment: assignment(true)?,
            refresh: match check::duration("dns_refresh_rate", dns_refresh_rate)? {
                None => DNS_REFRESH_RATE,
                Some(d) if d < Duration::from_millis(1) => {
                    return Err(Refusal::new("dns_refresh_rate", "must be at least 1ms"));
                }
                Some(d) => d,
            },
            family: dns_family(dns_lookup_family)?,
        }),
        DiscoveryType::Eds => {
            // Envoy ignores `load_assignment` on EDS clusters; refused so it is not mistaken
            // for the endpoints.
            unset!(load_assignment);
            let Some(EdsClusterConfig {
                eds_config,
                service_name,
            }) = eds_cluster_config
            else {
                return Err(required("eds_cluster_config"));
            };
            match eds_config {
                Some(source) => {
                    config_source(source).map_err(|r| r.under("eds_cluster_config.eds_config"))?
                }
                None => return Err(required("eds_cluster_config.eds_config")),
            }
            Ok(Discovery::Eds {
                service_name: if service_name.is_empty() {
                    name.to_string()
                } else {
                    service_name.clone()
                },
            })
        }
        other => Err(check::unsupported_value(
            "type",
            other.as_str_name(),
            DISCOVERY_TYPES,
        )),
    }
}

fn dns_family(value: i32) -> Result<DnsFamily> {
    match DnsLookupFamily::try_from(value) {
        Ok(DnsLookupFamily::Auto) => Ok(DnsFamily::Auto),
        Ok(DnsLookupFamily::V4Only) => Ok(DnsFamily::V4Only),
        Ok(DnsLookupFamily::V4Preferred) => Ok(DnsFamily::V4Preferred),
        Ok(other) => Err(check::unsupported_value(
            "dns_lookup_family",
            other.as_str_name(),
            DNS_FAMILIES,
        )),
        Err(_) => Err(check::unknown_enum(
            "dns_lookup_family",
            value,
            DNS_FAMILIES,
        )),
    }
}
