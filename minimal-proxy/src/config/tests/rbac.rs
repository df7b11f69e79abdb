//! RBAC filters: the HTTP and network filters xds-server generates for traffic permissions
//! (the shapes of `xds-server/src/translate/testdata/permissions*.json`) convert, and every
//! field the proxy does not implement is refused at its exact path.

#![allow(deprecated)] // `source_ip` is set to be refused.

use std::collections::HashMap;

use envoy_types::pb::{
    envoy::{
        config::{
            core::v3::CidrRange,
            listener::v3::{Filter, Listener, filter},
            rbac::v3::{
                Permission, Policy, Principal, Rbac as Rules, permission,
                principal::{self, Authenticated, Identifier},
                rbac::{Action, AuditLoggingOptions},
            },
            route::v3::{HeaderMatcher, header_matcher::HeaderMatchSpecifier},
        },
        extensions::filters::{
            http::rbac::v3::Rbac as HttpRbac,
            network::{
                http_connection_manager::v3::{
                    HttpConnectionManager as EnvoyHcm, HttpFilter, http_filter,
                },
                rbac::v3::{Rbac as NetRbac, rbac::EnforcementType},
                tcp_proxy::v3::{TcpProxy as EnvoyTcpProxy, tcp_proxy::ClusterSpecifier},
            },
        },
        r#type::matcher::v3::{PathMatcher, StringMatcher, path_matcher, string_matcher},
    },
    google::{api::expr::v1alpha1::Expr, protobuf::Duration as ProtoDuration},
};

use super::{
    any,
    listener::{L, hcm, listener_with, router},
    refused,
};
use crate::config::{
    HeaderMatch, HeaderMatchKind, ListenerConfig, ListenerFilter, NetworkRbac, RbacAction,
    RbacFilter, RbacMatcher, RbacPolicy, RbacRules, Rejection, listener_from_proto,
};

const HCM_AT: &str = "filter_chains[0].filters[0].typed_config";

fn exact(s: &str) -> Option<StringMatcher> {
    Some(StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Exact(s.into())),
        ..StringMatcher::default()
    })
}

fn id(identifier: Identifier) -> Principal {
    Principal {
        identifier: Some(identifier),
    }
}

fn peer(service: &str) -> Principal {
    id(Identifier::Authenticated(Authenticated {
        principal_name: exact(&format!("spiffe://mesh.local/service/{service}")),
    }))
}

fn any_request() -> Permission {
    Permission {
        rule: Some(permission::Rule::Any(true)),
    }
}

/// Rules with one policy `name` of any request from `principals`.
fn single(action: Action, name: &str, principals: Vec<Principal>) -> Rules {
    Rules {
        action: action as i32,
        policies: HashMap::from([(
            name.to_string(),
            Policy {
                permissions: vec![any_request()],
                principals,
                ..Policy::default()
            },
        )]),
        ..Rules::default()
    }
}

fn http_filter(name: &str, rbac: &HttpRbac) -> HttpFilter {
    HttpFilter {
        name: name.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(any(rbac))),
        ..HttpFilter::default()
    }
}

/// The network filter of the listener's (first) filter chain.
fn proxied(l: ListenerConfig) -> ListenerFilter {
    l.chains.into_iter().next().expect("a filter chain").filter
}

fn http(filters: Vec<HttpFilter>) -> Result<ListenerConfig, Rejection> {
    listener_from_proto(&listener_with(any(&EnvoyHcm {
        http_filters: filters,
        ..hcm()
    })))
}

fn http_rbac(filters: Vec<HttpFilter>) -> Vec<RbacFilter> {
    match proxied(http(filters).unwrap()) {
        ListenerFilter::Http(h) => h.rbac,
        other => panic!("{other:?}"),
    }
}

fn deny(rules: Rules) -> HttpRbac {
    HttpRbac {
        rules: Some(rules),
        rules_stat_prefix: "p".into(),
        ..HttpRbac::default()
    }
}

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

