//! One load: the store's snapshot, parsed into the model. The model knows nothing of the
//! store; this is where stored records become mesh values.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use serde::de::DeserializeOwned;

use super::{Error, Published};
use crate::{
    model::{Kind, Mesh, MeshSecurity},
    store::{Snapshot, Store},
};

/// The mesh at the store's current revision.
/// `security` (the server's flags) is set on every mesh, as translation reads it there.
pub(super) async fn load(store: &dyn Store, security: &MeshSecurity) -> Result<Published, Error> {
    let snapshot = store.snapshot().await?;
    Ok(Published {
        mesh: Arc::new(Mesh {
            security: security.clone(),
            ..parse(&snapshot)?
        }),
        at: Instant::now(),
        taps: Arc::default(),
        identities: Arc::default(),
    })
}

/// Every record of `snapshot` as its model type; the first one that does not parse fails it.
pub(crate) fn parse(snapshot: &Snapshot) -> Result<Mesh, Error> {
    let mut mesh = Mesh {
        revision: snapshot.revision,
        ..Mesh::default()
    };
    for ((kind, name), record) in &snapshot.resources {
        let (kind, name, spec) = (*kind, name.clone(), &record.spec);
        match kind {
            Kind::Service => insert(&mut mesh.services, kind, name, spec)?,
            Kind::Endpoints => insert(&mut mesh.endpoints, kind, name, spec)?,
            Kind::Route => insert(&mut mesh.routes, kind, name, spec)?,
            Kind::Listener => insert(&mut mesh.listeners, kind, name, spec)?,
            Kind::EnvoyResource => insert(&mut mesh.envoy_resources, kind, name, spec)?,
            Kind::TrafficPermission => insert(&mut mesh.traffic_permissions, kind, name, spec)?,
        }
    }
    Ok(mesh)
}

fn insert<T: DeserializeOwned>(
    map: &mut BTreeMap<String, T>,
    kind: Kind,
    name: String,
    spec: &serde_json::Value,
) -> Result<(), Error> {
    let value = T::deserialize(spec).map_err(|source| Error::Unparsable {
        kind,
        name: name.clone(),
        source,
    })?;
    map.insert(name, value);
    Ok(())
}
