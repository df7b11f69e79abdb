//! The engine and the filter chain against Envoy's semantics: each principal kind, and/or/not
//! nesting, ALLOW and DENY, deny-first chains, default-deny allow lists, shadow rules that
//! only count, paths without their query, and the counters' names.

mod serving;

use http::{HeaderMap, Method};

use super::{Engine, Input, RbacFilters};
use crate::{
    config::{
        HeaderMatch, HeaderMatchKind, NetworkRbac, RbacAction, RbacFilter, RbacMatcher, RbacPolicy,
        RbacRules,
    },
    http::route_table::RequestView,
    stats::Registry,
    tls::PeerCert,
};

use RbacMatcher::{And, Any, Authenticated, Not, Or};

fn spiffe(service: &str) -> String {
    format!("spiffe://mesh.local/service/{service}")
}

// `PeerCert` may grow fields the engine does not read.
#[allow(clippy::needless_update)]
fn cert(service: &str) -> PeerCert {
    PeerCert {
        uri_sans: vec![spiffe(service)],
        dns_sans: vec![format!("{service}.mesh.local")],
        subject: format!("CN={service},O=mesh"),
        ..PeerCert::default()
    }
}

fn exact(s: &str) -> HeaderMatchKind {
    HeaderMatchKind::Exact(s.to_string())
}

fn peer(service: &str) -> RbacMatcher {
    Authenticated(Some(exact(&spiffe(service))))
}

fn path_prefix(p: &str) -> RbacMatcher {
    RbacMatcher::UrlPath(HeaderMatchKind::Prefix(p.to_string()))
}

fn method(m: &str) -> RbacMatcher {
    RbacMatcher::Header(HeaderMatch {
        name: ":method".into(),
        kind: exact(m),
        invert: false,
    })
}

fn policy(name: &str, principals: Vec<RbacMatcher>) -> RbacPolicy {
    RbacPolicy {
        name: name.into(),
        permissions: vec![Any],
        principals,
    }
}

fn rules(action: RbacAction, policies: Vec<RbacPolicy>) -> RbacRules {
    RbacRules { action, policies }
}

/// A request `method path` (with its query, if any) and no other header.
struct Req {
    method: Method,
    path: &'static str,
    headers: HeaderMap,
}

impl Req {
    fn new(method: &str, path: &'static str) -> Req {
        Req {
            method: method.parse().unwrap(),
            path,
            headers: HeaderMap::new(),
        }
    }

    fn view(&self) -> RequestView<'_> {
        RequestView {
            authority: "web",
            method: &self.method,
            path_and_query: self.path,
            scheme: "http",
            headers: &self.headers,
        }
    }
}

/// `engine`'s verdict and reported policy for `req` from `from` (`None`: plaintext).
fn check(engine: &Engine, from: Option<&PeerCert>, req: &Req) -> (bool, Option<String>) {
    let view = req.view();
    let d = engine.check(&Input {
        peer_cert: from,
        request: Some(&view),
    });
    (d.allowed, d.policy.map(str::to_string))
}

#[test]
fn authenticated_matches_uri_then_dns_sans_then_subject_and_needs_a_certificate() {
    let get = Req::new("GET", "/");
    let api = cert("api");
    for name in [
        exact(&spiffe("api")),
        exact("api.mesh.local"),
        exact("CN=api,O=mesh"),
        HeaderMatchKind::Prefix("spiffe://mesh.local/service/ap".into()),
    ] {
        let deny = Engine::new(&rules(
            RbacAction::Deny,
            vec![policy("p", vec![Authenticated(Some(name.clone()))])],
        ));
        assert_eq!(
            check(&deny, Some(&api), &get),
            (false, Some("p".into())),
            "{name:?}"
        );
        assert_eq!(check(&deny, Some(&cert("db")), &get), (true, None));
        assert_eq!(check(&deny, None, &get), (true, None), "plaintext");
    }
    // No name: any verified certificate, never plaintext.
    let any_peer = Engine::new(&rules(
        RbacAction::Allow,
        vec![policy("p", vec![Authenticated(None)])],
    ));
    assert!(check(&any_peer, Some(&api), &get).0);
    assert!(check(&any_peer, Some(&PeerCert::default()), &get).0);
    assert!(!check(&any_peer, None, &get).0);
}

