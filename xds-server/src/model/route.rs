//! A route: virtual hosts and ordered rules sending requests to weighted service destinations.
//! Each listener that names the route serves it in its `RouteConfiguration`.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Duration, HashPolicy, Kind, Labels, Reference, Spec, ValidationError, check_range,
    hash_policy::MAX_HASH_POLICIES,
    invalid,
    labels::{labels_schema, validate_labels},
    name::{validate_label, validate_name},
    service::{check_http_path, positive},
    syntax::{check_header_name, check_host, check_len, check_regex},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Host names this route answers for: exact (`web.example.com`), wildcard
    /// (`*.example.com`), or `*` for any.
    pub hosts: Vec<String>,
    /// Tried in order; the first that matches wins.
    pub rules: Vec<Rule>,
    /// The operator's labels (Kubernetes-style keys and values, at most 64): found by
    /// `?selector=` on lists; never sent to proxies.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    #[schema(schema_with = labels_schema)]
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Absent: every request matches.
    #[serde(rename = "match", default)]
    pub matches: RouteMatch,
    pub destinations: Vec<Destination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "5s")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<HeaderChanges>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<HeaderChanges>,
    /// What picks the endpoint when a destination service balances by consistent hash
    /// (`ring_hash`, `maglev`): at most 8 entries. Absent: a random hash per request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hash_policy: Vec<HashPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Absent: any path (as a `/` prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "GET")]
    pub method: Option<String>,
}

/// Exactly one of `prefix`, `exact` or `regex` (RE2 syntax, matched against the whole path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(String),
}

/// A header `name` and exactly one of `exact`, `regex` or `present`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub service: String,
    /// Relative share among the rule's destinations, 1..=10000.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Only endpoints carrying all these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subset: BTreeMap<String, String>,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retries {
    /// Retries after the first try, 0..=10.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1s")]
    pub per_try_timeout: Option<Duration>,
    /// Envoy's `retry_on` conditions; empty means `5xx,connect-failure,reset`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    #[schema(example = "25ms")]
    pub base_interval: Duration,
    /// Default: ten times `base_interval`, as in Envoy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "250ms")]
    pub max_interval: Option<Duration>,
}

/// Replaces the matched path prefix before forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    pub prefix: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderChanges {
    /// Headers to set, replacing any value already there.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Envoy's `retry_on` conditions for HTTP and gRPC.
pub const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

impl Spec for Route {
    const KIND: Kind = Kind::Route;

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        validate_labels("labels", &self.labels)?;
        check_len("hosts", self.hosts.len(), 1..=100)?;
        let mut seen = HashSet::new();
        for (i, host) in self.hosts.iter().enumerate() {
            let field = format!("hosts[{i}]");
            check_host(&field, host)?;
            if !seen.insert(host) {
                return Err(invalid(field, format!("'{host}' is listed twice")));
            }
        }
        check_len("rules", self.rules.len(), 1..=1000)?;
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate(&format!("rules[{i}]"))?;
        }
        Ok(())
    }

    fn references(&self, _name: &str) -> Vec<Reference> {
        let mut refs = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            for (j, d) in rule.destinations.iter().enumerate() {
                let field = format!("rules[{i}].destinations[{j}].service");
                refs.push(Reference::to(Kind::Service, &d.service, field));
            }
        }
        refs
    }
}

