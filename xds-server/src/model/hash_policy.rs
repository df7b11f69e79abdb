//! A rule's hash policy: what a consistent-hash load balancer (a destination service with
//! `lb_policy` `ring_hash` or `maglev`) hashes to pick an endpoint, so requests that share a
//! header, a cookie or a client address keep reaching the same endpoint.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Duration, ValidationError, invalid, syntax::check_header_name};

/// The most entries one rule's `hash_policy` may have.
pub const MAX_HASH_POLICIES: usize = 8;

/// One input to the hash: exactly one of `header`, `cookie` or `source_ip`. The entries of a
/// rule each add to one combined hash; an entry that produced a value and is `terminal` ends
/// the list, so the entries after it act as fallbacks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HashPolicy {
    /// Hash the value of this request header (a lowercase name; pseudo-headers such as
    /// `:authority` allowed). Requests without it add nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "x-user")]
    pub header: Option<String>,
    /// Hash the value of this cookie. Requests without it add nothing, unless `ttl` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "session")]
    pub cookie: Option<String>,
    /// Only with `cookie`: when a request lacks the cookie, the proxy sets one with this
    /// lifetime (`"0s"`: a session cookie), so the client sticks to the endpoint chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1h")]
    pub ttl: Option<Duration>,
    /// `true`: hash the client's IP address (every request has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<bool>,
    /// Stop at this entry when it produced a value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminal: bool,
}

/// What one entry hashes, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashOn<'a> {
    Header(&'a str),
    Cookie {
        name: &'a str,
        ttl: Option<Duration>,
    },
    SourceIp,
}

impl HashPolicy {
    /// What this entry hashes; `None` unless it names exactly one input (see `validate`).
    pub fn hash_on(&self) -> Option<HashOn<'_>> {
        match (&self.header, &self.cookie, self.source_ip) {
            (Some(h), None, None) => Some(HashOn::Header(h)),
            (None, Some(c), None) => Some(HashOn::Cookie {
                name: c,
                ttl: self.ttl,
            }),
            (None, None, Some(true)) => Some(HashOn::SourceIp),
            _ => None,
        }
    }

    /// Checks one entry; `at` is its field path, e.g. `rules[0].hash_policy[1]`.
    pub(super) fn validate(&self, at: &str) -> Result<(), ValidationError> {
        if self.source_ip == Some(false) {
            return Err(invalid(
                format!("{at}.source_ip"),
                "must be true when given (it hashes the client's address); leave it out otherwise",
            ));
        }
        let given = [
            self.header.is_some(),
            self.cookie.is_some(),
            self.source_ip.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(invalid(
                at,
                "give exactly one of \"header\", \"cookie\" or \"source_ip\"",
            ));
        }
        if let Some(header) = &self.header {
            check_header_name(&format!("{at}.header"), header, true)?;
        }
        if let Some(cookie) = &self.cookie {
            check_cookie_name(&format!("{at}.cookie"), cookie)?;
        }
        if self.ttl.is_some() && self.cookie.is_none() {
            return Err(invalid(
                format!("{at}.ttl"),
                "only applies to a cookie: add \"cookie\" or remove \"ttl\"",
            ));
        }
        Ok(())
    }
}

/// A cookie name is an HTTP token (RFC 6265): letters, digits and ``!#$%&'*+-.^_`|~``.
fn check_cookie_name(field: &str, name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "'{name}' is not a valid cookie name (1..=256 letters, digits and !#$%&'*+-.^_`|~)"
            ),
        ))
    }
}
