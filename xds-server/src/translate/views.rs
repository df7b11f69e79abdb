//! Views of a group's resources, computed once on first use and shared by every stream of the
//! group: each type's whole set (what a wildcard subscriber is sent) and what a proxy holds of
//! each type when it is up to date (what the object status compares streams with).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, OnceLock},
};

use envoy_types::pb::envoy::config::{cluster::v3::Cluster, listener::v3::Listener};
use prost::Message;
use xds_core::{refs, type_url};

use super::{Encoded, Resources, set_version};

/// A set of one type's resources, in name order, and its version.
#[derive(Debug, Default)]
pub struct Whole {
    pub version: String,
    pub items: Arc<[Arc<Encoded>]>,
}

/// [`Whole`]s by type, computed once. A copy starts empty: it may be changed (last-known-good
/// edits copies), so it computes its own.
#[derive(Debug, Default)]
pub(crate) struct Wholes(OnceLock<BTreeMap<String, Whole>>);

impl Clone for Wholes {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for Wholes {
    /// Derived data: equal resources have equal wholes.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Resources {
    /// The whole set of `type_url` and its version (empty for a type with nothing).
    pub fn whole(&self, type_url: &str) -> &Whole {
        let wholes = self.wholes.0.get_or_init(|| {
            self.by_type
                .iter()
                .map(|(t, all)| (t.clone(), whole(all.values().cloned().collect())))
                .collect()
        });
        wholes.get(type_url).unwrap_or_else(|| empty())
    }

    /// What a proxy of the group holds of `type_url` when it is up to date, and its version:
    /// everything of a type fetched whole (clusters, listeners, and any other type); of
    /// assignments and route configurations, those the clusters and listeners name (as Envoy
    /// subscribes), so the version is the one a stream reports as sent and acknowledged.
    pub fn fetched(&self, type_url: &str) -> &Whole {
        let all = self.fetched.0.get_or_init(|| fetched(self));
        all.get(type_url).unwrap_or_else(|| empty())
    }
}

/// `items` (in name order) with their version.
fn whole(items: Vec<Arc<Encoded>>) -> Whole {
    let version = set_version(items.iter().map(|e| (e.name.as_str(), e.version.as_str())));
    Whole {
        version,
        items: items.into(),
    }
}

/// A type with nothing.
fn empty() -> &'static Whole {
    static EMPTY: OnceLock<Whole> = OnceLock::new();
    EMPTY.get_or_init(|| whole(Vec::new()))
}

/// Per type: every cluster and listener (fetched by wildcard), the assignments the EDS
/// clusters wait for and the route configurations the listeners name (fetched by name, as
/// Envoy subscribes), and everything of any other type.
fn fetched(r: &Resources) -> BTreeMap<String, Whole> {
    let named = |t: &str, names: &dyn Fn(&Encoded) -> Vec<String>| -> BTreeSet<String> {
        r.of_type(t)
            .into_iter()
            .flat_map(|all| all.values())
            .flat_map(|e| names(e))
            .collect()
    };
    let assignments = named(type_url::CLUSTER, &|e| {
        Cluster::decode(e.resource.value.as_slice())
            .ok()
            .and_then(|c| refs::eds_service(&c))
            .into_iter()
            .collect()
    });
    let routes = named(type_url::LISTENER, &|e| {
        Listener::decode(e.resource.value.as_slice())
            .map(|l| refs::rds_names(&l))
            .unwrap_or_default()
    });
    r.by_type
        .iter()
        .map(|(t, all)| {
            let wanted = match t.as_str() {
                type_url::ENDPOINT => &assignments,
                type_url::ROUTE => &routes,
                _ => {
                    let same = r.whole(t);
                    let copy = Whole {
                        version: same.version.clone(),
                        items: same.items.clone(),
                    };
                    return (t.clone(), copy);
                }
            };
            let items = all
                .iter()
                .filter(|(n, _)| wanted.contains(*n))
                .map(|(_, e)| e.clone())
                .collect();
            (t.clone(), whole(items))
        })
        .collect()
}
