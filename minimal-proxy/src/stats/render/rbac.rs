//! The RBAC counters as Envoy renders them: HTTP ones tagged (`envoy_http_rbac_denied
//! {envoy_rbac_http_prefix="deny-x",envoy_http_conn_manager_prefix="in"}`), network ones
//! untagged, their family the whole name (`envoy_tin_deny_rbac_denied{}`).

use std::sync::Arc;

use super::{Metric, Sample};
use crate::stats::{RbacScope, RbacStats};

pub(super) fn render<'a>(out: &mut Vec<Metric<'a>>, scope: &RbacScope, stats: &'a Arc<RbacStats>) {
    let dotted = scope.dotted();
    for (stat, counter) in stats.counters() {
        let value = counter.get();
        let name = format!("{dotted}{stat}");
        let (family, extracted, labels) = match scope {
            RbacScope::Http {
                conn_manager,
                prefix,
            } => {
                let mut labels = Vec::with_capacity(2);
                let prefix = prefix.trim_end_matches('.');
                if !prefix.is_empty() {
                    labels.push(("envoy_rbac_http_prefix", prefix.to_string()));
                }
                labels.push(("envoy_http_conn_manager_prefix", conn_manager.clone()));
                (
                    format!("envoy_http_rbac_{stat}"),
                    format!("http.rbac.{stat}"),
                    labels,
                )
            }
            RbacScope::Network { .. } => (prometheus_name(&name), name.clone(), Vec::new()),
        };
        out.push(Metric {
            name,
            family,
            extracted,
            labels,
            value: Sample::Counter(value),
            used: value > 0,
        });
    }
}

/// Envoy's Prometheus name for an untagged stat: `envoy_` and the name with every character
/// outside `[a-zA-Z0-9_]` made `_`.
fn prometheus_name(name: &str) -> String {
    let body: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("envoy_{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_names_are_sanitized() {
        assert_eq!(
            prometheus_name("inbound|db.default-deny.rbac.denied"),
            "envoy_inbound_db_default_deny_rbac_denied"
        );
    }
}
