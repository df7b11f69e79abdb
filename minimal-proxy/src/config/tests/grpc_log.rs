//! `envoy.access_loggers.http_grpc` in a connection manager: the configuration the tap
//! pushes (log name, the xDS cluster, V3, buffer settings, its filters) converts; other
//! fields, filters and places are refused by path.

use std::time::Duration;

use envoy_types::pb::envoy::{
    config::{
        accesslog::v3::{
            AccessLog as EnvoyAccessLog, AccessLogFilter, AndFilter, ComparisonFilter,
            GrpcStatusFilter, HeaderFilter, OrFilter, ResponseFlagFilter, StatusCodeFilter,
            access_log::ConfigType, access_log_filter::FilterSpecifier, comparison_filter::Op,
        },
        core::v3::{
            ApiVersion, GrpcService, HeaderValue, RuntimeUInt32,
            grpc_service::{EnvoyGrpc, GoogleGrpc, TargetSpecifier},
        },
        route::v3::{HeaderMatcher, header_matcher::HeaderMatchSpecifier},
    },
    extensions::access_loggers::grpc::v3::{CommonGrpcAccessLogConfig, HttpGrpcAccessLogConfig},
    r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern},
};

use super::{
    any,
    listener::{L, hcm, listener_with},
    millis, refused, u32v,
};
use crate::config::{
    CompareOp, Comparison, GrpcAccessLog, HeaderMatch, HeaderMatchKind, ListenerFilter, LogFilter,
    listener_from_proto,
};

const AT: &str = "filter_chains[0].filters[0].typed_config.access_log[0]";

/// The tap's logger (contract: /tmp/contract/tap.md).
fn tap_config() -> HttpGrpcAccessLogConfig {
    HttpGrpcAccessLogConfig {
        common_config: Some(CommonGrpcAccessLogConfig {
            log_name: "xds-tap".into(),
            grpc_service: Some(GrpcService {
                target_specifier: Some(TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                    cluster_name: "xds_cluster".into(),
                    ..EnvoyGrpc::default()
                })),
                ..GrpcService::default()
            }),
            transport_api_version: ApiVersion::V3 as i32,
            buffer_flush_interval: millis(200),
            buffer_size_bytes: u32v(16384),
            ..CommonGrpcAccessLogConfig::default()
        }),
        ..HttpGrpcAccessLogConfig::default()
    }
}

fn status(op: Op, value: u32) -> AccessLogFilter {
    AccessLogFilter {
        filter_specifier: Some(FilterSpecifier::StatusCodeFilter(StatusCodeFilter {
            comparison: Some(ComparisonFilter {
                op: op as i32,
                value: Some(RuntimeUInt32 {
                    default_value: value,
                    runtime_key: "xds_tap.status".into(),
                }),
            }),
        })),
    }
}

fn path_prefix(prefix: &str) -> AccessLogFilter {
    AccessLogFilter {
        filter_specifier: Some(FilterSpecifier::HeaderFilter(HeaderFilter {
            header: Some(HeaderMatcher {
                name: ":path".into(),
                header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
                    match_pattern: Some(MatchPattern::Prefix(prefix.into())),
                    ..StringMatcher::default()
                })),
                ..HeaderMatcher::default()
            }),
        })),
    }
}

fn and(filters: Vec<AccessLogFilter>) -> AccessLogFilter {
    AccessLogFilter {
        filter_specifier: Some(FilterSpecifier::AndFilter(AndFilter { filters })),
    }
}

fn or(filters: Vec<AccessLogFilter>) -> AccessLogFilter {
    AccessLogFilter {
        filter_specifier: Some(FilterSpecifier::OrFilter(OrFilter { filters })),
    }
}

fn converted(
    config: HttpGrpcAccessLogConfig,
    filter: Option<AccessLogFilter>,
) -> Result<Vec<GrpcAccessLog>, crate::config::Rejection> {
    let mut h = hcm();
    h.access_log = vec![EnvoyAccessLog {
        name: "envoy.access_loggers.http_grpc".into(),
        filter,
        config_type: Some(ConfigType::TypedConfig(any(&config))),
    }];
    listener_from_proto(&listener_with(any(&h))).map(|mut l| match l.chains.remove(0).filter {
        ListenerFilter::Http(h) => {
            assert!(h.access_log.is_empty(), "no file log");
            h.grpc_access_log
        }
        other => panic!("{other:?}"),
    })
}

#[test]
fn the_taps_logger_and_filters_convert() {
    // One tap `path_prefix=/api&status=5xx`, or-ed with a tap `status=503`.
    let filter = or(vec![
        and(vec![
            path_prefix("/api"),
            and(vec![status(Op::Ge, 500), status(Op::Le, 599)]),
        ]),
        status(Op::Eq, 503),
    ]);
    let logs = converted(tap_config(), Some(filter)).unwrap();
    let cmp = |op, value| LogFilter::Status(Comparison { op, value });
    assert_eq!(
        logs,
        [GrpcAccessLog {
            log_name: "xds-tap".into(),
            cluster: "xds_cluster".into(),
            initial_metadata: vec![],
            buffer_flush_interval: Duration::from_millis(200),
            buffer_size_bytes: 16384,
            filter: Some(LogFilter::Or(vec![
                LogFilter::And(vec![
                    LogFilter::Header(HeaderMatch {
                        name: ":path".into(),
                        kind: HeaderMatchKind::Prefix("/api".into()),
                        invert: false,
                    }),
                    LogFilter::And(vec![cmp(CompareOp::Ge, 500), cmp(CompareOp::Le, 599)]),
                ]),
                cmp(CompareOp::Eq, 503),
            ])),
        }]
    );
}

