//! The xDS resource types as one enum: every binary and test names a type the same way, and
//! the protocol's per-type rules (ADS order, wildcard, warming) live here once.

use std::fmt;

/// One xDS resource type. Types this project does not know keep their URL in [`TypeUrl::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TypeUrl {
    /// CDS: `envoy.config.cluster.v3.Cluster`.
    Cluster,
    /// EDS: `envoy.config.endpoint.v3.ClusterLoadAssignment`.
    Endpoint,
    /// LDS: `envoy.config.listener.v3.Listener`.
    Listener,
    /// RDS: `envoy.config.route.v3.RouteConfiguration`.
    Route,
    /// SDS: `envoy.extensions.transport_sockets.tls.v3.Secret`.
    Secret,
    /// Any other type URL, kept verbatim.
    Other(String),
}

/// The canonical URLs, for `const` contexts and string comparisons.
pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

impl TypeUrl {
    /// Make-before-break: on ADS, additions and updates go out in this order (removals in the
    /// reverse order), so nothing references a resource the proxy does not have yet.
    pub const ADS_ORDER: [TypeUrl; 4] = [
        TypeUrl::Cluster,
        TypeUrl::Endpoint,
        TypeUrl::Listener,
        TypeUrl::Route,
    ];

    /// The full type URL, `type.googleapis.com/<message>`.
    pub fn as_str(&self) -> &str {
        match self {
            TypeUrl::Cluster => CLUSTER,
            TypeUrl::Endpoint => ENDPOINT,
            TypeUrl::Listener => LISTENER,
            TypeUrl::Route => ROUTE,
            TypeUrl::Secret => SECRET,
            TypeUrl::Other(url) => url,
        }
    }

    /// The protobuf message's full name (the URL without `type.googleapis.com/`).
    pub fn message_name(&self) -> &str {
        let url = self.as_str();
        url.rsplit('/').next().unwrap_or(url)
    }

    /// The short name Envoy's docs and stats use: `CDS`, `EDS`, `LDS`, `RDS`, `SDS`.
    pub fn short_name(&self) -> &str {
        match self {
            TypeUrl::Cluster => "CDS",
            TypeUrl::Endpoint => "EDS",
            TypeUrl::Listener => "LDS",
            TypeUrl::Route => "RDS",
            TypeUrl::Secret => "SDS",
            TypeUrl::Other(_) => self.message_name(),
        }
    }

    /// Position in [`TypeUrl::ADS_ORDER`]; other types come after, by URL.
    pub fn ads_rank(&self) -> usize {
        Self::ADS_ORDER
            .iter()
            .position(|t| t == self)
            .unwrap_or(Self::ADS_ORDER.len())
    }

    /// LDS and CDS are wildcard when a client names nothing; EDS, RDS and SDS never are.
    pub fn wildcard_capable(&self) -> bool {
        matches!(self, TypeUrl::Cluster | TypeUrl::Listener)
    }

    /// Listener and route updates wait while new clusters warm (make-before-break); nothing
    /// else does.
    pub fn waits_for_warming(&self) -> bool {
        matches!(self, TypeUrl::Listener | TypeUrl::Route)
    }

    /// The type whose resources a resource of this type must wait for before it is used
    /// (a cluster warms until its assignment arrives; a listener until its routes do).
    pub fn warmed_by(&self) -> Option<TypeUrl> {
        match self {
            TypeUrl::Cluster => Some(TypeUrl::Endpoint),
            TypeUrl::Listener => Some(TypeUrl::Route),
            _ => None,
        }
    }

    /// Sorts type URLs in push order: [`TypeUrl::ADS_ORDER`] first, then the others by URL.
    pub fn push_order(types: impl IntoIterator<Item = TypeUrl>) -> Vec<TypeUrl> {
        let mut types: Vec<TypeUrl> = types.into_iter().collect();
        types.sort_by(|a, b| (a.ads_rank(), a.as_str()).cmp(&(b.ads_rank(), b.as_str())));
        types.dedup();
        types
    }
}

impl From<&str> for TypeUrl {
    fn from(url: &str) -> Self {
        match url {
            CLUSTER => TypeUrl::Cluster,
            ENDPOINT => TypeUrl::Endpoint,
            LISTENER => TypeUrl::Listener,
            ROUTE => TypeUrl::Route,
            SECRET => TypeUrl::Secret,
            other => TypeUrl::Other(other.to_string()),
        }
    }
}

impl From<String> for TypeUrl {
    fn from(url: String) -> Self {
        match TypeUrl::from(url.as_str()) {
            TypeUrl::Other(_) => TypeUrl::Other(url),
            known => known,
        }
    }
}

impl fmt::Display for TypeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_urls_round_trip_and_unknown_ones_are_kept() {
        for t in TypeUrl::ADS_ORDER.iter().chain([&TypeUrl::Secret]) {
            assert_eq!(&TypeUrl::from(t.as_str()), t);
        }
        let other = TypeUrl::from("type.googleapis.com/x.y.Z");
        assert_eq!(other, TypeUrl::Other("type.googleapis.com/x.y.Z".into()));
        assert_eq!(other.message_name(), "x.y.Z");
    }

    #[test]
    fn push_order_is_make_before_break_then_by_url() {
        let order = TypeUrl::push_order([
            TypeUrl::from("type.googleapis.com/b.B"),
            TypeUrl::Route,
            TypeUrl::Listener,
            TypeUrl::from("type.googleapis.com/a.A"),
            TypeUrl::Endpoint,
            TypeUrl::Cluster,
            TypeUrl::Route,
        ]);
        let urls: Vec<&str> = order.iter().map(TypeUrl::as_str).collect();
        assert_eq!(
            urls,
            [
                CLUSTER,
                ENDPOINT,
                LISTENER,
                ROUTE,
                "type.googleapis.com/a.A",
                "type.googleapis.com/b.B"
            ]
        );
    }

    #[test]
    fn only_lds_and_cds_are_wildcard_and_only_they_warm() {
        assert!(TypeUrl::Cluster.wildcard_capable() && TypeUrl::Listener.wildcard_capable());
        assert!(!TypeUrl::Endpoint.wildcard_capable() && !TypeUrl::Route.wildcard_capable());
        assert_eq!(TypeUrl::Cluster.warmed_by(), Some(TypeUrl::Endpoint));
        assert_eq!(TypeUrl::Listener.warmed_by(), Some(TypeUrl::Route));
        assert!(TypeUrl::Route.waits_for_warming() && !TypeUrl::Cluster.waits_for_warming());
    }
}
