//! The whole mesh at one store revision, as typed model values: the input of translation.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use super::{Endpoints, EnvoyResource, Kind, Listener, Route, Service};
use crate::store::Snapshot;

/// Every resource at `revision`, parsed. Immutable once built; shared behind an `Arc`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mesh {
    pub revision: i64,
    pub services: BTreeMap<String, Service>,
    /// Keyed by service name.
    pub endpoints: BTreeMap<String, Endpoints>,
    pub routes: BTreeMap<String, Route>,
    pub listeners: BTreeMap<String, Listener>,
    pub envoy_resources: BTreeMap<String, EnvoyResource>,
}

/// A stored spec that no longer parses: the schema moved without a migration.
#[derive(Debug, thiserror::Error)]
#[error("stored {kind} '{name}' does not parse as the current model: {source}")]
pub struct MeshError {
    pub kind: Kind,
    pub name: String,
    pub source: serde_json::Error,
}

impl Mesh {
    pub fn from_snapshot(snapshot: &Snapshot) -> Result<Mesh, MeshError> {
        let mut mesh = Mesh {
            revision: snapshot.revision,
            ..Mesh::default()
        };
        for ((kind, name), record) in &snapshot.resources {
            let name = name.clone();
            match kind {
                Kind::Service => insert(&mut mesh.services, *kind, name, &record.spec)?,
                Kind::Endpoints => insert(&mut mesh.endpoints, *kind, name, &record.spec)?,
                Kind::Route => insert(&mut mesh.routes, *kind, name, &record.spec)?,
                Kind::Listener => insert(&mut mesh.listeners, *kind, name, &record.spec)?,
                Kind::EnvoyResource => {
                    insert(&mut mesh.envoy_resources, *kind, name, &record.spec)?
                }
            }
        }
        Ok(mesh)
    }
}

fn insert<T: DeserializeOwned>(
    map: &mut BTreeMap<String, T>,
    kind: Kind,
    name: String,
    spec: &serde_json::Value,
) -> Result<(), MeshError> {
    let value = T::deserialize(spec).map_err(|source| MeshError {
        kind,
        name: name.clone(),
        source,
    })?;
    map.insert(name, value);
    Ok(())
}
