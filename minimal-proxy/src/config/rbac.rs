//! Envoy's RBAC filters → [`RbacFilter`]: the HTTP filter (`envoy.filters.http.rbac`, before
//! the router) and the network filter (`envoy.filters.network.rbac`, before the TCP proxy).
//! Enforced rules and shadow rules, ALLOW or DENY, with the principals and permissions of
//! `rbac/matcher.rs`. Matcher trees, CEL conditions, audit logging, per-rule stats, the LOG
//! action and continuous or delayed network enforcement are refused by field.

mod matcher;

use envoy_types::pb::{
    envoy::{
        config::{
            listener::v3::{Filter, filter::ConfigType},
            rbac::v3::{Policy, Rbac as EnvoyRules, rbac::Action},
        },
        extensions::filters::{
            http::rbac::v3::Rbac as EnvoyHttpRbac,
            network::rbac::v3::{Rbac as EnvoyNetworkRbac, rbac::EnforcementType},
        },
    },
    google::protobuf::Any,
};
use prost::Name;

use super::{
    HeaderMatch, HeaderMatchKind,
    check::{self, Refusal, Result, required, unset},
};

/// One RBAC filter. Its counters are `<scope>rbac.<rules_stat_prefix>.allowed|denied` and
/// `<scope>rbac.<shadow_rules_stat_prefix>.shadow_allowed|shadow_denied`, where the scope is
/// `http.<connection manager stat_prefix>.` (HTTP) or the network filter's `stat_prefix`.
#[derive(Debug, Clone, PartialEq)]
pub struct RbacFilter {
    /// Enforced: a denial answers 403 (HTTP) or closes the connection (network). `None`:
    /// the filter lets everything through and counts nothing enforced.
    pub rules: Option<RbacRules>,
    /// Only counted (`shadow_allowed` / `shadow_denied`): shadow rules never block.
    pub shadow_rules: Option<RbacRules>,
    /// Empty for the network filter (its `stat_prefix` opens the scope instead).
    pub rules_stat_prefix: String,
    pub shadow_rules_stat_prefix: String,
}

/// `envoy.filters.network.rbac`: an [`RbacFilter`] checked once per connection.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRbac {
    /// Opens the counters' names: `<stat_prefix>rbac.denied` (Envoy adds a `.` when the
    /// prefix does not end with one).
    pub stat_prefix: String,
    pub filter: RbacFilter,
}

/// One set of rules: what a matching policy means, and the policies.
#[derive(Debug, Clone, PartialEq)]
pub struct RbacRules {
    pub action: RbacAction,
    /// Sorted by name: Envoy tries them in that order and reports the first that matches.
    pub policies: Vec<RbacPolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacAction {
    /// Allowed iff some policy matches (no policy at all: everything is denied).
    Allow,
    /// Denied iff some policy matches.
    Deny,
}

/// A policy matches when any of its permissions and any of its principals match.
#[derive(Debug, Clone, PartialEq)]
pub struct RbacPolicy {
    pub name: String,
    pub permissions: Vec<RbacMatcher>,
    pub principals: Vec<RbacMatcher>,
}

/// A permission or a principal (Envoy evaluates both with the same matchers; the conversion
/// takes from each only the kinds Envoy allows there).
#[derive(Debug, Clone, PartialEq)]
pub enum RbacMatcher {
    Any,
    And(Vec<RbacMatcher>),
    Or(Vec<RbacMatcher>),
    Not(Box<RbacMatcher>),
    /// A peer that presented a verified certificate; with a name, one of its URI SANs, DNS
    /// SANs or its subject must match it (principals only).
    Authenticated(Option<HeaderMatchKind>),
    /// A request header (pseudo-headers included), as route header matchers.
    Header(HeaderMatch),
    /// The request path without its query.
    UrlPath(HeaderMatchKind),
}

/// `envoy.extensions.filters.http.rbac.v3.RBAC`.
pub(super) fn http_rbac(any: &Any) -> Result<RbacFilter> {
    let f: EnvoyHttpRbac = check::decode("", any)?;
    let EnvoyHttpRbac {
        rules,
        rules_stat_prefix,
        matcher,
        shadow_rules,
        shadow_matcher,
        shadow_rules_stat_prefix,
        track_per_rule_stats,
    } = &f;
    unset!(matcher, shadow_matcher, track_per_rule_stats);
    Ok(RbacFilter {
        rules: optional_rules("rules", rules)?,
        shadow_rules: optional_rules("shadow_rules", shadow_rules)?,
        rules_stat_prefix: rules_stat_prefix.clone(),
        shadow_rules_stat_prefix: shadow_rules_stat_prefix.clone(),
    })
}

/// `envoy.extensions.filters.network.rbac.v3.RBAC`, enforced once per connection (Envoy's
/// default `ONE_TIME_ON_FIRST_BYTE`; the proxy decides at accept, before connecting upstream).
pub(super) fn network_rbac(any: &Any) -> Result<NetworkRbac> {
    let f: EnvoyNetworkRbac = check::decode("", any)?;
    let EnvoyNetworkRbac {
        rules,
        matcher,
        shadow_rules,
        shadow_matcher,
        shadow_rules_stat_prefix,
        stat_prefix,
        enforcement_type,
        delay_deny,
    } = &f;
    unset!(matcher, shadow_matcher, delay_deny);
    const ENFORCEMENT: &str = "ONE_TIME_ON_FIRST_BYTE";
    match EnforcementType::try_from(*enforcement_type) {
        Ok(EnforcementType::OneTimeOnFirstByte) => {}
        Ok(other) => {
            return Err(check::unsupported_value(
                "enforcement_type",
                other.as_str_name(),
                ENFORCEMENT,
            ));
        }
        Err(_) => {
            return Err(check::unknown_enum(
                "enforcement_type",
                *enforcement_type,
                ENFORCEMENT,
            ));
        }
    }
    if stat_prefix.is_empty() {
        return Err(required("stat_prefix"));
    }
    Ok(NetworkRbac {
        stat_prefix: stat_prefix.clone(),
        filter: RbacFilter {
            rules: optional_rules("rules", rules)?,
            shadow_rules: optional_rules("shadow_rules", shadow_rules)?,
            rules_stat_prefix: String::new(),
            shadow_rules_stat_prefix: shadow_rules_stat_prefix.clone(),
        },
    })
}

/// The filters of a chain before its last (proxying) one: network RBAC filters only.
pub(super) fn network_filters(before: &[Filter]) -> Result<Vec<NetworkRbac>> {
    before
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let Filter {
                // Inert: Envoy finds the filter by its config's type.
                name: _,
                config_type,
            } = f;
            match config_type {
                Some(ConfigType::TypedConfig(any)) if check::is::<EnvoyNetworkRbac>(any) => {
                    network_rbac(any).map_err(|e| e.under(format!("filters[{i}].typed_config")))
                }
                _ => Err(Refusal::new(
                    "filters",
                    format!(
                        "only one network filter (an HTTP connection manager or a TCP proxy), \
                         after any {} filters, is supported by minimal-proxy, got {} filters",
                        EnvoyNetworkRbac::full_name(),
                        before.len() + 1
                    ),
                )),
            }
        })
        .collect()
}

