//! Make-before-break for new clusters. Envoy activates a new cluster only once its assignment
//! arrives; a route naming it before then fails with 503 (no cluster). So when a push adds
//! clusters, listener and route updates and all removals wait until the proxy acknowledges
//! the new clusters' assignments (or rejects the clusters, or the stream gives up waiting).

use std::collections::BTreeSet;

use super::Feedback;
use xds_core::{TypeUrl, type_url};

/// What a stream's machine is waiting for before it sends listener and route updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A SotW proxy reconnecting after the mesh changed to name the clusters it holds (its
    /// assignment request), so its first cluster response keeps them.
    Resume,
    /// New clusters' assignments to be acknowledged.
    Warm,
}

/// The clusters a stream is waiting on, if any.
#[derive(Debug, Default)]
pub(crate) struct Warming(Option<BTreeSet<String>>);

impl Warming {
    pub(crate) fn active(&self) -> bool {
        self.0.is_some()
    }

    /// Waits for `added` too (nothing more to wait for when it is empty).
    pub(crate) fn wait_for(&mut self, added: BTreeSet<String>) {
        if !added.is_empty() {
            self.0.get_or_insert_default().extend(added);
        }
    }

    /// Stops waiting for clusters that no longer warm (a later change removed them, or they
    /// no longer have an assignment); the wait ends when none are left.
    pub(crate) fn prune(&mut self, warms: impl Fn(&str) -> bool) {
        if let Some(clusters) = &mut self.0 {
            clusters.retain(|c| warms(c));
            if clusters.is_empty() {
                self.0 = None;
            }
        }
    }

    /// Whether updates of `type_url` wait now.
    pub(crate) fn holds(&self, type_url: &TypeUrl) -> bool {
        self.active() && type_url.waits_for_warming()
    }

    /// Ends the wait when `feedback` is an EDS ACK after which the proxy holds every awaited
    /// assignment (`holds_all`), or a CDS NACK (the clusters will not warm). True when it
    /// ended: the caller then sends what waited.
    pub(crate) fn settle(
        &mut self,
        feedback: &Feedback,
        holds_all: impl FnOnce(&BTreeSet<String>) -> bool,
    ) -> bool {
        let Some(clusters) = &self.0 else {
            return false;
        };
        let done = match feedback {
            Feedback::Ack { type_url: t, .. } => t == type_url::ENDPOINT && holds_all(clusters),
            Feedback::Nack { type_url: t, .. } => t == type_url::CLUSTER,
            _ => false,
        };
        if done {
            self.0 = None;
        }
        done
    }

    /// Stops waiting; true when it was waiting.
    pub(crate) fn give_up(&mut self) -> bool {
        self.0.take().is_some()
    }
}
