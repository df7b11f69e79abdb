//! One drain signal for a whole process or one listener: the owner triggers it and waits
//! until every watcher has let go (or a deadline passes); each watcher learns that a drain
//! began, finishes what it holds (closes idle keep-alive connections, sends GOAWAY), and
//! drops its handle.
//!
//! `Trigger` ─ start_drain ─► every `Watch::signaled()` resolves; the trigger's
//! `drain(deadline)` resolves once all watches are dropped, or reports `Forced` at the
//! deadline so the owner can cut what remains.

use std::time::Duration;

use tokio::sync::watch;

/// Creates a connected trigger and its first watch.
pub fn channel() -> (Trigger, Watch) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Watch { rx })
}

/// The owning side: starts the drain and waits for it.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every watcher let go in time.
    Graceful,
    /// The deadline passed with watchers still holding on; the owner must cut them.
    Forced,
}

impl Trigger {
    /// Another watch on this signal (for a new connection or task).
    pub fn watch(&self) -> Watch {
        Watch {
            rx: self.tx.subscribe(),
        }
    }

    /// Tells every watcher to drain, without waiting.
    pub fn start_drain(&self) {
        self.tx.send_replace(true);
    }

    /// How many watches are still held.
    pub fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Starts the drain, then waits until every watch is dropped or `deadline` passes.
    pub async fn drain(self, deadline: Duration) -> Outcome {
        self.start_drain();
        match tokio::time::timeout(deadline, self.tx.closed()).await {
            Ok(()) => Outcome::Graceful,
            Err(_) => Outcome::Forced,
        }
    }
}

/// The watching side: cheap to clone; dropping it tells the trigger this holder is done.
#[derive(Debug, Clone)]
pub struct Watch {
    rx: watch::Receiver<bool>,
}

impl Watch {
    /// Resolves once the drain has started (at once if it already has, or if the trigger is
    /// gone, which means nobody is left to wait for a graceful end).
    pub async fn signaled(&mut self) {
        let _ = self.rx.wait_for(|draining| *draining).await;
    }

    /// True once the drain has started.
    pub fn is_draining(&self) -> bool {
        *self.rx.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_is_graceful_once_every_watch_is_dropped() {
        let (trigger, mut watch) = channel();
        let mut second = trigger.watch();
        assert!(!watch.is_draining());
        let holder = tokio::spawn(async move {
            watch.signaled().await;
            second.signaled().await;
            // Both dropped here: the work they guarded is done.
        });
        assert_eq!(
            trigger.drain(Duration::from_secs(10)).await,
            Outcome::Graceful
        );
        holder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn drain_is_forced_at_the_deadline_when_a_watch_is_held() {
        let (trigger, watch) = channel();
        assert_eq!(trigger.watchers(), 1);
        assert_eq!(
            trigger.drain(Duration::from_millis(50)).await,
            Outcome::Forced
        );
        // The watch outlived the trigger: it sees the drain at once.
        let mut watch = watch;
        watch.signaled().await;
        assert!(watch.is_draining());
    }
}