fn spiffe(service: &str) -> RbacMatcher {
    RbacMatcher::Authenticated(Some(HeaderMatchKind::Exact(format!(
        "spiffe://mesh.local/service/{service}"
    ))))
}

#[test]
fn xds_server_http_permissions_convert() {
    let narrowed = id(Identifier::AndIds(principal::Set {
        ids: vec![
            peer("api"),
            id(Identifier::UrlPath(PathMatcher {
                rule: Some(path_matcher::Rule::Path(StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Prefix("/admin".into())),
                    ..StringMatcher::default()
                })),
            })),
            id(Identifier::Header(HeaderMatcher {
                name: ":method".into(),
                header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(
                    exact("POST").unwrap(),
                )),
                ..HeaderMatcher::default()
            })),
        ],
    }));
    let shadow = HttpRbac {
        shadow_rules: Some(single(
            Action::Deny,
            "try-no-deletes",
            vec![id(Identifier::Authenticated(Authenticated::default()))],
        )),
        shadow_rules_stat_prefix: "try-no-deletes".into(),
        ..HttpRbac::default()
    };
    let allow = HttpRbac {
        rules: Some(single(
            Action::Allow,
            "allow",
            vec![id(Identifier::OrIds(principal::Set {
                ids: vec![peer("api"), peer("db")],
            }))],
        )),
        rules_stat_prefix: "default-deny".into(),
        ..HttpRbac::default()
    };
    let filters = http_rbac(vec![
        http_filter(
            "rbac|deny|no-admin-writes",
            &HttpRbac {
                rules_stat_prefix: "no-admin-writes".into(),
                ..deny(single(Action::Deny, "no-admin-writes", vec![narrowed]))
            },
        ),
        http_filter("rbac|shadow|try-no-deletes", &shadow),
        http_filter("rbac|default-deny", &allow),
        router(),
    ]);
    let policy = |name: &str, principal: RbacMatcher| RbacPolicy {
        name: name.into(),
        permissions: vec![RbacMatcher::Any],
        principals: vec![principal],
    };
    let rules = |action, p| {
        Some(RbacRules {
            action,
            policies: vec![p],
        })
    };
    assert_eq!(
        filters,
        vec![
            RbacFilter {
                rules: rules(
                    RbacAction::Deny,
                    policy(
                        "no-admin-writes",
                        RbacMatcher::And(vec![
                            spiffe("api"),
                            RbacMatcher::UrlPath(HeaderMatchKind::Prefix("/admin".into())),
                            RbacMatcher::Header(HeaderMatch {
                                name: ":method".into(),
                                kind: HeaderMatchKind::Exact("POST".into()),
                                invert: false,
                            }),
                        ]),
                    ),
                ),
                shadow_rules: None,
                rules_stat_prefix: "no-admin-writes".into(),
                shadow_rules_stat_prefix: String::new(),
            },
            RbacFilter {
                rules: None,
                shadow_rules: rules(
                    RbacAction::Deny,
                    policy("try-no-deletes", RbacMatcher::Authenticated(None)),
                ),
                rules_stat_prefix: String::new(),
                shadow_rules_stat_prefix: "try-no-deletes".into(),
            },
            RbacFilter {
                rules: rules(
                    RbacAction::Allow,
                    policy("allow", RbacMatcher::Or(vec![spiffe("api"), spiffe("db")]),),
                ),
                shadow_rules: None,
                rules_stat_prefix: "default-deny".into(),
                shadow_rules_stat_prefix: String::new(),
            },
        ]
    );
    // An ALLOW filter without policies (no allow permission at all) denies everything.
    let nothing = HttpRbac {
        rules: Some(Rules::default()),
        ..HttpRbac::default()
    };
    let filters = http_rbac(vec![http_filter("rbac|default-deny", &nothing), router()]);
    assert_eq!(
        filters[0].rules,
        Some(RbacRules {
            action: RbacAction::Allow,
            policies: vec![]
        })
    );
}

