//! `ConfigSource` (where EDS assignments and RDS route configurations come from): the ADS
//! stream, or a gRPC (SotW or delta) API source naming one `envoy_grpc` cluster. Either way
//! the resource comes from the xDS server the bootstrap names; the proxy's xDS client decides
//! which stream carries it.

use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiConfigSource, ApiVersion, ConfigSource, GrpcService,
    api_config_source::ApiType,
    config_source::ConfigSourceSpecifier,
    grpc_service::{EnvoyGrpc, TargetSpecifier},
};

use super::{Refusal, Result, not_supported, required, unknown_enum, unset, unsupported_value};

const API_TYPES: &str = "GRPC, DELTA_GRPC (or ads)";

/// Checks a config source; nothing in it changes what the proxy does with the resource.
#[allow(deprecated)] // `path` is named to be refused.
pub(in crate::config) fn config_source(source: &ConfigSource) -> Result<()> {
    let ConfigSource {
        // Authorities are for xdstp:// names, which the proxy does not resolve.
        authorities,
        initial_fetch_timeout,
        resource_api_version,
        config_source_specifier,
    } = source;
    unset!(authorities, initial_fetch_timeout);
    api_version("resource_api_version", *resource_api_version)?;
    match config_source_specifier {
        Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})) => Ok(()),
        Some(ConfigSourceSpecifier::ApiConfigSource(api)) => {
            api_config_source(api).map_err(|r| r.under("api_config_source"))
        }
        Some(ConfigSourceSpecifier::Path(_)) => Err(not_supported("path")),
        Some(ConfigSourceSpecifier::PathConfigSource(_)) => {
            Err(not_supported("path_config_source"))
        }
        Some(ConfigSourceSpecifier::Self_(_)) => Err(not_supported("self")),
        None => Err(Refusal::new(
            "",
            "must name where the resource comes from: ads or api_config_source",
        )),
    }
}

fn api_config_source(api: &ApiConfigSource) -> Result<()> {
    let ApiConfigSource {
        api_type,
        transport_api_version,
        cluster_names,
        grpc_services,
        refresh_delay,
        request_timeout,
        rate_limit_settings,
        // Only saves bytes on the wire.
        set_node_on_first_message_only: _,
        config_validators,
    } = api;
    match ApiType::try_from(*api_type) {
        Ok(ApiType::Grpc | ApiType::DeltaGrpc) => {}
        Ok(other) => {
            return Err(unsupported_value(
                "api_type",
                other.as_str_name(),
                API_TYPES,
            ));
        }
        Err(_) => return Err(unknown_enum("api_type", *api_type, API_TYPES)),
    }
    api_version("transport_api_version", *transport_api_version)?;
    unset!(
        cluster_names,
        refresh_delay,
        request_timeout,
        rate_limit_settings,
        config_validators
    );
    match grpc_services.as_slice() {
        [service] => grpc_service(service).map_err(|r| r.under("grpc_services[0]")),
        _ => Err(Refusal::new(
            "grpc_services",
            format!("must hold exactly one service, got {}", grpc_services.len()),
        )),
    }
}

fn grpc_service(service: &GrpcService) -> Result<()> {
    let GrpcService {
        timeout,
        initial_metadata,
        retry_policy,
        target_specifier,
    } = service;
    unset!(timeout, initial_metadata, retry_policy);
    match target_specifier {
        Some(TargetSpecifier::EnvoyGrpc(envoy)) => {
            let EnvoyGrpc {
                cluster_name,
                authority,
                retry_policy,
                max_receive_message_length,
                skip_envoy_headers,
            } = envoy;
            let under = |r: Refusal| r.under("envoy_grpc");
            if cluster_name.is_empty() {
                return Err(under(required("cluster_name")));
            }
            super::nested(|| {
                unset!(
                    authority,
                    retry_policy,
                    max_receive_message_length,
                    skip_envoy_headers
                );
                Ok(())
            })
            .map_err(under)
        }
        Some(TargetSpecifier::GoogleGrpc(_)) => Err(not_supported("google_grpc")),
        None => Err(required("envoy_grpc")),
    }
}

/// V3 only (AUTO, the default 0, means V3 since V2 was removed).
fn api_version(field: &str, value: i32) -> Result<()> {
    match ApiVersion::try_from(value) {
        Ok(ApiVersion::Auto | ApiVersion::V3) => Ok(()),
        Ok(other) => Err(unsupported_value(field, other.as_str_name(), "V3")),
        Err(_) => Err(unknown_enum(field, value, "V3")),
    }
}
