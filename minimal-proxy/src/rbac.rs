//! Envoy's role-based access control, compiled: an RBAC filter's rules become an [`Engine`]
//! once per listener generation, and each request (HTTP) or connection (TCP) is checked
//! against it without allocating (a header sent several times is joined, as in routes).
//!
//! Envoy's semantics: a policy matches when any of its permissions and any of its principals
//! match; with the ALLOW action a check is allowed iff some policy matches, with DENY it is
//! denied iff some policy matches. Policies are tried in name order and the first match is
//! the one reported (`rbac_access_denied_matched_policy[<name>]`). The `authenticated`
//! principal needs a verified peer certificate and matches its URI SANs, then its DNS SANs,
//! then its subject.
//!
//! `filter` runs a chain of filters (shadow rules counted, enforced rules deciding) with
//! Envoy's counters.

mod filter;
#[cfg(test)]
mod tests;

pub use filter::{Denied, RbacFilters};

use crate::{
    config::{HeaderMatchKind, RbacAction, RbacMatcher, RbacRules},
    http::route_table::{HeaderPredicate, RequestView, strip_query},
    tls::PeerCert,
};

/// What a check reads: who the peer is and, for HTTP, the request.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// The verified client certificate of an mTLS connection; `None` on plaintext.
    pub peer_cert: Option<&'a PeerCert>,
    /// `None` for a connection (network RBAC): header and path matchers then see no request,
    /// as Envoy's network filter does (its header map is empty).
    pub request: Option<&'a RequestView<'a>>,
}

/// The outcome of one set of rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'e> {
    pub allowed: bool,
    /// The first policy (by name) that matched, Envoy's "effective policy".
    pub policy: Option<&'e str>,
}

/// One set of rules, compiled.
#[derive(Debug)]
pub struct Engine {
    action: RbacAction,
    /// In name order.
    policies: Box<[Policy]>,
}

#[derive(Debug)]
struct Policy {
    name: Box<str>,
    permissions: Box<[Matcher]>,
    principals: Box<[Matcher]>,
}

#[derive(Debug)]
enum Matcher {
    Any,
    And(Box<[Matcher]>),
    Or(Box<[Matcher]>),
    Not(Box<Matcher>),
    Authenticated(Option<Text>),
    Header {
        predicate: HeaderPredicate,
        /// The result without a request (network RBAC): Envoy matches an empty header map.
        without_request: bool,
    },
    UrlPath(Text),
}

/// A string matcher; regexes are anchored at compile time (they must match the whole value).
#[derive(Debug)]
enum Text {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(regex::Regex),
    /// `present` has no meaning for a string; the conversion never produces it.
    Never,
}

// === impl Engine ===

impl Engine {
    pub fn new(rules: &RbacRules) -> Engine {
        Engine {
            action: rules.action,
            policies: rules
                .policies
                .iter()
                .map(|p| Policy {
                    name: p.name.as_str().into(),
                    permissions: p.permissions.iter().map(Matcher::new).collect(),
                    principals: p.principals.iter().map(Matcher::new).collect(),
                })
                .collect(),
        }
    }

    /// Checks one request or connection.
    pub fn check(&self, input: &Input<'_>) -> Decision<'_> {
        let matched = self
            .policies
            .iter()
            .find(|p| p.matches(input))
            .map(|p| &*p.name);
        let allowed = match self.action {
            RbacAction::Allow => matched.is_some(),
            RbacAction::Deny => matched.is_none(),
        };
        Decision {
            allowed,
            policy: matched,
        }
    }
}

impl Policy {
    fn matches(&self, input: &Input<'_>) -> bool {
        self.permissions.iter().any(|m| m.matches(input))
            && self.principals.iter().any(|m| m.matches(input))
    }
}

// === impl Matcher ===

impl Matcher {
    fn new(m: &RbacMatcher) -> Matcher {
        match m {
            RbacMatcher::Any => Matcher::Any,
            RbacMatcher::And(all) => Matcher::And(all.iter().map(Matcher::new).collect()),
            RbacMatcher::Or(any) => Matcher::Or(any.iter().map(Matcher::new).collect()),
            RbacMatcher::Not(m) => Matcher::Not(Box::new(Matcher::new(m))),
            RbacMatcher::Authenticated(name) => {
                Matcher::Authenticated(name.as_ref().map(Text::new))
            }
            RbacMatcher::Header(h) => Matcher::Header {
                predicate: HeaderPredicate::new(h),
                // Absent, only `present: false` matches (or an inverted `present: true`).
                without_request: matches!(h.kind, HeaderMatchKind::Present(p) if p == h.invert),
            },
            RbacMatcher::UrlPath(text) => Matcher::UrlPath(Text::new(text)),
        }
    }

    fn matches(&self, input: &Input<'_>) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::And(all) => all.iter().all(|m| m.matches(input)),
            Matcher::Or(any) => any.iter().any(|m| m.matches(input)),
            Matcher::Not(m) => !m.matches(input),
            Matcher::Authenticated(name) => match (input.peer_cert, name) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(cert), Some(name)) => {
                    cert.uri_sans.iter().any(|s| name.matches(s))
                        || cert.dns_sans.iter().any(|s| name.matches(s))
                        || name.matches(&cert.subject)
                }
            },
            Matcher::Header {
                predicate,
                without_request,
            } => match input.request {
                Some(request) => predicate.matches(request),
                None => *without_request,
            },
            Matcher::UrlPath(text) => input
                .request
                .is_some_and(|r| text.matches(strip_query(r.path_and_query))),
        }
    }
}

impl Text {
    fn new(kind: &HeaderMatchKind) -> Text {
        match kind {
            HeaderMatchKind::Exact(s) => Text::Exact(s.clone()),
            HeaderMatchKind::Prefix(s) => Text::Prefix(s.clone()),
            HeaderMatchKind::Suffix(s) => Text::Suffix(s.clone()),
            HeaderMatchKind::Contains(s) => Text::Contains(s.clone()),
            // The conversion compiled the anchored form already; should it fail here, the
            // matcher matches nothing rather than matching anywhere.
            HeaderMatchKind::Regex(r) => {
                regex::Regex::new(&format!("^(?:{})$", r.as_str())).map_or(Text::Never, Text::Regex)
            }
            HeaderMatchKind::Present(_) => Text::Never,
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Text::Exact(s) => value == s,
            Text::Prefix(s) => value.starts_with(s.as_str()),
            Text::Suffix(s) => value.ends_with(s.as_str()),
            Text::Contains(s) => value.contains(s.as_str()),
            Text::Regex(r) => r.is_match(value),
            Text::Never => false,
        }
    }
}
