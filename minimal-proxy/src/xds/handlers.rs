//! One handler per resource type: decode each resource, convert it with `config::*_from_proto`,
//! and record it in the [`Store`]; return what was rejected (the NACK names each one) and
//! what was taken. As Envoy does, the good resources of a partly bad response are applied and
//! the bad ones keep their previous version.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::Cluster, endpoint::v3::ClusterLoadAssignment, listener::v3::Listener,
            route::v3::RouteConfiguration,
        },
        extensions::transport_sockets::tls::v3::Secret,
    },
    google::protobuf::Any,
};
use prost::Message;
use xds_core::TypeUrl;

use super::{
    Received, Update,
    store::{Entry, Failure, Slot, Store, Warming},
};
use crate::config::{self, LoadAssignment, Rejection, RouteConfig, SecretConfig};

/// What a handler did with one response.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rejected: Vec<Rejection>,
    /// `(name, version)` of every resource taken, changed or not (Delta's held versions).
    pub accepted: Vec<(String, String)>,
    /// Names removed (SotW: absent from a full response; Delta: `removed_resources`).
    pub removed: Vec<String>,
}

/// The moment an update is applied.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now: Instant,
    pub wall: SystemTime,
    /// How long a new cluster or listener may warm; `None`: until its dependency arrives.
    pub warming: Option<Duration>,
}

/// Applies one response to the store with the handler for its type.
pub fn apply(store: &mut Store, update: &Update, cx: &Context) -> Outcome {
    let mut out = Outcome::default();
    match update.type_url {
        TypeUrl::Cluster => upsert_slots(
            &mut store.clusters,
            update,
            cx,
            &mut out,
            "cluster",
            |c: &Cluster| c.name.clone(),
            config::cluster_from_proto,
        ),
        TypeUrl::Listener => upsert_slots(
            &mut store.listeners,
            update,
            cx,
            &mut out,
            "listener",
            |l: &Listener| l.name.clone(),
            config::listener_from_proto,
        ),
        TypeUrl::Endpoint => {
            let wanted = store.eds_names();
            upsert_entries(
                &mut store.assignments,
                &wanted,
                update,
                cx,
                &mut out,
                "cluster load assignment",
                |c: &ClusterLoadAssignment| c.cluster_name.clone(),
                config::load_assignment_from_proto,
                |name| LoadAssignment {
                    cluster_name: name.to_string(),
                    localities: Vec::new(),
                },
            );
        }
        TypeUrl::Route => {
            let wanted = store.rds_names();
            upsert_entries(
                &mut store.routes,
                &wanted,
                update,
                cx,
                &mut out,
                "route configuration",
                |r: &RouteConfiguration| r.name.clone(),
                config::route_configuration_from_proto,
                |name| RouteConfig {
                    name: name.to_string(),
                    virtual_hosts: Vec::new(),
                },
            );
        }
        TypeUrl::Secret => {
            let wanted = store.sds_names();
            upsert_entries(
                &mut store.secrets,
                &wanted,
                update,
                cx,
                &mut out,
                "secret",
                |s: &Secret| s.name.clone(),
                config::secret_from_proto,
                |_| SecretConfig::Removed,
            );
        }
        TypeUrl::Other(_) => out.rejected.push(Rejection {
            resource: format!("{} response", update.type_url),
            field: "type_url".to_string(),
            reason: "minimal-proxy did not subscribe to this type".to_string(),
        }),
    }
    out
}

