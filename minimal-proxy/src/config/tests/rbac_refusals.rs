//! RBAC filters: every field the proxy does not implement is refused at its exact path (the
//! HTTP filter, rules, policies, each permission and principal kind, the network filter).

#![allow(deprecated)] // `source_ip` is set to be refused.

use envoy_types::pb::{
    envoy::{
        config::{
            core::v3::CidrRange,
            listener::v3::{Filter, filter},
            rbac::v3::{
                Permission, Principal, Rbac as Rules, permission,
                principal::{self, Authenticated, Identifier},
                rbac::{Action, AuditLoggingOptions},
            },
        },
        extensions::filters::{
            http::rbac::v3::Rbac as HttpRbac,
            network::rbac::v3::{Rbac as NetRbac, rbac::EnforcementType},
        },
        r#type::matcher::v3::{StringMatcher, string_matcher},
    },
    google::{api::expr::v1alpha1::Expr, protobuf::Duration as ProtoDuration},
};

use super::{
    any,
    listener::{L, hcm, listener_with, router},
    rbac::{HCM_AT, any_request, deny, http, http_filter, id, peer, single, tcp_chain},
    refused,
};
use crate::config::listener_from_proto;

/// Refusal of one HTTP RBAC filter (the first, before the router) at `field` under it.
#[track_caller]
fn refused_http(rbac: HttpRbac, field: &str, reason: &str) {
    refused(
        http(vec![http_filter("rbac", &rbac), router()]),
        L,
        &format!("{HCM_AT}.http_filters[0].typed_config{field}"),
        reason,
    );
}

/// Refusal of a DENY filter whose one policy `p` has `permission` and `principal`.
#[track_caller]
fn refused_policy(permission: Permission, principal: Principal, field: &str, reason: &str) {
    let mut rules = single(Action::Deny, "p", vec![principal]);
    rules.policies.get_mut("p").unwrap().permissions = vec![permission];
    refused_http(deny(rules), &format!(".rules.policies[p]{field}"), reason);
}

#[test]
fn http_filter_refusals_name_the_field() {
    let rules = || single(Action::Deny, "p", vec![peer("a")]);
    refused_http(
        HttpRbac {
            matcher: Some(Default::default()),
            ..deny(rules())
        },
        ".matcher",
        "not supported",
    );
    refused_http(
        HttpRbac {
            shadow_matcher: Some(Default::default()),
            ..deny(rules())
        },
        ".shadow_matcher",
        "not supported",
    );
    refused_http(
        HttpRbac {
            track_per_rule_stats: true,
            ..deny(rules())
        },
        ".track_per_rule_stats",
        "not supported",
    );
    refused_http(
        deny(Rules {
            action: Action::Log as i32,
            ..rules()
        }),
        ".rules.action",
        "'LOG' is not supported by minimal-proxy; supported: ALLOW, DENY",
    );
    refused_http(
        HttpRbac {
            shadow_rules: Some(Rules {
                audit_logging_options: Some(AuditLoggingOptions::default()),
                ..rules()
            }),
            ..HttpRbac::default()
        },
        ".shadow_rules.audit_logging_options",
        "not supported",
    );
    let mut cel = rules();
    cel.policies.get_mut("p").unwrap().condition = Some(Expr::default());
    refused_http(deny(cel), ".rules.policies[p].condition", "not supported");
    let mut empty = rules();
    empty.policies.get_mut("p").unwrap().principals.clear();
    refused_http(
        deny(empty),
        ".rules.policies[p].principals",
        "at least one principal",
    );
    // The router must come last, after the RBAC filters.
    refused(
        http(vec![router(), http_filter("rbac", &deny(rules()))]),
        L,
        &format!("{HCM_AT}.http_filters[1]"),
        "nothing may follow the router filter",
    );
    refused(
        http(vec![http_filter("rbac", &deny(rules()))]),
        L,
        &format!("{HCM_AT}.http_filters"),
        "must hold the router filter",
    );
}

