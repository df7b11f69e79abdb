//! `health_checks[]` → [`HealthCheck`]: HTTP (GET a path, healthy on 200) or TCP (connect).
//!
//! One health check per cluster: Envoy runs every entry of `health_checks`, each with its own
//! verdict, while the upstream runs one; a second entry is refused rather than ignored.
//! Until the cluster has carried traffic the upstream probes at `no_traffic_interval` (Envoy's
//! default 60 s), then at `interval`; the other interval tunings are refused.

use envoy_types::pb::envoy::{
    config::core::v3::{
        HealthCheck as EnvoyHealthCheck, RequestMethod,
        health_check::{HealthChecker, HttpHealthCheck, TcpHealthCheck},
    },
    r#type::v3::CodecClientType,
};

use crate::config::{
    HealthCheck, HealthCheckKind,
    check::{self, Refusal, Result, not_supported, required, unset},
};

/// Envoy's default `no_traffic_interval`.
const DEFAULT_NO_TRAFFIC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The cluster's health checks: none, or one.
pub(super) fn health_checks(checks: &[EnvoyHealthCheck]) -> Result<Vec<HealthCheck>> {
    match checks {
        [] => Ok(Vec::new()),
        [check] => Ok(vec![
            health_check(check).map_err(|r| r.under("health_checks[0]"))?,
        ]),
        [first, ..] => {
            health_check(first).map_err(|r| r.under("health_checks[0]"))?;
            Err(Refusal::new(
                "health_checks[1]",
                "only one health check per cluster is supported by minimal-proxy (Envoy runs \
                 each); keep one",
            ))
        }
    }
}

#[allow(deprecated)] // `event_log_path` is named to be refused.
fn health_check(hc: &EnvoyHealthCheck) -> Result<HealthCheck> {
    let EnvoyHealthCheck {
        timeout,
        interval,
        initial_jitter,
        interval_jitter,
        interval_jitter_percent,
        unhealthy_threshold,
        healthy_threshold,
        alt_port,
        reuse_connection,
        no_traffic_interval,
        no_traffic_healthy_interval,
        unhealthy_interval,
        unhealthy_edge_interval,
        healthy_edge_interval,
        event_log_path,
        event_logger,
        event_service,
        always_log_health_check_failures,
        always_log_health_check_success,
        tls_options,
        transport_socket_match_criteria,
        health_checker,
    } = hc;
    unset!(
        initial_jitter,
        interval_jitter,
        interval_jitter_percent,
        alt_port,
        no_traffic_healthy_interval,
        unhealthy_interval,
        unhealthy_edge_interval,
        healthy_edge_interval,
        event_log_path,
        event_logger,
        event_service,
        always_log_health_check_failures,
        always_log_health_check_success,
        tls_options,
        transport_socket_match_criteria,
    );
    check::bool_default("reuse_connection", reuse_connection, true)?;
    let kind = match health_checker {
        Some(HealthChecker::HttpHealthCheck(http)) => {
            http_check(http).map_err(|r| r.under("http_health_check"))?
        }
        Some(HealthChecker::TcpHealthCheck(tcp)) => {
            let TcpHealthCheck {
                send,
                receive,
                proxy_protocol_config,
            } = tcp;
            check::nested(|| {
                unset!(send, receive, proxy_protocol_config);
                Ok(())
            })
            .map_err(|r| r.under("tcp_health_check"))?;
            HealthCheckKind::Tcp
        }
        Some(HealthChecker::GrpcHealthCheck(_)) => return Err(not_supported("grpc_health_check")),
        Some(HealthChecker::CustomHealthCheck(_)) => {
            return Err(not_supported("custom_health_check"));
        }
        None => return Err(required("http_health_check")),
    };
    Ok(HealthCheck {
        timeout: check::positive_duration("timeout", timeout)?,
        interval: check::positive_duration("interval", interval)?,
        healthy_threshold: check::uint32(healthy_threshold)
            .ok_or_else(|| required("healthy_threshold"))?,
        unhealthy_threshold: check::uint32(unhealthy_threshold)
            .ok_or_else(|| required("unhealthy_threshold"))?,
        no_traffic_interval: match no_traffic_interval {
            None => DEFAULT_NO_TRAFFIC_INTERVAL,
            Some(_) => check::positive_duration("no_traffic_interval", no_traffic_interval)?,
        },
        kind,
    })
}

fn http_check(http: &HttpHealthCheck) -> Result<HealthCheckKind> {
    let HttpHealthCheck {
        host,
        path,
        send,
        receive,
        response_buffer_size,
        request_headers_to_add,
        request_headers_to_remove,
        expected_statuses,
        retriable_statuses,
        codec_client_type,
        service_name_matcher,
        method,
    } = http;
    unset!(
        send,
        receive,
        response_buffer_size,
        request_headers_to_add,
        request_headers_to_remove,
        expected_statuses,
        retriable_statuses,
        service_name_matcher,
    );
    if path.is_empty() {
        return Err(required("path"));
    }
    match RequestMethod::try_from(*method) {
        Ok(RequestMethod::MethodUnspecified | RequestMethod::Get) => {}
        Ok(other) => {
            return Err(check::unsupported_value(
                "method",
                other.as_str_name(),
                "GET",
            ));
        }
        Err(_) => return Err(check::unknown_enum("method", *method, "GET")),
    }
    let http2 = match CodecClientType::try_from(*codec_client_type) {
        Ok(CodecClientType::Http1) => false,
        Ok(CodecClientType::Http2) => true,
        Ok(other) => {
            return Err(check::unsupported_value(
                "codec_client_type",
                other.as_str_name(),
                "HTTP1, HTTP2",
            ));
        }
        Err(_) => {
            return Err(check::unknown_enum(
                "codec_client_type",
                *codec_client_type,
                "HTTP1, HTTP2",
            ));
        }
    };
    if path.chars().any(char::is_control) {
        return Err(Refusal::new("path", "must not contain control characters"));
    }
    Ok(HealthCheckKind::Http {
        path: path.clone(),
        host: host.clone(),
        http2,
    })
}
