//! Routes → the `RouteConfiguration` of a listener: one virtual host per route.

use std::collections::{BTreeMap, HashSet};

use prost::Message;

use envoy_types::pb::envoy::{
    config::{
        core::v3::{HeaderValue, HeaderValueOption, header_value_option::HeaderAppendAction},
        route::v3::{
            HeaderMatcher, RetryPolicy, Route as EnvoyRoute, RouteAction, RouteConfiguration,
            RouteMatch, VirtualHost, WeightedCluster,
            header_matcher::HeaderMatchSpecifier,
            retry_policy::RetryBackOff,
            route::Action,
            route_action::{
                ClusterSpecifier, HashPolicy as EnvoyHashPolicy,
                hash_policy::{ConnectionProperties, Cookie, Header, PolicySpecifier},
            },
            route_match::PathSpecifier,
            weighted_cluster::ClusterWeight,
        },
    },
    r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher::MatchPattern},
};

use super::{
    Origin, Origins,
    cluster::{duration, uint32},
    endpoint::{lb_metadata, metadata_text},
};
use crate::model::{
    Destination, HashOn, HashPolicy, HeaderChanges, HeaderMatch, Kind, LbPolicy, PathMatch,
    Retries, Route, RouteMatch as ModelMatch, Rule, Service,
};

/// What Envoy retries on when a rule asks for retries without saying on what.
const DEFAULT_RETRY_ON: &str = "5xx,connect-failure,reset";

/// The route configuration `name` (the listener's own name) serving `routes` in the
/// listener's order. Envoy rejects a configuration in which two virtual hosts share a domain,
/// so a domain stays with the first route that claims it and later routes lose it (with a
/// warning) instead of the whole listener failing. `services` is only read to warn about hash
/// policies that no destination can use.
pub(super) fn route_configuration(
    name: &str,
    routes: &[(&str, &Route)],
    services: &BTreeMap<String, Service>,
    warnings: &mut Vec<String>,
) -> RouteConfiguration {
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut virtual_hosts = Vec::new();
    for (route_name, route) in routes {
        let mut domains = Vec::new();
        for host in &route.hosts {
            if claimed.insert(host) {
                domains.push(host.clone());
            } else {
                warnings.push(format!(
                    "listener '{name}': host '{host}' of route '{route_name}' is already \
                     served by an earlier route; left out"
                ));
            }
        }
        if domains.is_empty() {
            warnings.push(format!(
                "listener '{name}': route '{route_name}' has no host left; left out"
            ));
            continue;
        }
        for (i, rule) in route.rules.iter().enumerate() {
            if let Some(why) = unused_hash_policy(rule, services) {
                warnings.push(format!(
                    "listener '{name}': route '{route_name}': rules[{i}].hash_policy {why}"
                ));
            }
        }
        virtual_hosts.push(VirtualHost {
            name: route_name.to_string(),
            domains,
            routes: route.rules.iter().map(|r| rule(route_name, r)).collect(),
            ..VirtualHost::default()
        });
    }
    RouteConfiguration {
        name: name.to_string(),
        virtual_hosts,
        ..RouteConfiguration::default()
    }
}

/// A rule of the mesh route `route_name`: the Envoy route carries that name, which access logs
/// report (`route_name`), so a live tap can tell the mesh route a request took.
fn rule(route_name: &str, rule: &Rule) -> EnvoyRoute {
    let (request_headers_to_add, request_headers_to_remove) =
        header_changes(rule.request_headers.as_ref());
    let (response_headers_to_add, response_headers_to_remove) =
        header_changes(rule.response_headers.as_ref());
    EnvoyRoute {
        name: route_name.to_string(),
        // Per-route golden metrics: every rule of a mesh route shares one set of stats,
        // `vhost.<route>.route.<route>.upstream_rq_*` (the virtual host is named after it too).
        stat_prefix: route_name.to_string(),
        r#match: Some(route_match(&rule.matches)),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(cluster_specifier(&rule.destinations)),
            timeout: rule.timeout.map(duration),
            retry_policy: rule.retries.as_ref().map(retry_policy),
            prefix_rewrite: rule
                .rewrite
                .as_ref()
                .map(|r| r.prefix.clone())
                .unwrap_or_default(),
            hash_policy: rule.hash_policy.iter().filter_map(hash_policy).collect(),
            ..RouteAction::default()
        })),
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        ..EnvoyRoute::default()
    }
}

fn route_match(m: &ModelMatch) -> RouteMatch {
    let path = match &m.path {
        None => PathSpecifier::Prefix("/".into()),
        Some(PathMatch::Prefix(p)) => PathSpecifier::Prefix(p.clone()),
        Some(PathMatch::Exact(p)) => PathSpecifier::Path(p.clone()),
        Some(PathMatch::Regex(r)) => PathSpecifier::SafeRegex(regex(r)),
    };
    let mut headers: Vec<HeaderMatcher> = m.headers.iter().map(header_matcher).collect();
    if let Some(method) = &m.method {
        headers.push(string_header(
            ":method",
            MatchPattern::Exact(method.clone()),
        ));
    }
    RouteMatch {
        path_specifier: Some(path),
        headers,
        ..RouteMatch::default()
    }
}

/// Validation guarantees exactly one of `exact`, `regex`, `present`.
fn header_matcher(h: &HeaderMatch) -> HeaderMatcher {
    match (&h.exact, &h.regex, h.present) {
        (Some(exact), _, _) => string_header(&h.name, MatchPattern::Exact(exact.clone())),
        (None, Some(r), _) => string_header(&h.name, MatchPattern::SafeRegex(regex(r))),
        (None, None, present) => HeaderMatcher {
            name: h.name.clone(),
            // `false` matches requests without the header, as in Envoy.
            header_match_specifier: Some(HeaderMatchSpecifier::PresentMatch(
                present.unwrap_or(true),
            )),
            ..HeaderMatcher::default()
        },
    }
}

