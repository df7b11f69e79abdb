//! `RouteMatch` → [`RouteMatch`]: path (prefix, exact, anchored regex), header matchers and
//! case sensitivity. Query, cookie, gRPC, TLS, metadata and runtime matches are refused.
//!
//! Regexes are stored compiled as written; Envoy's `safe_regex` must match the whole path
//! (without the query) or the whole header value, so the route table anchors them. An
//! `ignore_case` string match becomes a case-insensitive regex that anchors itself.

use envoy_types::pb::envoy::{
    config::route::v3::{
        HeaderMatcher, RouteMatch as EnvoyMatch, header_matcher::HeaderMatchSpecifier,
        route_match::PathSpecifier,
    },
    r#type::matcher::v3::{
        RegexMatcher, StringMatcher,
        regex_matcher::{EngineType, GoogleRe2},
        string_matcher::MatchPattern,
    },
};

use crate::config::{
    HeaderMatch, HeaderMatchKind, PathMatch, RouteMatch,
    check::{self, Refusal, Result, not_supported, required, unset},
};

pub(super) fn route_match(m: &EnvoyMatch) -> Result<RouteMatch> {
    let EnvoyMatch {
        case_sensitive,
        runtime_fraction,
        headers,
        query_parameters,
        cookies,
        grpc,
        tls_context,
        dynamic_metadata,
        filter_state,
        path_specifier,
    } = m;
    unset!(
        runtime_fraction,
        query_parameters,
        cookies,
        grpc,
        tls_context,
        dynamic_metadata,
        filter_state,
    );
    let path = match path_specifier {
        Some(PathSpecifier::Prefix(p)) => PathMatch::Prefix(p.clone()),
        Some(PathSpecifier::Path(p)) => PathMatch::Exact(p.clone()),
        Some(PathSpecifier::SafeRegex(r)) => {
            PathMatch::Regex(regex(r).map_err(|e| e.under("safe_regex"))?)
        }
        Some(PathSpecifier::ConnectMatcher(_)) => return Err(not_supported("connect_matcher")),
        Some(PathSpecifier::PathSeparatedPrefix(_)) => {
            return Err(not_supported("path_separated_prefix"));
        }
        Some(PathSpecifier::PathMatchPolicy(_)) => {
            return Err(not_supported("path_match_policy"));
        }
        None => return Err(required("prefix")),
    };
    let headers = headers
        .iter()
        .enumerate()
        .map(|(i, h)| header_matcher(h).map_err(|r| r.under(format!("headers[{i}]"))))
        .collect::<Result<_>>()?;
    Ok(RouteMatch {
        path,
        headers,
        // Envoy's default: case-sensitive (it does not apply to regexes).
        case_sensitive: case_sensitive.as_ref().is_none_or(|v| v.value),
    })
}

#[allow(deprecated)] // The deprecated specifiers are still honoured, as by Envoy.
pub(in crate::config) fn header_matcher(h: &HeaderMatcher) -> Result<HeaderMatch> {
    let HeaderMatcher {
        name,
        invert_match,
        treat_missing_header_as_empty,
        header_match_specifier,
    } = h;
    unset!(treat_missing_header_as_empty);
    if name.is_empty() {
        return Err(required("name"));
    }
    let kind = match header_match_specifier {
        // No specifier: the header must be present, as in Envoy.
        None => HeaderMatchKind::Present(true),
        Some(HeaderMatchSpecifier::PresentMatch(p)) => HeaderMatchKind::Present(*p),
        Some(HeaderMatchSpecifier::ExactMatch(s)) => HeaderMatchKind::Exact(s.clone()),
        Some(HeaderMatchSpecifier::PrefixMatch(s)) => HeaderMatchKind::Prefix(s.clone()),
        Some(HeaderMatchSpecifier::SuffixMatch(s)) => HeaderMatchKind::Suffix(s.clone()),
        Some(HeaderMatchSpecifier::ContainsMatch(s)) => HeaderMatchKind::Contains(s.clone()),
        Some(HeaderMatchSpecifier::SafeRegexMatch(r)) => {
            HeaderMatchKind::Regex(regex(r).map_err(|e| e.under("safe_regex_match"))?)
        }
        Some(HeaderMatchSpecifier::StringMatch(s)) => {
            string_match(s).map_err(|e| e.under("string_match"))?
        }
        Some(HeaderMatchSpecifier::RangeMatch(_)) => return Err(not_supported("range_match")),
    };
    Ok(HeaderMatch {
        name: name.to_ascii_lowercase(),
        kind,
        invert: *invert_match,
    })
}

/// A `StringMatcher`; `ignore_case` is turned into a case-insensitive anchored regex (it has
/// no effect on `safe_regex`, as in Envoy).
pub(in crate::config) fn string_match(s: &StringMatcher) -> Result<HeaderMatchKind> {
    let StringMatcher {
        ignore_case,
        match_pattern,
    } = s;
    // `pattern` has `{}` where the escaped text goes.
    let text = |field: &str, text: &str, plain: fn(String) -> HeaderMatchKind, pattern: &str| {
        if !*ignore_case {
            return Ok(plain(text.to_string()));
        }
        regex::Regex::new(&pattern.replace("{}", &regex::escape(text)))
            .map(HeaderMatchKind::Regex)
            .map_err(|e| Refusal::new(field, format!("does not compile as a regex: {e}")))
    };
    match match_pattern {
        Some(MatchPattern::Exact(t)) => text("exact", t, HeaderMatchKind::Exact, "(?i)^(?:{})$"),
        Some(MatchPattern::Prefix(t)) => {
            text("prefix", t, HeaderMatchKind::Prefix, "(?is)^(?:{}).*$")
        }
        Some(MatchPattern::Suffix(t)) => {
            text("suffix", t, HeaderMatchKind::Suffix, "(?is)^.*(?:{})$")
        }
        Some(MatchPattern::Contains(t)) => text(
            "contains",
            t,
            HeaderMatchKind::Contains,
            "(?is)^.*(?:{}).*$",
        ),
        Some(MatchPattern::SafeRegex(r)) => Ok(HeaderMatchKind::Regex(
            regex(r).map_err(|e| e.under("safe_regex"))?,
        )),
        Some(MatchPattern::Custom(_)) => Err(not_supported("custom")),
        None => Err(required("exact")),
    }
}

/// An Envoy `safe_regex` (RE2 syntax); what the `regex` crate refuses is refused.
#[allow(deprecated)] // `google_re2` is named to be refused when tuned.
pub(super) fn regex(r: &RegexMatcher) -> Result<regex::Regex> {
    let RegexMatcher { regex, engine_type } = r;
    match engine_type {
        None => {}
        Some(EngineType::GoogleRe2(re2)) => {
            let GoogleRe2 { max_program_size } = re2;
            check::nested(|| {
                unset!(max_program_size);
                Ok(())
            })
            .map_err(|e| e.under("google_re2"))?;
        }
    }
    let refuse = |e: regex::Error| {
        Refusal::new(
            "regex",
            format!("'{regex}' is not supported by minimal-proxy's regex engine: {e}"),
        )
    };
    // Anchored, the way the route table uses it, so that what is accepted compiles there.
    regex::Regex::new(&format!("^(?:{regex})$")).map_err(refuse)?;
    regex::Regex::new(regex).map_err(refuse)
}
