//! The mesh model: the operator's intent as plain, validated Rust types.
//!
//! Everything the REST API accepts is parsed into these types and checked by [`Spec::validate`]
//! before it can reach the store. The model knows nothing about storage or Envoy's protos; the
//! one exception is [`EnvoyResource`], whose payload is checked against Envoy's descriptors.
//!
//! Cross-resource references (a route naming a service) are declared by [`Spec::references`]
//! and enforced by the store inside the write transaction, so they cannot race.

mod duration;
mod endpoints;
mod envoy_resource;
mod hash_policy;
mod inbound;
mod labels;
mod listener;
mod mesh;
mod name;
mod route;
mod security;
mod selector;
mod service;
mod syntax;
#[cfg(test)]
mod tests;
mod traffic_permission;

use std::fmt;

use serde::{Serialize, de::DeserializeOwned};

pub use duration::Duration;
pub use endpoints::{Endpoint, EndpointHealth, Endpoints};
pub use envoy_resource::{EnvoyResource, envoy_type_urls};
pub use hash_policy::{HashOn, HashPolicy, MAX_HASH_POLICIES};
pub use inbound::Inbound;
pub use labels::{
    LabelSelector, Labels, MAX_LABELS, ParseSelectorError, SELECTOR_PATTERN, validate_labels,
};
pub use listener::{Listener, ListenerProtocol};
pub use mesh::Mesh;
pub use name::validate_name;
pub use route::{
    Backoff, Destination, HeaderChanges, HeaderMatch, PathMatch, Retries, Rewrite, Route,
    RouteMatch, Rule,
};
pub use security::{
    DEFAULT_TRUST_DOMAIN, MeshSecurity, MtlsMode, PermissionsDefault, TRUST_BUNDLE_SECRET,
};
pub use selector::Selector;
pub use service::{CircuitBreaker, HealthCheck, LbPolicy, OutlierDetection, Protocol, Service};
pub use traffic_permission::{ANY_CALLER, PermissionAction, TrafficPermission};

/// The kinds of resource the store keeps, shared with meshctl. The collection name
/// (`Kind::collection`) is the REST path segment and the stored kind, so one name is used
/// everywhere.
pub use xds_core::Kind;

/// The noun for a kind in the server's messages ("service 'web' does not exist", "endpoints
/// of service 'web' does not exist").
pub fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Service => "service",
        Kind::Endpoints => "endpoints of service",
        Kind::Route => "route",
        Kind::Listener => "listener",
        Kind::EnvoyResource => "envoy resource",
        Kind::TrafficPermission => "traffic permission",
    }
}

/// A rule the input broke: which field (a JSON path such as `rules[0].destinations[1].weight`)
/// and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Shorthand for validators: `Err(invalid("port", "must be 1..=65535"))`.
pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, message)
}

/// A reference from one resource to another, declared by the referring resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: Kind,
    pub name: String,
    /// The field that holds the reference, reported when the target does not exist.
    pub field: String,
    /// An owned reference makes the referrer part of its target: deleting the target deletes
    /// it too (a service's endpoints). A plain reference blocks the target's deletion.
    pub owned: bool,
}

impl Reference {
    pub fn to(kind: Kind, name: impl Into<String>, field: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            field: field.into(),
            owned: false,
        }
    }
}

/// A kind of resource the operator writes: its JSON shape, its rules and its references.
pub trait Spec: Serialize + DeserializeOwned + utoipa::ToSchema + Send + Sync + 'static {
    const KIND: Kind;

    /// Checks every rule that needs only this resource; `name` is the resource's name.
    fn validate(&self, name: &str) -> Result<(), ValidationError>;

    /// The resources this one names. The store checks they exist in the write transaction.
    fn references(&self, name: &str) -> Vec<Reference>;
}

/// Checks `value` lies in `range`, naming the field and the range when it does not.
pub(crate) fn check_range<T>(
    field: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), ValidationError>
where
    T: PartialOrd + fmt::Display,
{
    if range.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be {}..={}, got {value}", range.start(), range.end()),
        ))
    }
}
