//! `listener_from_proto`: the TCP proxy and access logs.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use std::time::Duration;

use envoy_types::pb::{
    envoy::{
        config::{
            accesslog::v3::{AccessLog as EnvoyAccessLog, AccessLogFilter, access_log::ConfigType},
            core::v3::{SubstitutionFormatString, substitution_format_string::Format},
        },
        extensions::{
            access_loggers::{
                file::v3::{FileAccessLog, file_access_log::AccessLogFormat},
                stream::v3::{StdoutAccessLog, stdout_access_log},
            },
            filters::network::tcp_proxy::v3::{
                TcpProxy as EnvoyTcpProxy,
                tcp_proxy::{ClusterSpecifier, WeightedCluster},
            },
        },
    },
    google::protobuf::{Any, Struct, Value, value::Kind},
};

use super::{any, listener::listener_with, refused, secs, u32v};
use crate::config::{AccessLog, ListenerConfig, ListenerFilter, TcpProxy, listener_from_proto};

const L: &str = "listener 'ingress'";
const AT: &str = "filter_chains[0].filters[0].typed_config";

fn tcp_proxy() -> EnvoyTcpProxy {
    EnvoyTcpProxy {
        stat_prefix: "db".into(),
        cluster_specifier: Some(ClusterSpecifier::Cluster("postgres".into())),
        ..EnvoyTcpProxy::default()
    }
}

fn tcp(t: EnvoyTcpProxy) -> Result<ListenerConfig, crate::config::Rejection> {
    listener_from_proto(&listener_with(any(&t)))
}

fn converted(t: EnvoyTcpProxy) -> TcpProxy {
    match tcp(t).unwrap().chains.remove(0).filter {
        ListenerFilter::Tcp(t) => t,
        other => panic!("{other:?}"),
    }
}

#[test]
fn tcp_proxy_with_envoy_defaults() {
    assert_eq!(
        converted(tcp_proxy()),
        TcpProxy {
            stat_prefix: "db".into(),
            cluster: "postgres".into(),
            idle_timeout: Some(Duration::from_secs(3600)),
            access_log: vec![],
            rbac: vec![],
        }
    );
    let t = converted(EnvoyTcpProxy {
        idle_timeout: secs(0),
        max_connect_attempts: u32v(1),
        ..tcp_proxy()
    });
    assert_eq!(t.idle_timeout, None, "zero disables it");
    let t = converted(EnvoyTcpProxy {
        idle_timeout: secs(30),
        ..tcp_proxy()
    });
    assert_eq!(t.idle_timeout, Some(Duration::from_secs(30)));
}

#[test]
fn tcp_proxy_refusals_name_the_field() {
    let cases = [
        (
            EnvoyTcpProxy {
                cluster_specifier: Some(ClusterSpecifier::WeightedClusters(
                    WeightedCluster::default(),
                )),
                ..tcp_proxy()
            },
            "weighted_clusters",
            "not supported",
        ),
        (
            EnvoyTcpProxy {
                cluster_specifier: None,
                ..tcp_proxy()
            },
            "cluster",
            "is required",
        ),
        (
            EnvoyTcpProxy {
                max_connect_attempts: u32v(3),
                ..tcp_proxy()
            },
            "max_connect_attempts",
            "'3' is not supported",
        ),
        (
            EnvoyTcpProxy {
                downstream_idle_timeout: secs(1),
                ..tcp_proxy()
            },
            "downstream_idle_timeout",
            "not supported",
        ),
    ];
    for (t, field, reason) in cases {
        refused(tcp(t), L, &format!("{AT}.{field}"), reason);
    }
}

fn json(fields: &[(&str, &str)]) -> Struct {
    Struct {
        fields: fields
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Value {
                        kind: Some(Kind::StringValue(v.to_string())),
                    },
                )
            })
            .collect(),
    }
}

