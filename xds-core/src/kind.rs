//! The kinds of mesh object the REST API stores, named once for the server and meshctl: their
//! names in files and on the command line, their REST collections, and the order in which they
//! depend on each other.

use std::{fmt, str::FromStr};

/// One kind of object the REST API stores.
///
/// The declaration order is the dependency order: a kind may name only kinds before it
/// (endpoints their service, routes services, listeners routes and services, traffic
/// permissions services). Writes go in
/// this order, deletes in reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Service,
    Endpoints,
    Route,
    Listener,
    EnvoyResource,
    TrafficPermission,
}

impl Kind {
    /// Every kind, in dependency order.
    pub const ALL: [Kind; 6] = [
        Kind::Service,
        Kind::Endpoints,
        Kind::Route,
        Kind::Listener,
        Kind::EnvoyResource,
        Kind::TrafficPermission,
    ];

    /// The singular name written in a manifest's `kind:` and printed as `service/web`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Endpoints => "endpoints",
            Kind::Route => "route",
            Kind::Listener => "listener",
            Kind::EnvoyResource => "envoy-resource",
            Kind::TrafficPermission => "traffic-permission",
        }
    }

    /// The REST collection (`/api/v1/{collection}`), which is also the kind the store records.
    pub fn collection(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::Endpoints => "endpoints",
            Kind::Route => "routes",
            Kind::Listener => "listeners",
            Kind::EnvoyResource => "envoy-resources",
            Kind::TrafficPermission => "traffic-permissions",
        }
    }

    /// The kind whose collection is exactly `s`, as the store records it; no aliases, so a
    /// stored value that is not one is recognised as corrupt.
    pub fn from_collection(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.collection() == s)
    }

    /// The REST path of one object. Endpoints live under their service.
    pub fn path(self, name: &str) -> String {
        match self {
            Kind::Endpoints => format!("/api/v1/services/{name}/endpoints"),
            _ => format!("/api/v1/{}/{name}", self.collection()),
        }
    }

    /// Whether objects of this kind carry `labels` (and so can be listed by selector).
    pub fn has_labels(self) -> bool {
        self != Kind::Endpoints
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name nobody knows; the message lists those that exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown kind '{0}': use service, endpoints, route, listener, envoy-resource or \
     traffic-permission (or their plural REST names)"
)]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    /// Accepts the singular, the REST collection and a few short forms, in any case.
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        let kind = match s.to_ascii_lowercase().as_str() {
            "service" | "services" | "svc" => Kind::Service,
            "endpoints" | "endpoint" | "ep" => Kind::Endpoints,
            "route" | "routes" => Kind::Route,
            "listener" | "listeners" => Kind::Listener,
            "envoy-resource" | "envoy-resources" | "envoyresource" | "envoyresources" => {
                Kind::EnvoyResource
            }
            "traffic-permission"
            | "traffic-permissions"
            | "trafficpermission"
            | "trafficpermissions"
            | "tp" => Kind::TrafficPermission,
            _ => return Err(UnknownKind(s.to_string())),
        };
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_plural_and_rest_names_parse() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
            assert_eq!(kind.collection().parse(), Ok(kind));
            assert_eq!(Kind::from_collection(kind.collection()), Some(kind));
        }
        assert_eq!("Services".parse(), Ok(Kind::Service));
        assert!(
            "proxy"
                .parse::<Kind>()
                .unwrap_err()
                .to_string()
                .contains("envoy-resource")
        );
    }

    #[test]
    fn stored_kinds_take_no_aliases() {
        assert_eq!(Kind::from_collection("service"), None);
        assert_eq!(Kind::from_collection("Services"), None);
        assert_eq!(Kind::from_collection("svc"), None);
    }

    #[test]
    fn dependencies_come_first() {
        let mut sorted = Kind::ALL;
        sorted.sort();
        assert_eq!(sorted, Kind::ALL);
        assert!(Kind::Service < Kind::Route && Kind::Route < Kind::Listener);
    }

    #[test]
    fn endpoints_live_under_their_service() {
        assert_eq!(
            Kind::Endpoints.path("web"),
            "/api/v1/services/web/endpoints"
        );
        assert_eq!(Kind::EnvoyResource.path("x"), "/api/v1/envoy-resources/x");
    }
}
