//! What the proxy holds from its configuration: per cluster and listener the active version
//! (in use), a warming one (waiting for its assignment or its routes, as Envoy warms) and the
//! last failure; assignments, route configurations and secrets by name. Each entry keeps the resource
//! as received, for `/config_dump`. Pure data with the views the rest of the proxy needs.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Instant, SystemTime},
};

use envoy_types::pb::google::protobuf::Any;

use crate::{
    bootstrap::StaticResource,
    config::{
        ClusterConfig, Discovery, ListenerConfig, ListenerFilter, LoadAssignment, RouteConfig,
        RouteSource, SecretConfig,
    },
};

/// One accepted version of a resource.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    /// SotW: the response's `version_info`; Delta: the resource's version; static: empty.
    pub version: String,
    /// The resource as received (for `/config_dump`, and to skip unchanged updates).
    pub resource: Any,
    pub config: Arc<T>,
    /// Wall-clock time of the update, for `/config_dump` only.
    pub last_updated: SystemTime,
}

/// A version waiting for what it depends on.
#[derive(Debug, Clone)]
pub struct Warming<T> {
    pub entry: Entry<T>,
    /// When it becomes active anyway (`initial_fetch_timeout`); `None`: never.
    pub deadline: Option<Instant>,
}

/// The last version that was refused, and why (Envoy's `error_state`).
#[derive(Debug, Clone)]
pub struct Failure {
    pub version: String,
    pub resource: Option<Any>,
    pub details: String,
    pub when: SystemTime,
}

/// A cluster or listener: what runs, what warms, what failed.
#[derive(Debug, Clone)]
pub struct Slot<T> {
    /// From the bootstrap: not replaced or removed over xDS.
    pub is_static: bool,
    pub active: Option<Entry<T>>,
    pub warming: Option<Warming<T>>,
    pub failure: Option<Failure>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            is_static: false,
            active: None,
            warming: None,
            failure: None,
        }
    }
}

impl<T> Slot<T> {
    /// The newest accepted version (warming, else active).
    pub fn latest(&self) -> Option<&Entry<T>> {
        self.warming
            .as_ref()
            .map(|w| &w.entry)
            .or(self.active.as_ref())
    }

    fn all(&self) -> impl Iterator<Item = &Entry<T>> {
        self.active
            .iter()
            .chain(self.warming.iter().map(|w| &w.entry))
    }

