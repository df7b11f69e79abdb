//! The route table: a [`RouteConfig`] compiled once (domains sorted into Envoy's search
//! order, header names parsed, weights summed) so that matching a request allocates nothing.
//!
//! Virtual hosts are found as Envoy finds them: the `Host`/`:authority` value lower-cased and
//! taken whole (the port too, as Envoy does unless told to strip it); exact domains first, then
//! `*.suffix` wildcards longest first, then `prefix*` wildcards longest first, then `*`. A
//! wildcard never matches the empty string. Routes are tried in order; the first match wins.

#[cfg(test)]
mod tests;

use std::{borrow::Cow, collections::BTreeMap, collections::HashMap, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode};

use crate::config::{
    ClusterTarget, HashPolicy, HeaderMatchKind, HeaderMutation, PathMatch, RetryPolicy, Route,
    RouteAction, RouteConfig, VirtualHost,
};

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
    matcher: Matcher,
    pub action: Action,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
}

#[derive(Debug)]
struct Matcher {
    path: PathMatcher,
    case_sensitive: bool,
    headers: Vec<HeaderMatcher>,
}

#[derive(Debug)]
enum PathMatcher {
    Prefix(String),
    Exact(String),
    /// Anchored at both ends at compile time.
    Regex(regex::Regex),
}

#[derive(Debug)]
struct HeaderMatcher {
    target: HeaderTarget,
    kind: ValueMatcher,
    invert: bool,
}

/// [`HeaderMatchKind`] with its regex anchored at compile time.
#[derive(Debug)]
enum ValueMatcher {
    Exact(String),
    Regex(regex::Regex),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Present(bool),
}

/// Where a header matcher looks: a pseudo-header taken from the request line, or a header.
#[derive(Debug)]
enum HeaderTarget {
    Method,
    Authority,
    Path,
    Scheme,
    Header(HeaderName),
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
    /// Compiles a route configuration (already validated by the conversion layer).
    pub fn new(config: &RouteConfig) -> RouteTable {
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
            table.vhosts.push(VirtualHostTable::new(vhost));
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
    fn new(vhost: &VirtualHost) -> VirtualHostTable {
        VirtualHostTable {
            name: vhost.name.clone(),
            routes: vhost.routes.iter().map(CompiledRoute::new).collect(),
        }
    }
}

// === impl CompiledRoute ===

impl CompiledRoute {
    fn new(route: &Route) -> CompiledRoute {
        let m = &route.matcher;
        let path = match &m.path {
            PathMatch::Prefix(p) => PathMatcher::Prefix(p.clone()),
            PathMatch::Exact(p) => PathMatcher::Exact(p.clone()),
            PathMatch::Regex(r) => PathMatcher::Regex(anchored(r)),
        };
        let matcher = Matcher {
            path,
            case_sensitive: m.case_sensitive,
            headers: m
                .headers
                .iter()
                .map(|h| HeaderMatcher {
                    target: HeaderTarget::new(&h.name),
                    kind: ValueMatcher::new(&h.kind),
                    invert: h.invert,
                })
                .collect(),
        };
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
                    retry: forward.retry.clone(),
                    hash_policy: forward.hash_policy.clone(),
                }))
            }
        };
        CompiledRoute {
            matcher,
            action,
            request_headers: route.request_headers.clone(),
            response_headers: route.response_headers.clone(),
        }
    }

    /// Whether this route takes the request: path, then every header matcher.
    pub fn matches(&self, request: &RequestView<'_>) -> bool {
        self.matcher.path_matches(request.path_and_query)
            && self.matcher.headers.iter().all(|h| h.matches(request))
    }
}

