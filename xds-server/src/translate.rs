//! Pure translation: the mesh model plus what applies to one proxy → Envoy resources.
//!
//! Nothing here does I/O or keeps state, so it is tested with golden files. Translation
//! depends only on a [`Selection`] (which listeners and raw resources apply), never on the node
//! itself: proxies with equal selections share one computed, already-encoded [`Resources`].
//! Each resource records the mesh objects it came from (`provenance.rs`), so what proxies say
//! of it can be shown on them.

mod access_log;
mod cluster;
mod endpoint;
mod inbound;
mod json;
mod listener;
mod provenance;
mod raw;
mod rbac;
mod route;
mod secret;
#[cfg(test)]
mod tests;
mod tls;
mod views;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use envoy_types::pb::{envoy::config::endpoint::v3::ClusterLoadAssignment, google::protobuf::Any};
use prost::{Message, Name};

use xds_core::{json::canonical_bytes, type_url};

use crate::model::{Kind, ListenerProtocol, Mesh, Selector};

pub use access_log::{AccessLog, LogMatch, StatusMatch};
pub use inbound::inbound_name;
pub use json::resources_to_json;
pub use provenance::{ObjectRef, Origin, Origins, blame};
pub use secret::{SdsSelection, redact_secrets};
pub use views::Whole;
pub(crate) use views::Wholes;

/// Who a proxy is, as far as selectors care (from the xDS `Node`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub cluster: String,
    /// The node metadata's string-valued top-level fields.
    pub metadata: BTreeMap<String, String>,
}

/// What applies to one proxy: the key under which proxies share computed resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selection {
    pub listeners: Vec<String>,
    pub envoy_resources: Vec<String>,
    pub delivery: Delivery,
    /// The HTTP listeners that log to the server for live taps, by name (see `crate::tap`):
    /// empty unless a tap selects the proxy, so untapped proxies keep their group.
    pub access_logs: BTreeMap<String, AccessLog>,
    /// The service whose sidecar the proxy is (its node cluster names it): the proxy gets the
    /// service's inbound listener and calls mTLS services with its certificate. Set only when
    /// translation uses it (the service declares `inbound`, or some service is mTLS), so the
    /// groups of a mesh without security are what they were.
    pub sidecar: Option<String>,
    /// The SDS secrets the proxy may have (its own certificate, the trust bundle; see
    /// `secret.rs`): empty without a CA.
    pub secrets: SdsSelection,
}

/// How a proxy fetches what its clusters and listeners refer to (assignments, routes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Delivery {
    /// Over the aggregated (ADS) stream it is connected on.
    #[default]
    Ads,
    /// Over per-type streams (EDS, RDS services) to the proxy's xDS cluster of this name.
    Separate { delta: bool, xds_cluster: String },
}

/// One encoded resource, shared by every proxy that receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub name: String,
    /// A hash of the encoded bytes: equal content, equal version, on every replica.
    pub version: String,
    pub resource: Any,
    /// The mesh objects it came from (see `provenance.rs`).
    pub origins: Origins,
}

/// A type's resources by name.
pub type TypeResources = BTreeMap<String, Arc<Encoded>>;

/// Everything one group of proxies should have, by type URL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub by_type: BTreeMap<String, TypeResources>,
    /// Things translation had to leave out, and why (shown in proxy status and logs).
    pub warnings: Vec<String>,
    /// Generated EDS clusters: a proxy fetches their assignments while they warm. (A raw
    /// cluster replacing one of them is not, so nothing waits for it.)
    pub eds_clusters: BTreeSet<String>,
    /// The group these resources are for.
    pub group: Selection,
    /// Resources whose current version a proxy of the group rejected: replaced by the last
    /// version a proxy accepted, or left out when none did (last-known-good).
    pub held_back: Vec<HeldBack>,
    /// Each type's whole set and its version, made on first use and shared by every stream.
    pub(crate) wholes: Wholes,
    /// Each type's set as a proxy fetches it, made on first use (see [`Resources::fetched`]).
    pub(crate) fetched: Wholes,
    /// The mesh these were translated from, for [`Resources::spare_cluster`].
    pub(crate) source: Source,
}

/// The mesh a translation came from. Not part of what the resources are: ignored by `==`.
#[derive(Clone, Default)]
pub(crate) struct Source(pub(crate) Option<Arc<Mesh>>);

impl PartialEq for Source {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Source(mesh)"
        } else {
            "Source(none)"
        })
    }
}

/// A resource held back from a group because one of its proxies rejected its current version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldBack {
    pub type_url: String,
    pub name: String,
    /// The rejected version, which no proxy of the group is sent.
    pub rejected_version: String,
    /// The version sent instead (the last one a proxy of the group accepted); none when no
    /// proxy ever accepted one, and the resource is left out.
    pub serving_version: Option<String>,
    /// The proxy that rejected it, and its message.
    pub rejected_by: String,
    pub message: String,
    /// The objects the rejected version came from, each with whether the rejection is theirs
    /// ([`blame`]): where the REST API shows it. An object whose part the group still runs
    /// (it is in the version served instead) is not to blame. Shared: every stream's status
    /// holds a copy of its group's held-back entries.
    #[serde(skip)]
    pub origins: Arc<[(ObjectRef, bool)]>,
}

