//! A traffic permission: which services may call a service, optionally narrowed to paths and
//! methods. Enforced by the destination's sidecars on their inbound listener, matching each
//! caller by the SPIFFE ID of its certificate (so it needs mTLS to match anyone).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Kind, Labels, Reference, Spec, ValidationError, invalid,
    labels::{labels_schema, validate_labels},
    name::validate_name,
    service::check_http_path,
};

/// `from` callers to the service `to`: allowed or denied. Deny wins over allow; a call no
/// permission names gets the mesh default (`--permissions-default`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficPermission {
    /// The calling services, or `"*"` for any caller with a mesh certificate.
    #[schema(example = json!(["web"]))]
    pub from: Vec<String>,
    /// The service called.
    #[schema(example = "api")]
    pub to: String,
    pub action: PermissionAction,
    /// Request path prefixes the permission covers (HTTP services only); absent = every path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["/admin"]))]
    pub paths: Vec<String>,
    /// Request methods the permission covers (HTTP services only); absent = every method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["POST", "DELETE"]))]
    pub methods: Vec<String>,
    /// A shadow deny only logs and counts what it would deny (Envoy's `shadow_denied`
    /// statistic): for trying a deny out before enforcing it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    /// The operator's labels (Kubernetes-style keys and values, at most 64): found by
    /// `?selector=` on lists; never sent to proxies.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    #[schema(schema_with = labels_schema)]
    pub labels: Labels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PermissionAction {
    Allow,
    Deny,
}

/// Any caller with a mesh certificate, in `from`.
pub const ANY_CALLER: &str = "*";

/// Bounds on one permission: plenty for a real policy, small enough to catch a runaway list.
const MAX_FROM: usize = 100;
const MAX_PATHS: usize = 50;

/// The methods a permission may name (HTTP's, plus gRPC's POST).
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

impl TrafficPermission {
    /// Whether every caller with a mesh certificate is covered.
    pub fn from_any(&self) -> bool {
        self.from.iter().any(|f| f == ANY_CALLER)
    }

    /// The named calling services (without `*`).
    pub fn from_services(&self) -> impl Iterator<Item = &str> {
        self.from
            .iter()
            .map(String::as_str)
            .filter(|f| *f != ANY_CALLER)
    }

    /// Whether it narrows by path or method (which only HTTP inbound listeners can check).
    pub fn is_narrowed(&self) -> bool {
        !self.paths.is_empty() || !self.methods.is_empty()
    }
}

impl Spec for TrafficPermission {
    const KIND: Kind = Kind::TrafficPermission;

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        validate_labels("labels", &self.labels)?;
        validate_name("to", &self.to)?;
        if self.from.is_empty() {
            return Err(invalid(
                "from",
                "name at least one calling service, or \"*\" for any caller with a mesh certificate",
            ));
        }
        if self.from.len() > MAX_FROM {
            return Err(invalid("from", format!("at most {MAX_FROM} callers")));
        }
        for (i, f) in self.from.iter().enumerate() {
            if f != ANY_CALLER {
                validate_name(&format!("from[{i}]"), f)?;
            }
            if self.from[..i].contains(f) {
                return Err(invalid(
                    format!("from[{i}]"),
                    format!("'{f}' is listed twice"),
                ));
            }
        }
        if self.paths.len() > MAX_PATHS {
            return Err(invalid(
                "paths",
                format!("at most {MAX_PATHS} path prefixes"),
            ));
        }
        for (i, p) in self.paths.iter().enumerate() {
            check_http_path(&format!("paths[{i}]"), p)?;
        }
        for (i, m) in self.methods.iter().enumerate() {
            if !METHODS.contains(&m.as_str()) {
                return Err(invalid(
                    format!("methods[{i}]"),
                    format!("'{m}' is not a method: use one of {}", METHODS.join(", ")),
                ));
            }
            if self.methods[..i].contains(m) {
                return Err(invalid(
                    format!("methods[{i}]"),
                    format!("'{m}' is listed twice"),
                ));
            }
        }
        if self.shadow && self.action == PermissionAction::Allow {
            return Err(invalid(
                "shadow",
                "only a deny can be shadowed (it then only counts what it would deny); remove \
                 shadow or make the action deny",
            ));
        }
        Ok(())
    }

    fn references(&self, _name: &str) -> Vec<Reference> {
        let mut refs = vec![Reference::to(Kind::Service, &self.to, "to")];
        for (i, f) in self.from.iter().enumerate() {
            if f != ANY_CALLER {
                refs.push(Reference::to(Kind::Service, f, format!("from[{i}]")));
            }
        }
        refs
    }
}
