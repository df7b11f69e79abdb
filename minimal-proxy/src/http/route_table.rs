//! The route table: a [`RouteConfig`] compiled once (domains sorted into Envoy's search
//! order, header names parsed, weights summed) so that matching a request allocates nothing.
//!
//! Virtual hosts are found as Envoy finds them: the `Host`/`:authority` value lower-cased and
//! taken whole (the port too, as Envoy does unless told to strip it); exact domains first, then
//! `*.suffix` wildcards longest first, then `prefix*` wildcards longest first, then `*`. A
//! wildcard never matches the empty string. Routes are tried in order; the first match wins.

mod matcher;
#[cfg(test)]
mod tests;

use std::{borrow::Cow, collections::BTreeMap, collections::HashMap, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use crate::{
    config::{
        ClusterTarget, HashPolicy, HeaderMutation, PathMatch, RetryPolicy, Route, RouteAction,
        RouteConfig, VirtualHost,
    },
    stats::{Registry, RouteStats},
};
use matcher::Matcher;
pub use matcher::{HeaderPredicate, strip_query};

/// A compiled [`RouteConfig`].
#[derive(Debug)]
pub struct RouteTable {
    /// Exact domains (lower-case) → index into `vhosts`.
    exact: HashMap<Box<str>, usize>,
    /// `*.suffix` domains as their suffix (`.suffix`), longest first.
    suffixes: Vec<(Box<str>, usize)>,
    /// `prefix*` domains as their prefix, longest first.
    prefixes: Vec<(Box<str>, usize)>,
    /// The `*` virtual host.
    any: Option<usize>,
    vhosts: Vec<VirtualHostTable>,
}

/// One virtual host's routes, in order.
#[derive(Debug)]
pub struct VirtualHostTable {
    pub name: String,
    pub routes: Vec<CompiledRoute>,
}

/// One route: what it matches and what it does.
#[derive(Debug)]
pub struct CompiledRoute {
    /// `%ROUTE_NAME%`, `None` for an unnamed route; shared so that a logged request takes
    /// it without allocating.
    pub name: Option<Arc<str>>,
    /// `vhost.<vhost>.route.<stat_prefix>.*` when the route has a `stat_prefix`.
    pub stats: Option<Arc<RouteStats>>,
    matcher: Matcher,
    pub action: Action,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
}

/// What a matched route does.
#[derive(Debug)]
pub enum Action {
    Forward(Box<ForwardAction>),
    /// Answered by the proxy.
    Direct {
        status: StatusCode,
        body: Option<Bytes>,
    },
}

/// A route's forwarding: where to, and how.
#[derive(Debug)]
pub struct ForwardAction {
    pub targets: Targets,
    /// `(matched prefix length, replacement)`: the first `len` bytes of the path are replaced.
    pub prefix_rewrite: Option<(usize, String)>,
    pub timeout: Option<Duration>,
    /// `x-envoy-expected-rq-timeout-ms` of the first attempt (the route timeout, or the
    /// per-try timeout when shorter), built once.
    pub expected_timeout: Option<http::HeaderValue>,
    pub retry: Option<RetryPolicy>,
    pub hash_policy: Vec<HashPolicy>,
}

/// One cluster or several weighted ones.
#[derive(Debug)]
pub enum Targets {
    Single(Target),
    Weighted {
        targets: Vec<Target>,
        /// Running sums of the weights, for a binary search on a random draw.
        cumulative: Vec<u64>,
        total: u64,
    },
}

/// A cluster a route sends to, with the subset it asks for and its own header mutations.
#[derive(Debug, Default)]
pub struct Target {
    pub cluster: String,
    pub metadata_match: BTreeMap<String, String>,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
}

/// The parts of a request routing looks at, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// `Host` or `:authority`, as sent.
    pub authority: &'a str,
    pub method: &'a Method,
    /// Path and query (`:path`).
    pub path_and_query: &'a str,
    pub scheme: &'a str,
    pub headers: &'a HeaderMap,
}

// === impl RouteTable ===

impl RouteTable {
    /// Compiles a route configuration (already validated by the conversion layer); routes
    /// with a `stat_prefix` get their stats from `stats`.
    pub fn new(config: &RouteConfig, stats: &Registry) -> RouteTable {
        let mut table = RouteTable {
            exact: HashMap::new(),
            suffixes: Vec::new(),
            prefixes: Vec::new(),
            any: None,
            vhosts: Vec::with_capacity(config.virtual_hosts.len()),
        };
        for (index, vhost) in config.virtual_hosts.iter().enumerate() {
            for domain in &vhost.domains {
                let domain = domain.to_ascii_lowercase();
                if domain == "*" {
                    table.any.get_or_insert(index);
                } else if let Some(suffix) = domain.strip_prefix('*') {
                    table.suffixes.push((suffix.into(), index));
                } else if let Some(prefix) = domain.strip_suffix('*') {
                    table.prefixes.push((prefix.into(), index));
                } else {
                    table.exact.entry(domain.into()).or_insert(index);
                }
            }
            table.vhosts.push(VirtualHostTable::new(vhost, stats));
        }
        // Stable sorts: among equal lengths the earlier virtual host stays first.
        table
            .suffixes
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        table
            .prefixes
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        table
    }

