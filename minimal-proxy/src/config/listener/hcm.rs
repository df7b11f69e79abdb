//! `envoy.filters.network.http_connection_manager` → [`HttpConnectionManager`]: codec, routes
//! (RDS or inline), RBAC filters then the router, stream idle timeout and access logs. The many
//! connection-manager options that change requests, responses or connections are refused
//! unless at their defaults.

use std::{sync::Arc, time::Duration};

use envoy_types::pb::envoy::extensions::filters::{
    http::{rbac::v3::Rbac as EnvoyRbac, router::v3::Router},
    network::http_connection_manager::v3::{
        HttpConnectionManager as EnvoyHcm, HttpFilter, Rds,
        http_connection_manager::{CodecType, RouteSpecifier},
        http_filter::ConfigType,
    },
};
use prost::Name;

use super::access_log;
use crate::config::{
    Codec, HttpConnectionManager, RbacFilter, RouteSource,
    check::{self, Refusal, Result, config_source, not_supported, required, unset},
    cluster::{http1_defaults, http2_defaults},
    rbac, route,
};

/// Envoy's default `stream_idle_timeout`.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const ROUTER: &str = "envoy.filters.http.router";
const RBAC: &str = "envoy.filters.http.rbac";
const CODECS: &str = "AUTO, HTTP1, HTTP2";

#[allow(deprecated)] // Deprecated fields are named so that they are refused.
pub(super) fn http_connection_manager(h: &EnvoyHcm) -> Result<HttpConnectionManager> {
    let EnvoyHcm {
        codec_type,
        stat_prefix,
        http_filters,
        add_user_agent,
        tracing,
        common_http_protocol_options,
        http1_safe_max_connection_duration,
        http_protocol_options,
        http2_protocol_options,
        http3_protocol_options,
        server_name,
        server_header_transformation,
        scheme_header_transformation,
        max_request_headers_kb,
        stream_idle_timeout,
        stream_flush_timeout,
        request_timeout,
        request_headers_timeout,
        drain_timeout,
        drain_timeout_jitter,
        delayed_close_timeout,
        access_log,
        access_log_flush_interval,
        flush_access_log_on_new_request,
        access_log_options,
        use_remote_address,
        xff_num_trusted_hops,
        original_ip_detection_extensions,
        early_header_mutation_extensions,
        internal_address_config,
        skip_xff_append,
        via,
        generate_request_id,
        preserve_external_request_id,
        always_set_request_id_in_response,
        forward_client_cert_details,
        set_current_client_cert_details,
        forward_client_cert_matcher,
        proxy_100_continue,
        represent_ipv4_remote_address_as_ipv4_mapped_ipv6,
        upgrade_configs,
        normalize_path,
        merge_slashes,
        path_with_escaped_slashes_action,
        request_id_extension,
        local_reply_config,
        strip_matching_host_port,
        stream_error_on_invalid_http_message,
        path_normalization_options,
        strip_trailing_host_dot,
        proxy_status_config,
        typed_header_validation_config,
        append_x_forwarded_port,
        append_local_overload,
        add_proxy_protocol_connection_state,
        forward_proto_config,
        route_specifier,
        strip_port_mode,
    } = h;
    unset!(
        tracing,
        common_http_protocol_options,
        http1_safe_max_connection_duration,
        http3_protocol_options,
        server_name,
        server_header_transformation,
        scheme_header_transformation,
        max_request_headers_kb,
        stream_flush_timeout,
        request_timeout,
        request_headers_timeout,
        drain_timeout,
        drain_timeout_jitter,
        delayed_close_timeout,
        access_log_flush_interval,
        flush_access_log_on_new_request,
        access_log_options,
        xff_num_trusted_hops,
        original_ip_detection_extensions,
        early_header_mutation_extensions,
        internal_address_config,
        skip_xff_append,
        via,
        preserve_external_request_id,
        always_set_request_id_in_response,
        proxy_100_continue,
        represent_ipv4_remote_address_as_ipv4_mapped_ipv6,
        upgrade_configs,
        merge_slashes,
        path_with_escaped_slashes_action,
        request_id_extension,
        local_reply_config,
        strip_matching_host_port,
        stream_error_on_invalid_http_message,
        path_normalization_options,
        strip_trailing_host_dot,
        proxy_status_config,
        typed_header_validation_config,
        append_x_forwarded_port,
        append_local_overload,
        add_proxy_protocol_connection_state,
        forward_proto_config,
        strip_port_mode,
    );
    // Explicit defaults change nothing.
    check::bool_default("add_user_agent", add_user_agent, false)?;
    check::bool_default("use_remote_address", use_remote_address, false)?;
    check::bool_default("generate_request_id", generate_request_id, true)?;
    check::bool_default("normalize_path", normalize_path, false)?;
    if let Some(o) = http_protocol_options {
        http1_defaults(o).map_err(|e| e.under("http_protocol_options"))?;
    }
    if let Some(o) = http2_protocol_options {
        http2_defaults(o).map_err(|e| e.under("http2_protocol_options"))?;
    }
    if stat_prefix.is_empty() {
        return Err(required("stat_prefix"));
    }
    let codec = match CodecType::try_from(*codec_type) {
        Ok(CodecType::Auto) => Codec::Auto,
        Ok(CodecType::Http1) => Codec::Http1,
        Ok(CodecType::Http2) => Codec::Http2,
        Ok(other) => {
            return Err(check::unsupported_value(
                "codec_type",
                other.as_str_name(),
                CODECS,
            ));
        }
        Err(_) => return Err(check::unknown_enum("codec_type", *codec_type, CODECS)),
    };
    let rbac = rbac_then_router(http_filters)?;
    let routes = match route_specifier {
        Some(RouteSpecifier::Rds(rds)) => {
            let Rds {
                config_source: source,
                route_config_name,
            } = rds;
            let under = |e: Refusal| e.under("rds");
            match source {
                Some(s) => config_source(s).map_err(|e| under(e.under("config_source")))?,
                None => return Err(under(required("config_source"))),
            }
            if route_config_name.is_empty() {
                return Err(under(required("route_config_name")));
            }
            RouteSource::Rds(route_config_name.clone())
        }
        Some(RouteSpecifier::RouteConfig(rc)) => RouteSource::Inline(Arc::new(
            route::route_config(rc).map_err(|e| e.under("route_config"))?,
        )),
        Some(RouteSpecifier::ScopedRoutes(_)) => return Err(not_supported("scoped_routes")),
        None => return Err(required("rds")),
    };
    let (access_log, grpc_access_log) = access_log::http_access_logs(access_log)?;
    Ok(HttpConnectionManager {
        stat_prefix: stat_prefix.clone(),
        codec,
        routes,
        access_log,
        grpc_access_log,
        stream_idle_timeout: check::timeout(
            "stream_idle_timeout",
            stream_idle_timeout,
            STREAM_IDLE_TIMEOUT,
        )?,
        rbac,
        forward_client_cert: super::xfcc::forward_client_cert(
            forward_client_cert_details,
            set_current_client_cert_details,
            forward_client_cert_matcher,
        )?,
    })
}

