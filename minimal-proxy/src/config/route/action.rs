//! A route's action: `route` → [`Forward`] (a cluster or weighted clusters, prefix rewrite,
//! timeout, retries, hashing) or `direct_response`. Redirects and everything else a
//! `RouteAction` can do are refused by field.

use std::time::Duration;

use envoy_types::pb::envoy::config::{
    core::v3::{DataSource, data_source::Specifier},
    route::v3::{
        DirectResponseAction, RetryPolicy as EnvoyRetry, RouteAction as EnvoyAction,
        WeightedCluster as EnvoyWeighted, route_action::ClusterSpecifier,
        weighted_cluster::ClusterWeight,
    },
};

use super::{headers, retry};
use crate::config::{
    ClusterTarget, Forward, RouteAction, WeightedCluster,
    check::{self, Refusal, Result, not_supported, required, unset},
    endpoint,
};

/// Envoy's default route timeout.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Envoy's default `max_direct_response_body_size_bytes`.
pub(super) const MAX_DIRECT_BODY: usize = 4096;

/// A `route` action; `vhost_retry` is the virtual host's retry policy, which applies when the
/// route has none (Envoy's precedence).
#[allow(deprecated)] // Deprecated fields are named so that they are refused.
pub(super) fn forward(a: &EnvoyAction, vhost_retry: Option<&EnvoyRetry>) -> Result<RouteAction> {
    let EnvoyAction {
        cluster_not_found_response_code,
        metadata_match,
        prefix_rewrite,
        regex_rewrite,
        path_rewrite_policy,
        path_rewrite,
        append_x_forwarded_host,
        timeout,
        idle_timeout,
        flush_timeout,
        early_data_policy,
        retry_policy,
        retry_policy_typed_config,
        request_mirror_policies,
        priority,
        rate_limits,
        include_vh_rate_limits,
        hash_policy,
        cors,
        max_grpc_timeout,
        grpc_timeout_offset,
        upgrade_configs,
        internal_redirect_policy,
        internal_redirect_action,
        max_internal_redirects,
        hedge_policy,
        max_stream_duration,
        cluster_specifier,
        host_rewrite_specifier,
    } = a;
    unset!(
        cluster_not_found_response_code,
        metadata_match,
        regex_rewrite,
        path_rewrite_policy,
        path_rewrite,
        append_x_forwarded_host,
        idle_timeout,
        flush_timeout,
        early_data_policy,
        retry_policy_typed_config,
        request_mirror_policies,
        priority,
        rate_limits,
        include_vh_rate_limits,
        cors,
        max_grpc_timeout,
        grpc_timeout_offset,
        upgrade_configs,
        internal_redirect_policy,
        internal_redirect_action,
        max_internal_redirects,
        hedge_policy,
        max_stream_duration,
        host_rewrite_specifier,
    );
    let target = match cluster_specifier {
        Some(ClusterSpecifier::Cluster(name)) if name.is_empty() => {
            return Err(Refusal::new("cluster", "must not be empty"));
        }
        Some(ClusterSpecifier::Cluster(name)) => ClusterTarget::Cluster(name.clone()),
        Some(ClusterSpecifier::WeightedClusters(w)) => {
            weighted(w).map_err(|e| e.under("weighted_clusters"))?
        }
        Some(ClusterSpecifier::ClusterHeader(_)) => return Err(not_supported("cluster_header")),
        Some(ClusterSpecifier::ClusterSpecifierPlugin(_)) => {
            return Err(not_supported("cluster_specifier_plugin"));
        }
        Some(ClusterSpecifier::InlineClusterSpecifierPlugin(_)) => {
            return Err(not_supported("inline_cluster_specifier_plugin"));
        }
        None => return Err(required("cluster")),
    };
    let retry = match (retry_policy, vhost_retry) {
        (Some(r), _) => Some(retry::retry_policy(r).map_err(|e| e.under("retry_policy"))?),
        // Already checked (and its refusals named) with the virtual host.
        (None, Some(r)) => Some(retry::retry_policy(r)?),
        (None, None) => None,
    };
    let hash_policy = hash_policy
        .iter()
        .enumerate()
        .map(|(i, h)| retry::hash_policy(h).map_err(|e| e.under(format!("hash_policy[{i}]"))))
        .collect::<Result<_>>()?;
    Ok(RouteAction::Forward(Forward {
        target,
        prefix_rewrite: (!prefix_rewrite.is_empty()).then(|| prefix_rewrite.clone()),
        timeout: check::timeout("timeout", timeout, ROUTE_TIMEOUT)?,
        retry,
        hash_policy,
    }))
}

