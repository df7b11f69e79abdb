//! The protocol half of the test client, without I/O: subscriptions and responses in, the
//! requests Envoy would send out (ACK or NACK, then follow-up subscriptions). Tested without
//! tonic in `tests.rs`.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::{
    envoy::{
        config::core::v3::Node,
        service::discovery::v3::{
            DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
        },
    },
    google::{protobuf::Any, rpc::Status},
};

use super::{Received, Variant, names};
use crate::TypeUrl;

/// gRPC's INVALID_ARGUMENT, the code Envoy puts in a NACK's `error_detail`.
const INVALID_ARGUMENT: i32 = 3;

/// One request to send, in the stream's variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Request {
    Sotw(DiscoveryRequest),
    Delta(DeltaDiscoveryRequest),
}

/// The client's view of one ADS stream.
#[derive(Debug)]
pub(crate) struct Session {
    variant: Variant,
    /// Sent in the first request only, then `None`.
    node: Option<Node>,
    /// Subscribe to what received clusters and listeners refer to, as Envoy does.
    follow: bool,
    types: BTreeMap<TypeUrl, TypeState>,
    /// The next response of each type is rejected with this message.
    nacks: BTreeMap<TypeUrl, String>,
}

#[derive(Debug, Default)]
struct TypeState {
    subscribed: bool,
    wildcard: bool,
    /// The wildcard is the legacy one: LDS or CDS asked for by naming nothing at first.
    legacy: bool,
    names: BTreeSet<String>,
    /// The last version accepted (SotW `version_info`, delta `system_version_info`).
    accepted: Option<String>,
    /// The nonce of the last response of this type.
    nonce: String,
    /// What the proxy holds now, by name.
    held: BTreeMap<String, Any>,
}

impl Session {
    pub(crate) fn new(variant: Variant, node: Option<Node>, follow: bool) -> Self {
        Self {
            variant,
            node,
            follow,
            types: BTreeMap::new(),
            nacks: BTreeMap::new(),
        }
    }

    pub(crate) fn variant(&self) -> Variant {
        self.variant
    }

    /// What the client holds of `type_url`, by name.
    pub(crate) fn held(&self, type_url: &TypeUrl) -> Option<&BTreeMap<String, Any>> {
        self.types.get(type_url).map(|s| &s.held)
    }

    /// The last version of `type_url` the client accepted.
    pub(crate) fn accepted(&self, type_url: &TypeUrl) -> Option<&str> {
        self.types.get(type_url)?.accepted.as_deref()
    }

    /// Rejects the next response of `type_url` with `message`.
    pub(crate) fn nack_next(&mut self, type_url: TypeUrl, message: String) {
        self.nacks.insert(type_url, message);
    }

    /// Replaces the subscription to `type_url` with `names`: none means wildcard for LDS and
    /// CDS (and nothing for other types), `*` among them means wildcard too. The request to
    /// send, or `None` when nothing changed.
    pub(crate) fn subscribe(&mut self, type_url: TypeUrl, names: &[String]) -> Option<Request> {
        let state = self.types.entry(type_url.clone()).or_default();
        let star = names.iter().any(|n| n == "*");
        let named: BTreeSet<String> = names.iter().filter(|n| *n != "*").cloned().collect();
        let first = !state.subscribed;
        // As the server reads it: naming nothing keeps (or, at first, starts) the legacy
        // wildcard of LDS and CDS; otherwise only `*` means wildcard.
        let legacy = !star
            && named.is_empty()
            && type_url.wildcard_capable()
            && (first || (state.wildcard && state.legacy));
        let wildcard = star || legacy;
        if !first && wildcard == state.wildcard && named == state.names {
            return None;
        }
        let added: Vec<String> = named.difference(&state.names).cloned().collect();
        let removed: Vec<String> = state.names.difference(&named).cloned().collect();
        let was_wildcard = state.wildcard;
        state.subscribed = true;
        state.wildcard = wildcard;
        state.legacy = legacy;
        state.names = named;
        if !wildcard {
            let keep = &state.names;
            state.held.retain(|name, _| keep.contains(name));
        }
        let node = self.node.take();
        let request = match self.variant {
            Variant::Sotw => Request::Sotw(DiscoveryRequest {
                node,
                type_url: type_url.to_string(),
                resource_names: sotw_names(state),
                version_info: state.accepted.clone().unwrap_or_default(),
                response_nonce: state.nonce.clone(),
                ..DiscoveryRequest::default()
            }),
            Variant::Delta => {
                let (mut subscribe, mut unsubscribe) = (added, removed);
                // A first request naming nothing is the legacy wildcard; later, `*` says it.
                if wildcard && !was_wildcard && !legacy {
                    subscribe.insert(0, "*".to_string());
                }
                if was_wildcard && !wildcard {
                    unsubscribe.insert(0, "*".to_string());
                }
                Request::Delta(DeltaDiscoveryRequest {
                    node,
                    type_url: type_url.to_string(),
                    resource_names_subscribe: subscribe,
                    resource_names_unsubscribe: unsubscribe,
                    ..DeltaDiscoveryRequest::default()
                })
            }
        };
        Some(request)
    }

