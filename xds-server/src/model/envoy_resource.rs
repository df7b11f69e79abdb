//! Raw Envoy resources: the escape hatch for anything the model does not cover, served
//! verbatim. The payload is checked by decoding it into the real Envoy message, so Envoy will
//! not reject it for a typo.

use prost_reflect::{DeserializeOptions, DynamicMessage, Value};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Kind, Labels, Reference, Selector, Spec, ValidationError, invalid,
    labels::{labels_schema, validate_labels},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvoyResource {
    /// One of the xDS resource type URLs, e.g.
    /// `type.googleapis.com/envoy.config.cluster.v3.Cluster`.
    pub type_url: String,
    /// The resource in proto3 JSON; its name field must equal the resource's name.
    #[schema(value_type = Object)]
    pub resource: serde_json::Value,
    #[serde(default)]
    pub selector: Selector,
    /// The operator's labels (Kubernetes-style keys and values, at most 64): found by
    /// `?selector=` on lists; never sent to proxies.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    #[schema(schema_with = labels_schema)]
    pub labels: Labels,
}

/// The resource types a raw resource may have, with the field holding each one's name.
const TYPES: &[(&str, &str)] = &[
    ("envoy.config.cluster.v3.Cluster", "name"),
    (
        "envoy.config.endpoint.v3.ClusterLoadAssignment",
        "cluster_name",
    ),
    ("envoy.config.listener.v3.Listener", "name"),
    ("envoy.config.route.v3.RouteConfiguration", "name"),
    ("envoy.config.route.v3.ScopedRouteConfiguration", "name"),
    ("envoy.config.route.v3.VirtualHost", "name"),
    ("envoy.extensions.transport_sockets.tls.v3.Secret", "name"),
    ("envoy.service.runtime.v3.Runtime", "name"),
];

const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// The type URLs accepted for raw resources.
pub fn envoy_type_urls() -> impl Iterator<Item = String> {
    TYPES.iter().map(|(t, _)| format!("{TYPE_URL_PREFIX}{t}"))
}

impl Spec for EnvoyResource {
    const KIND: Kind = Kind::EnvoyResource;

    fn validate(&self, name: &str) -> Result<(), ValidationError> {
        validate_labels("labels", &self.labels)?;
        let full_name = self.type_url.strip_prefix(TYPE_URL_PREFIX);
        let (message, name_field) = full_name
            .and_then(|n| TYPES.iter().find(|(t, _)| *t == n))
            .ok_or_else(|| {
                invalid(
                    "type_url",
                    format!(
                        "'{}' is not a supported Envoy resource type; use one of: {}",
                        self.type_url,
                        envoy_type_urls().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
        let descriptor = xds_core::descriptors::pool()
            .get_message_by_name(message)
            .ok_or_else(|| {
                invalid(
                    "type_url",
                    format!("{message} is missing from Envoy's descriptors"),
                )
            })?;
        if !self.resource.is_object() {
            return Err(invalid("resource", "must be a JSON object (proto3 JSON)"));
        }
        let decoded = DynamicMessage::deserialize_with_options(
            descriptor,
            &self.resource,
            &DeserializeOptions::new().deny_unknown_fields(true),
        )
        .map_err(|e| invalid("resource", format!("not a valid {message}: {e}")))?;
        let own_name = match decoded.get_field_by_name(name_field).as_deref() {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        if own_name != name {
            return Err(invalid(
                format!("resource.{name_field}"),
                format!("must equal the resource's name '{name}', got '{own_name}'"),
            ));
        }
        self.selector.validate("selector")
    }

    fn references(&self, _name: &str) -> Vec<Reference> {
        Vec::new()
    }
}
