//! Route table matching, table-driven: virtual hosts in Envoy's order, then routes in order.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};

use super::*;
use crate::config::{
    Forward, HeaderMatch, HeaderMatchKind, PathMatch, Route, RouteAction, RouteConfig, RouteMatch,
    VirtualHost, WeightedCluster,
};

fn direct(status: u16) -> RouteAction {
    RouteAction::Direct { status, body: None }
}

fn route(path: PathMatch, headers: Vec<HeaderMatch>, status: u16) -> Route {
    Route {
        stat_prefix: String::new(),
        name: String::new(),
        matcher: RouteMatch {
            path,
            headers,
            case_sensitive: true,
        },
        action: direct(status),
        request_headers: Default::default(),
        response_headers: Default::default(),
    }
}

fn vhost(name: &str, domains: &[&str]) -> VirtualHost {
    VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        routes: vec![route(PathMatch::Prefix("/".into()), vec![], 200)],
    }
}

fn table(vhosts: Vec<VirtualHost>) -> RouteTable {
    RouteTable::new(
        &RouteConfig {
            name: "r".into(),
            virtual_hosts: vhosts,
        },
        &crate::stats::Registry::default(),
    )
}

#[test]
fn virtual_hosts_are_searched_in_envoys_order() {
    let t = table(vec![
        vhost("any", &["*"]),
        vhost("prefix-short", &["api*"]),
        vhost("prefix-long", &["api.ex*"]),
        vhost("suffix-short", &["*.com"]),
        vhost("suffix-long", &["*.example.com"]),
        vhost("exact", &["www.example.com", "web:8080"]),
    ]);
    let cases = [
        ("www.example.com", "exact"),
        ("WWW.Example.COM", "exact"),
        ("web:8080", "exact"),
        // The port is part of the authority: no exact match, a wildcard takes it.
        ("www.example.com:10000", "any"),
        ("foo.example.com", "suffix-long"),
        (".example.com", "suffix-short"),
        ("example.com", "suffix-short"),
        ("foo.com", "suffix-short"),
        ("api.example.org", "prefix-long"),
        ("api.other", "prefix-short"),
        // A wildcard never matches the empty string.
        ("api", "any"),
        (".com", "any"),
        ("other", "any"),
    ];
    for (authority, want) in cases {
        let got = t.virtual_host(authority).map(|v| v.name.as_str());
        assert_eq!(got, Some(want), "authority {authority:?}");
    }
}

#[test]
fn without_a_catch_all_an_unknown_host_finds_nothing() {
    let t = table(vec![vhost("exact", &["a.example"])]);
    assert!(t.virtual_host("b.example").is_none());
    assert!(t.virtual_host("a.example").is_some());
}

fn header(name: &str, kind: HeaderMatchKind, invert: bool) -> HeaderMatch {
    HeaderMatch {
        name: name.into(),
        kind,
        invert,
    }
}

fn regex(r: &str) -> regex::Regex {
    regex::Regex::new(r).unwrap()
}

struct Req {
    method: Method,
    path: &'static str,
    headers: HeaderMap,
}

fn req(method: Method, path: &'static str, headers: &[(&'static str, &'static str)]) -> Req {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(*k, HeaderValue::from_static(v));
    }
    Req {
        method,
        path,
        headers: map,
    }
}

/// The status of the direct response of the matched route, `None` for no route.
fn matched(t: &RouteTable, r: &Req) -> Option<u16> {
    let view = RequestView {
        authority: "host",
        method: &r.method,
        path_and_query: r.path,
        scheme: "http",
        headers: &r.headers,
    };
    let (_, route) = t.route(&view)?;
    match &route.action {
        Action::Direct { status, .. } => Some(status.as_u16()),
        Action::Forward(_) => None,
    }
}

