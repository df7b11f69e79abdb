//! `route_configuration_from_proto`: forwarding (clusters, weights, rewrite, timeout,
//! retries, hashing), direct responses and header changes, with Envoy's defaults.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use std::time::Duration;

use envoy_types::pb::{
    envoy::config::{
        core::v3::{
            DataSource, HeaderValue, HeaderValueOption, Metadata, data_source::Specifier,
            header_value_option::HeaderAppendAction,
        },
        route::v3::{
            DirectResponseAction, RetryPolicy as EnvoyRetry, RouteAction as EnvoyAction,
            WeightedCluster as EnvoyWeighted,
            retry_policy::RetryBackOff,
            route::Action,
            route_action::{
                ClusterSpecifier, HashPolicy as EnvoyHash,
                hash_policy::{
                    ConnectionProperties, Cookie, Header, PolicySpecifier, QueryParameter,
                },
            },
            weighted_cluster::ClusterWeight,
        },
    },
    google::protobuf::{Struct, Value, value::Kind},
};

use super::{
    boolv, millis, refused,
    route::{config, convert, prefix, route},
    secs, u32v,
};
use crate::config::{
    ClusterTarget, Forward, HashPolicy, HashPolicyKind, HeaderMutation, RetryOn, RetryPolicy,
    RouteAction, RouteConfig, WeightedCluster, route_configuration_from_proto,
};

const RC: &str = "route configuration 'ingress'";
const AT: &str = "virtual_hosts[0].routes[0]";

fn forward(a: EnvoyAction) -> Result<RouteConfig, crate::config::Rejection> {
    convert(vec![route(prefix("/"), Some(Action::Route(a)))])
}

fn cluster(name: &str) -> Option<ClusterSpecifier> {
    Some(ClusterSpecifier::Cluster(name.into()))
}

fn forwarded(a: EnvoyAction) -> Forward {
    match &forward(a).unwrap().virtual_hosts[0].routes[0].action {
        RouteAction::Forward(f) => f.clone(),
        other => panic!("{other:?}"),
    }
}

fn subset(version: &str) -> Option<Metadata> {
    let value = Value {
        kind: Some(Kind::StringValue(version.into())),
    };
    Some(Metadata {
        filter_metadata: [(
            "envoy.lb".to_string(),
            Struct {
                fields: [("version".to_string(), value)].into(),
            },
        )]
        .into(),
        ..Metadata::default()
    })
}

#[test]
fn cluster_with_envoy_defaults() {
    let f = forwarded(EnvoyAction {
        cluster_specifier: cluster("web"),
        ..Default::default()
    });
    assert_eq!(
        f,
        Forward {
            target: ClusterTarget::Cluster("web".into()),
            prefix_rewrite: None,
            timeout: Some(Duration::from_secs(15)),
            retry: None,
            hash_policy: vec![],
        }
    );
    let f = forwarded(EnvoyAction {
        cluster_specifier: cluster("web"),
        timeout: secs(0),
        ..Default::default()
    });
    assert_eq!(f.timeout, None, "zero disables the timeout");
}

