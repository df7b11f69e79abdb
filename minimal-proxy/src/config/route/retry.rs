//! `retry_policy` → [`RetryPolicy`] and `hash_policy[]` → [`HashPolicy`], with Envoy's
//! defaults: one retry, back-off from 25 ms up to ten times the base.

use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::{
    RetryPolicy as EnvoyRetry,
    retry_policy::RetryBackOff,
    route_action::{
        HashPolicy as EnvoyHash,
        hash_policy::{ConnectionProperties, Cookie, Header, PolicySpecifier},
    },
};

use crate::config::{
    HashPolicy, HashPolicyKind, RetryOn, RetryPolicy,
    check::{self, Refusal, Result, not_supported, required, unset},
};

/// Envoy's defaults.
const NUM_RETRIES: u32 = 1;
const BACKOFF_BASE: Duration = Duration::from_millis(25);
const BACKOFF_MAX_FACTOR: u32 = 10;

const RETRY_ON: &str = "5xx, gateway-error, connect-failure, reset, retriable-status-codes";

pub(super) fn retry_policy(r: &EnvoyRetry) -> Result<RetryPolicy> {
    let EnvoyRetry {
        retry_on,
        num_retries,
        per_try_timeout,
        per_try_idle_timeout,
        retry_priority,
        retry_host_predicate,
        retry_options_predicates,
        host_selection_retry_max_attempts,
        retriable_status_codes,
        retry_back_off,
        rate_limited_retry_back_off,
        retriable_headers,
        retriable_request_headers,
        refresh_cluster_on_retry,
    } = r;
    unset!(
        per_try_idle_timeout,
        retry_priority,
        retry_host_predicate,
        retry_options_predicates,
        rate_limited_retry_back_off,
        retriable_headers,
        retriable_request_headers,
        refresh_cluster_on_retry,
    );
    // Without host predicates, host selection is tried once whatever this says (0 and 1 both
    // mean once).
    if *host_selection_retry_max_attempts > 1 {
        return Err(not_supported("host_selection_retry_max_attempts"));
    }
    let retriable_status_codes = retriable_status_codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            u16::try_from(*code)
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| {
                    Refusal::new(
                        format!("retriable_status_codes[{i}]"),
                        format!("{code} is not an HTTP status code (100..=599)"),
                    )
                })
        })
        .collect::<Result<_>>()?;
    let (backoff_base, backoff_max) = match retry_back_off {
        None => (BACKOFF_BASE, BACKOFF_BASE * BACKOFF_MAX_FACTOR),
        Some(b) => backoff(b).map_err(|e| e.under("retry_back_off"))?,
    };
    Ok(RetryPolicy {
        retry_on: parse_retry_on(retry_on)?,
        num_retries: check::uint32(num_retries).unwrap_or(NUM_RETRIES),
        // Zero disables the per-try timeout, as in Envoy.
        per_try_timeout: check::duration("per_try_timeout", per_try_timeout)?
            .filter(|d| !d.is_zero()),
        retriable_status_codes,
        backoff_base,
        backoff_max,
    })
}

/// Comma-separated conditions; empty items are skipped (as Envoy splits), anything not
/// implemented is refused by name.
fn parse_retry_on(value: &str) -> Result<RetryOn> {
    let mut on = RetryOn::default();
    for item in value.split(',').filter(|i| !i.is_empty()) {
        match item {
            "5xx" => on.server_error = true,
            "gateway-error" => on.gateway_error = true,
            "connect-failure" => on.connect_failure = true,
            "reset" => on.reset = true,
            "retriable-status-codes" => on.retriable_status_codes = true,
            other => return Err(check::unsupported_value("retry_on", other, RETRY_ON)),
        }
    }
    Ok(on)
}

fn backoff(b: &RetryBackOff) -> Result<(Duration, Duration)> {
    let RetryBackOff {
        base_interval,
        max_interval,
    } = b;
    let base = check::positive_duration("base_interval", base_interval)?;
    let max = match check::duration("max_interval", max_interval)? {
        None => base * BACKOFF_MAX_FACTOR,
        Some(max) if max < base => {
            return Err(Refusal::new(
                "max_interval",
                "must be greater than or equal to base_interval",
            ));
        }
        Some(max) => max,
    };
    Ok((base, max))
}

pub(super) fn hash_policy(h: &EnvoyHash) -> Result<HashPolicy> {
    let EnvoyHash {
        terminal,
        policy_specifier,
    } = h;
    let kind = match policy_specifier {
        Some(PolicySpecifier::Header(header)) => {
            let Header {
                header_name,
                regex_rewrite,
            } = header;
            let under = |e: Refusal| e.under("header");
            check::nested(|| {
                unset!(regex_rewrite);
                Ok(())
            })
            .map_err(under)?;
            if header_name.is_empty() {
                return Err(under(required("header_name")));
            }
            HashPolicyKind::Header(header_name.to_ascii_lowercase())
        }
        Some(PolicySpecifier::Cookie(cookie)) => {
            let Cookie {
                name,
                ttl,
                path,
                attributes,
            } = cookie;
            let under = |e: Refusal| e.under("cookie");
            // With a ttl (even 0s, a session cookie) Envoy sets the cookie on the response
            // when the request lacks it; the router generates no cookies, so a ttl is refused
            // rather than silently hashing cookie-less requests at random.
            if ttl.is_some() {
                return Err(under(Refusal::new(
                    "ttl",
                    "cookie generation (ttl) is not supported by minimal-proxy; omit ttl",
                )));
            }
            // Only used with generation (the generated cookie's attributes).
            check::nested(|| {
                unset!(path, attributes);
                Ok(())
            })
            .map_err(under)?;
            if name.is_empty() {
                return Err(under(required("name")));
            }
            HashPolicyKind::Cookie(name.clone())
        }
        Some(PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip })) => {
            if !*source_ip {
                return Err(Refusal::new(
                    "connection_properties.source_ip",
                    "must be true (false hashes nothing)",
                ));
            }
            HashPolicyKind::SourceIp
        }
        Some(PolicySpecifier::QueryParameter(_)) => return Err(not_supported("query_parameter")),
        Some(PolicySpecifier::FilterState(_)) => return Err(not_supported("filter_state")),
        None => return Err(required("header")),
    };
    Ok(HashPolicy {
        kind,
        terminal: *terminal,
    })
}