#[test]
fn and_or_not_nest_and_a_policy_needs_a_permission_and_a_principal() {
    // api on /admin with POST (the shape of xds-server's narrowed permission).
    let narrowed = And(vec![
        Or(vec![peer("api"), peer("web")]),
        Or(vec![path_prefix("/admin"), path_prefix("/ops")]),
        method("POST"),
    ]);
    let deny = Engine::new(&rules(
        RbacAction::Deny,
        vec![policy("no-admin-writes", vec![narrowed])],
    ));
    let api = cert("api");
    assert!(!check(&deny, Some(&api), &Req::new("POST", "/admin/x")).0);
    assert!(!check(&deny, Some(&cert("web")), &Req::new("POST", "/ops")).0);
    assert!(check(&deny, Some(&api), &Req::new("GET", "/admin/x")).0);
    assert!(check(&deny, Some(&api), &Req::new("POST", "/public")).0);
    assert!(check(&deny, Some(&cert("db")), &Req::new("POST", "/admin")).0);
    // Plaintext never matches a principal that names a peer.
    assert!(check(&deny, None, &Req::new("POST", "/admin")).0);

    let not_api = Engine::new(&rules(
        RbacAction::Allow,
        vec![policy("not-api", vec![Not(Box::new(peer("api")))])],
    ));
    assert!(!check(&not_api, Some(&api), &Req::new("GET", "/")).0);
    assert!(check(&not_api, Some(&cert("db")), &Req::new("GET", "/")).0);
    assert!(check(&not_api, None, &Req::new("GET", "/")).0);

    // The permission side matters too: this policy is about GETs only.
    let gets = Engine::new(&rules(
        RbacAction::Deny,
        vec![RbacPolicy {
            name: "gets".into(),
            permissions: vec![method("GET")],
            principals: vec![Any],
        }],
    ));
    assert!(!check(&gets, None, &Req::new("GET", "/")).0);
    assert!(check(&gets, None, &Req::new("PUT", "/")).0);
}

#[test]
fn url_path_ignores_the_query() {
    let deny = |m: RbacMatcher| Engine::new(&rules(RbacAction::Deny, vec![policy("p", vec![m])]));
    let exact_path = deny(RbacMatcher::UrlPath(exact("/admin")));
    assert!(!check(&exact_path, None, &Req::new("GET", "/admin?x=1")).0);
    assert!(!check(&exact_path, None, &Req::new("GET", "/admin")).0);
    assert!(check(&exact_path, None, &Req::new("GET", "/admin/x")).0);
    let suffix = deny(RbacMatcher::UrlPath(HeaderMatchKind::Suffix(
        ".json".into(),
    )));
    assert!(!check(&suffix, None, &Req::new("GET", "/a.json?v=2")).0);
    // A prefix that only the query would complete does not match.
    let prefix = deny(path_prefix("/a?b"));
    assert!(check(&prefix, None, &Req::new("GET", "/a?b=1")).0);
    let regex = deny(RbacMatcher::UrlPath(HeaderMatchKind::Regex(
        regex::Regex::new("/v[0-9]+").unwrap(),
    )));
    assert!(!check(&regex, None, &Req::new("GET", "/v2?x")).0);
    assert!(check(&regex, None, &Req::new("GET", "/v2/x")).0, "anchored");
}

#[test]
fn allow_needs_a_match_deny_refuses_one_and_the_first_policy_by_name_is_reported() {
    let both = || {
        vec![
            policy("a-first", vec![path_prefix("/x")]),
            policy("b-second", vec![Any]),
        ]
    };
    let deny = Engine::new(&rules(RbacAction::Deny, both()));
    assert_eq!(
        check(&deny, None, &Req::new("GET", "/x")),
        (false, Some("a-first".into()))
    );
    assert_eq!(
        check(&deny, None, &Req::new("GET", "/y")),
        (false, Some("b-second".into()))
    );
    let allow = Engine::new(&rules(RbacAction::Allow, both()));
    assert_eq!(
        check(&allow, None, &Req::new("GET", "/x")),
        (true, Some("a-first".into()))
    );
    // ALLOW without policies allows nothing; DENY without policies denies nothing.
    let empty_allow = Engine::new(&rules(RbacAction::Allow, vec![]));
    assert_eq!(
        check(&empty_allow, Some(&cert("api")), &Req::new("GET", "/")),
        (false, None)
    );
    let empty_deny = Engine::new(&rules(RbacAction::Deny, vec![]));
    assert!(check(&empty_deny, None, &Req::new("GET", "/")).0);
}

#[test]
fn without_a_request_headers_are_absent_and_paths_never_match() {
    let present = |present: bool, invert: bool| {
        RbacMatcher::Header(HeaderMatch {
            name: "x-user".into(),
            kind: HeaderMatchKind::Present(present),
            invert,
        })
    };
    let connection = Input {
        peer_cert: None,
        request: None,
    };
    for (m, matches) in [
        (present(false, false), true),
        (present(true, true), true),
        (present(true, false), false),
        (method("GET"), false),
        (path_prefix("/"), false),
        (Any, true),
    ] {
        let deny = Engine::new(&rules(RbacAction::Deny, vec![policy("p", vec![m.clone()])]));
        assert_eq!(!deny.check(&connection).allowed, matches, "{m:?}");
    }
}

