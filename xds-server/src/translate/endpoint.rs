//! Endpoints → `ClusterLoadAssignment`s: zones become localities, labels become the
//! `envoy.lb` metadata that subset load balancing selects on.

use std::collections::BTreeMap;

use envoy_types::pb::{
    envoy::config::{
        core::v3::{
            Address, HealthStatus, Locality, Metadata, SocketAddress, address,
            socket_address::{PortSpecifier, Protocol},
        },
        endpoint::v3::{
            ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
            lb_endpoint::HostIdentifier,
        },
    },
    google::protobuf::{Struct, Value, value::Kind},
};

use prost::Message;

use super::cluster::uint32;
use crate::model::{Endpoint, EndpointHealth, Endpoints};

/// The metadata namespace Envoy's subset load balancer reads endpoint labels from, and route
/// `metadata_match` writes subset criteria to.
pub(super) const LB_METADATA: &str = "envoy.lb";

/// Bytes that identify `cla`'s content whatever order its label maps were encoded in: the
/// assignment without endpoint metadata, then each endpoint's metadata in name order.
pub(super) fn stable_bytes(cla: &ClusterLoadAssignment) -> Vec<u8> {
    let mut bare = cla.clone();
    let mut labels = String::new();
    for locality in &mut bare.endpoints {
        for ep in &mut locality.lb_endpoints {
            labels.push_str(&metadata_text(ep.metadata.take()));
        }
    }
    let mut bytes = bare.encode_to_vec();
    bytes.extend(labels.into_bytes());
    bytes
}

/// `metadata` as text with every map in name order, `|`-terminated (for stable versions).
pub(super) fn metadata_text(metadata: Option<Metadata>) -> String {
    let mut out = String::new();
    let namespaces: BTreeMap<_, _> = metadata
        .unwrap_or_default()
        .filter_metadata
        .into_iter()
        .collect();
    for (namespace, fields) in namespaces {
        let fields: BTreeMap<_, _> = fields.fields.into_iter().collect();
        out.push_str(&format!("{namespace}:{fields:?};"));
    }
    out.push('|');
    out
}

/// String labels as `filter_metadata["envoy.lb"]`.
pub(super) fn lb_metadata(labels: &BTreeMap<String, String>) -> Metadata {
    let fields = labels
        .iter()
        .map(|(k, v)| {
            let value = Value {
                kind: Some(Kind::StringValue(v.clone())),
            };
            (k.clone(), value)
        })
        .collect();
    Metadata {
        filter_metadata: [(LB_METADATA.to_string(), Struct { fields })].into(),
        ..Metadata::default()
    }
}

/// The assignment for `service`. Always present, even with no endpoints: Envoy waits for it
/// while warming the cluster.
pub(super) fn load_assignment(
    service: &str,
    endpoints: Option<&Endpoints>,
) -> ClusterLoadAssignment {
    // By zone (no zone sorts first, as ""), then in the operator's order.
    let mut by_zone: BTreeMap<&str, Vec<LbEndpoint>> = BTreeMap::new();
    for ep in endpoints
        .map(|e| e.endpoints.as_slice())
        .unwrap_or_default()
    {
        by_zone
            .entry(ep.zone.as_deref().unwrap_or_default())
            .or_default()
            .push(lb_endpoint(ep));
    }
    ClusterLoadAssignment {
        cluster_name: service.to_string(),
        endpoints: by_zone
            .into_iter()
            .map(|(zone, lb_endpoints)| LocalityLbEndpoints {
                locality: Some(Locality {
                    zone: zone.to_string(),
                    ..Locality::default()
                }),
                lb_endpoints,
                ..LocalityLbEndpoints::default()
            })
            .collect(),
        ..ClusterLoadAssignment::default()
    }
}

fn lb_endpoint(ep: &Endpoint) -> LbEndpoint {
    let address = SocketAddress {
        protocol: Protocol::Tcp as i32,
        address: ep.address.clone(),
        port_specifier: Some(PortSpecifier::PortValue(ep.port)),
        ..SocketAddress::default()
    };
    LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(address)),
            }),
            ..EnvoyEndpoint::default()
        })),
        health_status: match ep.health {
            EndpointHealth::Healthy => HealthStatus::Healthy,
            EndpointHealth::Unhealthy => HealthStatus::Unhealthy,
            EndpointHealth::Draining => HealthStatus::Draining,
        } as i32,
        metadata: (!ep.labels.is_empty()).then(|| lb_metadata(&ep.labels)),
        load_balancing_weight: Some(uint32(ep.weight)),
    }
}
