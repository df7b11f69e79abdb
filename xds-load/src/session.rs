//! One Envoy-like ADS session without I/O, lean enough for 10,000 in one process: responses
//! in, the requests Envoy would send out (the ACK, then follow-up subscriptions), and whether
//! the response changed anything the proxy held. Per stream it keeps only names, the last
//! version and nonce per type, and one 64-bit hash per held resource (never the resources).
//!
//! Envoy's order on ADS: CDS wildcard first; EDS by name for every EDS cluster received;
//! LDS wildcard once the clusters warmed (the first assignment arrived, or at once when no
//! cluster uses EDS); RDS by name for every route configuration the listeners name.

#[cfg(test)]
mod tests;

use envoy_types::pb::envoy::{
    config::{
        cluster::v3::Cluster, core::v3::Node, endpoint::v3::ClusterLoadAssignment,
        listener::v3::Listener, route::v3::RouteConfiguration,
    },
    service::discovery::v3::{
        DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
    },
};
use prost::Message;
use xds_core::type_url;

/// Which ADS flavour a stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// State of the World: `StreamAggregatedResources`.
    Sotw,
    /// Incremental: `DeltaAggregatedResources`.
    Delta,
}

/// The four resource types an Envoy on ADS asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cluster = 0,
    Endpoint = 1,
    Listener = 2,
    Route = 3,
}

impl Kind {
    pub fn from_url(url: &str) -> Option<Kind> {
        match url {
            type_url::CLUSTER => Some(Kind::Cluster),
            type_url::ENDPOINT => Some(Kind::Endpoint),
            type_url::LISTENER => Some(Kind::Listener),
            type_url::ROUTE => Some(Kind::Route),
            _ => None,
        }
    }

    pub fn url(self) -> &'static str {
        match self {
            Kind::Cluster => type_url::CLUSTER,
            Kind::Endpoint => type_url::ENDPOINT,
            Kind::Listener => type_url::LISTENER,
            Kind::Route => type_url::ROUTE,
        }
    }

    /// LDS and CDS are wildcard (SotW responses hold the whole set); EDS and RDS are by name.
    fn wildcard(self) -> bool {
        matches!(self, Kind::Cluster | Kind::Listener)
    }
}

/// One request to send, in the stream's variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Sotw(DiscoveryRequest),
    Delta(DeltaDiscoveryRequest),
}

/// What one response did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// `None` for a type this session never asked for (it is ACKed all the same).
    pub kind: Option<Kind>,
    /// It added, removed or altered a resource the proxy held (by content, not by version).
    pub changed: bool,
    /// This response completed the first full configuration (CDS, EDS, LDS, RDS).
    pub synced_now: bool,
}

#[derive(Debug, Default)]
struct TypeState {
    subscribed: bool,
    /// EDS and RDS: the names asked for, sorted.
    names: Vec<String>,
    /// SotW: the last accepted `version_info`.
    version: String,
    nonce: String,
    /// What the proxy holds, sorted by name.
    held: Vec<Held>,
    responded: bool,
}

/// One resource the proxy holds: its name, a hash of its encoding, and what it refers to
/// (a cluster's assignment, a listener's route configurations).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    name: String,
    hash: u64,
    refers: Vec<String>,
}

/// The client's side of one ADS stream.
#[derive(Debug)]
pub struct Session {
    variant: Variant,
    /// Sent in the first request only (`set_node_on_first_message_only`), then `None`.
    node: Option<Node>,
    types: [TypeState; 4],
    synced: bool,
}

impl Session {
    pub fn new(variant: Variant, node: Node) -> Self {
        Self {
            variant,
            node: Some(node),
            types: Default::default(),
            synced: false,
        }
    }

    /// The opening request: CDS wildcard.
    pub fn start(&mut self) -> Request {
        self.subscribe(Kind::Cluster, Vec::new())
    }