#[test]
fn policies_are_kept_in_name_order_and_close_relatives_convert() {
    let mut rules = single(Action::Deny, "zz", vec![peer("a")]);
    rules.policies.insert(
        "aa".into(),
        Policy {
            permissions: vec![Permission {
                rule: Some(permission::Rule::OrRules(permission::Set {
                    rules: vec![
                        Permission {
                            rule: Some(permission::Rule::NotRule(Box::new(any_request()))),
                        },
                        Permission {
                            rule: Some(permission::Rule::AndRules(permission::Set {
                                rules: vec![any_request()],
                            })),
                        },
                    ],
                })),
            }],
            principals: vec![id(Identifier::NotId(Box::new(id(Identifier::Any(true)))))],
            ..Policy::default()
        },
    );
    let filters = http_rbac(vec![http_filter("r", &deny(rules)), router()]);
    let policies = &filters[0].rules.as_ref().unwrap().policies;
    assert_eq!(policies[0].name, "aa");
    assert_eq!(policies[1].name, "zz");
    assert_eq!(
        policies[0].permissions,
        vec![RbacMatcher::Or(vec![
            RbacMatcher::Not(Box::new(RbacMatcher::Any)),
            RbacMatcher::And(vec![RbacMatcher::Any]),
        ])]
    );
    assert_eq!(
        policies[0].principals,
        vec![RbacMatcher::Not(Box::new(RbacMatcher::Any))]
    );
}

/// A chain of `before` then a TCP proxy, as xds-server builds a TCP service's inbound chain.
fn tcp_chain(before: Vec<NetRbac>) -> Listener {
    let mut l = listener_with(any(&EnvoyTcpProxy {
        stat_prefix: "inbound|db".into(),
        cluster_specifier: Some(ClusterSpecifier::Cluster("inbound|db".into())),
        ..EnvoyTcpProxy::default()
    }));
    let filters = &mut l.filter_chains[0].filters;
    for (i, rbac) in before.iter().enumerate() {
        let f = Filter {
            name: "rbac|default-deny".into(),
            config_type: Some(filter::ConfigType::TypedConfig(any(rbac))),
        };
        filters.insert(i, f);
    }
    l
}

#[test]
fn xds_server_tcp_permissions_convert() {
    let default_deny = NetRbac {
        rules: Some(single(Action::Allow, "allow", vec![peer("api")])),
        stat_prefix: "inbound|db.default-deny.".into(),
        ..NetRbac::default()
    };
    let shadow = NetRbac {
        shadow_rules: Some(single(Action::Deny, "try", vec![peer("web")])),
        shadow_rules_stat_prefix: "try".into(),
        stat_prefix: "inbound|db.try.".into(),
        ..NetRbac::default()
    };
    let l = listener_from_proto(&tcp_chain(vec![shadow, default_deny])).unwrap();
    let ListenerFilter::Tcp(tcp) = &proxied(l) else {
        panic!("not a TCP proxy")
    };
    assert_eq!(tcp.cluster, "inbound|db");
    let policy = |name: &str, who| RbacPolicy {
        name: name.into(),
        permissions: vec![RbacMatcher::Any],
        principals: vec![spiffe(who)],
    };
    assert_eq!(
        tcp.rbac,
        vec![
            NetworkRbac {
                stat_prefix: "inbound|db.try.".into(),
                filter: RbacFilter {
                    rules: None,
                    shadow_rules: Some(RbacRules {
                        action: RbacAction::Deny,
                        policies: vec![policy("try", "web")],
                    }),
                    rules_stat_prefix: String::new(),
                    shadow_rules_stat_prefix: "try".into(),
                },
            },
            NetworkRbac {
                stat_prefix: "inbound|db.default-deny.".into(),
                filter: RbacFilter {
                    rules: Some(RbacRules {
                        action: RbacAction::Allow,
                        policies: vec![policy("allow", "api")],
                    }),
                    shadow_rules: None,
                    rules_stat_prefix: String::new(),
                    shadow_rules_stat_prefix: String::new(),
                },
            },
        ]
    );
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
