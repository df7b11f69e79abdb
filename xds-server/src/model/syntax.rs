//! Format checks for the strings and lists operators write in routes: list lengths, host
//! names, header names and regexes. Each names the field and says what would be accepted.

use super::{ValidationError, invalid};

/// `len` lies in `range`.
pub(super) fn check_len(
    field: &str,
    len: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), ValidationError> {
    if range.contains(&len) {
        return Ok(());
    }
    Err(invalid(
        field,
        format!(
            "must have {}..={} entries, got {len}",
            range.start(),
            range.end()
        ),
    ))
}

/// `*`, or a lowercase host name with an optional leading `*` wildcard and optional `:port`.
/// Every dot-separated label is non-empty; only a label after `*` may start with `-`.
pub(super) fn check_host(field: &str, host: &str) -> Result<(), ValidationError> {
    if host == "*" {
        return Ok(());
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let (wildcard, body) = match name.strip_prefix('*') {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    let label_ok = |(i, label): (usize, &str)| {
        let first_after_wildcard = wildcard && i == 0;
        let chars_ok = label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        chars_ok
            && label.len() <= 63
            && (first_after_wildcard || (!label.is_empty() && !label.starts_with('-')))
    };
    let body_ok =
        !body.is_empty() && body.len() <= 253 && body.split('.').enumerate().all(label_ok);
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if body_ok && port_ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "'{host}' is not a host: use '*', 'name.example.com' or '*.example.com' \
                 (lowercase, optional :port)"
            ),
        ))
    }
}

/// Header names are lowercase HTTP tokens; pseudo-headers (`:path`) only where `pseudo` is
/// allowed, i.e. in matches.
pub(super) fn check_header_name(
    field: &str,
    name: &str,
    pseudo: bool,
) -> Result<(), ValidationError> {
    let token = name.strip_prefix(':').filter(|_| pseudo).unwrap_or(name);
    let ok = !token.is_empty()
        && token.len() <= 256
        && token
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "!#$%&'*+-.^_`|~".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("'{name}' is not a valid header name (lowercase token characters)"),
        ))
    }
}

/// The regex must compile (Rust's `regex` accepts the RE2 subset Envoy uses) and stay small.
pub(super) fn check_regex(field: &str, re: &str) -> Result<(), ValidationError> {
    if re.len() > 1024 {
        return Err(invalid(field, "must be at most 1024 characters"));
    }
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map(|_| ())
        .map_err(|e| invalid(field, format!("not a valid regex: {e}")))
}
