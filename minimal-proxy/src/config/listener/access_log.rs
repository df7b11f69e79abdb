//! `access_log[]` of a connection manager or TCP proxy → [`AccessLog`]: Envoy's file logger
//! (or the stdout/stderr loggers) with a `json_format` of strings, or no format (the proxy's
//! default record). Text formats, typed JSON, nested objects, filters and operators the
//! proxy does not implement are refused.

use std::collections::BTreeMap;

use envoy_types::pb::{
    envoy::{
        config::{
            accesslog::v3::{AccessLog as EnvoyAccessLog, access_log::ConfigType},
            core::v3::{SubstitutionFormatString, substitution_format_string::Format},
        },
        extensions::access_loggers::{
            file::v3::{FileAccessLog, file_access_log::AccessLogFormat},
            grpc::v3::HttpGrpcAccessLogConfig,
            stream::v3::{StderrAccessLog, StdoutAccessLog, stderr_access_log, stdout_access_log},
        },
    },
    google::protobuf::{Any, Struct, value::Kind},
};
use prost::Name;

use crate::config::{
    AccessLog, GrpcAccessLog,
    check::{self, Refusal, Result, not_supported, required, unset},
};

/// The loggers implemented, by the message their `typed_config` holds.
fn supported() -> String {
    [
        FileAccessLog::full_name(),
        StdoutAccessLog::full_name(),
        StderrAccessLog::full_name(),
    ]
    .join(", ")
        + " (and, on an HTTP connection manager, "
        + &HttpGrpcAccessLogConfig::full_name()
        + ")"
}

/// A connection manager's `access_log`: file logs, and gRPC logs (which may carry a filter).
pub(super) fn http_access_logs(
    logs: &[EnvoyAccessLog],
) -> Result<(Vec<AccessLog>, Vec<GrpcAccessLog>)> {
    let mut files = Vec::new();
    let mut grpc = Vec::new();
    for (i, l) in logs.iter().enumerate() {
        let under = |e: Refusal| e.under(format!("access_log[{i}]"));
        match &l.config_type {
            Some(ConfigType::TypedConfig(any)) if check::is::<HttpGrpcAccessLogConfig>(any) => {
                let config: HttpGrpcAccessLogConfig =
                    check::decode("typed_config", any).map_err(under)?;
                let mut log = super::grpc_log::http_grpc(&config)
                    .map_err(|e| under(e.under("typed_config")))?;
                log.filter = match &l.filter {
                    Some(f) => {
                        Some(super::grpc_log::filter(f).map_err(|e| under(e.under("filter")))?)
                    }
                    None => None,
                };
                grpc.push(log);
            }
            _ => files.push(access_log(l).map_err(under)?),
        }
    }
    Ok((files, grpc))
}

pub(super) fn access_logs(logs: &[EnvoyAccessLog]) -> Result<Vec<AccessLog>> {
    logs.iter()
        .enumerate()
        .map(|(i, l)| access_log(l).map_err(|e| e.under(format!("access_log[{i}]"))))
        .collect()
}

fn access_log(l: &EnvoyAccessLog) -> Result<AccessLog> {
    let EnvoyAccessLog {
        // Inert: Envoy finds the logger by its config's type.
        name: _,
        filter,
        config_type,
    } = l;
    unset!(filter);
    let any = match config_type {
        Some(ConfigType::TypedConfig(any)) => any,
        None => return Err(required("typed_config")),
    };
    logger(any).map_err(|e| e.under("typed_config"))
}

#[allow(deprecated)] // The deprecated text `format` is named to be refused.
fn logger(any: &Any) -> Result<AccessLog> {
    if check::is::<FileAccessLog>(any) {
        let FileAccessLog {
            path,
            access_log_format,
        } = check::decode("", any)?;
        if path.is_empty() {
            return Err(required("path"));
        }
        let json_format = match &access_log_format {
            None => None,
            Some(AccessLogFormat::JsonFormat(s)) => {
                Some(json_format(s).map_err(|e| e.under("json_format"))?)
            }
            Some(AccessLogFormat::LogFormat(f)) => {
                Some(log_format(f).map_err(|e| e.under("log_format"))?)
            }
            Some(AccessLogFormat::Format(_)) => return Err(text_format("format")),
            Some(AccessLogFormat::TypedJsonFormat(_)) => {
                return Err(not_supported("typed_json_format"));
            }
        };
        return Ok(AccessLog { path, json_format });
    }
    if check::is::<StdoutAccessLog>(any) {
        let StdoutAccessLog { access_log_format } = check::decode("", any)?;
        let json_format = match &access_log_format {
            None => None,
            Some(stdout_access_log::AccessLogFormat::LogFormat(f)) => {
                Some(log_format(f).map_err(|e| e.under("log_format"))?)
            }
        };
        return Ok(AccessLog {
            path: "/dev/stdout".to_string(),
            json_format,
        });
    }
    if check::is::<StderrAccessLog>(any) {
        let StderrAccessLog { access_log_format } = check::decode("", any)?;
        let json_format = match &access_log_format {
            None => None,
            Some(stderr_access_log::AccessLogFormat::LogFormat(f)) => {
                Some(log_format(f).map_err(|e| e.under("log_format"))?)
            }
        };
        return Ok(AccessLog {
            path: "/dev/stderr".to_string(),
            json_format,
        });
    }
    Err(check::unsupported_value(
        "",
        check::type_name(any),
        &supported(),
    ))
}

fn text_format(field: &str) -> Refusal {
    Refusal::new(
        field,
        "text formats are not supported by minimal-proxy; use json_format",
    )
}

/// A `SubstitutionFormatString` holding a JSON format and nothing else.
#[allow(deprecated)] // Deprecated fields are named so that they are refused.
fn log_format(f: &SubstitutionFormatString) -> Result<BTreeMap<String, String>> {
    let SubstitutionFormatString {
        omit_empty_values,
        content_type,
        formatters,
        json_format_options,
        format,
    } = f;
    unset!(
        omit_empty_values,
        content_type,
        formatters,
        json_format_options
    );
    match format {
        Some(Format::JsonFormat(s)) => json_format(s).map_err(|e| e.under("json_format")),
        Some(Format::TextFormat(_)) => Err(text_format("text_format")),
        Some(Format::TextFormatSource(_)) => Err(text_format("text_format_source")),
        None => Err(required("json_format")),
    }
}

/// Field → string value; each value's `%OPERATOR%`s must be ones the access log implements.
fn json_format(s: &Struct) -> Result<BTreeMap<String, String>> {
    let Struct { fields } = s;
    // Sorted, so that the first refusal is the same on every run.
    let sorted: BTreeMap<&String, &_> = fields.iter().collect();
    sorted
        .into_iter()
        .map(|(key, value)| match &value.kind {
            Some(Kind::StringValue(text)) => {
                crate::access_log::check_format(text)
                    .map_err(|e| Refusal::new(key.as_str(), e.to_string()))?;
                Ok((key.clone(), text.clone()))
            }
            _ => Err(Refusal::new(
                key.as_str(),
                "only string values are supported by minimal-proxy",
            )),
        })
        .collect()
}
