//! `envoy.access_loggers.http_grpc` in a connection manager's `access_log` → [`GrpcAccessLog`]:
//! log name, a static cluster over `envoy_grpc`, V3, the buffer settings; and the access log
//! filters minimal-proxy evaluates (status code, duration, header, response flags, and/or).
//! Any other field or filter is refused by name.

use std::time::Duration;

use envoy_types::pb::envoy::{
    config::accesslog::v3::{
        AccessLogFilter, ComparisonFilter, access_log_filter::FilterSpecifier,
        comparison_filter::Op,
    },
    config::core::v3::{ApiVersion, GrpcService, RuntimeUInt32, grpc_service::TargetSpecifier},
    extensions::access_loggers::grpc::v3::{CommonGrpcAccessLogConfig, HttpGrpcAccessLogConfig},
};

use crate::config::{
    CompareOp, Comparison, GrpcAccessLog, LogFilter,
    check::{self, Refusal, Result, not_supported, required, unset},
};

/// Envoy's defaults for `buffer_flush_interval` and `buffer_size_bytes`.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
const BUFFER_SIZE: u32 = 16 * 1024;

/// The response flags `response_flag_filter` may name (Envoy's short names).
const FLAGS: &[&str] = &[
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC",
    "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR",
    "UDO",
];

pub(super) fn http_grpc(config: &HttpGrpcAccessLogConfig) -> Result<GrpcAccessLog> {
    let HttpGrpcAccessLogConfig {
        common_config,
        additional_request_headers_to_log,
        additional_response_headers_to_log,
        additional_response_trailers_to_log,
    } = config;
    unset!(
        additional_request_headers_to_log,
        additional_response_headers_to_log,
        additional_response_trailers_to_log
    );
    match common_config {
        Some(c) => common(c).map_err(|e| e.under("common_config")),
        None => Err(required("common_config")),
    }
}

fn common(c: &CommonGrpcAccessLogConfig) -> Result<GrpcAccessLog> {
    let CommonGrpcAccessLogConfig {
        log_name,
        grpc_service,
        transport_api_version,
        buffer_flush_interval,
        buffer_size_bytes,
        filter_state_objects_to_log,
        grpc_stream_retry_policy,
        custom_tags,
    } = c;
    unset!(
        filter_state_objects_to_log,
        grpc_stream_retry_policy,
        custom_tags
    );
    if log_name.is_empty() {
        return Err(required("log_name"));
    }
    if *transport_api_version != ApiVersion::V3 as i32 {
        return Err(Refusal::new(
            "transport_api_version",
            "only V3 is supported by minimal-proxy (as by Envoy)",
        ));
    }
    let (cluster, initial_metadata) = match grpc_service {
        Some(s) => grpc_cluster(s).map_err(|e| e.under("grpc_service"))?,
        None => return Err(required("grpc_service")),
    };
    let buffer_flush_interval = check::duration("buffer_flush_interval", buffer_flush_interval)?
        .filter(|d| !d.is_zero())
        .unwrap_or(FLUSH_INTERVAL);
    Ok(GrpcAccessLog {
        log_name: log_name.clone(),
        cluster,
        initial_metadata,
        buffer_flush_interval,
        buffer_size_bytes: check::uint32(buffer_size_bytes).unwrap_or(BUFFER_SIZE),
        filter: None,
    })
}

/// `envoy_grpc` with a cluster name, and the `initial_metadata` to send.
fn grpc_cluster(s: &GrpcService) -> Result<(String, Vec<(String, String)>)> {
    let GrpcService {
        timeout,
        initial_metadata,
        retry_policy,
        target_specifier,
    } = s;
    unset!(timeout, retry_policy);
    let metadata = initial_metadata
        .iter()
        .enumerate()
        .map(
            |(i, h)| match crate::xds::metadata_problem(&h.key, &h.value) {
                Some((field, problem)) => Err(Refusal::new(
                    format!("initial_metadata[{i}].{field}"),
                    problem,
                )),
                None if !h.raw_value.is_empty() => Err(Refusal::new(
                    format!("initial_metadata[{i}].raw_value"),
                    "not supported by minimal-proxy: use value",
                )),
                None => Ok((h.key.clone(), h.value.clone())),
            },
        )
        .collect::<Result<Vec<_>>>()?;
    match target_specifier {
        Some(TargetSpecifier::EnvoyGrpc(e)) => {
            let envoy_types::pb::envoy::config::core::v3::grpc_service::EnvoyGrpc {
                cluster_name,
                authority,
                retry_policy,
                max_receive_message_length,
                skip_envoy_headers,
            } = e;
            let nested = || -> Result<()> {
                unset!(
                    authority,
                    retry_policy,
                    max_receive_message_length,
                    skip_envoy_headers
                );
                Ok(())
            };
            nested().map_err(|e| e.under("envoy_grpc"))?;
            if cluster_name.is_empty() {
                return Err(required("envoy_grpc.cluster_name"));
            }
            Ok((cluster_name.clone(), metadata))
        }
        Some(TargetSpecifier::GoogleGrpc(_)) => Err(Refusal::new(
            "google_grpc",
            "not supported by minimal-proxy: use envoy_grpc with a static cluster",
        )),
        None => Err(required("envoy_grpc")),
    }
}