#[allow(deprecated)] // `total_weight` is deprecated and still checked, as by Envoy.
fn weighted(w: &EnvoyWeighted) -> Result<ClusterTarget> {
    let EnvoyWeighted {
        clusters,
        total_weight,
        runtime_key_prefix,
        random_value_specifier,
    } = w;
    unset!(runtime_key_prefix, random_value_specifier);
    if clusters.is_empty() {
        return Err(required("clusters"));
    }
    let clusters: Vec<WeightedCluster> = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| cluster_weight(c).map_err(|e| e.under(format!("clusters[{i}]"))))
        .collect::<Result<_>>()?;
    let sum: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
    if sum == 0 {
        return Err(Refusal::new(
            "clusters",
            "the sum of the weights must be greater than 0",
        ));
    }
    if let Some(total) = check::uint32(total_weight)
        && u64::from(total) != sum
    {
        return Err(Refusal::new(
            "total_weight",
            format!("is {total} but the weights sum to {sum}"),
        ));
    }
    Ok(ClusterTarget::Weighted(clusters))
}

fn cluster_weight(c: &ClusterWeight) -> Result<WeightedCluster> {
    let ClusterWeight {
        name,
        cluster_header,
        weight,
        metadata_match,
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        typed_per_filter_config,
        host_rewrite_specifier,
    } = c;
    unset!(
        cluster_header,
        typed_per_filter_config,
        host_rewrite_specifier
    );
    if name.is_empty() {
        return Err(required("name"));
    }
    Ok(WeightedCluster {
        name: name.clone(),
        // Absent is 0, as in Envoy.
        weight: check::uint32(weight).unwrap_or(0),
        metadata_match: match metadata_match {
            Some(m) => endpoint::labels(m).map_err(|e| e.under("metadata_match"))?,
            None => Default::default(),
        },
        request_headers: headers::mutation(
            "request",
            request_headers_to_add,
            request_headers_to_remove,
        )?,
        response_headers: headers::mutation(
            "response",
            response_headers_to_add,
            response_headers_to_remove,
        )?,
    })
}

pub(super) fn direct_response(d: &DirectResponseAction) -> Result<RouteAction> {
    let DirectResponseAction {
        status,
        body,
        body_format,
    } = d;
    unset!(body_format);
    let status = u16::try_from(*status)
        .ok()
        .filter(|s| (200..600).contains(s))
        .ok_or_else(|| Refusal::new("status", format!("must be 200..=599, got {status}")))?;
    let body = match body {
        Some(b) => data_source(b).map_err(|e| e.under("body"))?,
        None => None,
    };
    Ok(RouteAction::Direct { status, body })
}

/// An inline body (an empty one is no body); files and environment variables are refused.
fn data_source(d: &DataSource) -> Result<Option<String>> {
    let DataSource {
        watched_directory,
        specifier,
    } = d;
    unset!(watched_directory);
    let body = match specifier {
        Some(Specifier::InlineString(s)) => s.clone(),
        Some(Specifier::InlineBytes(b)) => String::from_utf8(b.clone()).map_err(|_| {
            Refusal::new(
                "inline_bytes",
                "must be UTF-8 for minimal-proxy; use inline_string",
            )
        })?,
        Some(Specifier::Filename(_)) => return Err(not_supported("filename")),
        Some(Specifier::EnvironmentVariable(_)) => {
            return Err(not_supported("environment_variable"));
        }
        None => String::new(),
    };
    if body.len() > MAX_DIRECT_BODY {
        return Err(Refusal::new(
            "",
            format!(
                "response body size is {} bytes; maximum is {MAX_DIRECT_BODY}",
                body.len()
            ),
        ));
    }
    Ok((!body.is_empty()).then_some(body))
}