#[test]
fn routes_match_in_order_on_path_and_headers() {
    use HeaderMatchKind::*;
    let routes = vec![
        route(PathMatch::Exact("/exact".into()), vec![], 201),
        route(PathMatch::Regex(regex("/re/[0-9]+")), vec![], 202),
        route(
            PathMatch::Prefix("/h".into()),
            vec![header("x-exact", Exact("v".into()), false)],
            203,
        ),
        route(
            PathMatch::Prefix("/h".into()),
            vec![header("x-re", Regex(regex("a+")), false)],
            204,
        ),
        route(
            PathMatch::Prefix("/h".into()),
            vec![
                header("x-pre", Prefix("ab".into()), false),
                header("x-suf", Suffix("yz".into()), false),
            ],
            205,
        ),
        route(
            PathMatch::Prefix("/h".into()),
            vec![header("x-con", Contains("mid".into()), false)],
            206,
        ),
        route(
            PathMatch::Prefix("/h".into()),
            vec![header("x-present", Present(true), false)],
            207,
        ),
        route(
            PathMatch::Prefix("/h".into()),
            vec![header("x-not", Exact("v".into()), true)],
            208,
        ),
        route(
            PathMatch::Prefix("/m".into()),
            vec![header(":method", Exact("POST".into()), false)],
            209,
        ),
        route(
            PathMatch::Prefix("/m".into()),
            vec![header(":path", Regex(regex("/m/.*q=1")), false)],
            210,
        ),
        route(
            PathMatch::Prefix("/m".into()),
            vec![header("x-absent", Present(false), false)],
            211,
        ),
        route(PathMatch::Prefix("/".into()), vec![], 299),
    ];
    let t = table(vec![VirtualHost {
        name: "v".into(),
        domains: vec!["*".into()],
        routes,
    }]);
    let get = Method::GET;
    let cases: Vec<(Req, u16)> = vec![
        (req(get.clone(), "/exact", &[]), 201),
        (req(get.clone(), "/exact?q=1", &[]), 201),
        (req(get.clone(), "/exact/more", &[]), 299),
        (req(get.clone(), "/Exact", &[]), 299),
        (req(get.clone(), "/re/123", &[]), 202),
        (req(get.clone(), "/re/123?x=y", &[]), 202),
        // Anchored: a partial match does not count.
        (req(get.clone(), "/re/123x", &[]), 299),
        (req(get.clone(), "/x/re/1", &[]), 299),
        (req(get.clone(), "/h", &[("x-exact", "v")]), 203),
        (req(get.clone(), "/h", &[("x-exact", "vv")]), 299),
        (req(get.clone(), "/h", &[("x-re", "aaa")]), 204),
        (req(get.clone(), "/h", &[("x-re", "aab")]), 299),
        (
            req(get.clone(), "/h", &[("x-pre", "abc"), ("x-suf", "xyz")]),
            205,
        ),
        (req(get.clone(), "/h", &[("x-pre", "abc")]), 299),
        (req(get.clone(), "/h", &[("x-con", "amidst")]), 206),
        (req(get.clone(), "/h", &[("x-present", "")]), 207),
        (req(get.clone(), "/h", &[("x-not", "w")]), 208),
        // An inverted exact match does not match an absent header (Envoy's rule).
        (req(get.clone(), "/h", &[("x-not", "v")]), 299),
        (req(get.clone(), "/h", &[]), 299),
        // Several values of one header are matched joined with ','.
        (
            req(get.clone(), "/h", &[("x-exact", "v"), ("x-exact", "w")]),
            299,
        ),
        (
            req(get.clone(), "/h", &[("x-con", "a"), ("x-con", "mid")]),
            206,
        ),
        (req(Method::POST, "/m", &[]), 209),
        (req(get.clone(), "/m/a?q=1", &[("x-absent", "1")]), 210),
        (req(get.clone(), "/m", &[]), 211),
        (req(get.clone(), "/m", &[("x-absent", "1")]), 299),
    ];
    for (r, want) in &cases {
        assert_eq!(
            matched(&t, r),
            Some(*want),
            "{} {} {:?}",
            r.method,
            r.path,
            r.headers
        );
    }
}

#[test]
fn case_insensitive_paths_ignore_ascii_case() {
    let mut prefix = route(PathMatch::Prefix("/Api".into()), vec![], 201);
    prefix.matcher.case_sensitive = false;
    let mut exact = route(PathMatch::Exact("/Login".into()), vec![], 202);
    exact.matcher.case_sensitive = false;
    let t = table(vec![VirtualHost {
        name: "v".into(),
        domains: vec!["*".into()],
        routes: vec![prefix, exact],
    }]);
    assert_eq!(matched(&t, &req(Method::GET, "/aPI/x", &[])), Some(201));
    assert_eq!(
        matched(&t, &req(Method::GET, "/LOGIN?next=/", &[])),
        Some(202)
    );
    assert_eq!(matched(&t, &req(Method::GET, "/Ap", &[])), None);
    // Multi-byte characters at the prefix boundary do not panic.
    assert_eq!(matched(&t, &req(Method::GET, "/é", &[])), None);
}

#[test]
fn weighted_targets_split_by_weight() {
    let wc = |name: &str, weight| WeightedCluster {
        name: name.into(),
        weight,
        metadata_match: Default::default(),
        request_headers: Default::default(),
        response_headers: Default::default(),
    };
    let targets = Targets::new(&crate::config::ClusterTarget::Weighted(vec![
        wc("a", 80),
        wc("b", 0),
        wc("c", 20),
    ]));
    let pick = |draw| targets.pick(draw).cluster.as_str();
    assert_eq!(pick(0), "a");
    assert_eq!(pick(79), "a");
    assert_eq!(pick(80), "c");
    assert_eq!(pick(99), "c");
    assert_eq!(pick(100), "a");
    let counts = (0..1000u64).filter(|d| pick(*d) == "a").count();
    assert_eq!(counts, 800);
}

#[test]
fn prefix_rewrite_remembers_the_matched_prefix_length() {
    let mut r = route(PathMatch::Prefix("/api/".into()), vec![], 200);
    r.action = RouteAction::Forward(Forward {
        target: crate::config::ClusterTarget::Cluster("web".into()),
        prefix_rewrite: Some("/".into()),
        timeout: None,
        retry: None,
        hash_policy: vec![],
    });
    let compiled = CompiledRoute::new(&r, None);
    let Action::Forward(f) = &compiled.action else {
        panic!("forward expected")
    };
    assert_eq!(f.prefix_rewrite, Some((5, "/".to_string())));
    let _ = Arc::new(compiled);
}
