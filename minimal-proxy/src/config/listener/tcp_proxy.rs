//! `envoy.filters.network.tcp_proxy` → [`TcpProxy`]: one cluster, idle timeout and access
//! logs; weighted clusters, tunnelling, on-demand clusters and the rest are refused.

use std::time::Duration;

use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    TcpProxy as EnvoyTcpProxy, tcp_proxy::ClusterSpecifier,
};

use super::access_log;
use crate::config::{
    TcpProxy,
    check::{self, Refusal, Result, not_supported, required, unset},
};

/// Envoy's default `idle_timeout`.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

#[allow(deprecated)] // Deprecated fields are named so that they are refused.
pub(super) fn tcp_proxy(t: &EnvoyTcpProxy) -> Result<TcpProxy> {
    let EnvoyTcpProxy {
        stat_prefix,
        on_demand,
        metadata_match,
        idle_timeout,
        downstream_idle_timeout,
        upstream_idle_timeout,
        access_log,
        max_connect_attempts,
        backoff_options,
        hash_policy,
        tunneling_config,
        max_downstream_connection_duration,
        max_downstream_connection_duration_jitter_percentage,
        access_log_flush_interval,
        flush_access_log_on_connected,
        access_log_options,
        proxy_protocol_tlvs,
        proxy_protocol_tlv_merge_policy,
        upstream_connect_mode,
        max_early_data_bytes,
        check_drain_close,
        cluster_specifier,
    } = t;
    unset!(
        on_demand,
        metadata_match,
        downstream_idle_timeout,
        upstream_idle_timeout,
        backoff_options,
        hash_policy,
        tunneling_config,
        max_downstream_connection_duration,
        max_downstream_connection_duration_jitter_percentage,
        access_log_flush_interval,
        flush_access_log_on_connected,
        access_log_options,
        proxy_protocol_tlvs,
        proxy_protocol_tlv_merge_policy,
        upstream_connect_mode,
        max_early_data_bytes,
        check_drain_close,
    );
    // One attempt is Envoy's default.
    match check::uint32(max_connect_attempts) {
        None | Some(1) => {}
        Some(n) => return Err(check::unsupported_value("max_connect_attempts", n, "1")),
    }
    if stat_prefix.is_empty() {
        return Err(required("stat_prefix"));
    }
    let cluster = match cluster_specifier {
        Some(ClusterSpecifier::Cluster(c)) if c.is_empty() => {
            return Err(Refusal::new("cluster", "must not be empty"));
        }
        Some(ClusterSpecifier::Cluster(c)) => c.clone(),
        Some(ClusterSpecifier::WeightedClusters(_)) => {
            return Err(not_supported("weighted_clusters"));
        }
        None => return Err(required("cluster")),
    };
    Ok(TcpProxy {
        stat_prefix: stat_prefix.clone(),
        cluster,
        idle_timeout: check::timeout("idle_timeout", idle_timeout, IDLE_TIMEOUT)?,
        access_log: access_log::access_logs(access_log)?,
        // Filled by the filter chain from the network RBAC filters before this one.
        rbac: Vec::new(),
    })
}