impl Resources {
    pub fn of_type(&self, type_url: &str) -> Option<&TypeResources> {
        self.by_type.get(type_url)
    }

    /// The mesh revision these were translated from (`None` for a translation made without
    /// the cache, as in tests).
    pub fn revision(&self) -> Option<i64> {
        self.source.0.as_ref().map(|m| m.revision)
    }

    /// The cluster of `service` although no route of the group uses it any more (so without
    /// subsets): kept in a SotW proxy's first cluster response after a reconnect, while its
    /// routes still send to it, until its new routes are in place. `None` when the service no
    /// longer exists.
    pub fn spare_cluster(&self, service: &str) -> Option<Arc<Encoded>> {
        let mesh = self.source.0.as_ref()?;
        let spec = mesh.services.get(service)?;
        let config_source = cluster::config_source(&self.group.delivery);
        let mut message = cluster::cluster(service, spec, &BTreeSet::new(), &config_source);
        let own = self.group.sidecar.as_deref();
        tls::secure_cluster(
            &mut message,
            mesh,
            own,
            service,
            &config_source,
            &mut Vec::new(),
        );
        let value = message.encode_to_vec();
        Some(Arc::new(Encoded {
            name: service.to_string(),
            version: content_version(&value),
            resource: Any {
                type_url: type_url::CLUSTER.to_string(),
                value,
            },
            origins: Arc::new([Origin::whole(Kind::Service, service)]),
        }))
    }

    /// Whether a proxy new to `cluster` warms it by fetching its assignment from us.
    pub fn warms(&self, cluster: &str) -> bool {
        self.eds_clusters.contains(cluster)
            && self
                .of_type(type_url::ENDPOINT)
                .is_some_and(|a| a.contains_key(cluster))
    }

    /// Adds a generated resource, encoding it once. Generated messages hold no map with more
    /// than one entry, so prost's encoding is deterministic and its bytes make the version
    /// (the exceptions, label maps in assignments and route subsets, hash stable bytes).
    fn add<M: Message + Name>(&mut self, name: &str, message: &M, origin: Origin) {
        let value = message.encode_to_vec();
        let version = content_version(&value);
        self.insert(name, M::type_url(), value, version, Arc::new([origin]));
    }

    /// Adds a service's assignment (made by the service and its endpoints). Its endpoints'
    /// labels are a protobuf map (encoded in hash order), so its version hashes the rest of it
    /// plus the labels in name order.
    fn add_assignment(&mut self, name: &str, cla: &ClusterLoadAssignment) {
        let version = content_version(&endpoint::stable_bytes(cla));
        // The service makes only the name; everything else is its endpoints'.
        let origins = [
            Origin::part(Kind::Service, name, name.as_bytes()),
            Origin::whole(Kind::Endpoints, name),
        ];
        self.add_versioned(name, cla, version, origins.into());
    }

    /// Adds a generated resource whose version was computed from stable bytes.
    fn add_versioned<M: Message + Name>(
        &mut self,
        name: &str,
        message: &M,
        version: String,
        origins: Origins,
    ) {
        self.insert(
            name,
            M::type_url(),
            message.encode_to_vec(),
            version,
            origins,
        );
    }

    /// Adds a raw resource: any Envoy message, maps included, so its version hashes its
    /// canonical form (maps sorted, through Envoy's descriptors) and equal content gives equal
    /// versions on every replica.
    fn add_any(&mut self, name: &str, type_url: String, value: Vec<u8>) {
        let value = canonical_bytes(&type_url, &value);
        let version = content_version(&value);
        let origin = Origin::whole(Kind::EnvoyResource, name);
        self.insert(name, type_url, value, version, Arc::new([origin]));
    }

    fn insert(
        &mut self,
        name: &str,
        type_url: String,
        value: Vec<u8>,
        version: String,
        origins: Origins,
    ) {
        let encoded = Encoded {
            name: name.to_string(),
            version,
            resource: Any {
                type_url: type_url.clone(),
                value,
            },
            origins,
        };
        self.by_type
            .entry(type_url)
            .or_default()
            .insert(name.to_string(), Arc::new(encoded));
    }
}

/// The version of a set of resources: a hash of their names and versions, in the order given.
pub fn set_version<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut text = String::new();
    for (name, version) in items {
        text.push_str(name);
        text.push('=');
        text.push_str(version);
        text.push(';');
    }
    content_version(text.as_bytes())
}

/// FNV-1a over the bytes, as 16 hex digits: stable across processes and builds.
pub fn content_version(bytes: &[u8]) -> String {
    format!("{:016x}", content_hash(bytes))
}

/// FNV-1a over the bytes.
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Selector {
    /// Every key given must match; an empty selector matches every node.
    pub fn matches(&self, node: &NodeInfo) -> bool {
        self.node_id.as_ref().is_none_or(|id| *id == node.id)
            && self
                .node_cluster
                .as_ref()
                .is_none_or(|c| *c == node.cluster)
            && self
                .metadata
                .iter()
                .all(|(k, v)| node.metadata.get(k) == Some(v))
    }
}