    /// Takes a SotW response: the ACK, then any new subscriptions.
    pub fn on_sotw(&mut self, resp: DiscoveryResponse) -> (Seen, Vec<Request>) {
        let kind = Kind::from_url(&resp.type_url);
        let mut changed = false;
        if let Some(kind) = kind {
            let incoming: Vec<Held> = resp
                .resources
                .iter()
                .map(|any| describe(kind, None, &any.value))
                .collect();
            let state = &mut self.types[kind as usize];
            changed = if kind.wildcard() {
                replace_all(&mut state.held, incoming)
            } else {
                update(&mut state.held, incoming, &[])
            };
            state.version = resp.version_info.clone();
            state.nonce = resp.nonce.clone();
            state.responded = true;
        }
        let names = kind.map(|k| self.types[k as usize].names.clone());
        let mut out = vec![Request::Sotw(DiscoveryRequest {
            type_url: resp.type_url,
            version_info: resp.version_info,
            response_nonce: resp.nonce,
            resource_names: names.unwrap_or_default(),
            ..DiscoveryRequest::default()
        })];
        out.extend(kind.map(|k| self.follow(k)).unwrap_or_default());
        (self.seen(kind, changed), out)
    }

    /// Takes a delta response: the ACK, then any new subscriptions.
    pub fn on_delta(&mut self, resp: DeltaDiscoveryResponse) -> (Seen, Vec<Request>) {
        let kind = Kind::from_url(&resp.type_url);
        let mut changed = false;
        if let Some(kind) = kind {
            let incoming: Vec<Held> = resp
                .resources
                .iter()
                .map(|r| {
                    let body = r.resource.as_ref().map_or(&[][..], |a| &a.value[..]);
                    describe(kind, Some(&r.name), body)
                })
                .collect();
            let state = &mut self.types[kind as usize];
            changed = update(&mut state.held, incoming, &resp.removed_resources);
            state.nonce = resp.nonce.clone();
            state.responded = true;
        }
        let mut out = vec![Request::Delta(DeltaDiscoveryRequest {
            type_url: resp.type_url,
            response_nonce: resp.nonce,
            ..DeltaDiscoveryRequest::default()
        })];
        out.extend(kind.map(|k| self.follow(k)).unwrap_or_default());
        (self.seen(kind, changed), out)
    }

    fn seen(&mut self, kind: Option<Kind>, changed: bool) -> Seen {
        let was = self.synced;
        self.synced = was || self.complete();
        Seen {
            kind,
            changed,
            synced_now: self.synced && !was,
        }
    }

    /// Every type answered, and every name asked for held.
    fn complete(&self) -> bool {
        let held_all = |k: Kind| {
            let s = &self.types[k as usize];
            s.subscribed
                && s.responded
                && s.names.iter().all(|n| s.held.iter().any(|h| &h.name == n))
        };
        let by_name = |k: Kind| self.types[k as usize].names.is_empty() || held_all(k);
        held_all(Kind::Cluster)
            && held_all(Kind::Listener)
            && by_name(Kind::Endpoint)
            && by_name(Kind::Route)
    }

    /// The follow-up after a response of `kind`: the assignments the clusters use, LDS once
    /// they warmed, the route configurations the listeners name.
    fn follow(&mut self, kind: Kind) -> Vec<Request> {
        match kind {
            Kind::Cluster => {
                let names = self.refers(Kind::Cluster);
                let no_eds = names.is_empty();
                let mut out: Vec<Request> = self
                    .resubscribe(Kind::Endpoint, names)
                    .into_iter()
                    .collect();
                if no_eds {
                    out.extend(self.request_lds());
                }
                out
            }
            Kind::Endpoint => self.request_lds().into_iter().collect(),
            Kind::Listener => {
                let names = self.refers(Kind::Listener);
                self.resubscribe(Kind::Route, names).into_iter().collect()
            }
            Kind::Route => Vec::new(),
        }
    }

