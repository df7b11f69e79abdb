//! `route_configuration_from_proto`: virtual hosts, domains, matches, and refusals at the
//! configuration, virtual-host and match level.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use envoy_types::pb::envoy::{
    config::{
        core::v3::{HeaderValue, HeaderValueOption},
        route::v3::{
            CorsPolicy, HeaderMatcher, QueryParameterMatcher, RedirectAction, Route as EnvoyRoute,
            RouteAction as EnvoyAction, RouteConfiguration, RouteMatch as EnvoyMatch,
            VirtualHost as EnvoyVhost, header_matcher::HeaderMatchSpecifier, route::Action,
            route_action::ClusterSpecifier, route_match::PathSpecifier,
            virtual_host::TlsRequirementType,
        },
    },
    r#type::{
        matcher::v3::{RegexMatcher, StringMatcher, string_matcher::MatchPattern},
        v3::Int64Range,
    },
};

use super::{boolv, refused};
use crate::config::{
    HeaderMatch, HeaderMatchKind, PathMatch, RouteConfig, route_configuration_from_proto,
};

const RC: &str = "route configuration 'ingress'";

pub(super) fn to(cluster: &str) -> Option<Action> {
    Some(Action::Route(EnvoyAction {
        cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
        ..EnvoyAction::default()
    }))
}

pub(super) fn prefix(p: &str) -> Option<EnvoyMatch> {
    Some(EnvoyMatch {
        path_specifier: Some(PathSpecifier::Prefix(p.into())),
        ..EnvoyMatch::default()
    })
}

pub(super) fn route(m: Option<EnvoyMatch>, action: Option<Action>) -> EnvoyRoute {
    EnvoyRoute {
        r#match: m,
        action,
        ..EnvoyRoute::default()
    }
}

pub(super) fn config(routes: Vec<EnvoyRoute>) -> RouteConfiguration {
    RouteConfiguration {
        name: "ingress".into(),
        virtual_hosts: vec![EnvoyVhost {
            name: "web".into(),
            domains: vec!["Web.Example.com".into(), "*".into()],
            routes,
            ..EnvoyVhost::default()
        }],
        ..RouteConfiguration::default()
    }
}

pub(super) fn convert(routes: Vec<EnvoyRoute>) -> Result<RouteConfig, crate::config::Rejection> {
    route_configuration_from_proto(&config(routes))
}

fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.into(),
        engine_type: None,
    }
}

fn header(name: &str, spec: HeaderMatchSpecifier) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(spec),
        ..HeaderMatcher::default()
    }
}

fn string(pattern: MatchPattern, ignore_case: bool) -> HeaderMatchSpecifier {
    HeaderMatchSpecifier::StringMatch(StringMatcher {
        ignore_case,
        match_pattern: Some(pattern),
    })
}

#[test]
fn virtual_hosts_domains_and_paths() {
    let rc = convert(vec![
        route(prefix("/api/"), to("api")),
        route(
            Some(EnvoyMatch {
                path_specifier: Some(PathSpecifier::Path("/exact".into())),
                case_sensitive: boolv(false),
                ..EnvoyMatch::default()
            }),
            to("web"),
        ),
        route(
            Some(EnvoyMatch {
                path_specifier: Some(PathSpecifier::SafeRegex(regex("/v[0-9]+/.*"))),
                ..EnvoyMatch::default()
            }),
            to("web"),
        ),
    ])
    .unwrap();
    assert_eq!(rc.name, "ingress");
    let vhost = &rc.virtual_hosts[0];
    assert_eq!(vhost.name, "web");
    assert_eq!(
        vhost.domains,
        ["web.example.com", "*"],
        "lower-cased as Envoy does"
    );
    let m = |i: usize| &vhost.routes[i].matcher;
    assert_eq!(m(0).path, PathMatch::Prefix("/api/".into()));
    assert!(m(0).case_sensitive, "Envoy's default");
    assert_eq!(m(1).path, PathMatch::Exact("/exact".into()));
    assert!(!m(1).case_sensitive);
    let PathMatch::Regex(r) = &m(2).path else {
        panic!("{:?}", m(2).path)
    };
    assert_eq!(r.as_str(), "/v[0-9]+/.*");
}

