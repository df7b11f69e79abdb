//! Which proxies a listener or raw resource applies to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ValidationError, invalid, name::validate_label};

/// Every key given must match the proxy's node; an empty selector matches every proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Envoy's `node.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Envoy's `node.cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_cluster: Option<String>,
    /// String values that must equal the node's metadata fields of the same key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Selector {
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        for (key, value) in [
            ("node_id", &self.node_id),
            ("node_cluster", &self.node_cluster),
        ] {
            let bad = |v: &String| v.is_empty() || v.len() > 256 || v.chars().any(char::is_control);
            if value.as_ref().is_some_and(bad) {
                return Err(invalid(
                    format!("{field}.{key}"),
                    "must be 1..=256 characters without control characters",
                ));
            }
        }
        for (k, v) in &self.metadata {
            validate_label(&format!("{field}.metadata.{k}"), k)?;
            if v.len() > 256 || v.chars().any(char::is_control) {
                return Err(invalid(
                    format!("{field}.metadata.{k}"),
                    "must be at most 256 characters without control characters",
                ));
            }
        }
        Ok(())
    }
}