    /// Takes a SotW response: ACKs it (or NACKs it), then subscribes to what it refers to.
    pub(crate) fn on_sotw(&mut self, resp: DiscoveryResponse) -> (Received, Vec<Request>) {
        let type_url = TypeUrl::from(resp.type_url.as_str());
        let named: Result<BTreeMap<String, Any>, String> = resp
            .resources
            .into_iter()
            .map(|any| names::resource_name(&any).map(|name| (name, any)))
            .collect();
        let (resources, rejected) = self.verdict(&type_url, named);
        let state = self.types.entry(type_url.clone()).or_default();
        state.nonce = resp.nonce.clone();
        if rejected.is_none() {
            // LDS and CDS responses hold the whole set; EDS and RDS ones only what changed.
            if type_url.wildcard_capable() {
                state.held.clear();
            }
            state.held.extend(resources.clone());
            state.accepted = Some(resp.version_info.clone());
        }
        let mut requests = vec![Request::Sotw(DiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names: sotw_names(state),
            version_info: state.accepted.clone().unwrap_or_default(),
            response_nonce: resp.nonce.clone(),
            error_detail: rejected.clone().map(nack_status),
            ..DiscoveryRequest::default()
        })];
        if rejected.is_none() {
            requests.extend(self.follow(&type_url));
        }
        let received = Received {
            type_url,
            version: resp.version_info,
            nonce: resp.nonce,
            resources,
            removed: Vec::new(),
            rejected,
        };
        (received, requests)
    }

    /// Takes a delta response: ACKs it (or NACKs it), then subscribes to what it refers to.
    pub(crate) fn on_delta(&mut self, resp: DeltaDiscoveryResponse) -> (Received, Vec<Request>) {
        let type_url = TypeUrl::from(resp.type_url.as_str());
        let named: Result<BTreeMap<String, Any>, String> = resp
            .resources
            .into_iter()
            .map(|r| {
                let any = r
                    .resource
                    .ok_or_else(|| format!("resource '{}' has no body", r.name))?;
                names::resource_name(&any)?;
                Ok((r.name, any))
            })
            .collect();
        let (resources, rejected) = self.verdict(&type_url, named);
        let state = self.types.entry(type_url.clone()).or_default();
        state.nonce = resp.nonce.clone();
        if rejected.is_none() {
            state.held.extend(resources.clone());
            for name in &resp.removed_resources {
                state.held.remove(name);
            }
            state.accepted = Some(resp.system_version_info.clone());
        }
        let mut requests = vec![Request::Delta(DeltaDiscoveryRequest {
            type_url: type_url.to_string(),
            response_nonce: resp.nonce.clone(),
            error_detail: rejected.clone().map(nack_status),
            ..DeltaDiscoveryRequest::default()
        })];
        if rejected.is_none() {
            requests.extend(self.follow(&type_url));
        }
        let received = Received {
            type_url,
            version: resp.system_version_info,
            nonce: resp.nonce,
            resources,
            removed: resp.removed_resources,
            rejected,
        };
        (received, requests)
    }

    /// The resources to apply, or why the response is rejected: it does not decode, or a
    /// NACK was asked for.
    fn verdict(
        &mut self,
        type_url: &TypeUrl,
        named: Result<BTreeMap<String, Any>, String>,
    ) -> (BTreeMap<String, Any>, Option<String>) {
        let asked = self.nacks.remove(type_url);
        match named {
            Ok(resources) => (resources, asked),
            Err(e) => (BTreeMap::new(), Some(e)),
        }
    }

    /// After clusters or listeners change, Envoy asks for the assignments and route
    /// configurations they name (when following references).
    fn follow(&mut self, type_url: &TypeUrl) -> Option<Request> {
        let (target, names) = match (self.follow, type_url) {
            (true, TypeUrl::Cluster) => (
                TypeUrl::Endpoint,
                names::eds_names(self.held_values(type_url)),
            ),
            (true, TypeUrl::Listener) => {
                (TypeUrl::Route, names::rds_names(self.held_values(type_url)))
            }
            _ => return None,
        };
        let state = self.types.get(&target);
        let subscribed = state.is_some_and(|s| s.subscribed);
        if !subscribed && names.is_empty() {
            return None;
        }
        let names: Vec<String> = names.into_iter().collect();
        self.subscribe(target, &names)
    }

    fn held_values(&self, type_url: &TypeUrl) -> impl Iterator<Item = &Any> {
        self.types
            .get(type_url)
            .into_iter()
            .flat_map(|s| s.held.values())
    }
}

/// The names a SotW request repeats: `*` first when wildcard, unless it is the legacy
/// wildcard (naming nothing).
fn sotw_names(state: &TypeState) -> Vec<String> {
    let star = state.wildcard && !state.legacy;
    let star = star.then(|| "*".to_string());
    star.into_iter()
        .chain(state.names.iter().cloned())
        .collect()
}

fn nack_status(message: String) -> Status {
    Status {
        code: INVALID_ARGUMENT,
        message,
        ..Status::default()
    }
}