#[test]
fn header_matchers() {
    let m = EnvoyMatch {
        path_specifier: Some(PathSpecifier::Prefix("/".into())),
        headers: vec![
            header("X-Canary", string(MatchPattern::Exact("1".into()), false)),
            header(
                "x-trace",
                string(MatchPattern::SafeRegex(regex("[0-9a-f]+")), false),
            ),
            header("x-debug", HeaderMatchSpecifier::PresentMatch(true)),
            header(":method", string(MatchPattern::Exact("GET".into()), false)),
            header("x-p", string(MatchPattern::Prefix("ab".into()), false)),
            header("x-s", string(MatchPattern::Suffix("yz".into()), false)),
            header("x-c", string(MatchPattern::Contains("mm".into()), false)),
            HeaderMatcher {
                invert_match: true,
                ..header("x-old", HeaderMatchSpecifier::ExactMatch("1".into()))
            },
            HeaderMatcher {
                name: "x-any".into(),
                ..HeaderMatcher::default()
            },
        ],
        ..EnvoyMatch::default()
    };
    let rc = convert(vec![route(Some(m), to("web"))]).unwrap();
    let headers = &rc.virtual_hosts[0].routes[0].matcher.headers;
    let h = |name: &str, kind, invert| HeaderMatch {
        name: name.into(),
        kind,
        invert,
    };
    let re = regex::Regex::new("[0-9a-f]+").unwrap();
    assert_eq!(
        headers,
        &vec![
            h("x-canary", HeaderMatchKind::Exact("1".into()), false),
            h("x-trace", HeaderMatchKind::Regex(re), false),
            h("x-debug", HeaderMatchKind::Present(true), false),
            h(":method", HeaderMatchKind::Exact("GET".into()), false),
            h("x-p", HeaderMatchKind::Prefix("ab".into()), false),
            h("x-s", HeaderMatchKind::Suffix("yz".into()), false),
            h("x-c", HeaderMatchKind::Contains("mm".into()), false),
            h("x-old", HeaderMatchKind::Exact("1".into()), true),
            h("x-any", HeaderMatchKind::Present(true), false),
        ]
    );
}

#[test]
fn ignore_case_string_matches_become_case_insensitive_regexes() {
    let cases = [
        (
            MatchPattern::Exact("Ab.c".into()),
            ["ab.C", "AB.C"],
            ["abxc", "ab.cd"],
        ),
        (
            MatchPattern::Prefix("Ab".into()),
            ["aBc", "AB"],
            ["xab", "a"],
        ),
        (
            MatchPattern::Suffix("Ab".into()),
            ["xaB", "ab"],
            ["abx", "b"],
        ),
        (
            MatchPattern::Contains("Ab".into()),
            ["xaBx", "AB"],
            ["a-b", "ba"],
        ),
    ];
    for (pattern, yes, no) in cases {
        let m = EnvoyMatch {
            path_specifier: Some(PathSpecifier::Prefix("/".into())),
            headers: vec![header("x", string(pattern, true))],
            ..EnvoyMatch::default()
        };
        let rc = convert(vec![route(Some(m), to("web"))]).unwrap();
        let HeaderMatchKind::Regex(r) = &rc.virtual_hosts[0].routes[0].matcher.headers[0].kind
        else {
            panic!()
        };
        yes.iter()
            .for_each(|v| assert!(r.is_match(v), "{r} should match {v}"));
        no.iter()
            .for_each(|v| assert!(!r.is_match(v), "{r} should not match {v}"));
    }
}

fn matching(m: EnvoyMatch) -> Result<RouteConfig, crate::config::Rejection> {
    convert(vec![route(Some(m), to("web"))])
}