impl Rule {
    fn validate(&self, at: &str) -> Result<(), ValidationError> {
        let m = &self.matches;
        if let Some(path) = &m.path {
            let field = format!("{at}.match.path");
            match path {
                PathMatch::Prefix(p) => check_http_path(&format!("{field}.prefix"), p)?,
                PathMatch::Exact(p) => check_http_path(&format!("{field}.exact"), p)?,
                PathMatch::Regex(r) => check_regex(&format!("{field}.regex"), r)?,
            }
        }
        check_len(&format!("{at}.match.headers"), m.headers.len(), 0..=32)?;
        for (i, h) in m.headers.iter().enumerate() {
            let field = format!("{at}.match.headers[{i}]");
            check_header_name(&format!("{field}.name"), &h.name, true)?;
            match (&h.exact, &h.regex, h.present) {
                (Some(_), None, None) | (None, None, Some(_)) => {}
                (None, Some(r), None) => check_regex(&format!("{field}.regex"), r)?,
                _ => {
                    return Err(invalid(
                        field,
                        "give exactly one of \"exact\", \"regex\" or \"present\"",
                    ));
                }
            }
        }
        if let Some(method) = m.method.as_ref().filter(|m| !METHODS.contains(&m.as_str())) {
            return Err(invalid(
                format!("{at}.match.method"),
                format!("'{method}' is not one of {}", METHODS.join(", ")),
            ));
        }
        check_len(
            &format!("{at}.destinations"),
            self.destinations.len(),
            1..=100,
        )?;
        for (i, d) in self.destinations.iter().enumerate() {
            let field = format!("{at}.destinations[{i}]");
            validate_name(&format!("{field}.service"), &d.service)?;
            check_range(&format!("{field}.weight"), d.weight, 1..=10_000)?;
            for (k, v) in &d.subset {
                validate_label(&format!("{field}.subset.{k}"), k)?;
                validate_label(&format!("{field}.subset.{k}"), v)?;
            }
        }
        if let Some(t) = self.timeout {
            positive(&format!("{at}.timeout"), t)?;
        }
        if let Some(r) = &self.retries {
            r.validate(&format!("{at}.retries"))?;
        }
        if let Some(rw) = &self.rewrite {
            let field = format!("{at}.rewrite.prefix");
            if matches!(m.path, Some(PathMatch::Regex(_))) {
                return Err(invalid(
                    field,
                    "a prefix rewrite needs a prefix or exact path match, not a regex",
                ));
            }
            check_http_path(&field, &rw.prefix)?;
        }
        check_len(
            &format!("{at}.hash_policy"),
            self.hash_policy.len(),
            0..=MAX_HASH_POLICIES,
        )?;
        for (i, h) in self.hash_policy.iter().enumerate() {
            h.validate(&format!("{at}.hash_policy[{i}]"))?;
        }
        for (side, changes) in [
            ("request_headers", &self.request_headers),
            ("response_headers", &self.response_headers),
        ] {
            if let Some(c) = changes {
                c.validate(&format!("{at}.{side}"))?;
            }
        }
        Ok(())
    }
}

impl Retries {
    fn validate(&self, at: &str) -> Result<(), ValidationError> {
        check_range(&format!("{at}.attempts"), self.attempts, 0..=10)?;
        if let Some(t) = self.per_try_timeout {
            positive(&format!("{at}.per_try_timeout"), t)?;
        }
        for (i, cond) in self.retry_on.iter().enumerate() {
            if !RETRY_ON.contains(&cond.as_str()) {
                return Err(invalid(
                    format!("{at}.retry_on[{i}]"),
                    format!("'{cond}' is not one of {}", RETRY_ON.join(", ")),
                ));
            }
        }
        if let Some(b) = &self.backoff {
            positive(&format!("{at}.backoff.base_interval"), b.base_interval)?;
            if b.max_interval.is_some_and(|max| max < b.base_interval) {
                return Err(invalid(
                    format!("{at}.backoff.max_interval"),
                    "must not be less than base_interval",
                ));
            }
        }
        Ok(())
    }
}

impl HeaderChanges {
    fn validate(&self, at: &str) -> Result<(), ValidationError> {
        check_len(&format!("{at}.set"), self.set.len(), 0..=64)?;
        check_len(&format!("{at}.remove"), self.remove.len(), 0..=64)?;
        for (name, value) in &self.set {
            let field = format!("{at}.set.{name}");
            check_header_name(&field, name, false)?;
            if name == "host" {
                return Err(invalid(
                    field,
                    "Envoy does not let routes set the host header",
                ));
            }
            if value.len() > 8192 || value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(invalid(
                    field,
                    "value must be at most 8192 characters without control characters",
                ));
            }
        }
        for (i, name) in self.remove.iter().enumerate() {
            let field = format!("{at}.remove[{i}]");
            check_header_name(&field, name, false)?;
            if name == "host" {
                return Err(invalid(
                    field,
                    "Envoy does not let routes remove the host header",
                ));
            }
            if self.set.contains_key(name) {
                return Err(invalid(field, format!("'{name}' is both set and removed")));
            }
        }
        Ok(())
    }
}