/// The NACK's `error_detail` message: each rejected resource and why, one per line.
pub fn describe(rejected: &[Rejection]) -> String {
    let line = |r: &Rejection| match r.field.is_empty() {
        true => format!("{}: {}", r.resource, r.reason),
        false => r.to_string(),
    };
    rejected.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// Clusters and listeners: new or changed versions warm (see `warming.rs`); unchanged ones are
/// left alone; static ones cannot be replaced.
#[allow(clippy::too_many_arguments)]
fn upsert_slots<P: Message + Default, T>(
    slots: &mut BTreeMap<String, Slot<T>>,
    update: &Update,
    cx: &Context,
    out: &mut Outcome,
    kind: &str,
    name_of: fn(&P) -> String,
    convert: fn(&P) -> Result<T, Rejection>,
) {
    let mut seen = BTreeSet::new();
    for received in &update.resources {
        let (proto, any) = match decode::<P>(received, update, kind, name_of) {
            Ok(decoded) => decoded,
            Err(r) => {
                out.rejected.push(r);
                continue;
            }
        };
        let name = name_of(&proto);
        seen.insert(name.clone());
        let slot = slots.entry(name.clone()).or_default();
        if slot.is_static {
            out.rejected.push(Rejection {
                resource: format!("{kind} '{name}'"),
                field: "name".to_string(),
                reason: "is a static resource of the bootstrap and cannot be replaced over xDS"
                    .to_string(),
            });
            continue;
        }
        if slot.latest().is_some_and(|e| e.resource.value == any.value) {
            out.accepted.push((name, received.version.clone()));
            continue;
        }
        match convert(&proto) {
            Ok(config) => {
                slot.warming = Some(Warming {
                    entry: entry(received, any, config, cx),
                    deadline: cx.warming.map(|t| cx.now + t),
                });
                slot.failure = None;
                out.accepted.push((name, received.version.clone()));
            }
            Err(r) => {
                slot.failure = Some(failure(received, Some(any), &r, cx));
                out.rejected.push(r);
            }
        }
    }
    let gone: Vec<String> = if update.state_of_the_world {
        let dynamic =
            |(n, s): (&String, &Slot<T>)| (!s.is_static && !seen.contains(n)).then(|| n.clone());
        slots.iter().filter_map(dynamic).collect()
    } else {
        let dynamic = |n: &&String| slots.get(*n).is_some_and(|s| !s.is_static);
        update.removed.iter().filter(dynamic).cloned().collect()
    };
    for name in gone {
        slots.remove(&name);
        out.removed.push(name);
    }
    // A refused resource never accepted leaves nothing behind but in SotW's error state.
    slots.retain(|_, s| s.active.is_some() || s.warming.is_some() || s.failure.is_some());
}

/// Assignments and route configurations: taken when wanted (EDS/RDS are not wildcard);
/// a removed one becomes empty, which ends the warming of whatever waited for it (as Envoy).
#[allow(clippy::too_many_arguments)]
fn upsert_entries<P: Message + Default, T>(
    entries: &mut BTreeMap<String, Entry<T>>,
    wanted: &BTreeSet<String>,
    update: &Update,
    cx: &Context,
    out: &mut Outcome,
    kind: &str,
    name_of: fn(&P) -> String,
    convert: fn(&P) -> Result<T, Rejection>,
    empty: fn(&str) -> T,
) {
    for received in &update.resources {
        let (proto, any) = match decode::<P>(received, update, kind, name_of) {
            Ok(decoded) => decoded,
            Err(r) => {
                out.rejected.push(r);
                continue;
            }
        };
        let name = name_of(&proto);
        if !wanted.contains(&name) {
            continue;
        }
        if entries
            .get(&name)
            .is_some_and(|e| e.resource.value == any.value)
        {
            out.accepted.push((name, received.version.clone()));
            continue;
        }
        match convert(&proto) {
            Ok(config) => {
                entries.insert(name.clone(), entry(received, any, config, cx));
                out.accepted.push((name, received.version.clone()));
            }
            Err(r) => out.rejected.push(r),
        }
    }
    for name in update.removed.iter().filter(|n| wanted.contains(*n)) {
        let removed = Received {
            name: Some(name.clone()),
            version: String::new(),
            resource: None,
        };
        let any = Any {
            type_url: update.type_url.to_string(),
            value: Vec::new(),
        };
        entries.insert(name.clone(), entry(&removed, any, empty(name), cx));
        out.removed.push(name.clone());
    }
}

fn decode<P: Message + Default>(
    received: &Received,
    update: &Update,
    kind: &str,
    name_of: fn(&P) -> String,
) -> Result<(P, Any), Rejection> {
    let label = received.name.as_deref().unwrap_or("?");
    let reject = |field: &str, reason: String| Rejection {
        resource: format!("{kind} '{label}'"),
        field: field.to_string(),
        reason,
    };
    let Some(any) = &received.resource else {
        return Err(reject(
            "resource",
            "is missing from the response".to_string(),
        ));
    };
    if any.type_url != update.type_url.as_str() {
        let reason = format!(
            "is a {}, in a response for {}",
            any.type_url, update.type_url
        );
        return Err(reject("type_url", reason));
    }
    let proto = P::decode(any.value.as_slice())
        .map_err(|e| reject("resource", format!("does not decode: {e}")))?;
    if let Some(name) = &received.name
        && *name != name_of(&proto)
    {
        let reason = format!("the resource inside is named '{}'", name_of(&proto));
        return Err(reject("name", reason));
    }
    Ok((proto, any.clone()))
}

fn entry<T>(received: &Received, resource: Any, config: T, cx: &Context) -> Entry<T> {
    Entry {
        version: received.version.clone(),
        resource,
        config: Arc::new(config),
        last_updated: cx.wall,
    }
}

fn failure(received: &Received, resource: Option<Any>, r: &Rejection, cx: &Context) -> Failure {
    Failure {
        version: received.version.clone(),
        resource,
        details: describe(std::slice::from_ref(r)),
        when: cx.wall,
    }
}
