//! A chain of RBAC filters as Envoy runs it: each filter first checks its shadow rules (only
//! counted), then its enforced rules; an allowed check moves on to the next filter, the first
//! denial ends the chain. HTTP filters count under the connection manager's `http.<prefix>.`,
//! network filters under their own `stat_prefix`.

use std::{fmt, sync::Arc};

use super::{Engine, Input};
use crate::{
    config::{NetworkRbac, RbacFilter},
    stats::{RbacScope, RbacStats, Registry},
};

/// One listener generation's RBAC filters, in order, compiled.
#[derive(Debug)]
pub struct RbacFilters(Box<[Filter]>);

#[derive(Debug)]
struct Filter {
    rules: Option<(Engine, Arc<RbacStats>)>,
    shadow: Option<(Engine, Arc<RbacStats>)>,
}

/// A denial: which filter's policy caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied<'a> {
    /// The matched policy (DENY rules); `None` when no policy matched (ALLOW rules).
    pub policy: Option<&'a str>,
}

impl RbacFilters {
    /// The HTTP filters of the connection manager whose `stat_prefix` is `conn_manager`;
    /// `None` when there are none (nothing to check per request).
    pub fn http(config: &[RbacFilter], conn_manager: &str, stats: &Registry) -> Option<Self> {
        let scope = |prefix: &str| RbacScope::Http {
            conn_manager: conn_manager.to_string(),
            prefix: prefix.to_string(),
        };
        Self::compile(config.iter().map(|f| {
            Filter::new(
                f,
                stats,
                scope(&f.rules_stat_prefix),
                scope(&f.shadow_rules_stat_prefix),
            )
        }))
    }

    /// A TCP proxy's network filters; `None` when there are none.
    pub fn network(config: &[NetworkRbac], stats: &Registry) -> Option<Self> {
        let scope = |stat_prefix: &str, prefix: &str| RbacScope::Network {
            stat_prefix: stat_prefix.to_string(),
            prefix: prefix.to_string(),
        };
        Self::compile(config.iter().map(|n| {
            Filter::new(
                &n.filter,
                stats,
                scope(&n.stat_prefix, &n.filter.rules_stat_prefix),
                scope(&n.stat_prefix, &n.filter.shadow_rules_stat_prefix),
            )
        }))
    }

    fn compile(filters: impl Iterator<Item = Filter>) -> Option<Self> {
        let filters: Box<[Filter]> = filters.collect();
        (!filters.is_empty()).then_some(RbacFilters(filters))
    }

    /// Runs the chain for one request or connection, counting as it goes.
    pub fn check(&self, input: &Input<'_>) -> Result<(), Denied<'_>> {
        for filter in &self.0 {
            if let Some((engine, stats)) = &filter.shadow {
                let counter = if engine.check(input).allowed {
                    &stats.shadow_allowed
                } else {
                    &stats.shadow_denied
                };
                counter.inc();
            }
            if let Some((engine, stats)) = &filter.rules {
                let decision = engine.check(input);
                if !decision.allowed {
                    stats.denied.inc();
                    return Err(Denied {
                        policy: decision.policy,
                    });
                }
                stats.allowed.inc();
            }
        }
        Ok(())
    }
}

impl Filter {
    /// Envoy creates both pairs of counters for every filter, whichever rules it has.
    fn new(config: &RbacFilter, stats: &Registry, rules: RbacScope, shadow: RbacScope) -> Filter {
        let rules_stats = stats.rbac(rules, false);
        let shadow_stats = stats.rbac(shadow, true);
        Filter {
            rules: config.rules.as_ref().map(|r| (Engine::new(r), rules_stats)),
            shadow: config
                .shadow_rules
                .as_ref()
                .map(|r| (Engine::new(r), shadow_stats)),
        }
    }
}

impl fmt::Display for Denied<'_> {
    /// Envoy's response code (HTTP) or connection termination (network) details.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Envoy replaces whitespace so the detail stays one token in access logs.
        let policy = self.policy.unwrap_or("none");
        f.write_str("rbac_access_denied_matched_policy[")?;
        for c in policy.chars() {
            let c = if c.is_whitespace() { '_' } else { c };
            fmt::Write::write_char(f, c)?;
        }
        f.write_str("]")
    }
}
