//! A route's match compiled: the path matcher (prefix, exact, or a regex anchored once at
//! build time), and header matchers with Envoy's semantics for absent and repeated headers.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};

use super::RequestView;
use crate::config::{HeaderMatchKind, PathMatch, RouteMatch};

#[derive(Debug)]
pub(super) struct Matcher {
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

impl Matcher {
    pub(super) fn new(m: &RouteMatch) -> Matcher {
        let path = match &m.path {
            PathMatch::Prefix(p) => PathMatcher::Prefix(p.clone()),
            PathMatch::Exact(p) => PathMatcher::Exact(p.clone()),
            PathMatch::Regex(r) => PathMatcher::Regex(anchored(r)),
        };
        Matcher {
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
        }
    }

    /// The path, then every header matcher.
    pub(super) fn matches(&self, request: &RequestView<'_>) -> bool {
        self.path_matches(request.path_and_query) && self.headers.iter().all(|h| h.matches(request))
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

/// One header matcher on its own (an access log's `header_filter`), with the route
/// matcher's semantics.
#[derive(Debug)]
pub struct HeaderPredicate(HeaderMatcher);

impl HeaderPredicate {
    pub fn new(m: &crate::config::HeaderMatch) -> HeaderPredicate {
        HeaderPredicate(HeaderMatcher {
            target: HeaderTarget::new(&m.name),
            kind: ValueMatcher::new(&m.kind),
            invert: m.invert,
        })
    }

    pub fn matches(&self, request: &RequestView<'_>) -> bool {
        self.0.matches(request)
    }
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
