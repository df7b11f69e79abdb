//! The RBAC filters' counters with Envoy's names: `http.<conn manager>.rbac.<prefix>.allowed`
//! (HTTP) and `<stat_prefix>rbac.<prefix>.allowed` (network), and `denied`, `shadow_allowed`,
//! `shadow_denied` beside them. Filters whose names coincide share the counters, as in Envoy.

use std::sync::atomic::{AtomicBool, Ordering};

use super::Counter;

/// Where one RBAC filter's counters live.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RbacScope {
    /// `http.<conn_manager>.rbac.<prefix>.`: the HTTP filter's `rules_stat_prefix` or
    /// `shadow_rules_stat_prefix` (empty: `http.<conn_manager>.rbac.`).
    Http {
        conn_manager: String,
        prefix: String,
    },
    /// `<stat_prefix>rbac.<prefix>.`: the network filter's `stat_prefix` and, for the shadow
    /// counters, its `shadow_rules_stat_prefix` (Envoy adds the `.`s that are missing).
    Network { stat_prefix: String, prefix: String },
}

/// The counters of one scope. Envoy creates `allowed` and `denied` for a filter's rules and
/// `shadow_allowed` and `shadow_denied` for its shadow rules when the filter is configured
/// (so they show at 0); the flags say which pairs exist.
#[derive(Debug, Default)]
pub struct RbacStats {
    pub allowed: Counter,
    pub denied: Counter,
    pub shadow_allowed: Counter,
    pub shadow_denied: Counter,
    enforced: AtomicBool,
    shadow: AtomicBool,
}

impl RbacStats {
    /// Marks the enforced (`allowed`, `denied`) or shadow pair as configured.
    pub(super) fn create(&self, shadow: bool) {
        let flag = if shadow { &self.shadow } else { &self.enforced };
        flag.store(true, Ordering::Relaxed);
    }

    /// The counters that exist, by name.
    pub(super) fn counters(&self) -> Vec<(&'static str, &Counter)> {
        let mut out = Vec::with_capacity(4);
        if self.enforced.load(Ordering::Relaxed) {
            out.push(("allowed", &self.allowed));
            out.push(("denied", &self.denied));
        }
        if self.shadow.load(Ordering::Relaxed) {
            out.push(("shadow_allowed", &self.shadow_allowed));
            out.push(("shadow_denied", &self.shadow_denied));
        }
        out
    }
}

impl RbacScope {
    /// The dotted prefix of the scope's counters, ending with `.` (Envoy's name).
    pub fn dotted(&self) -> String {
        let (base, prefix) = match self {
            RbacScope::Http {
                conn_manager,
                prefix,
            } => (format!("http.{conn_manager}."), prefix),
            RbacScope::Network {
                stat_prefix,
                prefix,
            } => (stat_prefix.clone(), prefix),
        };
        let scope = join(&join(&base, "rbac."), prefix);
        join(&scope, "")
    }
}

/// Envoy's `statPrefixJoin`: `prefix` and `token` with one `.` between them (none added when
/// `prefix` is empty or already ends with one); an empty `token` leaves `prefix` ending in `.`.
fn join(prefix: &str, token: &str) -> String {
    if prefix.is_empty() {
        token.to_string()
    } else if prefix.ends_with('.') {
        format!("{prefix}{token}")
    } else {
        format!("{prefix}.{token}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_envoys() {
        let http = |prefix: &str| RbacScope::Http {
            conn_manager: "inbound|web".into(),
            prefix: prefix.into(),
        };
        assert_eq!(http("").dotted(), "http.inbound|web.rbac.");
        assert_eq!(http("deny-x").dotted(), "http.inbound|web.rbac.deny-x.");
        assert_eq!(http("deny-x.").dotted(), "http.inbound|web.rbac.deny-x.");
        let net = |stat_prefix: &str, prefix: &str| RbacScope::Network {
            stat_prefix: stat_prefix.into(),
            prefix: prefix.into(),
        };
        assert_eq!(
            net("inbound|db.default-deny.", "").dotted(),
            "inbound|db.default-deny.rbac."
        );
        assert_eq!(net("tin", "shw").dotted(), "tin.rbac.shw.");
    }
}
