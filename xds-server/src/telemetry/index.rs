//! Which reported stat names the server consumes, for one mesh revision: an exact lookup from
//! the full Envoy stat name to the figure it feeds, so names of unknown services or routes
//! (and every other stat) cost one hash lookup and are dropped.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use crate::model::Mesh;

/// What a figure is about: a destination service (`cluster.<service>.*`) or a mesh route
/// (`vhost.<route>.route.<route>.*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Service(Arc<str>),
    Route(Arc<str>),
}

/// Which part of a figure a stat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `upstream_rq_completed`, a delta counter.
    Requests,
    /// `upstream_rq_5xx`, a delta counter.
    Errors,
    /// `upstream_rq_time`, a per-flush histogram in milliseconds.
    Latency,
}

/// The consumed stat suffixes.
const PARTS: [(&str, Part); 3] = [
    ("upstream_rq_completed", Part::Requests),
    ("upstream_rq_5xx", Part::Errors),
    ("upstream_rq_time", Part::Latency),
];

/// The names of one mesh revision.
#[derive(Debug, Default)]
pub struct Index {
    pub revision: i64,
    names: HashMap<String, (Subject, Part)>,
    /// Every service of the mesh, each with the routes that send to it (name order).
    services: BTreeMap<Arc<str>, Vec<Arc<str>>>,
    routes: BTreeSet<Arc<str>>,
}

impl Index {
    pub fn new(mesh: &Mesh) -> Index {
        let mut index = Index {
            revision: mesh.revision,
            ..Index::default()
        };
        for name in mesh.services.keys() {
            let service: Arc<str> = name.as_str().into();
            for (suffix, part) in PARTS {
                index.names.insert(
                    format!("cluster.{name}.{suffix}"),
                    (Subject::Service(service.clone()), part),
                );
            }
            index.services.insert(service, Vec::new());
        }
        for (name, route) in &mesh.routes {
            let route_name: Arc<str> = name.as_str().into();
            for (suffix, part) in PARTS {
                index.names.insert(
                    format!("vhost.{name}.route.{name}.{suffix}"),
                    (Subject::Route(route_name.clone()), part),
                );
            }
            let targets: BTreeSet<&str> = route
                .rules
                .iter()
                .flat_map(|r| &r.destinations)
                .map(|d| d.service.as_str())
                .collect();
            for target in targets {
                if let Some(routes) = index.services.get_mut(target) {
                    routes.push(route_name.clone());
                }
            }
            index.routes.insert(route_name);
        }
        index
    }

    /// The figure a stat name feeds, if any.
    pub fn lookup(&self, stat: &str) -> Option<&(Subject, Part)> {
        self.names.get(stat)
    }

    /// The routes sending to `service`; `None` when the mesh has no such service.
    pub fn routes_to(&self, service: &str) -> Option<&[Arc<str>]> {
        self.services.get(service).map(Vec::as_slice)
    }

    pub fn services(&self) -> impl Iterator<Item = &Arc<str>> {
        self.services.keys()
    }

    pub fn has_service(&self, name: &str) -> bool {
        self.services.contains_key(name)
    }

    /// Whether figures about `subject` may be kept.
    pub fn knows(&self, subject: &Subject) -> bool {
        match subject {
            Subject::Service(s) => self.services.contains_key(s),
            Subject::Route(r) => self.routes.contains(r),
        }
    }
}
