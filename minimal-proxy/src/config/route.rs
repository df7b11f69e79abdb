//! RDS `RouteConfiguration` (or a connection manager's inline `route_config`) →
//! [`RouteConfig`]: virtual hosts, their routes, matches and actions.
//!
//! Header changes are implemented per route and per weighted cluster; the same fields at the
//! virtual-host and configuration level are refused. A virtual host's retry policy applies
//! to its routes that have none, as in Envoy.

mod action;
mod headers;
mod matcher;
mod retry;

pub(super) use matcher::{header_matcher, string_match};

use std::collections::HashMap;

use envoy_types::pb::envoy::config::route::v3::{
    Route as EnvoyRoute, RouteConfiguration, VirtualHost as EnvoyVhost, route::Action,
    virtual_host::TlsRequirementType,
};

use super::{
    Rejection, Route, RouteConfig, VirtualHost,
    check::{self, Refusal, Result, not_supported, required, unset},
};

/// Converts a route configuration, refusing unsupported matches, actions and policies.
pub fn route_configuration_from_proto(
    rc: &RouteConfiguration,
) -> std::result::Result<RouteConfig, Rejection> {
    route_config(rc).map_err(|r| r.into_rejection(format!("route configuration '{}'", rc.name)))
}

/// The conversion, for inline route configurations too (their refusals are then prefixed
/// with the connection manager's field).
pub(super) fn route_config(rc: &RouteConfiguration) -> Result<RouteConfig> {
    let RouteConfiguration {
        name,
        virtual_hosts,
        vhds,
        internal_only_headers,
        response_headers_to_add,
        response_headers_to_remove,
        request_headers_to_add,
        request_headers_to_remove,
        most_specific_header_mutations_wins,
        validate_clusters,
        max_direct_response_body_size_bytes,
        cluster_specifier_plugins,
        request_mirror_policies,
        ignore_port_in_host_matching,
        vhost_header,
        ignore_path_parameters_in_path_matching,
        typed_per_filter_config,
        // Inert: read by no feature the proxy accepts.
        metadata: _,
        route_specifiers,
    } = rc;
    unset!(
        vhds,
        internal_only_headers,
        response_headers_to_add,
        response_headers_to_remove,
        request_headers_to_add,
        request_headers_to_remove,
        most_specific_header_mutations_wins,
        max_direct_response_body_size_bytes,
        cluster_specifier_plugins,
        request_mirror_policies,
        ignore_port_in_host_matching,
        vhost_header,
        ignore_path_parameters_in_path_matching,
        typed_per_filter_config,
        route_specifiers,
    );
    // The proxy does not check that routed clusters exist when the configuration arrives
    // (Envoy's default for RDS); asking for the check is refused.
    check::bool_default("validate_clusters", validate_clusters, false)?;
    let virtual_hosts = virtual_hosts
        .iter()
        .enumerate()
        .map(|(i, v)| virtual_host(v).map_err(|e| e.under(format!("virtual_hosts[{i}]"))))
        .collect::<Result<Vec<_>>>()?;
    unique_domains(&virtual_hosts)?;
    Ok(RouteConfig {
        name: name.clone(),
        virtual_hosts,
    })
}

