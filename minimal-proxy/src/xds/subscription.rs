//! One resource type's protocol state on its stream, for SotW and Delta alike: what the proxy
//! wants (wildcard or names), what it accepted (the SotW version, or Delta's per-resource
//! versions), the last nonce; and the requests that follow from them. Pure: no I/O, no clocks.
//!
//! The rules it keeps:
//! - the first request on a stream resumes: SotW sends the last accepted `version_info`;
//!   Delta sends `initial_resource_versions` of what the proxy holds;
//! - an ACK carries the response's version and nonce; a NACK the response's nonce, the
//!   previously accepted version (SotW) and `error_detail`;
//! - a change of names is sent at once on a live stream (SotW: the whole list with the last
//!   version and nonce; Delta: subscribe/unsubscribe by name), and folded into the first
//!   request otherwise;
//! - a type with nothing to ask for (EDS without EDS clusters) sends nothing, except to
//!   unsubscribe what the server last heard.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::{
    envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest},
    google::rpc::Status,
};
use xds_core::TypeUrl;

use super::Outgoing;
use crate::bootstrap::Protocol;

/// gRPC's `INVALID_ARGUMENT`, the code Envoy puts in a NACK's `error_detail`.
const INVALID_ARGUMENT: i32 = 3;

#[derive(Debug)]
pub struct Subscription {
    type_url: TypeUrl,
    protocol: Protocol,
    /// CDS and LDS: every resource of the type; EDS and RDS: `names`.
    wildcard: bool,
    names: BTreeSet<String>,
    /// LDS starts once clusters are initialised (as Envoy's init manager does).
    enabled: bool,
    /// The stream carrying this type is up.
    connected: bool,
    /// What the server last heard on this stream; `None`: nothing sent on it yet.
    told: Option<BTreeSet<String>>,
    /// SotW: the last accepted `version_info`.
    version: String,
    /// SotW: the last response's nonce, echoed by every request.
    nonce: String,
    /// Delta: the version of each resource held (`initial_resource_versions` on reconnect).
    held: BTreeMap<String, String>,
}

impl Subscription {
    pub fn new(type_url: TypeUrl, protocol: Protocol, enabled: bool) -> Subscription {
        Subscription {
            wildcard: type_url.wildcard_capable(),
            type_url,
            protocol,
            names: BTreeSet::new(),
            enabled,
            connected: false,
            told: None,
            version: String::new(),
            nonce: String::new(),
            held: BTreeMap::new(),
        }
    }

    pub fn type_url(&self) -> &TypeUrl {
        &self.type_url
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The last accepted SotW version.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether this type has something to ask for, so its stream should be open.
    pub fn wants_stream(&self) -> bool {
        self.enabled && (self.wildcard || !self.names.is_empty())
    }

    /// The stream came up: the first request, resuming from what the proxy holds.
    pub fn connected(&mut self) -> Option<Outgoing> {
        self.connected = true;
        self.told = None;
        self.nonce.clear();
        self.announce()
    }

    /// The stream went away: the next one starts over (nonces are per stream).
    pub fn disconnected(&mut self) {
        self.connected = false;
        self.told = None;
        self.nonce.clear();
    }

    /// Starts a type created disabled (LDS after cluster initialisation).
    pub fn enable(&mut self) -> Option<Outgoing> {
        if self.enabled {
            return None;
        }
        self.enabled = true;
        self.announce()
    }

    /// The names wanted now (EDS: the EDS clusters' service names; RDS: the listeners' route
    /// names). Sent at once on a live stream.
    pub fn set_names(&mut self, names: BTreeSet<String>) -> Option<Outgoing> {
        if self.wildcard || names == self.names {
            return None;
        }
        self.held.retain(|n, _| names.contains(n));
        self.names = names;
        self.announce()
    }

    /// The request telling the server what is wanted now, if it has not heard it.
    fn announce(&mut self) -> Option<Outgoing> {
        if !self.connected || !self.enabled {
            return None;
        }
        let heard = self.told.as_ref();
        if heard == Some(&self.names) {
            return None;
        }
        if heard.is_none_or(BTreeSet::is_empty) && self.names.is_empty() && !self.wildcard {
            // Nothing to ask for, and nothing to take back.
            return None;
        }
        let first = heard.is_none();
        let request = match self.protocol {
            Protocol::Sotw => Outgoing::Sotw(self.sotw(None)),
            Protocol::Delta => {
                let empty = BTreeSet::new();
                let before = heard.unwrap_or(&empty);
                let mut r = self.delta_base();
                r.resource_names_subscribe = self.names.difference(before).cloned().collect();
                r.resource_names_unsubscribe = before.difference(&self.names).cloned().collect();
                if first {
                    r.initial_resource_versions = self
                        .held
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                }
                Outgoing::Delta(r)
            }
        };
        self.told = Some(self.names.clone());
        Some(request)
    }

    /// Accepts a response: SotW records its version; Delta the versions of the resources
    /// `accepted` (name, version) and drops `removed`.
    pub fn ack(
        &mut self,
        nonce: &str,
        version: &str,
        accepted: &[(String, String)],
        removed: &[String],
    ) -> Outgoing {
        self.version = version.to_string();
        self.nonce = nonce.to_string();
        self.record(accepted, removed);
        self.told = Some(self.names.clone());
        match self.protocol {
            Protocol::Sotw => Outgoing::Sotw(self.sotw(None)),
            Protocol::Delta => Outgoing::Delta(DeltaDiscoveryRequest {
                response_nonce: nonce.to_string(),
                ..self.delta_base()
            }),
        }
    }

    /// Rejects a response (or part of it): the previous version stays; Delta still records
    /// the resources that were `accepted` (Envoy applies the good part of a response).
    pub fn nack(
        &mut self,
        nonce: &str,
        message: &str,
        accepted: &[(String, String)],
        removed: &[String],
    ) -> Outgoing {
        self.nonce = nonce.to_string();
        self.record(accepted, removed);
        self.told = Some(self.names.clone());
        let error_detail = Some(Status {
            code: INVALID_ARGUMENT,
            message: message.to_string(),
            details: Vec::new(),
        });
        match self.protocol {
            Protocol::Sotw => Outgoing::Sotw(self.sotw(error_detail)),
            Protocol::Delta => Outgoing::Delta(DeltaDiscoveryRequest {
                response_nonce: nonce.to_string(),
                error_detail,
                ..self.delta_base()
            }),
        }
    }

    /// Rejects the last response again (on its nonce) for a failure found after it was
    /// accepted; `None` when there is no live response to answer.
    pub fn nack_last(&mut self, message: &str) -> Option<Outgoing> {
        if !self.connected || self.nonce.is_empty() {
            return None;
        }
        let nonce = self.nonce.clone();
        Some(self.nack(&nonce, message, &[], &[]))
    }

    fn record(&mut self, accepted: &[(String, String)], removed: &[String]) {
        if self.protocol != Protocol::Delta {
            return;
        }
        for (name, version) in accepted {
            if self.wildcard || self.names.contains(name) {
                self.held.insert(name.clone(), version.clone());
            }
        }
        for name in removed {
            self.held.remove(name);
        }
    }

    fn sotw(&self, error_detail: Option<Status>) -> DiscoveryRequest {
        DiscoveryRequest {
            version_info: self.version.clone(),
            resource_names: self.names.iter().cloned().collect(),
            type_url: self.type_url.to_string(),
            response_nonce: self.nonce.clone(),
            error_detail,
            ..Default::default()
        }
    }

    fn delta_base(&self) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            type_url: self.type_url.to_string(),
            ..Default::default()
        }
    }
}