/// Network RBAC before an HTTP connection manager is not implemented: the HTTP RBAC filter
/// does the same per request.
pub(super) fn not_before_hcm() -> Refusal {
    Refusal::new(
        "filters[0]",
        format!(
            "{} is supported by minimal-proxy before a TCP proxy only; before an HTTP \
             connection manager use its HTTP filter {}",
            EnvoyNetworkRbac::full_name(),
            EnvoyHttpRbac::full_name()
        ),
    )
}

fn optional_rules(field: &str, rules: &Option<EnvoyRules>) -> Result<Option<RbacRules>> {
    rules
        .as_ref()
        .map(|r| convert_rules(r).map_err(|e| e.under(field)))
        .transpose()
}

fn convert_rules(r: &EnvoyRules) -> Result<RbacRules> {
    let EnvoyRules {
        action,
        policies,
        audit_logging_options,
    } = r;
    unset!(audit_logging_options);
    const ACTIONS: &str = "ALLOW, DENY";
    let action = match Action::try_from(*action) {
        Ok(Action::Allow) => RbacAction::Allow,
        Ok(Action::Deny) => RbacAction::Deny,
        Ok(other) => {
            return Err(check::unsupported_value(
                "action",
                other.as_str_name(),
                ACTIONS,
            ));
        }
        Err(_) => return Err(check::unknown_enum("action", *action, ACTIONS)),
    };
    let mut names: Vec<&String> = policies.keys().collect();
    names.sort();
    let policies = names
        .into_iter()
        .map(|name| policy(name, &policies[name]).map_err(|e| e.under(format!("policies[{name}]"))))
        .collect::<Result<_>>()?;
    Ok(RbacRules { action, policies })
}

fn policy(name: &str, p: &Policy) -> Result<RbacPolicy> {
    let Policy {
        permissions,
        principals,
        condition,
        checked_condition,
        cel_config,
    } = p;
    unset!(condition, checked_condition, cel_config);
    if permissions.is_empty() {
        return Err(Refusal::new(
            "permissions",
            "must hold at least one permission (`any: true` for every request)",
        ));
    }
    if principals.is_empty() {
        return Err(Refusal::new(
            "principals",
            "must hold at least one principal (`any: true` for every peer)",
        ));
    }
    let permissions = permissions
        .iter()
        .enumerate()
        .map(|(i, p)| matcher::permission(p).map_err(|e| e.under(format!("permissions[{i}]"))))
        .collect::<Result<_>>()?;
    let principals = principals
        .iter()
        .enumerate()
        .map(|(i, p)| matcher::principal(p).map_err(|e| e.under(format!("principals[{i}]"))))
        .collect::<Result<_>>()?;
    Ok(RbacPolicy {
        name: name.to_string(),
        permissions,
        principals,
    })
}
