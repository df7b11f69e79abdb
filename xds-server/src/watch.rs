//! Store revisions → immutable mesh snapshots, coalesced.
//!
//! An isolated change is loaded at once (no fixed wait). Changes that arrive while a load
//! runs, or within `window` of the previous load, are folded into the next one: the store's
//! revision watch keeps only the latest revision, so the last change of a burst is never lost.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{sync::watch, task::JoinHandle};

use crate::{
    model::Mesh,
    store::{self, Store},
};

/// A mesh snapshot and when it was published (for push-latency metrics).
#[derive(Debug, Clone)]
pub struct Published {
    pub mesh: Mesh,
    pub at: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not load the mesh: {0}")]
    Store(#[from] store::Error),
    #[error(transparent)]
    Mesh(#[from] crate::model::MeshError),
}

async fn load(store: &dyn Store) -> Result<Published, Error> {
    let snapshot = store.snapshot().await?;
    Ok(Published {
        mesh: Mesh::from_snapshot(&snapshot)?,
        at: Instant::now(),
    })
}

/// Loads the current mesh, then keeps publishing new ones as the store's revision moves.
/// `on_rebuild` is told how long each load took.
pub async fn spawn(
    store: Arc<dyn Store>,
    window: Duration,
    on_rebuild: impl Fn(Duration) + Send + 'static,
) -> Result<(watch::Receiver<Arc<Published>>, JoinHandle<()>), Error> {
    let first = load(&*store).await?;
    let (tx, rx) = watch::channel(Arc::new(first));
    let handle = tokio::spawn(async move {
        let mut revisions = store.watch();
        let mut last_load = Instant::now() - window;
        loop {
            if revisions.changed().await.is_err() {
                return;
            }
            let wanted = *revisions.borrow_and_update();
            if wanted <= tx.borrow().mesh.revision {
                continue;
            }
            // Within the window of the previous load: wait out the rest, gathering the burst.
            let since = last_load.elapsed();
            if since < window {
                tokio::time::sleep(window - since).await;
                revisions.borrow_and_update();
            }
            last_load = Instant::now();
            match load(&*store).await {
                Ok(published) => {
                    on_rebuild(last_load.elapsed());
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
