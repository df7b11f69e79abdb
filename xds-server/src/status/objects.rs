//! The read-only `status` block of mesh objects in the REST API: how many connected proxies
//! fetch something the object made, how many were sent its current version and acknowledged
//! it, and which proxy rejected it with what message.
//!
//! Computed per request, from the live registry (each stream's current resources and, per
//! type, the versions sent and acknowledged) and from what last-known-good holds back (each
//! group's `held_back`, with the objects to blame; see `translate/provenance.rs`). One pass
//! over the streams, one over each distinct group's resources, then per object only the
//! groups holding something it made, where the proxies of a group in the same state are
//! counted together: never proxies × objects.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
};

use serde::Serialize;

use super::{Registry, StreamId, SyncState};
use crate::{
    model::Kind,
    translate::{HeldBack, ObjectRef, Resources},
    xds::verdicts::mentions,
};

/// At most this many rejections are listed per object (in node id order).
pub const MAX_REJECTIONS: usize = 100;

/// What the connected proxies did with one object's current version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectStatus {
    /// Connected proxies that fetch something this object made.
    pub proxies: u64,
    /// Of those, the proxies whose last response of each type carried this object's current
    /// version of everything it made for them.
    pub received: u64,
    /// Of those, the proxies that acknowledged it.
    pub accepted: u64,
    /// Rejections of this object's current version (at most [`MAX_REJECTIONS`]).
    pub rejected: Vec<ObjectRejection>,
}

/// A proxy's rejection of a resource this object made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRejection {
    pub node_id: String,
    pub type_url: String,
    /// The rejected resource's name.
    pub resource: String,
    /// The proxy's message (its NACK's `error_detail`).
    pub message: String,
}

impl Registry {
    /// The status of each object, given with the store revision of its last write: a group
    /// translated from an older mesh has not got the object's current version yet.
    pub fn object_statuses(&self, objects: &[(ObjectRef, i64)]) -> Vec<ObjectStatus> {
        let groups = self.groups();
        let wanted = Wanted::new(objects);
        let mut entries: Vec<Vec<Entry<'_>>> = objects.iter().map(|_| Vec::new()).collect();
        for (gi, g) in groups.iter().enumerate() {
            g.index(gi, &wanted, &mut entries);
        }
        objects
            .iter()
            .zip(entries)
            .map(|((_, revision), entries)| status(&groups, *revision, entries))
            .collect()
    }