/// xds-server's chain for a service: enforced denies, a shadow deny, the default-deny allow
/// list.
fn sidecar_chain() -> Vec<RbacFilter> {
    let filter = |prefix: &str, rules: Option<RbacRules>, shadow: Option<RbacRules>| {
        let shadow_prefix = if shadow.is_some() { prefix } else { "" };
        RbacFilter {
            rules_stat_prefix: if rules.is_some() {
                prefix.into()
            } else {
                String::new()
            },
            shadow_rules_stat_prefix: shadow_prefix.into(),
            rules,
            shadow_rules: shadow,
        }
    };
    let deny =
        |name: &str, who: RbacMatcher| Some(rules(RbacAction::Deny, vec![policy(name, vec![who])]));
    vec![
        filter("db-never", deny("db-never", peer("db")), None),
        filter(
            "try-no-deletes",
            None,
            deny(
                "try-no-deletes",
                And(vec![Authenticated(None), method("DELETE")]),
            ),
        ),
        filter(
            "default-deny",
            Some(rules(
                RbacAction::Allow,
                vec![policy("allow", vec![Or(vec![peer("api"), peer("db")])])],
            )),
            None,
        ),
    ]
}

#[test]
fn a_chain_denies_first_shadows_only_count_and_the_default_deny_allows_its_list() {
    let stats = Registry::default();
    let chain = RbacFilters::http(&sidecar_chain(), "inbound|web", &stats).unwrap();
    let run = |from: Option<&PeerCert>, req: Req| {
        let view = req.view();
        chain
            .check(&Input {
                peer_cert: from,
                request: Some(&view),
            })
            .map_err(|d| d.to_string())
    };
    // db is on the allow list, but its deny comes first.
    assert_eq!(
        run(Some(&cert("db")), Req::new("GET", "/")),
        Err("rbac_access_denied_matched_policy[db-never]".into())
    );
    // A shadow deny lets the call through.
    assert_eq!(run(Some(&cert("api")), Req::new("DELETE", "/x")), Ok(()));
    assert_eq!(run(Some(&cert("api")), Req::new("GET", "/x")), Ok(()));
    // Not on the allow list (and plaintext): the default deny.
    assert_eq!(
        run(Some(&cert("web")), Req::new("GET", "/")),
        Err("rbac_access_denied_matched_policy[none]".into())
    );
    assert!(run(None, Req::new("GET", "/")).is_err());

    let json = stats.render_json().to_string();
    for (name, value) in [
        ("http.inbound|web.rbac.db-never.denied", 1),
        ("http.inbound|web.rbac.db-never.allowed", 4),
        ("http.inbound|web.rbac.try-no-deletes.shadow_denied", 1),
        ("http.inbound|web.rbac.try-no-deletes.shadow_allowed", 3),
        ("http.inbound|web.rbac.default-deny.allowed", 2),
        ("http.inbound|web.rbac.default-deny.denied", 2),
        // Created empty, as Envoy does, by the filters without a shadow (or enforced) prefix.
        ("http.inbound|web.rbac.shadow_denied", 0),
        ("http.inbound|web.rbac.allowed", 0),
    ] {
        let entry = format!(r#"{{"name":"{name}","value":{value}}}"#);
        assert!(json.contains(&entry), "{entry} in {json}");
    }
    assert!(!json.contains("db-never.shadow"), "{json}");
    let prometheus = stats.render_prometheus();
    assert!(
        prometheus.contains(
            "envoy_http_rbac_denied{envoy_rbac_http_prefix=\"db-never\",\
             envoy_http_conn_manager_prefix=\"inbound|web\"} 1"
        ),
        "{prometheus}"
    );
}

#[test]
fn network_filters_count_under_their_stat_prefix() {
    let stats = Registry::default();
    let network = |f: RbacFilter| NetworkRbac {
        stat_prefix: format!("inbound|db.{}.", f.rules_stat_prefix),
        filter: RbacFilter {
            rules_stat_prefix: String::new(),
            ..f
        },
    };
    let chain: Vec<NetworkRbac> = sidecar_chain().into_iter().map(network).collect();
    let chain = RbacFilters::network(&chain, &stats).unwrap();
    let connection = |from: Option<&PeerCert>| {
        chain
            .check(&Input {
                peer_cert: from,
                request: None,
            })
            .is_ok()
    };
    assert!(connection(Some(&cert("api"))));
    assert!(!connection(Some(&cert("db"))));
    assert!(!connection(None));
    let json = stats.render_json().to_string();
    for (name, value) in [
        ("inbound|db.db-never.rbac.denied", 1),
        ("inbound|db.default-deny.rbac.denied", 1),
        ("inbound|db.default-deny.rbac.allowed", 1),
    ] {
        let entry = format!(r#"{{"name":"{name}","value":{value}}}"#);
        assert!(json.contains(&entry), "{entry} in {json}");
    }
    assert!(
        stats
            .render_prometheus()
            .contains("envoy_inbound_db_default_deny_rbac_denied{} 1")
    );
}
