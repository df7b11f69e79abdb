//! What every connected proxy has been sent and has accepted: the source of
//! `GET /api/v1/proxies`, of the xDS metrics and of every mesh object's `status` block
//! ([`objects`]).
//!
//! Each stream writes its own entry (its own lock, so 10,000 streams reacting to one change do
//! not queue on one); the registry's map lock is taken only to connect, disconnect and list.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::translate::{HeldBack, Resources};

mod objects;

pub use objects::{MAX_REJECTIONS, ObjectRejection, ObjectStatus};

/// Which flavour of xDS a stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    Sotw,
    Delta,
}

/// Whether the proxy runs what it was last sent, for one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncState {
    /// It acknowledged the last thing sent.
    Synced,
    /// Something was sent and not answered yet.
    Stale,
    /// It rejected the last thing sent; `error_detail` says why.
    Nacked,
}

/// One type URL on one stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeStatus {
    pub version_sent: Option<String>,
    pub version_acked: Option<String>,
    pub status: SyncState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<String>,
    /// How many resources the last response held (SotW) or changed (delta).
    pub resources_sent: usize,
}

/// One xDS stream from one proxy.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyStatus {
    pub node_id: String,
    pub cluster: String,
    pub metadata: serde_json::Value,
    pub variant: Variant,
    /// `ads`, or the per-type service name (`cds`, `eds`, `lds`, `rds`).
    pub service: &'static str,
    pub connected_since: DateTime<Utc>,
    /// Boxed: a map node holds room for eleven values, and at 10,000 streams each byte of it
    /// counts.
    pub types: BTreeMap<String, Box<TypeStatus>>,
    /// The resources computed for this proxy right now (not serialised here: see
    /// `/api/v1/proxies/{id}/config`).
    #[serde(skip)]
    pub resources: Option<Arc<Resources>>,
    /// What its group is not sent because a proxy of the group rejected it (last-known-good),
    /// and what it is sent instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<HeldBack>,
}

/// Identifies one stream in the registry.
pub type StreamId = u64;

/// Every live stream's status. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    streams: Arc<RwLock<HashMap<StreamId, Arc<Mutex<ProxyStatus>>>>>,
    next_id: Arc<AtomicU64>,
}

impl Registry {
    /// Registers a new stream; it is removed when the returned guard drops.
    pub fn connect(&self, status: ProxyStatus) -> StreamGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Mutex::new(status));
        self.streams.write().unwrap().insert(id, entry.clone());
        StreamGuard {
            registry: self.clone(),
            id,
            entry,
        }
    }

    /// All streams, oldest first.
    pub fn list(&self) -> Vec<ProxyStatus> {
        let mut all: Vec<(StreamId, ProxyStatus)> = self
            .streams
            .read()
            .unwrap()
            .iter()
            .map(|(id, s)| (*id, s.lock().unwrap().clone()))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all.into_iter().map(|(_, s)| s).collect()
    }

    /// The newest stream of the proxy with this node id, if connected.
    pub fn get(&self, node_id: &str) -> Option<ProxyStatus> {
        let streams = self.streams.read().unwrap();
        streams
            .iter()
            .filter(|(_, s)| s.lock().unwrap().node_id == node_id)
            .max_by_key(|(id, _)| **id)
            .map(|(_, s)| s.lock().unwrap().clone())
    }

    /// Every stream of this node id (a proxy using per-type services has several).
    pub fn streams_of(&self, node_id: &str) -> Vec<ProxyStatus> {
        self.list()
            .into_iter()
            .filter(|s| s.node_id == node_id)
            .collect()
    }
}

/// A stream's handle on its registry entry.
#[derive(Debug)]
pub struct StreamGuard {
    registry: Registry,
    id: StreamId,
    entry: Arc<Mutex<ProxyStatus>>,
}

impl StreamGuard {
    pub fn update(&self, f: impl FnOnce(&mut ProxyStatus)) {
        f(&mut self.entry.lock().unwrap());
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.registry.streams.write().unwrap().remove(&self.id);
    }
}