    /// What the held resources of `kind` refer to, sorted, without repeats.
    fn refers(&self, kind: Kind) -> Vec<String> {
        let held = &self.types[kind as usize].held;
        let mut names: Vec<String> = held.iter().flat_map(|h| h.refers.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    fn request_lds(&mut self) -> Option<Request> {
        (!self.types[Kind::Listener as usize].subscribed)
            .then(|| self.subscribe(Kind::Listener, Vec::new()))
    }

    /// Asks for `names` of `kind` when they differ from what was asked for.
    fn resubscribe(&mut self, kind: Kind, names: Vec<String>) -> Option<Request> {
        let state = &self.types[kind as usize];
        if state.names == names && (state.subscribed || names.is_empty()) {
            return None;
        }
        Some(self.subscribe(kind, names))
    }

    fn subscribe(&mut self, kind: Kind, names: Vec<String>) -> Request {
        let node = self.node.take();
        let state = &mut self.types[kind as usize];
        let added: Vec<String> = names
            .iter()
            .filter(|n| !state.names.contains(n))
            .cloned()
            .collect();
        let removed: Vec<String> = state
            .names
            .iter()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        state.subscribed = true;
        state.names = names;
        state.held.retain(|h| !removed.contains(&h.name));
        match self.variant {
            Variant::Sotw => Request::Sotw(DiscoveryRequest {
                node,
                type_url: kind.url().to_string(),
                resource_names: state.names.clone(),
                version_info: state.version.clone(),
                response_nonce: state.nonce.clone(),
                ..DiscoveryRequest::default()
            }),
            Variant::Delta => Request::Delta(DeltaDiscoveryRequest {
                node,
                type_url: kind.url().to_string(),
                resource_names_subscribe: added,
                resource_names_unsubscribe: removed,
                ..DeltaDiscoveryRequest::default()
            }),
        }
    }
}

/// Replaces the held set with `incoming`; whether anything differs.
fn replace_all(held: &mut Vec<Held>, mut incoming: Vec<Held>) -> bool {
    incoming.sort();
    let changed = *held != incoming;
    *held = incoming;
    changed
}

/// Applies updates and removals by name; whether anything differs.
fn update(held: &mut Vec<Held>, incoming: Vec<Held>, removed: &[String]) -> bool {
    let mut changed = false;
    for h in incoming {
        match held.binary_search_by(|x| x.name.cmp(&h.name)) {
            Ok(i) if held[i].hash == h.hash => {}
            Ok(i) => {
                held[i] = h;
                changed = true;
            }
            Err(i) => {
                held.insert(i, h);
                changed = true;
            }
        }
    }
    for name in removed {
        if let Ok(i) = held.binary_search_by(|x| x.name.cmp(name)) {
            held.remove(i);
            changed = true;
        }
    }
    changed
}

/// Decodes what the proxy needs of one resource: its name (given on delta, inside the
/// message on SotW) and what it refers to. A resource that does not decode is held by its
/// hash alone, with no name and no references.
fn describe(kind: Kind, name: Option<&str>, bytes: &[u8]) -> Held {
    let (own, refers) = match kind {
        Kind::Cluster => Cluster::decode(bytes).map_or_else(
            |_| (String::new(), vec![]),
            |c| {
                let refers = xds_core::refs::eds_service(&c).into_iter().collect();
                (c.name, refers)
            },
        ),
        Kind::Listener => Listener::decode(bytes).map_or_else(
            |_| (String::new(), vec![]),
            |l| {
                let refers = xds_core::refs::rds_names(&l);
                (l.name, refers)
            },
        ),
        // Delta names the resource: EDS and RDS bodies need no decoding then.
        Kind::Endpoint if name.is_none() => (
            ClusterLoadAssignment::decode(bytes)
                .map(|m| m.cluster_name)
                .unwrap_or_default(),
            vec![],
        ),
        Kind::Route if name.is_none() => (
            RouteConfiguration::decode(bytes)
                .map(|m| m.name)
                .unwrap_or_default(),
            vec![],
        ),
        Kind::Endpoint | Kind::Route => (String::new(), vec![]),
    };
    Held {
        name: name.map_or(own, str::to_string),
        hash: hash(bytes),
        refers,
    }
}

fn hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(bytes, 0)
}