    /// The virtual host for an authority, in Envoy's search order.
    pub fn virtual_host(&self, authority: &str) -> Option<&VirtualHostTable> {
        let host: Cow<'_, str> = if authority.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(authority.to_ascii_lowercase())
        } else {
            Cow::Borrowed(authority)
        };
        let host = host.as_ref();
        let index = self
            .exact
            .get(host)
            .copied()
            .or_else(|| {
                self.suffixes
                    .iter()
                    .find(|(s, _)| host.len() > s.len() && host.ends_with(&**s))
                    .map(|(_, i)| *i)
            })
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(p, _)| host.len() > p.len() && host.starts_with(&**p))
                    .map(|(_, i)| *i)
            })
            .or(self.any)?;
        Some(&self.vhosts[index])
    }

    /// The virtual host and the first of its routes that matches, if any.
    pub fn route(&self, request: &RequestView<'_>) -> Option<(&VirtualHostTable, &CompiledRoute)> {
        let vhost = self.virtual_host(request.authority)?;
        let route = vhost.routes.iter().find(|r| r.matches(request))?;
        Some((vhost, route))
    }
}

impl VirtualHostTable {
    fn new(vhost: &VirtualHost, stats: &Registry) -> VirtualHostTable {
        VirtualHostTable {
            name: vhost.name.clone(),
            routes: vhost
                .routes
                .iter()
                .map(|r| {
                    let stats = (!r.stat_prefix.is_empty())
                        .then(|| stats.route(&vhost.name, &r.stat_prefix));
                    CompiledRoute::new(r, stats)
                })
                .collect(),
        }
    }
}

// === impl CompiledRoute ===

impl CompiledRoute {
    fn new(route: &Route, stats: Option<Arc<RouteStats>>) -> CompiledRoute {
        let m = &route.matcher;
        let matcher = Matcher::new(m);
        let action = match &route.action {
            RouteAction::Direct { status, body } => Action::Direct {
                status: StatusCode::from_u16(*status).unwrap_or(StatusCode::OK),
                body: body.as_ref().map(|b| Bytes::copy_from_slice(b.as_bytes())),
            },
            RouteAction::Forward(forward) => {
                let prefix_len = match &m.path {
                    PathMatch::Prefix(p) | PathMatch::Exact(p) => p.len(),
                    PathMatch::Regex(_) => 0,
                };
                Action::Forward(Box::new(ForwardAction {
                    targets: Targets::new(&forward.target),
                    prefix_rewrite: forward
                        .prefix_rewrite
                        .as_ref()
                        .map(|r| (prefix_len, r.clone())),
                    timeout: forward.timeout,
                    expected_timeout: super::router::min_some(
                        forward.timeout,
                        forward.retry.as_ref().and_then(|r| r.per_try_timeout),
                    )
                    .map(|t| http::HeaderValue::from(t.as_millis() as u64)),
                    retry: forward.retry.clone(),
                    hash_policy: forward.hash_policy.clone(),
                }))
            }
        };
        CompiledRoute {
            name: (!route.name.is_empty()).then(|| Arc::from(route.name.as_str())),
            stats,
            matcher,
            action,
            request_headers: route.request_headers.clone(),
            response_headers: route.response_headers.clone(),
        }
    }

    /// Whether this route takes the request: path, then every header matcher.
    pub fn matches(&self, request: &RequestView<'_>) -> bool {
        self.matcher.matches(request)
    }
}

// === impl Targets ===

impl Targets {
    fn new(target: &ClusterTarget) -> Targets {
        match target {
            ClusterTarget::Cluster(name) => Targets::Single(Target {
                cluster: name.clone(),
                ..Target::default()
            }),
            // Validated non-empty at conversion; an empty list routes to no cluster (503).
            ClusterTarget::Weighted(clusters) if clusters.is_empty() => {
                Targets::Single(Target::default())
            }
            ClusterTarget::Weighted(clusters) => {
                let mut total = 0u64;
                let mut cumulative = Vec::with_capacity(clusters.len());
                let targets = clusters
                    .iter()
                    .map(|c| {
                        total += u64::from(c.weight);
                        cumulative.push(total);
                        Target {
                            cluster: c.name.clone(),
                            metadata_match: c.metadata_match.clone(),
                            request_headers: c.request_headers.clone(),
                            response_headers: c.response_headers.clone(),
                        }
                    })
                    .collect();
                Targets::Weighted {
                    targets,
                    cumulative,
                    total,
                }
            }
        }
    }

    /// Picks a target; `draw` is a uniformly random number (weighted clusters only use it).
    pub fn pick(&self, draw: u64) -> &Target {
        match self {
            Targets::Single(t) => t,
            Targets::Weighted {
                targets,
                cumulative,
                total,
            } => {
                if *total == 0 {
                    return &targets[0];
                }
                let point = draw % total;
                let i = cumulative.partition_point(|c| *c <= point);
                &targets[i.min(targets.len() - 1)]
            }
        }
    }
}