#[test]
fn permission_and_principal_refusals_name_the_field() {
    let ok = || peer("a");
    let rule = |r: permission::Rule| Permission { rule: Some(r) };
    for (permission, field) in [
        (
            rule(permission::Rule::DestinationPort(80)),
            "destination_port",
        ),
        (
            rule(permission::Rule::DestinationIp(CidrRange::default())),
            "destination_ip",
        ),
        (
            rule(permission::Rule::RequestedServerName(
                StringMatcher::default(),
            )),
            "requested_server_name",
        ),
        (
            rule(permission::Rule::Metadata(Default::default())),
            "metadata",
        ),
        (
            rule(permission::Rule::Matcher(Default::default())),
            "matcher",
        ),
        (
            rule(permission::Rule::OrRules(permission::Set {
                rules: vec![rule(permission::Rule::UriTemplate(Default::default()))],
            })),
            "or_rules.rules[0].uri_template",
        ),
    ] {
        refused_policy(
            permission,
            ok(),
            &format!(".permissions[0].{field}"),
            "not supported",
        );
    }
    for (principal, field) in [
        (id(Identifier::RemoteIp(CidrRange::default())), "remote_ip"),
        (
            id(Identifier::DirectRemoteIp(CidrRange::default())),
            "direct_remote_ip",
        ),
        (id(Identifier::SourceIp(CidrRange::default())), "source_ip"),
        (
            id(Identifier::FilterState(Default::default())),
            "filter_state",
        ),
        (
            id(Identifier::AndIds(principal::Set {
                ids: vec![ok(), id(Identifier::Metadata(Default::default()))],
            })),
            "and_ids.ids[1].metadata",
        ),
        (
            id(Identifier::Authenticated(Authenticated {
                principal_name: Some(StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Custom(Default::default())),
                    ..StringMatcher::default()
                }),
            })),
            "authenticated.principal_name.custom",
        ),
    ] {
        refused_policy(
            any_request(),
            principal,
            &format!(".principals[0].{field}"),
            "not supported",
        );
    }
    refused_policy(
        any_request(),
        id(Identifier::Any(false)),
        ".principals[0].any",
        "must be true",
    );
    refused_policy(
        any_request(),
        id(Identifier::OrIds(principal::Set { ids: vec![] })),
        ".principals[0].or_ids.ids",
        "at least one principal",
    );
    refused_policy(
        Permission::default(),
        ok(),
        ".permissions[0].rule",
        "is required",
    );
}

#[test]
fn network_filter_refusals_name_the_field() {
    let base = || NetRbac {
        rules: Some(single(Action::Allow, "allow", vec![peer("api")])),
        stat_prefix: "inbound|db.default-deny.".into(),
        ..NetRbac::default()
    };
    let at = "filter_chains[0].filters[0].typed_config";
    for (rbac, field, reason) in [
        (
            NetRbac {
                enforcement_type: EnforcementType::Continuous as i32,
                ..base()
            },
            "enforcement_type",
            "'CONTINUOUS' is not supported",
        ),
        (
            NetRbac {
                delay_deny: Some(ProtoDuration {
                    seconds: 1,
                    nanos: 0,
                }),
                ..base()
            },
            "delay_deny",
            "not supported",
        ),
        (
            NetRbac {
                stat_prefix: String::new(),
                ..base()
            },
            "stat_prefix",
            "is required",
        ),
        (
            NetRbac {
                matcher: Some(Default::default()),
                ..base()
            },
            "matcher",
            "not supported",
        ),
    ] {
        refused(
            listener_from_proto(&tcp_chain(vec![rbac])),
            L,
            &format!("{at}.{field}"),
            reason,
        );
    }
    // Before an HTTP connection manager: the HTTP filter is the way.
    let mut l = listener_with(any(&hcm()));
    l.filter_chains[0].filters.insert(
        0,
        Filter {
            name: "rbac".into(),
            config_type: Some(filter::ConfigType::TypedConfig(any(&base()))),
        },
    );
    refused(
        listener_from_proto(&l),
        L,
        "filter_chains[0].filters[0]",
        "before a TCP proxy only",
    );
    // Anything else before the proxy is still refused as before.
    let mut l = tcp_chain(vec![]);
    let again = l.filter_chains[0].filters[0].clone();
    l.filter_chains[0].filters.insert(0, again);
    refused(
        listener_from_proto(&l),
        L,
        "filter_chains[0].filters",
        "only one network filter",
    );
}