#[test]
fn match_refusals_name_the_field() {
    let at = "virtual_hosts[0].routes[0].match";
    let base = || EnvoyMatch {
        path_specifier: Some(PathSpecifier::Prefix("/".into())),
        ..EnvoyMatch::default()
    };
    refused(
        matching(EnvoyMatch {
            query_parameters: vec![QueryParameterMatcher::default()],
            ..base()
        }),
        RC,
        &format!("{at}.query_parameters"),
        "is not supported by minimal-proxy",
    );
    refused(
        matching(EnvoyMatch {
            path_specifier: Some(PathSpecifier::SafeRegex(regex("(?<=a)b"))),
            ..base()
        }),
        RC,
        &format!("{at}.safe_regex.regex"),
        "'(?<=a)b' is not supported by minimal-proxy's regex engine",
    );
    refused(
        matching(EnvoyMatch {
            path_specifier: Some(PathSpecifier::PathSeparatedPrefix("/a".into())),
            ..base()
        }),
        RC,
        &format!("{at}.path_separated_prefix"),
        "not supported",
    );
    refused(
        matching(EnvoyMatch {
            path_specifier: None,
            ..base()
        }),
        RC,
        &format!("{at}.prefix"),
        "is required",
    );
    refused(
        matching(EnvoyMatch {
            headers: vec![
                header("x-ok", HeaderMatchSpecifier::PresentMatch(true)),
                header(
                    "x-range",
                    HeaderMatchSpecifier::RangeMatch(Int64Range::default()),
                ),
            ],
            ..base()
        }),
        RC,
        &format!("{at}.headers[1].range_match"),
        "not supported",
    );
    refused(
        matching(EnvoyMatch {
            headers: vec![HeaderMatcher {
                treat_missing_header_as_empty: true,
                ..header("x", HeaderMatchSpecifier::PresentMatch(true))
            }],
            ..base()
        }),
        RC,
        &format!("{at}.headers[0].treat_missing_header_as_empty"),
        "not supported",
    );
}

#[test]
fn config_and_virtual_host_refusals_name_the_field() {
    let add = vec![HeaderValueOption {
        header: Some(HeaderValue {
            key: "x-a".into(),
            value: "1".into(),
            ..Default::default()
        }),
        ..Default::default()
    }];
    let mut rc = config(vec![]);
    rc.request_headers_to_add = add.clone();
    refused(
        route_configuration_from_proto(&rc),
        RC,
        "request_headers_to_add",
        "not supported",
    );

    let mut rc = config(vec![]);
    rc.virtual_hosts[0].response_headers_to_add = add;
    refused(
        route_configuration_from_proto(&rc),
        RC,
        "virtual_hosts[0].response_headers_to_add",
        "not supported",
    );

    let mut rc = config(vec![]);
    rc.virtual_hosts[0].cors = Some(CorsPolicy::default());
    refused(
        route_configuration_from_proto(&rc),
        RC,
        "virtual_hosts[0].cors",
        "not supported",
    );

    let mut rc = config(vec![]);
    rc.virtual_hosts[0].require_tls = TlsRequirementType::All as i32;
    refused(
        route_configuration_from_proto(&rc),
        RC,
        "virtual_hosts[0].require_tls",
        "'ALL' is not supported by minimal-proxy; supported: NONE",
    );

    let mut rc = config(vec![]);
    rc.validate_clusters = boolv(true);
    refused(
        route_configuration_from_proto(&rc),
        RC,
        "validate_clusters",
        "supported: false",
    );

    let mut rc = config(vec![]);
    let mut second = rc.virtual_hosts[0].clone();
    second.name = "api".into();
    second.domains = vec!["api.example.com".into(), "WEB.example.com".into()];
    rc.virtual_hosts.push(second);
    refused(
        route_configuration_from_proto(&rc),
        RC,
        "virtual_hosts[1].domains[1]",
        "'web.example.com' is already a domain of virtual host 'web'",
    );

    refused(
        convert(vec![route(None, to("web"))]),
        RC,
        "virtual_hosts[0].routes[0].match",
        "is required",
    );
    refused(
        convert(vec![route(
            prefix("/"),
            Some(Action::Redirect(RedirectAction::default())),
        )]),
        RC,
        "virtual_hosts[0].routes[0].redirect",
        "is not supported by minimal-proxy",
    );
}

#[test]
fn a_route_keeps_its_name_for_route_name() {
    let named = EnvoyRoute {
        name: "api-v1".into(),
        ..route(prefix("/api/"), to("api"))
    };
    let rc = convert(vec![named, route(prefix("/"), to("web"))]).unwrap();
    let routes = &rc.virtual_hosts[0].routes;
    assert_eq!(routes[0].name, "api-v1");
    assert_eq!(routes[1].name, "", "unnamed");
}