#[test]
fn envoys_buffer_defaults_apply_and_no_filter_logs_everything() {
    let mut config = tap_config();
    let common = config.common_config.as_mut().unwrap();
    common.buffer_flush_interval = None;
    common.buffer_size_bytes = None;
    let logs = converted(config, None).unwrap();
    assert_eq!(logs[0].buffer_flush_interval, Duration::from_secs(1));
    assert_eq!(logs[0].buffer_size_bytes, 16384);
    assert_eq!(logs[0].filter, None);
    let flags = AccessLogFilter {
        filter_specifier: Some(FilterSpecifier::ResponseFlagFilter(ResponseFlagFilter {
            flags: vec!["UF".into(), "URX".into()],
        })),
    };
    let logs = converted(tap_config(), Some(flags)).unwrap();
    assert_eq!(
        logs[0].filter,
        Some(LogFilter::ResponseFlags(vec!["UF".into(), "URX".into()]))
    );
}

#[test]
fn unsupported_fields_and_filters_are_refused_by_path() {
    let with = |f: fn(&mut HttpGrpcAccessLogConfig)| {
        let mut c = tap_config();
        f(&mut c);
        converted(c, None)
    };
    refused(
        with(|c| c.additional_request_headers_to_log = vec!["x-a".into()]),
        L,
        &format!("{AT}.typed_config.additional_request_headers_to_log"),
        "not supported",
    );
    refused(
        with(|c| c.common_config.as_mut().unwrap().log_name.clear()),
        L,
        &format!("{AT}.typed_config.common_config.log_name"),
        "required",
    );
    refused(
        with(|c| c.common_config.as_mut().unwrap().transport_api_version = 0),
        L,
        &format!("{AT}.typed_config.common_config.transport_api_version"),
        "only V3",
    );
    refused(
        with(|c| {
            c.common_config.as_mut().unwrap().grpc_service = Some(GrpcService {
                target_specifier: Some(TargetSpecifier::GoogleGrpc(GoogleGrpc::default())),
                ..GrpcService::default()
            })
        }),
        L,
        &format!("{AT}.typed_config.common_config.grpc_service.google_grpc"),
        "use envoy_grpc",
    );
    refused(
        with(|c| {
            let s = c
                .common_config
                .as_mut()
                .unwrap()
                .grpc_service
                .as_mut()
                .unwrap();
            s.initial_metadata = vec![HeaderValue {
                key: "Not A Key".into(),
                value: "b".into(),
                ..HeaderValue::default()
            }];
        }),
        L,
        &format!("{AT}.typed_config.common_config.grpc_service.initial_metadata[0].key"),
        "not an ASCII gRPC metadata key",
    );
    let grpc_status = AccessLogFilter {
        filter_specifier: Some(FilterSpecifier::GrpcStatusFilter(
            GrpcStatusFilter::default(),
        )),
    };
    refused(
        converted(tap_config(), Some(grpc_status.clone())),
        L,
        &format!("{AT}.filter.grpc_status_filter"),
        "not supported",
    );
    refused(
        converted(
            tap_config(),
            Some(and(vec![status(Op::Eq, 1), grpc_status])),
        ),
        L,
        &format!("{AT}.filter.and_filter.filters[1].grpc_status_filter"),
        "not supported",
    );
    refused(
        converted(tap_config(), Some(or(vec![status(Op::Eq, 1)]))),
        L,
        &format!("{AT}.filter.or_filter.filters"),
        "at least two",
    );
    let bad_flag = AccessLogFilter {
        filter_specifier: Some(FilterSpecifier::ResponseFlagFilter(ResponseFlagFilter {
            flags: vec!["XX".into()],
        })),
    };
    refused(
        converted(tap_config(), Some(bad_flag)),
        L,
        &format!("{AT}.filter.response_flag_filter.flags[0]"),
        "'XX' is not one of Envoy's response flags",
    );
}

/// The credential a tap's access log carries when the control plane requires tokens is sent
/// as the stream's metadata.
#[test]
fn initial_metadata_is_kept_for_the_stream() {
    let mut config = tap_config();
    {
        let s = config
            .common_config
            .as_mut()
            .unwrap()
            .grpc_service
            .as_mut()
            .unwrap();
        s.initial_metadata = vec![HeaderValue {
            key: "authorization".into(),
            value: "Bearer xdstap_abc".into(),
            ..HeaderValue::default()
        }];
    }
    let logs = converted(config, None).unwrap();
    assert_eq!(
        logs[0].initial_metadata,
        [("authorization".to_string(), "Bearer xdstap_abc".to_string())]
    );
}