#[test]
fn weighted_clusters_with_subsets_rewrite_timeout_and_retries() {
    let f = forwarded(EnvoyAction {
        cluster_specifier: Some(ClusterSpecifier::WeightedClusters(EnvoyWeighted {
            clusters: vec![
                ClusterWeight {
                    name: "web".into(),
                    weight: u32v(80),
                    metadata_match: subset("v1"),
                    ..Default::default()
                },
                ClusterWeight {
                    name: "web".into(),
                    weight: u32v(20),
                    metadata_match: subset("v2"),
                    ..Default::default()
                },
            ],
            total_weight: u32v(100),
            ..Default::default()
        })),
        prefix_rewrite: "/".into(),
        timeout: secs(5),
        retry_policy: Some(EnvoyRetry {
            retry_on: "5xx,gateway-error,connect-failure,reset".into(),
            num_retries: u32v(2),
            per_try_timeout: secs(1),
            retry_back_off: Some(RetryBackOff {
                base_interval: millis(25),
                max_interval: millis(250),
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let weighted = |version: &str, weight| WeightedCluster {
        name: "web".into(),
        weight,
        metadata_match: [("version".to_string(), version.to_string())].into(),
        request_headers: HeaderMutation::default(),
        response_headers: HeaderMutation::default(),
    };
    assert_eq!(
        f.target,
        ClusterTarget::Weighted(vec![weighted("v1", 80), weighted("v2", 20)])
    );
    assert_eq!(f.prefix_rewrite.as_deref(), Some("/"));
    assert_eq!(f.timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        f.retry,
        Some(RetryPolicy {
            retry_on: RetryOn {
                server_error: true,
                gateway_error: true,
                connect_failure: true,
                reset: true,
                retriable_status_codes: false
            },
            num_retries: 2,
            per_try_timeout: Some(Duration::from_secs(1)),
            retriable_status_codes: vec![],
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
        })
    );
}

#[test]
fn retry_defaults_and_refusals() {
    let retry = |r: EnvoyRetry| EnvoyAction {
        cluster_specifier: cluster("web"),
        retry_policy: Some(r),
        ..Default::default()
    };
    let r = forwarded(retry(EnvoyRetry {
        retry_on: "retriable-status-codes".into(),
        retriable_status_codes: vec![503, 409],
        retry_back_off: Some(RetryBackOff {
            base_interval: millis(100),
            max_interval: None,
        }),
        ..Default::default()
    }))
    .retry
    .unwrap();
    assert_eq!(r.num_retries, 1, "Envoy's default");
    assert!(r.retry_on.retriable_status_codes && !r.retry_on.server_error);
    assert_eq!(r.retriable_status_codes, [503, 409]);
    assert_eq!(
        (r.backoff_base, r.backoff_max),
        (Duration::from_millis(100), Duration::from_secs(1))
    );
    let r = forwarded(retry(EnvoyRetry {
        retry_on: "5xx".into(),
        ..Default::default()
    }))
    .retry
    .unwrap();
    assert_eq!(
        (r.backoff_base, r.backoff_max),
        (Duration::from_millis(25), Duration::from_millis(250))
    );
    assert_eq!(r.per_try_timeout, None);

    let cases = [
        (
            EnvoyRetry {
                retry_on: "5xx,retriable-4xx".into(),
                ..Default::default()
            },
            "retry_on",
            "'retriable-4xx' is not supported by minimal-proxy; supported: 5xx, gateway-error",
        ),
        (
            EnvoyRetry {
                retry_back_off: Some(RetryBackOff {
                    base_interval: millis(100),
                    max_interval: millis(50),
                }),
                ..Default::default()
            },
            "retry_back_off.max_interval",
            "greater than or equal to base_interval",
        ),
        (
            EnvoyRetry {
                retry_back_off: Some(RetryBackOff::default()),
                ..Default::default()
            },
            "retry_back_off.base_interval",
            "is required",
        ),
        (
            EnvoyRetry {
                retriable_status_codes: vec![42],
                ..Default::default()
            },
            "retriable_status_codes[0]",
            "not an HTTP status code",
        ),
        (
            EnvoyRetry {
                per_try_idle_timeout: secs(1),
                ..Default::default()
            },
            "per_try_idle_timeout",
            "not supported",
        ),
    ];
    for (r, field, reason) in cases {
        refused(
            forward(retry(r)),
            RC,
            &format!("{AT}.route.retry_policy.{field}"),
            reason,
        );
    }
}

#[test]
fn virtual_host_retry_policy_applies_to_routes_without_one() {
    let mut rc = config(vec![
        route(
            prefix("/own"),
            Some(Action::Route(EnvoyAction {
                cluster_specifier: cluster("web"),
                retry_policy: Some(EnvoyRetry {
                    retry_on: "reset".into(),
                    num_retries: u32v(4),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        ),
        route(
            prefix("/"),
            Some(Action::Route(EnvoyAction {
                cluster_specifier: cluster("web"),
                ..Default::default()
            })),
        ),
    ]);
    rc.virtual_hosts[0].retry_policy = Some(EnvoyRetry {
        retry_on: "5xx".into(),
        ..Default::default()
    });
    let rc = route_configuration_from_proto(&rc).unwrap();
    let retry = |i: usize| match &rc.virtual_hosts[0].routes[i].action {
        RouteAction::Forward(f) => f.retry.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(
        retry(0).retry_on.reset && !retry(0).retry_on.server_error && retry(0).num_retries == 4
    );
    assert!(retry(1).retry_on.server_error && retry(1).num_retries == 1);

    let mut bad = config(vec![]);
    bad.virtual_hosts[0].retry_policy = Some(EnvoyRetry {
        retry_on: "refused-stream".into(),
        ..Default::default()
    });
    refused(
        route_configuration_from_proto(&bad),
        RC,
        "virtual_hosts[0].retry_policy.retry_on",
        "'refused-stream'",
    );
}

#[test]
fn hash_policies() {
    let hash = |spec, terminal| EnvoyHash {
        terminal,
        policy_specifier: Some(spec),
    };
    let f = forwarded(EnvoyAction {
        cluster_specifier: cluster("web"),
        hash_policy: vec![
            hash(
                PolicySpecifier::Header(Header {
                    header_name: "X-User".into(),
                    regex_rewrite: None,
                }),
                true,
            ),
            hash(
                PolicySpecifier::Cookie(Cookie {
                    name: "session".into(),
                    ..Default::default()
                }),
                false,
            ),
            hash(
                PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip: true }),
                false,
            ),
        ],
        ..Default::default()
    });
    assert_eq!(
        f.hash_policy,
        vec![
            HashPolicy {
                kind: HashPolicyKind::Header("x-user".into()),
                terminal: true
            },
            HashPolicy {
                kind: HashPolicyKind::Cookie("session".into()),
                terminal: false
            },
            HashPolicy {
                kind: HashPolicyKind::SourceIp,
                terminal: false
            },
        ]
    );
    let with = |spec| EnvoyAction {
        cluster_specifier: cluster("web"),
        hash_policy: vec![hash(spec, false)],
        ..Default::default()
    };
    refused(
        forward(with(PolicySpecifier::Cookie(Cookie {
            name: "s".into(),
            ttl: secs(60),
            ..Default::default()
        }))),
        RC,
        &format!("{AT}.route.hash_policy[0].cookie.ttl"),
        "not supported",
    );
    refused(
        forward(with(PolicySpecifier::QueryParameter(QueryParameter {
            name: "u".into(),
        }))),
        RC,
        &format!("{AT}.route.hash_policy[0].query_parameter"),
        "not supported",
    );
}

#[test]
fn action_refusals_name_the_field() {
    let weighted = |clusters, total| EnvoyAction {
        cluster_specifier: Some(ClusterSpecifier::WeightedClusters(EnvoyWeighted {
            clusters,
            total_weight: total,
            ..Default::default()
        })),
        ..Default::default()
    };
    let w = |name: &str, weight| ClusterWeight {
        name: name.into(),
        weight: u32v(weight),
        ..Default::default()
    };
    let cases = [
        (
            weighted(vec![w("a", 0), w("b", 0)], None),
            "weighted_clusters.clusters",
            "greater than 0",
        ),
        (
            weighted(vec![w("a", 1), w("b", 2)], u32v(100)),
            "weighted_clusters.total_weight",
            "is 100 but the weights sum to 3",
        ),
        (
            weighted(
                vec![ClusterWeight {
                    cluster_header: "x".into(),
                    ..w("a", 1)
                }],
                None,
            ),
            "weighted_clusters.clusters[0].cluster_header",
            "not supported",
        ),
        (
            EnvoyAction {
                cluster_specifier: cluster(""),
                ..Default::default()
            },
            "cluster",
            "must not be empty",
        ),
        (
            EnvoyAction {
                cluster_specifier: Some(ClusterSpecifier::ClusterHeader("x".into())),
                ..Default::default()
            },
            "cluster_header",
            "not supported",
        ),
        (
            EnvoyAction {
                cluster_specifier: cluster("web"),
                idle_timeout: secs(1),
                ..Default::default()
            },
            "idle_timeout",
            "not supported",
        ),
        (
            EnvoyAction {
                cluster_specifier: cluster("web"),
                priority: 1,
                ..Default::default()
            },
            "priority",
            "not supported",
        ),
        (
            EnvoyAction {
                cluster_specifier: cluster("web"),
                metadata_match: subset("v1"),
                ..Default::default()
            },
            "metadata_match",
            "not supported",
        ),
    ];
    for (a, field, reason) in cases {
        refused(forward(a), RC, &format!("{AT}.route.{field}"), reason);
    }
}

fn direct(d: DirectResponseAction) -> Result<RouteConfig, crate::config::Rejection> {
    convert(vec![route(prefix("/"), Some(Action::DirectResponse(d)))])
}

fn inline(body: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineString(body.into())),
        ..Default::default()
    })
}

#[test]
fn direct_responses() {
    let rc = direct(DirectResponseAction {
        status: 418,
        body: inline("teapot"),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        rc.virtual_hosts[0].routes[0].action,
        RouteAction::Direct {
            status: 418,
            body: Some("teapot".into())
        }
    );
    let rc = direct(DirectResponseAction {
        status: 204,
        body: inline(""),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        rc.virtual_hosts[0].routes[0].action,
        RouteAction::Direct {
            status: 204,
            body: None
        }
    );

    refused(
        direct(DirectResponseAction {
            status: 100,
            ..Default::default()
        }),
        RC,
        &format!("{AT}.direct_response.status"),
        "200..=599",
    );
    refused(
        direct(DirectResponseAction {
            status: 200,
            body: inline(&"x".repeat(4097)),
            ..Default::default()
        }),
        RC,
        &format!("{AT}.direct_response.body"),
        "response body size is 4097 bytes; maximum is 4096",
    );
    let file = Some(DataSource {
        specifier: Some(Specifier::Filename("/etc/x".into())),
        ..Default::default()
    });
    refused(
        direct(DirectResponseAction {
            status: 200,
            body: file,
            ..Default::default()
        }),
        RC,
        &format!("{AT}.direct_response.body.filename"),
        "not supported",
    );
}

fn add(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

fn with_headers(
    f: impl FnOnce(&mut envoy_types::pb::envoy::config::route::v3::Route),
) -> Result<RouteConfig, crate::config::Rejection> {
    let mut r = route(
        prefix("/"),
        Some(Action::Route(EnvoyAction {
            cluster_specifier: cluster("web"),
            ..Default::default()
        })),
    );
    f(&mut r);
    convert(vec![r])
}

#[test]
fn header_changes() {
    let rc = with_headers(|r| {
        r.request_headers_to_add = vec![
            add("X-From", "mesh", HeaderAppendAction::OverwriteIfExistsOrAdd),
            add("x-tag", "a", HeaderAppendAction::AppendIfExistsOrAdd),
            HeaderValueOption {
                append: boolv(false),
                ..add("x-old", "50%%", HeaderAppendAction::AppendIfExistsOrAdd)
            },
            add("x-empty", "", HeaderAppendAction::AppendIfExistsOrAdd),
        ];
        r.request_headers_to_remove = vec!["X-Debug".into()];
        r.response_headers_to_add = vec![add(
            "x-served-by",
            "mesh",
            HeaderAppendAction::OverwriteIfExistsOrAdd,
        )];
        r.response_headers_to_remove = vec!["server".into()];
    })
    .unwrap();
    let r = &rc.virtual_hosts[0].routes[0];
    let entry = |k: &'static str, v: &'static str, append| {
        (
            http::HeaderName::from_static(k),
            http::HeaderValue::from_static(v),
            append,
        )
    };
    assert_eq!(
        r.request_headers,
        HeaderMutation {
            // The empty value is not added, as in Envoy.
            add: vec![
                entry("x-from", "mesh", false),
                entry("x-tag", "a", true),
                entry("x-old", "50%", false)
            ],
            remove: vec![http::HeaderName::from_static("x-debug")],
        }
    );
    assert_eq!(
        r.response_headers,
        HeaderMutation {
            add: vec![entry("x-served-by", "mesh", false)],
            remove: vec![http::HeaderName::from_static("server")],
        }
    );
}

#[test]
fn header_change_refusals_name_the_field() {
    let req = |o: HeaderValueOption| with_headers(|r| r.request_headers_to_add = vec![o]);
    let at = format!("{AT}.request_headers_to_add[0]");
    let a = HeaderAppendAction::AppendIfExistsOrAdd;
    refused(
        req(add("x", "%REQ(x-a)%", a)),
        RC,
        &format!("{at}.header.value"),
        "formatters",
    );
    refused(
        req(add(":path", "/", a)),
        RC,
        &format!("{at}.header.key"),
        "cannot be changed",
    );
    refused(
        req(add("host", "a", a)),
        RC,
        &format!("{at}.header.key"),
        "cannot be changed",
    );
    refused(
        req(add("x", "1", HeaderAppendAction::AddIfAbsent)),
        RC,
        &format!("{at}.append_action"),
        "'ADD_IF_ABSENT'",
    );
    refused(
        req(HeaderValueOption {
            keep_empty_value: true,
            ..add("x", "1", a)
        }),
        RC,
        &format!("{at}.keep_empty_value"),
        "not supported",
    );
    refused(
        req(HeaderValueOption {
            append: boolv(true),
            ..add("x", "1", HeaderAppendAction::OverwriteIfExistsOrAdd)
        }),
        RC,
        &format!("{at}.append"),
        "together with append_action",
    );
    refused(
        with_headers(|r| r.response_headers_to_remove = vec![":status".into()]),
        RC,
        &format!("{AT}.response_headers_to_remove[0]"),
        "cannot be changed",
    );
}