fn string_header(name: &str, pattern: MatchPattern) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(pattern),
            ..StringMatcher::default()
        })),
        ..HeaderMatcher::default()
    }
}

/// Envoy's default engine (RE2), which is what validation checked the regex against.
fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.to_string(),
        engine_type: None,
    }
}

/// Bytes that identify `config`'s content whatever order its subset maps were encoded in:
/// the configuration without `metadata_match`, then each one's entries in name order.
pub(super) fn stable_bytes(config: &RouteConfiguration) -> Vec<u8> {
    let mut bare = config.clone();
    let mut subsets = String::new();
    for vh in &mut bare.virtual_hosts {
        for route in &mut vh.routes {
            if let Some(Action::Route(action)) = &mut route.action {
                subsets.push_str(&metadata_text(action.metadata_match.take()));
                if let Some(ClusterSpecifier::WeightedClusters(w)) = &mut action.cluster_specifier {
                    for c in &mut w.clusters {
                        subsets.push_str(&metadata_text(c.metadata_match.take()));
                    }
                }
            }
        }
    }
    let mut bytes = bare.encode_to_vec();
    bytes.extend(subsets.into_bytes());
    bytes
}

/// Where the route configuration of `listener` came from: the listener (its part: everything
/// but the virtual hosts) and each route that made a virtual host (its part: that host), each
/// part as stable bytes.
pub(super) fn origins(listener: &str, config: &RouteConfiguration) -> Origins {
    let frame = RouteConfiguration {
        virtual_hosts: Vec::new(),
        ..config.clone()
    };
    let mut out = vec![Origin::part(
        Kind::Listener,
        listener,
        &stable_bytes(&frame),
    )];
    for vh in &config.virtual_hosts {
        let alone = RouteConfiguration {
            virtual_hosts: vec![vh.clone()],
            ..RouteConfiguration::default()
        };
        out.push(Origin::part(Kind::Route, &vh.name, &stable_bytes(&alone)));
    }
    out.into()
}

/// One plain destination is a plain cluster; anything else (several, or a subset) is a
/// weighted split, whose entries carry the subset as `metadata_match`.
fn cluster_specifier(destinations: &[Destination]) -> ClusterSpecifier {
    if let [d] = destinations
        && d.subset.is_empty()
    {
        return ClusterSpecifier::Cluster(d.service.clone());
    }
    ClusterSpecifier::WeightedClusters(WeightedCluster {
        clusters: destinations
            .iter()
            .map(|d| ClusterWeight {
                name: d.service.clone(),
                weight: Some(uint32(d.weight)),
                metadata_match: (!d.subset.is_empty()).then(|| lb_metadata(&d.subset)),
                ..ClusterWeight::default()
            })
            .collect(),
        ..WeightedCluster::default()
    })
}

/// Validation guarantees each entry names one input; one that does not is left out.
fn hash_policy(h: &HashPolicy) -> Option<EnvoyHashPolicy> {
    let specifier = match h.hash_on()? {
        HashOn::Header(name) => PolicySpecifier::Header(Header {
            header_name: name.to_string(),
            regex_rewrite: None,
        }),
        HashOn::Cookie { name, ttl } => PolicySpecifier::Cookie(Cookie {
            name: name.to_string(),
            ttl: ttl.map(duration),
            ..Cookie::default()
        }),
        HashOn::SourceIp => {
            PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip: true })
        }
    };
    Some(EnvoyHashPolicy {
        policy_specifier: Some(specifier),
        terminal: h.terminal,
    })
}

/// Envoy ignores a hash policy unless the cluster balances by consistent hash: why a rule's
/// policy does nothing, if it does nothing, so the operator is told instead of wondering why
/// requests do not stick.
fn unused_hash_policy(rule: &Rule, services: &BTreeMap<String, Service>) -> Option<&'static str> {
    let hashing = |d: &Destination| {
        let lb = services.get(&d.service).and_then(|s| s.lb_policy);
        matches!(lb, Some(LbPolicy::RingHash | LbPolicy::Maglev))
    };
    let unused = !rule.hash_policy.is_empty() && !rule.destinations.iter().any(hashing);
    unused.then_some(
        "has no effect: none of its destination services has lb_policy ring_hash or maglev",
    )
}

fn retry_policy(r: &Retries) -> RetryPolicy {
    let retry_on = if r.retry_on.is_empty() {
        DEFAULT_RETRY_ON.to_string()
    } else {
        r.retry_on.join(",")
    };
    RetryPolicy {
        retry_on,
        num_retries: Some(uint32(r.attempts)),
        per_try_timeout: r.per_try_timeout.map(duration),
        retry_back_off: r.backoff.as_ref().map(|b| RetryBackOff {
            base_interval: Some(duration(b.base_interval)),
            // Absent: Envoy's default, ten times the base.
            max_interval: b.max_interval.map(duration),
        }),
        ..RetryPolicy::default()
    }
}

/// Set headers replace any value already there; removed ones go by name.
fn header_changes(changes: Option<&HeaderChanges>) -> (Vec<HeaderValueOption>, Vec<String>) {
    let Some(c) = changes else {
        return (Vec::new(), Vec::new());
    };
    let set: &BTreeMap<String, String> = &c.set;
    let add = set
        .iter()
        .map(|(key, value)| HeaderValueOption {
            header: Some(HeaderValue {
                key: key.clone(),
                value: value.clone(),
                ..HeaderValue::default()
            }),
            append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            ..HeaderValueOption::default()
        })
        .collect();
    (add, c.remove.clone())
}
