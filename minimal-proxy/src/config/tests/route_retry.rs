//! `route_configuration_from_proto`: retry policies (route and virtual host) and hash policies.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use super::route_action::{AT, RC, cluster, forward, forwarded};
use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::{
    RetryPolicy as EnvoyRetry, RouteAction as EnvoyAction,
    retry_policy::RetryBackOff,
    route::Action,
    route_action::{
        HashPolicy as EnvoyHash,
        hash_policy::{ConnectionProperties, Cookie, Header, PolicySpecifier, QueryParameter},
    },
};

use super::{
    millis, refused,
    route::{config, prefix, route},
    secs, u32v,
};
use crate::config::{HashPolicy, HashPolicyKind, RouteAction, route_configuration_from_proto};

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
        "cookie generation (ttl) is not supported by minimal-proxy; omit ttl",
    );
    // What xds-server emits for `{"cookie": {"name": "session", "ttl": "1h"}}`; a zero ttl
    // (a session cookie in Envoy) is generation too.
    for ttl in [secs(3600), secs(0)] {
        refused(
            forward(with(PolicySpecifier::Cookie(Cookie {
                name: "session".into(),
                ttl,
                ..Default::default()
            }))),
            RC,
            &format!("{AT}.route.hash_policy[0].cookie.ttl"),
            "omit ttl",
        );
    }
    refused(
        forward(with(PolicySpecifier::QueryParameter(QueryParameter {
            name: "u".into(),
        }))),
        RC,
        &format!("{AT}.route.hash_policy[0].query_parameter"),
        "not supported",
    );
}