    /// Every connected node, in groups of equal resources (its newest stream's), each type
    /// judged on the newest stream that has it. Versions are compared in place, under each
    /// stream's lock: nothing is copied but node ids and NACK messages.
    fn groups(&self) -> Vec<Group> {
        // The groups first, outside every lock: a group's first look at a new translation
        // decodes its clusters and listeners (`Resources::fetched`).
        let mut distinct: HashMap<*const Resources, Arc<Resources>> = HashMap::new();
        for entry in self.streams.read().unwrap().values() {
            if let Some(r) = &entry.lock().unwrap().resources {
                distinct.entry(Arc::as_ptr(r)).or_insert_with(|| r.clone());
            }
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut by_resources: HashMap<*const Resources, usize> = HashMap::new();
        for (ptr, r) in distinct {
            groups.push(Group::new(r));
            by_resources.insert(ptr, groups.len() - 1);
        }
        let mut streams: Vec<StreamFacts> = Vec::new();
        for (id, entry) in self.streams.read().unwrap().iter() {
            let s = entry.lock().unwrap();
            let Some(resources) = &s.resources else {
                continue; // not computed yet
            };
            // A stream that moved on since the first pass: its group is made here.
            let group = *by_resources
                .entry(Arc::as_ptr(resources))
                .or_insert_with(|| {
                    groups.push(Group::new(resources.clone()));
                    groups.len() - 1
                });
            let g = &groups[group];
            let mut state = State::default();
            for (t, ts) in &s.types {
                let Some((ty, bit)) = g.bit(t) else {
                    continue;
                };
                // Received: its last response, or the last it acknowledged, has the version of
                // what the group fetches of the type now; accepted: acknowledged.
                let expected = Some(g.expected[ty].as_str());
                let sent = ts.version_sent.as_deref() == expected;
                let acked = ts.version_acked.as_deref() == expected;
                state.has |= bit;
                if sent || acked {
                    state.received |= bit;
                }
                if acked {
                    state.accepted |= bit;
                }
                if ts.status == SyncState::Nacked && sent {
                    let message = ts.error_detail.clone().unwrap_or_default();
                    state.nacks.push((ty, message));
                }
            }
            streams.push(StreamFacts {
                id: *id,
                node_id: s.node_id.clone(),
                group,
                state,
            });
        }
        // Oldest first, so a node's newer streams win the types they share.
        streams.sort_unstable_by_key(|s| s.id);
        let mut nodes: HashMap<String, (usize, State)> = HashMap::new();
        for s in streams {
            let (group, state) = nodes
                .entry(s.node_id)
                .or_insert_with(|| (s.group, State::default()));
            if *group != s.group {
                // Newer resources: what older streams said was of the older ones.
                *group = s.group;
                *state = State::default();
            }
            state.merge(s.state);
        }
        for (node_id, (group, state)) in nodes {
            groups[group].add(node_id, state);
        }
        groups
    }
}

/// One stream, as the object status reads it.
struct StreamFacts {
    id: StreamId,
    node_id: String,
    group: usize,
    state: State,
}

/// Per type (bits of [`Group::types`]): reported by the stream(s), received, accepted; and
/// the types whose current version was rejected, with the message.
#[derive(Default)]
struct State {
    has: u64,
    received: u64,
    accepted: u64,
    nacks: Vec<(usize, String)>,
}

impl State {
    /// `newer` wins the types it reports.
    fn merge(&mut self, newer: State) {
        let keep = !newer.has;
        self.received = (self.received & keep) | newer.received;
        self.accepted = (self.accepted & keep) | newer.accepted;
        self.has |= newer.has;
        self.nacks.retain(|(ty, _)| newer.has & (1 << ty) == 0);
        self.nacks.extend(newer.nacks);
    }
}

/// The nodes sharing one set of resources: how many are in each state.
struct Group {
    resources: Arc<Resources>,
    /// The types of the resources (and of what is held back): bit `i` of a mask is `types[i]`.
    types: Vec<String>,
    /// Per type, the version of what a proxy of the group fetches of it now.
    expected: Vec<String>,
    /// Nodes by (types received, types accepted), as bit masks.
    states: HashMap<(u64, u64), u64>,
    /// The nodes whose last response of a type was rejected (a NACK last-known-good did not
    /// take over, e.g. with `--last-known-good false`).
    nacks: Vec<Nack>,
}

struct Nack {
    node_id: String,
    ty: usize,
    message: String,
    /// The resources the message names, or every one of the type when it names none.
    culprits: HashSet<String>,
}

/// The objects asked about, by kind and name. A request asks about one kind, so most origins
/// are passed over on their kind, without hashing their name.
struct Wanted<'a> {
    kinds: Vec<Kind>,
    index: HashMap<(Kind, &'a str), usize>,
}

impl<'a> Wanted<'a> {
    fn new(objects: &'a [(ObjectRef, i64)]) -> Self {
        let mut kinds: Vec<Kind> = objects.iter().map(|(o, _)| o.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let index = objects
            .iter()
            .enumerate()
            .map(|(i, (o, _))| ((o.kind, o.name.as_str()), i))
            .collect();
        Self { kinds, index }
    }

    /// The index of `object` among those asked about.
    fn get(&self, object: &ObjectRef) -> Option<usize> {
        if !self.kinds.contains(&object.kind) {
            return None;
        }
        self.index
            .get(&(object.kind, object.name.as_str()))
            .copied()
    }
}

/// Something an object made, in one group.
struct Entry<'a> {
    group: usize,
    ty: usize,
    resource: &'a str,
    /// Held back, and the rejection is this object's: no proxy of the group gets its current
    /// version.
    culprit: Option<&'a HeldBack>,
}

// === impl Group ===

impl Group {
    fn new(resources: Arc<Resources>) -> Self {
        let mut types: Vec<String> = resources.by_type.keys().cloned().collect();
        for h in &resources.held_back {
            if !types.contains(&h.type_url) {
                types.push(h.type_url.clone());
            }
        }
        let expected = types
            .iter()
            .map(|t| resources.fetched(t).version.clone())
            .collect();
        Self {
            resources,
            types,
            expected,
            states: HashMap::new(),
            nacks: Vec::new(),
        }
    }

