//! Store revisions → immutable mesh snapshots, coalesced.
//!
//! An isolated change is loaded at once (no fixed wait). Changes that arrive while a load
//! runs, or within `window` of the previous load, are folded into the next one: the store's
//! revision watch keeps only the latest revision, so the last change of a burst is never lost.
//! Each load parses the store's records into the model (`load.rs`).

mod load;
#[cfg(test)]
mod tests;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{sync::watch, task::JoinHandle};

use crate::{
    model::{Kind, Mesh, MeshSecurity},
    store::{self, Store},
};
use load::load;

/// A mesh snapshot and when it was published (for push-latency metrics).
#[derive(Debug, Clone)]
pub struct Published {
    pub mesh: Arc<Mesh>,
    pub at: Instant,
    /// The live taps open at publication (see `crate::tap`): a tap opening or closing
    /// publishes the same mesh with a new plan.
    pub taps: Arc<crate::tap::Plan>,
    /// The workload certificates and trust bundle at publication (see `crate::ca`): a
    /// renewal publishes the same mesh with new ones. Empty without a CA.
    pub identities: Arc<crate::ca::Identities>,
}

/// Why a mesh could not be loaded; the watcher keeps the previous one and retries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not load the mesh: {0}")]
    Store(#[from] store::Error),
    /// A stored spec the current model refuses: the schema moved without a migration, or
    /// another process wrote the row directly.
    #[error(
        "stored {} '{name}' does not parse as the current model: {source} (PUT it again or DELETE it through the admin API)",
        kind.collection()
    )]
    Unparsable {
        kind: Kind,
        name: String,
        source: serde_json::Error,
    },
}

/// Loads the current mesh, then keeps publishing new ones as the store's revision moves.
/// `on_rebuild` is told how long each load took. The meshes carry the default security
/// settings (no mTLS, everything allowed); see [`spawn_with_security`].
pub async fn spawn(
    store: Arc<dyn Store>,
    window: Duration,
    on_rebuild: impl Fn(Duration) + Send + 'static,
) -> Result<(watch::Receiver<Arc<Published>>, JoinHandle<()>), Error> {
    spawn_with_security(store, window, MeshSecurity::default(), on_rebuild).await
}

/// [`spawn`], with the server's mesh-wide security settings set on every mesh published.
pub async fn spawn_with_security(
    store: Arc<dyn Store>,
    window: Duration,
    security: MeshSecurity,
    on_rebuild: impl Fn(Duration) + Send + 'static,
) -> Result<(watch::Receiver<Arc<Published>>, JoinHandle<()>), Error> {
    let first = load(&*store, &security).await?;
    let (tx, rx) = watch::channel(Arc::new(first));
    let handle = tokio::spawn(async move {
        let mut revisions = store.watch();
        let mut last_load: Option<Instant> = None;
        loop {
            if revisions.changed().await.is_err() {
                return;
            }
            let wanted = *revisions.borrow_and_update();
            if wanted <= tx.borrow().mesh.revision {
                continue;
            }
            // Within the window of the previous load: wait out the rest, gathering the burst.
            if let Some(wait) = last_load.and_then(|at| window.checked_sub(at.elapsed())) {
                tokio::time::sleep(wait).await;
                revisions.borrow_and_update();
            }
            let started = Instant::now();
            last_load = Some(started);
            match load(&*store, &security).await {
                Ok(published) => {
                    on_rebuild(started.elapsed());
                    tracing::debug!(revision = published.mesh.revision, "mesh snapshot loaded");
                    tx.send_replace(Arc::new(published));
                }
                Err(e) => {
                    tracing::error!(error = %e, "keeping the previous mesh; retrying in 1s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            // A revision that arrived during the load is still marked changed and is picked up
            // by the next iteration; one that failed to load is retried the same way.
            if tx.borrow().mesh.revision < *revisions.borrow() {
                revisions.mark_changed();
            }
        }
    });
    Ok((rx, handle))
}