fn log(config: Any) -> EnvoyAccessLog {
    EnvoyAccessLog {
        name: "envoy.access_loggers.file".into(),
        config_type: Some(ConfigType::TypedConfig(config)),
        ..EnvoyAccessLog::default()
    }
}

fn file(format: Option<AccessLogFormat>) -> Any {
    any(&FileAccessLog {
        path: "/tmp/access.log".into(),
        access_log_format: format,
    })
}

fn logs(logs: Vec<EnvoyAccessLog>) -> Result<Vec<AccessLog>, crate::config::Rejection> {
    tcp(EnvoyTcpProxy {
        access_log: logs,
        ..tcp_proxy()
    })
    .map(|mut l| match l.chains.remove(0).filter {
        ListenerFilter::Tcp(t) => t.access_log,
        other => panic!("{other:?}"),
    })
}

#[test]
fn file_and_stdout_access_logs_with_json_formats() {
    let format = json(&[
        ("code", "%RESPONSE_CODE%"),
        ("path", "%REQ(:PATH)%"),
        ("kind", "tcp"),
    ]);
    let want: std::collections::BTreeMap<String, String> = [
        ("code", "%RESPONSE_CODE%"),
        ("path", "%REQ(:PATH)%"),
        ("kind", "tcp"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let stdout = any(&StdoutAccessLog {
        access_log_format: Some(stdout_access_log::AccessLogFormat::LogFormat(
            SubstitutionFormatString {
                format: Some(Format::JsonFormat(format.clone())),
                ..Default::default()
            },
        )),
    });
    assert_eq!(
        logs(vec![
            log(file(Some(AccessLogFormat::JsonFormat(format)))),
            log(file(None)),
            log(stdout),
        ])
        .unwrap(),
        vec![
            AccessLog {
                path: "/tmp/access.log".into(),
                json_format: Some(want.clone())
            },
            AccessLog {
                path: "/tmp/access.log".into(),
                json_format: None
            },
            AccessLog {
                path: "/dev/stdout".into(),
                json_format: Some(want)
            },
        ]
    );
}

#[test]
fn access_log_refusals_name_the_field() {
    let at = format!("{AT}.access_log[0]");
    let with = |f: AccessLogFormat| logs(vec![log(file(Some(f)))]);
    refused(
        with(AccessLogFormat::JsonFormat(json(&[(
            "meta",
            "%DYNAMIC_METADATA(x)%",
        )]))),
        L,
        &format!("{at}.typed_config.json_format.meta"),
        "%DYNAMIC_METADATA(x)% is not supported by minimal-proxy",
    );
    let mut nested = json(&[]);
    nested.fields.insert(
        "n".into(),
        Value {
            kind: Some(Kind::StructValue(json(&[]))),
        },
    );
    refused(
        with(AccessLogFormat::JsonFormat(nested)),
        L,
        &format!("{at}.typed_config.json_format.n"),
        "only string values",
    );
    refused(
        with(AccessLogFormat::Format("[%START_TIME%]".into())),
        L,
        &format!("{at}.typed_config.format"),
        "text formats",
    );
    refused(
        with(AccessLogFormat::LogFormat(SubstitutionFormatString {
            format: Some(Format::JsonFormat(json(&[]))),
            omit_empty_values: true,
            ..Default::default()
        })),
        L,
        &format!("{at}.typed_config.log_format.omit_empty_values"),
        "not supported",
    );
    refused(
        logs(vec![EnvoyAccessLog {
            filter: Some(AccessLogFilter::default()),
            ..log(file(None))
        }]),
        L,
        &format!("{at}.filter"),
        "not supported",
    );
    refused(
        logs(vec![log(Any { type_url: "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig".into(), value: vec![] })]),
        L,
        &format!("{at}.typed_config"),
        "'envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig' is not supported by minimal-proxy; supported: envoy.extensions.access_loggers.file.v3.FileAccessLog",
    );
    refused(
        logs(vec![log(any(&FileAccessLog::default()))]),
        L,
        &format!("{at}.typed_config.path"),
        "is required",
    );
}