    /// The bit of `type_url` (none beyond 64 types; xDS has a handful).
    fn bit(&self, type_url: &str) -> Option<(usize, u64)> {
        let i = self.types.iter().position(|t| t == type_url)?;
        (i < 64).then(|| (i, 1 << i))
    }

    /// Counts a node in its state; keeps its NACKs with the resources each one names (every
    /// resource of the type when it names none).
    fn add(&mut self, node_id: String, state: State) {
        *self
            .states
            .entry((state.received, state.accepted))
            .or_default() += 1;
        for (ty, message) in state.nacks {
            let all = &self.resources.fetched(&self.types[ty]).items;
            let named: HashSet<String> = all
                .iter()
                .filter(|e| mentions(&message, &e.name))
                .map(|e| e.name.clone())
                .collect();
            let culprits = if named.is_empty() {
                all.iter().map(|e| e.name.clone()).collect()
            } else {
                named
            };
            self.nacks.push(Nack {
                node_id: node_id.clone(),
                ty,
                message,
                culprits,
            });
        }
    }

    /// Adds to `entries` what this group holds of the objects `wanted` (by index).
    fn index<'a>(&'a self, gi: usize, wanted: &Wanted<'_>, entries: &mut [Vec<Entry<'a>>]) {
        let r = &*self.resources;
        let held: HashSet<(&str, &str)> = r
            .held_back
            .iter()
            .map(|h| (h.type_url.as_str(), h.name.as_str()))
            .collect();
        for (ty, t) in self.types.iter().enumerate().take(64) {
            for e in r.fetched(t).items.iter() {
                if !held.is_empty() && held.contains(&(t.as_str(), e.name.as_str())) {
                    continue; // what is served instead is older: its origins are not current
                }
                for o in e.origins.iter() {
                    if let Some(i) = wanted.get(&o.object) {
                        entries[i].push(Entry {
                            group: gi,
                            ty,
                            resource: &e.name,
                            culprit: None,
                        });
                    }
                }
            }
        }
        for h in &r.held_back {
            let Some((ty, _)) = self.bit(&h.type_url) else {
                continue;
            };
            for (object, culprit) in h.origins.iter() {
                if let Some(i) = wanted.get(object) {
                    entries[i].push(Entry {
                        group: gi,
                        ty,
                        resource: &h.name,
                        culprit: culprit.then_some(h),
                    });
                }
            }
        }
    }
}

/// One object's status from what each group holds of it.
fn status(groups: &[Group], revision: i64, mut entries: Vec<Entry<'_>>) -> ObjectStatus {
    let mut out = ObjectStatus::default();
    let mut rejected: BTreeSet<ObjectRejection> = BTreeSet::new();
    entries.sort_by_key(|e| e.group);
    for chunk in entries.chunk_by(|a, b| a.group == b.group) {
        let g = &groups[chunk[0].group];
        out.proxies += g.states.values().sum::<u64>();
        if g.resources.revision().is_some_and(|r| r < revision) {
            continue; // translated before the object's last write: nobody has it yet
        }
        let mut need = 0u64;
        let mut blocked = false;
        for e in chunk {
            match e.culprit {
                Some(h) => {
                    blocked = true;
                    rejected.insert(ObjectRejection {
                        node_id: h.rejected_by.clone(),
                        type_url: h.type_url.clone(),
                        resource: h.name.clone(),
                        message: h.message.clone(),
                    });
                }
                None => need |= 1 << e.ty,
            }
        }
        if !blocked {
            for (&(received, accepted), n) in &g.states {
                if received & need == need {
                    out.received += n;
                }
                if accepted & need == need {
                    out.accepted += n;
                }
            }
        }
        for nack in &g.nacks {
            let hit = chunk.iter().filter(|e| {
                e.ty == nack.ty && e.culprit.is_none() && nack.culprits.contains(e.resource)
            });
            for e in hit {
                rejected.insert(ObjectRejection {
                    node_id: nack.node_id.clone(),
                    type_url: g.types[nack.ty].clone(),
                    resource: e.resource.to_string(),
                    message: nack.message.clone(),
                });
            }
        }
    }
    out.rejected = rejected.into_iter().take(MAX_REJECTIONS).collect();
    out
}