/// Envoy refuses a configuration in which two virtual hosts (or one twice) claim a domain.
fn unique_domains(vhosts: &[VirtualHost]) -> Result<()> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (i, vhost) in vhosts.iter().enumerate() {
        for (j, domain) in vhost.domains.iter().enumerate() {
            if let Some(first) = seen.insert(domain, &vhost.name) {
                return Err(Refusal::new(
                    format!("virtual_hosts[{i}].domains[{j}]"),
                    format!(
                        "'{domain}' is already a domain of virtual host '{first}'; \
                         domains must be unique"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[allow(deprecated)] // Deprecated fields are named so that they are refused.
fn virtual_host(v: &EnvoyVhost) -> Result<VirtualHost> {
    let EnvoyVhost {
        name,
        domains,
        routes,
        matcher,
        require_tls,
        virtual_clusters,
        rate_limits,
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        cors,
        typed_per_filter_config,
        include_request_attempt_count,
        include_attempt_count_in_response,
        retry_policy,
        retry_policy_typed_config,
        hedge_policy,
        include_is_timeout_retry_header,
        per_request_buffer_limit_bytes,
        request_body_buffer_limit,
        request_mirror_policies,
        // Inert: read by no feature the proxy accepts.
        metadata: _,
        route_specifiers,
    } = v;
    unset!(
        matcher,
        virtual_clusters,
        rate_limits,
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        cors,
        typed_per_filter_config,
        include_request_attempt_count,
        include_attempt_count_in_response,
        retry_policy_typed_config,
        hedge_policy,
        include_is_timeout_retry_header,
        per_request_buffer_limit_bytes,
        request_body_buffer_limit,
        request_mirror_policies,
        route_specifiers,
    );
    if name.is_empty() {
        return Err(required("name"));
    }
    match TlsRequirementType::try_from(*require_tls) {
        Ok(TlsRequirementType::None) => {}
        Ok(other) => {
            return Err(check::unsupported_value(
                "require_tls",
                other.as_str_name(),
                "NONE",
            ));
        }
        Err(_) => return Err(check::unknown_enum("require_tls", *require_tls, "NONE")),
    }
    if domains.is_empty() {
        return Err(required("domains"));
    }
    // Host matching is case-insensitive: domains are kept lower-case, as Envoy does.
    let domains = domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if d.is_empty() {
                Err(Refusal::new(format!("domains[{i}]"), "must not be empty"))
            } else {
                Ok(d.to_ascii_lowercase())
            }
        })
        .collect::<Result<Vec<_>>>()?;
    // Checked here so that its refusals name the virtual host's field.
    if let Some(r) = retry_policy {
        retry::retry_policy(r).map_err(|e| e.under("retry_policy"))?;
    }
    let routes = routes
        .iter()
        .enumerate()
        .map(|(i, r)| route(r, retry_policy.as_ref()).map_err(|e| e.under(format!("routes[{i}]"))))
        .collect::<Result<_>>()?;
    Ok(VirtualHost {
        name: name.clone(),
        domains,
        routes,
    })
}

#[allow(deprecated)] // Deprecated fields are named so that they are refused.
fn route(
    r: &EnvoyRoute,
    vhost_retry: Option<&envoy_types::pb::envoy::config::route::v3::RetryPolicy>,
) -> Result<Route> {
    let EnvoyRoute {
        // Printed by `%ROUTE_NAME%` in access logs.
        name,
        r#match,
        // Inert: read by no feature the proxy accepts.
        metadata: _,
        decorator,
        typed_per_filter_config,
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        tracing,
        per_request_buffer_limit_bytes,
        stat_prefix,
        request_body_buffer_limit,
        route_specifiers,
        action,
    } = r;
    unset!(
        decorator,
        typed_per_filter_config,
        tracing,
        per_request_buffer_limit_bytes,
        request_body_buffer_limit,
        route_specifiers,
    );
    let matcher = match r#match {
        Some(m) => matcher::route_match(m).map_err(|e| e.under("match"))?,
        None => return Err(required("match")),
    };
    let action = match action {
        Some(Action::Route(a)) => action::forward(a, vhost_retry).map_err(|e| e.under("route"))?,
        Some(Action::DirectResponse(d)) => {
            action::direct_response(d).map_err(|e| e.under("direct_response"))?
        }
        Some(Action::Redirect(_)) => return Err(not_supported("redirect")),
        Some(Action::FilterAction(_)) => return Err(not_supported("filter_action")),
        Some(Action::NonForwardingAction(_)) => {
            return Err(not_supported("non_forwarding_action"));
        }
        None => return Err(required("route")),
    };
    Ok(Route {
        name: name.clone(),
        stat_prefix: stat_prefix.clone(),
        matcher,
        action,
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