    fn from_static(resource: &StaticResource<T>, now: SystemTime) -> Slot<T> {
        Slot {
            is_static: true,
            active: Some(Entry {
                version: String::new(),
                resource: resource.resource.clone(),
                config: resource.config.clone(),
                last_updated: now,
            }),
            warming: None,
            failure: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct Store {
    pub clusters: BTreeMap<String, Slot<ClusterConfig>>,
    /// By `cluster_name` (the EDS service name).
    pub assignments: BTreeMap<String, Entry<LoadAssignment>>,
    pub listeners: BTreeMap<String, Slot<ListenerConfig>>,
    pub routes: BTreeMap<String, Entry<RouteConfig>>,
    /// SDS secrets by name (certificates and trust bundles).
    pub secrets: BTreeMap<String, Entry<SecretConfig>>,
}

impl Store {
    /// A store holding the bootstrap's static clusters and listeners, active at once except a
    /// static listener whose routes come over RDS, which warms like any other.
    pub fn with_statics(
        clusters: &[StaticResource<ClusterConfig>],
        listeners: &[StaticResource<ListenerConfig>],
        deadline: Option<Instant>,
    ) -> Store {
        let now = SystemTime::now();
        let mut store = Store::default();
        for c in clusters {
            store
                .clusters
                .insert(c.config.name.clone(), Slot::from_static(c, now));
        }
        for l in listeners {
            let mut slot = Slot::from_static(l, now);
            if rds_names(&l.config).next().is_some()
                || listener_secret_names(&l.config).next().is_some()
            {
                slot.warming = slot.active.take().map(|entry| Warming { entry, deadline });
            }
            store.listeners.insert(l.config.name.clone(), slot);
        }
        store
    }

    /// The assignments wanted: the service names of EDS clusters, active or warming.
    pub fn eds_names(&self) -> BTreeSet<String> {
        self.clusters
            .values()
            .flat_map(Slot::all)
            .filter_map(|e| eds_name(&e.config))
            .collect()
    }

    /// The route configurations wanted: the RDS names of listeners, active or warming.
    pub fn rds_names(&self) -> BTreeSet<String> {
        self.listeners
            .values()
            .flat_map(Slot::all)
            .flat_map(|e| rds_names(&e.config).map(str::to_string))
            .collect()
    }

    /// The secrets wanted: those the TLS of clusters and listeners, active or warming, name.
    pub fn sds_names(&self) -> BTreeSet<String> {
        let clusters = self.clusters.values().flat_map(Slot::all);
        let listeners = self.listeners.values().flat_map(Slot::all);
        clusters
            .flat_map(|e| cluster_secret_names(&e.config).map(str::to_string))
            .chain(listeners.flat_map(|e| listener_secret_names(&e.config).map(str::to_string)))
            .collect()
    }

    /// Forgets assignments and routes nothing refers to any more.
    pub fn prune(&mut self) {
        let eds = self.eds_names();
        self.assignments.retain(|name, _| eds.contains(name));
        let rds = self.rds_names();
        self.routes.retain(|name, _| rds.contains(name));
        let sds = self.sds_names();
        self.secrets.retain(|name, _| sds.contains(name));
    }

    /// The clusters in use, each with its assignment when it has one.
    pub fn active_clusters(
        &self,
    ) -> impl Iterator<Item = (&Arc<ClusterConfig>, Option<&Arc<LoadAssignment>>)> {
        self.clusters.values().filter_map(|slot| {
            let config = &slot.active.as_ref()?.config;
            let assignment = eds_name(config)
                .and_then(|n| self.assignments.get(&n))
                .map(|e| &e.config);
            Some((config, assignment))
        })
    }

    /// The listeners in use, in name order.
    pub fn active_listeners(&self) -> Vec<Arc<ListenerConfig>> {
        self.listeners
            .values()
            .filter_map(|s| s.active.as_ref().map(|e| e.config.clone()))
            .collect()
    }

    /// Whether any cluster is still warming.
    pub fn clusters_warming(&self) -> bool {
        self.clusters.values().any(|s| s.warming.is_some())
    }

    /// Whether any listener is still warming.
    pub fn listeners_warming(&self) -> bool {
        self.listeners.values().any(|s| s.warming.is_some())
    }

    /// Identity of what the runtime snapshot is built from: changes when a cluster, an
    /// assignment in use or a route configuration is replaced.
    pub fn runtime_fingerprint(&self) -> Vec<usize> {
        let mut ids = Vec::new();
        for (config, assignment) in self.active_clusters() {
            ids.push(Arc::as_ptr(config) as usize);
            ids.push(assignment.map_or(0, |a| Arc::as_ptr(a) as usize));
        }
        ids.extend(
            self.routes
                .values()
                .map(|e| Arc::as_ptr(&e.config) as usize),
        );
        ids.extend(
            self.secrets
                .values()
                .map(|e| Arc::as_ptr(&e.config) as usize),
        );
        ids
    }

    /// Identity of the active listener set.
    pub fn listener_fingerprint(&self) -> Vec<usize> {
        self.active_listeners()
            .iter()
            .map(|l| Arc::as_ptr(l) as usize)
            .collect()
    }

    /// The earliest warming deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        let clusters = self
            .clusters
            .values()
            .filter_map(|s| s.warming.as_ref()?.deadline);
        let listeners = self
            .listeners
            .values()
            .filter_map(|s| s.warming.as_ref()?.deadline);
        clusters.chain(listeners).min()
    }
}

/// The assignment an EDS cluster waits for (its own name when `service_name` is empty, as in
/// Envoy); `None` for clusters whose endpoints are in the cluster.
pub fn eds_name(cluster: &ClusterConfig) -> Option<String> {
    match &cluster.discovery {
        Discovery::Eds { service_name } if service_name.is_empty() => Some(cluster.name.clone()),
        Discovery::Eds { service_name } => Some(service_name.clone()),
        Discovery::Static(_) | Discovery::StrictDns { .. } => None,
    }
}

/// The route configurations a listener waits for (one per HTTP chain on RDS); none for
/// inline routes and TCP.
pub fn rds_names(listener: &ListenerConfig) -> impl Iterator<Item = &str> {
    listener
        .chains
        .iter()
        .filter_map(|chain| match &chain.filter {
            ListenerFilter::Http(hcm) => match &hcm.routes {
                RouteSource::Rds(name) => Some(name.as_str()),
                RouteSource::Inline(_) => None,
            },
            ListenerFilter::Tcp(_) => None,
        })
}

/// The secrets a listener waits for (its chains' TLS certificates and trust bundles).
pub fn listener_secret_names(listener: &ListenerConfig) -> impl Iterator<Item = &str> {
    let tls = listener.chains.iter().filter_map(|c| c.tls.as_ref());
    tls.flat_map(|t| t.secret_names())
}

/// The secrets a cluster waits for.
pub fn cluster_secret_names(cluster: &ClusterConfig) -> impl Iterator<Item = &str> {
    cluster.tls.iter().flat_map(|t| t.secret_names())
}