/// An access log filter tree.
pub(super) fn filter(f: &AccessLogFilter) -> Result<LogFilter> {
    let list = |filters: &[AccessLogFilter], field: &str| -> Result<Vec<LogFilter>> {
        if filters.len() < 2 {
            return Err(Refusal::new(
                format!("{field}.filters"),
                "needs at least two filters (as in Envoy)",
            ));
        }
        filters
            .iter()
            .enumerate()
            .map(|(i, f)| filter(f).map_err(|e| e.under(format!("{field}.filters[{i}]"))))
            .collect()
    };
    match &f.filter_specifier {
        Some(FilterSpecifier::StatusCodeFilter(s)) => Ok(LogFilter::Status(
            comparison(s.comparison.as_ref()).map_err(|e| e.under("status_code_filter"))?,
        )),
        Some(FilterSpecifier::DurationFilter(d)) => Ok(LogFilter::Duration(
            comparison(d.comparison.as_ref()).map_err(|e| e.under("duration_filter"))?,
        )),
        Some(FilterSpecifier::HeaderFilter(h)) => match &h.header {
            Some(m) => Ok(LogFilter::Header(
                crate::config::route::header_matcher(m)
                    .map_err(|e| e.under("header_filter.header"))?,
            )),
            None => Err(required("header_filter.header")),
        },
        Some(FilterSpecifier::ResponseFlagFilter(r)) => {
            for (i, flag) in r.flags.iter().enumerate() {
                if !FLAGS.contains(&flag.as_str()) {
                    return Err(Refusal::new(
                        format!("response_flag_filter.flags[{i}]"),
                        format!("'{flag}' is not one of Envoy's response flags"),
                    ));
                }
            }
            Ok(LogFilter::ResponseFlags(r.flags.clone()))
        }
        Some(FilterSpecifier::AndFilter(a)) => Ok(LogFilter::And(list(&a.filters, "and_filter")?)),
        Some(FilterSpecifier::OrFilter(o)) => Ok(LogFilter::Or(list(&o.filters, "or_filter")?)),
        Some(other) => Err(not_supported(filter_name(other))),
        None => Err(required("status_code_filter")),
    }
}

fn filter_name(f: &FilterSpecifier) -> &'static str {
    match f {
        FilterSpecifier::StatusCodeFilter(_) => "status_code_filter",
        FilterSpecifier::DurationFilter(_) => "duration_filter",
        FilterSpecifier::NotHealthCheckFilter(_) => "not_health_check_filter",
        FilterSpecifier::TraceableFilter(_) => "traceable_filter",
        FilterSpecifier::RuntimeFilter(_) => "runtime_filter",
        FilterSpecifier::AndFilter(_) => "and_filter",
        FilterSpecifier::OrFilter(_) => "or_filter",
        FilterSpecifier::HeaderFilter(_) => "header_filter",
        FilterSpecifier::ResponseFlagFilter(_) => "response_flag_filter",
        FilterSpecifier::GrpcStatusFilter(_) => "grpc_status_filter",
        FilterSpecifier::ExtensionFilter(_) => "extension_filter",
        FilterSpecifier::MetadataFilter(_) => "metadata_filter",
        FilterSpecifier::LogTypeFilter(_) => "log_type_filter",
    }
}

fn comparison(c: Option<&ComparisonFilter>) -> Result<Comparison> {
    let Some(ComparisonFilter { op, value }) = c else {
        return Err(required("comparison"));
    };
    let op = match Op::try_from(*op) {
        Ok(Op::Eq) => CompareOp::Eq,
        Ok(Op::Ge) => CompareOp::Ge,
        Ok(Op::Le) => CompareOp::Le,
        Ok(Op::Ne) => CompareOp::Ne,
        Err(_) => return Err(check::unknown_enum("comparison.op", *op, "EQ, GE, LE, NE")),
    };
    let Some(RuntimeUInt32 {
        default_value,
        // No runtime layer in minimal-proxy: the default is what Envoy uses when the key is
        // not set in its runtime.
        runtime_key: _,
    }) = value
    else {
        return Err(required("comparison.value"));
    };
    Ok(Comparison {
        op,
        value: *default_value,
    })
}