/// The listeners and raw resources whose selectors match `node`.
pub fn select(mesh: &Mesh, node: &NodeInfo) -> Selection {
    Selection {
        listeners: mesh
            .listeners
            .iter()
            .filter(|(_, l)| l.selector.matches(node))
            .map(|(n, _)| n.clone())
            .collect(),
        envoy_resources: mesh
            .envoy_resources
            .iter()
            .filter(|(_, r)| r.selector.matches(node))
            .map(|(n, _)| n.clone())
            .collect(),
        delivery: Delivery::Ads,
        access_logs: BTreeMap::new(),
        sidecar: sidecar_of(mesh, node),
        secrets: SdsSelection::default(),
    }
}

/// The service `node` is the sidecar of, when translation needs to know (see
/// [`Selection::sidecar`]).
fn sidecar_of(mesh: &Mesh, node: &NodeInfo) -> Option<String> {
    let service = mesh.services.get(&node.cluster)?;
    (service.inbound.is_some() || tls::any_mtls(mesh)).then(|| node.cluster.clone())
}

/// The resources for a selection: its listeners, the route configurations they use, the
/// clusters and assignments those routes and TCP listeners need, and the selected raw
/// resources (a raw resource replaces a generated one of the same type and name). Each with
/// its origins: a listener ← the listener; its route configuration ← the listener and each
/// route that made a virtual host; a cluster ← the service; an assignment ← the service and
/// its endpoints; a raw resource ← the envoy-resource.
pub fn translate(mesh: &Mesh, selection: &Selection) -> Resources {
    let mut out = Resources::default();
    let config_source = cluster::config_source(&selection.delivery);
    // Every service used, with the label-key sets its subsets select on.
    let mut services: BTreeMap<&str, BTreeSet<Vec<String>>> = BTreeMap::new();
    // A sidecar's inbound listener comes first: it keeps its port against selected listeners.
    let inbound_listener = inbound::add(mesh, selection, &config_source, &mut out);
    let mut bound = BTreeMap::new();
    if let Some((address, port, name)) = &inbound_listener {
        bound.insert((address.as_str(), *port), name);
    }
    for name in &selection.listeners {
        let Some(l) = mesh.listeners.get(name) else {
            continue;
        };
        // Envoy refuses two listeners on one address and port: the first (by name) keeps it.
        if let Some(first) = bound.insert((l.address.as_str(), l.port), name) {
            bound.insert((l.address.as_str(), l.port), first);
            out.warnings.push(format!(
                "listener '{name}' left out: listener '{first}' already uses {}:{}",
                l.address, l.port
            ));
            continue;
        }
        out.add(
            name,
            &listener::listener(name, l, &config_source, selection.access_logs.get(name)),
            Origin::whole(Kind::Listener, name),
        );
        match l.protocol {
            ListenerProtocol::Tcp => {
                if let Some(s) = &l.service {
                    services.entry(s).or_default();
                }
            }
            ListenerProtocol::Http => {
                let routes: Vec<(&str, &crate::model::Route)> = l
                    .routes
                    .iter()
                    .filter_map(|r| mesh.routes.get(r).map(|route| (r.as_str(), route)))
                    .collect();
                for (_, route) in &routes {
                    for rule in &route.rules {
                        for d in &rule.destinations {
                            let keys = services.entry(&d.service).or_default();
                            if !d.subset.is_empty() {
                                keys.insert(d.subset.keys().cloned().collect());
                            }
                        }
                    }
                }
                let config =
                    route::route_configuration(name, &routes, &mesh.services, &mut out.warnings);
                let version = content_version(&route::stable_bytes(&config));
                let origins = route::origins(name, &config);
                out.add_versioned(name, &config, version, origins);
            }
        }
    }
    for (name, subset_keys) in services {
        let Some(service) = mesh.services.get(name) else {
            out.warnings
                .push(format!("service '{name}' is referenced but missing"));
            continue;
        };
        let mut cluster = cluster::cluster(name, service, &subset_keys, &config_source);
        tls::secure_cluster(
            &mut cluster,
            mesh,
            selection.sidecar.as_deref(),
            name,
            &config_source,
            &mut out.warnings,
        );
        out.add(name, &cluster, Origin::whole(Kind::Service, name));
        out.add_assignment(
            name,
            &endpoint::load_assignment(name, mesh.endpoints.get(name)),
        );
        out.eds_clusters.insert(name.to_string());
    }
    for name in &selection.envoy_resources {
        if let Some(r) = mesh.envoy_resources.get(name) {
            match raw::encode(r) {
                Ok(bytes) => {
                    if r.type_url == type_url::CLUSTER {
                        out.eds_clusters.remove(name);
                    }
                    out.add_any(name, r.type_url.clone(), bytes)
                }
                Err(e) => out.warnings.push(format!("envoy resource '{name}': {e}")),
            }
        }
    }
    secret::add(&mut out, &selection.secrets);
    out
}