impl Matcher {
    fn path_matches(&self, path_and_query: &str) -> bool {
        match &self.path {
            // Envoy matches a prefix against the whole `:path`, query included.
            PathMatcher::Prefix(prefix) => {
                if self.case_sensitive {
                    path_and_query.starts_with(prefix.as_str())
                } else {
                    path_and_query
                        .get(..prefix.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
                }
            }
            PathMatcher::Exact(exact) => {
                let path = strip_query(path_and_query);
                if self.case_sensitive {
                    path == exact
                } else {
                    path.eq_ignore_ascii_case(exact)
                }
            }
            PathMatcher::Regex(regex) => regex.is_match(strip_query(path_and_query)),
        }
    }
}

/// The path without its query string (and fragment, which clients should not send).
pub fn strip_query(path_and_query: &str) -> &str {
    match path_and_query.find(['?', '#']) {
        Some(i) => &path_and_query[..i],
        None => path_and_query,
    }
}

/// Envoy's `safe_regex` must match the whole value: the regex anchored at both ends. The
/// conversion layer compiled the original, so the anchored form compiles too; should it not,
/// the original is kept (matching anywhere) rather than failing at runtime.
fn anchored(regex: &regex::Regex) -> regex::Regex {
    regex::Regex::new(&format!("^(?:{})$", regex.as_str())).unwrap_or_else(|_| regex.clone())
}

// === impl HeaderMatcher ===

impl HeaderTarget {
    fn new(name: &str) -> HeaderTarget {
        match name {
            ":method" => HeaderTarget::Method,
            ":authority" | "host" => HeaderTarget::Authority,
            ":path" => HeaderTarget::Path,
            ":scheme" => HeaderTarget::Scheme,
            other => match HeaderName::from_bytes(other.as_bytes()) {
                Ok(name) => HeaderTarget::Header(name),
                // Validated at conversion; an unparsable name can never be present.
                Err(_) => HeaderTarget::Header(HeaderName::from_static("x-invalid-header-name")),
            },
        }
    }
}

impl HeaderMatcher {
    /// Envoy's semantics: an absent header matches only `present: false` (or an inverted
    /// `present: true`); several values of one header are matched joined with `,`.
    fn matches(&self, request: &RequestView<'_>) -> bool {
        let value: Option<Cow<'_, str>> = match &self.target {
            HeaderTarget::Method => Some(Cow::Borrowed(request.method.as_str())),
            HeaderTarget::Authority => Some(Cow::Borrowed(request.authority)),
            HeaderTarget::Path => Some(Cow::Borrowed(request.path_and_query)),
            HeaderTarget::Scheme => Some(Cow::Borrowed(request.scheme)),
            HeaderTarget::Header(name) => header_value(request.headers, name),
        };
        let Some(value) = value else {
            return match self.kind {
                ValueMatcher::Present(present) => present == self.invert,
                _ => false,
            };
        };
        let value = value.as_ref();
        let matched = match &self.kind {
            ValueMatcher::Exact(v) => value == v,
            ValueMatcher::Regex(r) => r.is_match(value),
            ValueMatcher::Prefix(p) => value.starts_with(p.as_str()),
            ValueMatcher::Suffix(s) => value.ends_with(s.as_str()),
            ValueMatcher::Contains(c) => value.contains(c.as_str()),
            ValueMatcher::Present(present) => *present,
        };
        matched != self.invert
    }
}

impl ValueMatcher {
    fn new(kind: &HeaderMatchKind) -> ValueMatcher {
        match kind {
            HeaderMatchKind::Exact(v) => ValueMatcher::Exact(v.clone()),
            HeaderMatchKind::Regex(r) => ValueMatcher::Regex(anchored(r)),
            HeaderMatchKind::Prefix(v) => ValueMatcher::Prefix(v.clone()),
            HeaderMatchKind::Suffix(v) => ValueMatcher::Suffix(v.clone()),
            HeaderMatchKind::Contains(v) => ValueMatcher::Contains(v.clone()),
            HeaderMatchKind::Present(p) => ValueMatcher::Present(*p),
        }
    }
}

/// All values of a header joined with `,` (borrowed when there is one), or `None` when absent.
fn header_value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<Cow<'a, str>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let first = String::from_utf8_lossy(first.as_bytes());
    let mut rest = values.peekable();
    if rest.peek().is_none() {
        return Some(first);
    }
    let mut joined = first.into_owned();
    for v in rest {
        joined.push(',');
        joined.push_str(&String::from_utf8_lossy(v.as_bytes()));
    }
    Some(Cow::Owned(joined))
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
