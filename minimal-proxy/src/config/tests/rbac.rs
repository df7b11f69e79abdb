//! RBAC filters: the HTTP and network filters xds-server generates for traffic permissions
//! (the shapes of `xds-server/src/translate/testdata/permissions*.json`) convert, with their
//! close relatives; the refusals are in `rbac_refusals.rs`.

use std::collections::HashMap;

use envoy_types::pb::envoy::{
    config::{
        listener::v3::{Filter, Listener, filter},
        rbac::v3::{
            Permission, Policy, Principal, Rbac as Rules, permission,
            principal::{self, Authenticated, Identifier},
            rbac::Action,
        },
        route::v3::{HeaderMatcher, header_matcher::HeaderMatchSpecifier},
    },
    extensions::filters::{
        http::rbac::v3::Rbac as HttpRbac,
        network::{
            http_connection_manager::v3::{
                HttpConnectionManager as EnvoyHcm, HttpFilter, http_filter,
            },
            rbac::v3::Rbac as NetRbac,
            tcp_proxy::v3::{TcpProxy as EnvoyTcpProxy, tcp_proxy::ClusterSpecifier},
        },
    },
    r#type::matcher::v3::{PathMatcher, StringMatcher, path_matcher, string_matcher},
};

use super::{
    any,
    listener::{hcm, listener_with, router},
};
use crate::config::{
    HeaderMatch, HeaderMatchKind, ListenerConfig, ListenerFilter, NetworkRbac, RbacAction,
    RbacFilter, RbacMatcher, RbacPolicy, RbacRules, Rejection, listener_from_proto,
};

pub(super) const HCM_AT: &str = "filter_chains[0].filters[0].typed_config";

pub(super) fn exact(s: &str) -> Option<StringMatcher> {
    Some(StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Exact(s.into())),
        ..StringMatcher::default()
    })
}

pub(super) fn id(identifier: Identifier) -> Principal {
    Principal {
        identifier: Some(identifier),
    }
}

pub(super) fn peer(service: &str) -> Principal {
    id(Identifier::Authenticated(Authenticated {
        principal_name: exact(&format!("spiffe://mesh.local/service/{service}")),
    }))
}

pub(super) fn any_request() -> Permission {
    Permission {
        rule: Some(permission::Rule::Any(true)),
    }
}

/// Rules with one policy `name` of any request from `principals`.
pub(super) fn single(action: Action, name: &str, principals: Vec<Principal>) -> Rules {
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

pub(super) fn http_filter(name: &str, rbac: &HttpRbac) -> HttpFilter {
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

pub(super) fn http(filters: Vec<HttpFilter>) -> Result<ListenerConfig, Rejection> {
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

pub(super) fn deny(rules: Rules) -> HttpRbac {
    HttpRbac {
        rules: Some(rules),
        rules_stat_prefix: "p".into(),
        ..HttpRbac::default()
    }
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
pub(super) fn tcp_chain(before: Vec<NetRbac>) -> Listener {
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
