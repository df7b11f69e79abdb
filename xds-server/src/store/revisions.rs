//! Keeps a replica's view of the global revision fresh: local writes publish at once; a poll
//! (and, on Postgres, LISTEN) catches writes from other processes.

use std::{future::Future, time::Duration};

use tokio::{sync::watch, task::JoinHandle};

/// Raises the published revision; never lowers it (a slow poll must not undo a fresh write).
pub(super) fn publish(tx: &watch::Sender<i64>, revision: i64) {
    tx.send_if_modified(|current| {
        if revision > *current {
            *current = revision;
            true
        } else {
            false
        }
    });
}

/// Aborts the background task when the store goes away.
#[derive(Debug)]
pub(super) struct Background(pub(super) JoinHandle<()>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls `read` every `interval` and publishes what it finds. Errors are logged and retried:
/// the watch only ever lags, it never lies.
pub(super) fn spawn_poller<F, Fut>(
    tx: watch::Sender<i64>,
    interval: Duration,
    read: F,
) -> Background
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<i64, super::Error>> + Send,
{
    Background(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match read().await {
                Ok(rev) => publish(&tx, rev),
                Err(e) => tracing::warn!(error = %e, "polling the store revision failed"),
            }
        }
    }))
}