/// RBAC filters (any number), then the router, last. Envoy finds a filter by its config's
/// type, and by name only when it has no config.
fn rbac_then_router(filters: &[HttpFilter]) -> Result<Vec<RbacFilter>> {
    let mut rbac = Vec::new();
    let mut routed = false;
    for (i, f) in filters.iter().enumerate() {
        let under = |e: Refusal| e.under(format!("http_filters[{i}]"));
        match (filter(f).map_err(under)?, routed) {
            (_, true) => {
                return Err(under(Refusal::new(
                    "",
                    format!(
                        "nothing may follow the router filter ({ROUTER}): it must be the only \
                         and last filter after any RBAC filters"
                    ),
                )));
            }
            (Some(r), false) => rbac.push(r),
            (None, false) => routed = true,
        }
    }
    if !routed {
        return Err(Refusal::new(
            "http_filters",
            format!("must hold the router filter ({ROUTER}), last"),
        ));
    }
    Ok(rbac)
}

/// One HTTP filter: an RBAC filter, or `None` for the router.
fn filter(f: &HttpFilter) -> Result<Option<RbacFilter>> {
    let HttpFilter {
        name,
        // Inert for a filter the proxy implements (it only lets Envoy skip unknown ones).
        is_optional: _,
        disabled,
        config_type,
    } = f;
    unset!(disabled);
    let unsupported = |kind: &str| {
        Refusal::new(
            "name",
            format!(
                "'{name}' ({kind}) is not supported by minimal-proxy; supported: {ROUTER} ({}) \
                 last, and {RBAC} ({}) before it",
                Router::full_name(),
                EnvoyRbac::full_name(),
            ),
        )
    };
    match config_type {
        Some(ConfigType::TypedConfig(any)) if check::is::<Router>(any) => {
            let router: Router = check::decode("typed_config", any)?;
            router_defaults(&router).map_err(|e| e.under("typed_config"))?;
            Ok(None)
        }
        Some(ConfigType::TypedConfig(any)) if check::is::<EnvoyRbac>(any) => rbac::http_rbac(any)
            .map(Some)
            .map_err(|e| e.under("typed_config")),
        Some(ConfigType::TypedConfig(any)) => Err(unsupported(check::type_name(any))),
        Some(ConfigType::ConfigDiscovery(_)) => Err(not_supported("config_discovery")),
        None if name == ROUTER => Ok(None),
        None => Err(unsupported("no typed_config")),
    }
}

#[allow(deprecated)] // Deprecated fields are named so that they are refused.
fn router_defaults(r: &Router) -> Result<()> {
    let Router {
        dynamic_stats,
        start_child_span,
        upstream_log,
        upstream_log_options,
        suppress_envoy_headers,
        strict_check_headers,
        respect_expected_rq_timeout,
        suppress_grpc_request_failure_code_stats,
        upstream_http_filters,
        reject_connect_request_early_data,
    } = r;
    check::bool_default("dynamic_stats", dynamic_stats, true)?;
    unset!(
        start_child_span,
        upstream_log,
        upstream_log_options,
        suppress_envoy_headers,
        strict_check_headers,
        respect_expected_rq_timeout,
        suppress_grpc_request_failure_code_stats,
        upstream_http_filters,
        reject_connect_request_early_data,
    );
    Ok(())
}
