//! A listener: an address and port on the selected proxies, serving HTTP through routes or
//! proxying TCP to one service.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Kind, Labels, Reference, Selector, Spec, ValidationError, check_range, invalid,
    labels::{labels_schema, validate_labels},
    name::validate_name,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// The IP to bind; default `0.0.0.0`.
    #[serde(default = "any_address")]
    #[schema(example = "0.0.0.0")]
    pub address: String,
    pub port: u32,
    pub protocol: ListenerProtocol,
    /// For `http`: the routes served, in order (their hosts must not overlap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// For `tcp`: the service every connection is proxied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Which proxies get this listener; absent or `{}` means all.
    #[serde(default)]
    pub selector: Selector,
    /// The operator's labels (Kubernetes-style keys and values, at most 64): found by
    /// `?selector=` on lists; never sent to proxies.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    #[schema(schema_with = labels_schema)]
    pub labels: Labels,
}

fn any_address() -> String {
    "0.0.0.0".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListenerProtocol {
    Http,
    Tcp,
}

impl Spec for Listener {
    const KIND: Kind = Kind::Listener;

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        validate_labels("labels", &self.labels)?;
        self.address.parse::<IpAddr>().map_err(|_| {
            invalid(
                "address",
                format!("'{}' is not an IP address", self.address),
            )
        })?;
        check_range("port", self.port, 1..=65535)?;
        match self.protocol {
            ListenerProtocol::Http => {
                if self.routes.is_empty() {
                    return Err(invalid(
                        "routes",
                        "an http listener needs at least one route",
                    ));
                }
                if self.service.is_some() {
                    return Err(invalid(
                        "service",
                        "only tcp listeners name a service; http listeners use routes",
                    ));
                }
                if self.routes.len() > 100 {
                    return Err(invalid("routes", "at most 100 routes per listener"));
                }
                for (i, r) in self.routes.iter().enumerate() {
                    validate_name(&format!("routes[{i}]"), r)?;
                    if self.routes[..i].contains(r) {
                        return Err(invalid(
                            format!("routes[{i}]"),
                            format!("'{r}' is listed twice"),
                        ));
                    }
                }
            }
            ListenerProtocol::Tcp => {
                if !self.routes.is_empty() {
                    return Err(invalid(
                        "routes",
                        "tcp listeners proxy to one service; remove routes",
                    ));
                }
                let service = self
                    .service
                    .as_deref()
                    .ok_or_else(|| invalid("service", "a tcp listener needs a service"))?;
                validate_name("service", service)?;
            }
        }
        self.selector.validate("selector")
    }

    fn references(&self, _name: &str) -> Vec<Reference> {
        let mut refs: Vec<Reference> = self
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| Reference::to(Kind::Route, r, format!("routes[{i}]")))
            .collect();
        if let Some(s) = &self.service {
            refs.push(Reference::to(Kind::Service, s, "service"));
        }
        refs
    }
}
