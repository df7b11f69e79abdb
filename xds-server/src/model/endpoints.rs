//! A service's endpoints, replaced as a whole. They become the service's
//! `ClusterLoadAssignment`; zones become localities.

use std::{collections::BTreeMap, collections::HashSet, net::IpAddr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Kind, Reference, Spec, ValidationError, check_range, invalid, name::validate_label};

/// The most endpoints one service may have; more is almost certainly a runaway script.
pub const MAX_ENDPOINTS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// An IP address (v4 or v6); EDS endpoints are not resolved through DNS.
    #[schema(example = "127.0.0.1")]
    pub address: String,
    /// 1..=65535.
    pub port: u32,
    /// Relative share of traffic, 1..=10000.
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub health: EndpointHealth,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointHealth {
    #[default]
    Healthy,
    Unhealthy,
    /// Finishes in-flight work but gets no new requests.
    Draining,
}

impl Spec for Endpoints {
    const KIND: Kind = Kind::Endpoints;

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        if self.endpoints.len() > MAX_ENDPOINTS {
            return Err(invalid(
                "endpoints",
                format!("at most {MAX_ENDPOINTS} endpoints per service"),
            ));
        }
        let mut seen = HashSet::new();
        for (i, ep) in self.endpoints.iter().enumerate() {
            let at = |f: &str| format!("endpoints[{i}].{f}");
            let ip: IpAddr = ep.address.parse().map_err(|_| {
                invalid(
                    at("address"),
                    format!("'{}' is not an IP address", ep.address),
                )
            })?;
            check_range(&at("port"), ep.port, 1..=65535)?;
            check_range(&at("weight"), ep.weight, 1..=10_000)?;
            if let Some(zone) = &ep.zone {
                validate_label(&at("zone"), zone)?;
            }
            for (k, v) in &ep.labels {
                validate_label(&at(&format!("labels.{k}")), k)?;
                validate_label(&at(&format!("labels.{k}")), v)?;
            }
            if !seen.insert((ip, ep.port)) {
                return Err(invalid(
                    at("address"),
                    format!("{}:{} is listed twice", ep.address, ep.port),
                ));
            }
        }
        Ok(())
    }

    /// Endpoints belong to their service: they name it, and go when it goes.
    fn references(&self, name: &str) -> Vec<Reference> {
        vec![Reference {
            kind: Kind::Service,
            name: name.to_string(),
            field: "service".into(),
            owned: true,
        }]
    }
}
