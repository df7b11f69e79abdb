//! Static clusters and listeners: bootstrap JSON → the Envoy message → the proxy's config, with
//! the same conversion (and the same refusals) as resources arriving over xDS.
//!
//! The xDS cluster every generated bootstrap carries is decoded by a typed fast path
//! ([`raw::XdsCluster`]); anything else needs Envoy's descriptor pool to read proto3 JSON,
//! which is decoded only then, because it costs tens of megabytes the proxy should not pay to
//! start or to serve.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::{
                Cluster,
                cluster::{ClusterDiscoveryType, DiscoveryType, DnsLookupFamily},
            },
            core::v3::{Address, Http2ProtocolOptions, SocketAddress, address, socket_address},
            endpoint::v3::{
                ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
                lb_endpoint::HostIdentifier,
            },
            listener::v3::Listener,
        },
        extensions::upstreams::http::v3::{
            HttpProtocolOptions,
            http_protocol_options::{
                ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
            },
        },
    },
    google::protobuf::{Any, Duration as ProtoDuration},
};
use prost::{Message, Name};
use serde::de::DeserializeSeed;
use serde_json::Value;
use xds_core::type_url;

use super::{Error, StaticResource, Target, join, raw};
use crate::config::{self, ClusterConfig, ListenerConfig, Rejection};

/// The cluster's `(resource, where its first endpoint is)`; the second part is what an xDS
/// channel naming the cluster connects to.
pub(super) type ParsedCluster = (StaticResource<ClusterConfig>, Option<Target>);

/// `static_resources.clusters`, each converted like a CDS cluster.
pub(super) fn clusters(items: &[Value]) -> Result<Vec<ParsedCluster>, Error> {
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, json) in items.iter().enumerate() {
        let path = format!("static_resources.clusters[{i}]");
        // The transport socket is the gRPC clients' TLS (see `grpc_tls.rs`).
        let (json, tls) = match json.get("transport_socket") {
            Some(socket) => {
                let tls = super::grpc_tls::parse(socket, &format!("{path}.transport_socket"))?;
                let mut json = json.clone();
                if let Some(fields) = json.as_object_mut() {
                    fields.remove("transport_socket");
                }
                (std::borrow::Cow::Owned(json), Some(tls))
            }
            None => (std::borrow::Cow::Borrowed(json), None),
        };
        let json = json.as_ref();
        let proto = match fast_cluster(json) {
            Some(proto) => proto,
            None => decode_with_descriptors::<Cluster>(type_url::CLUSTER, json, &path)?,
        };
        if !names.insert(proto.name.clone()) {
            return Err(Error::field(
                format!("{path}.name"),
                format!("cluster '{}' is defined twice", proto.name),
            ));
        }
        let config = config::cluster_from_proto(&proto).map_err(|r| rejected(&path, r))?;
        let target = target(&proto).map(|t| Target { tls, ..t });
        let resource = Any {
            type_url: type_url::CLUSTER.to_string(),
            value: proto.encode_to_vec(),
        };
        out.push((
            StaticResource {
                config: Arc::new(config),
                resource,
            },
            target,
        ));
    }
    Ok(out)
}

/// `static_resources.listeners`, each converted like an LDS listener.
pub(super) fn listeners(items: &[Value]) -> Result<Vec<StaticResource<ListenerConfig>>, Error> {
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, json) in items.iter().enumerate() {
        let path = format!("static_resources.listeners[{i}]");
        let proto = decode_with_descriptors::<Listener>(type_url::LISTENER, json, &path)?;
        if !names.insert(proto.name.clone()) {
            return Err(Error::field(
                format!("{path}.name"),
                format!("listener '{}' is defined twice", proto.name),
            ));
        }
        let config = config::listener_from_proto(&proto).map_err(|r| rejected(&path, r))?;
        let resource = Any {
            type_url: type_url::LISTENER.to_string(),
            value: proto.encode_to_vec(),
        };
        out.push(StaticResource {
            config: Arc::new(config),
            resource,
        });
    }
    Ok(out)
}

/// A conversion's refusal as a bootstrap error at the resource's path.
fn rejected(path: &str, r: Rejection) -> Error {
    Error::field(join(path, &r.field), r.reason)
}

/// Proto3 JSON → `M` through Envoy's descriptors (decoded here on first use).
fn decode_with_descriptors<M: Message + Default>(
    type_url: &str,
    json: &Value,
    path: &str,
) -> Result<M, Error> {
    let descriptor = xds_core::descriptors::message(type_url)
        .ok_or_else(|| Error::field(path, format!("no descriptor for {type_url}")))?;
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(json, &mut track);
    let message = descriptor.deserialize(deserializer).map_err(|e| {
        let at = join(path, &track.path().to_string());
        let message = e.to_string();
        match message
            .strip_prefix("unrecognized field name '")
            .and_then(|rest| rest.split_once('\''))
        {
            Some((field, _)) => Error::field(
                join(&at, field),
                format!(
                    "not a field of Envoy's {} (check the spelling)",
                    descriptor_name(type_url)
                ),
            ),
            None => Error::field(at, message),
        }
    })?;
    M::decode(message.encode_to_vec().as_slice())
        .map_err(|e| Error::field(path, format!("does not decode as {type_url}: {e}")))
}

fn descriptor_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// The typed fast path: `None` when the cluster has more than [`raw::XdsCluster`] covers.
fn fast_cluster(json: &Value) -> Option<Cluster> {
    let c: raw::XdsCluster = serde_json::from_value(json.clone()).ok()?;
    let kind = match c.kind.as_deref() {
        None | Some("STATIC") => DiscoveryType::Static,
        Some("STRICT_DNS") => DiscoveryType::StrictDns,
        Some(_) => return None,
    };
    let dns_lookup_family = match c.dns_lookup_family.as_deref() {
        None => DnsLookupFamily::Auto,
        Some(name) => DnsLookupFamily::from_str_name(name)?,
    };
    let mut typed_extension_protocol_options = std::collections::HashMap::new();
    if let Some(options) = c.typed_extension_protocol_options {
        if options.http.type_url
            != format!("type.googleapis.com/{}", HttpProtocolOptions::full_name())
        {
            return None;
        }
        let http = HttpProtocolOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                        Http2ProtocolOptions::default(),
                    )),
                },
            )),
            ..Default::default()
        };
        typed_extension_protocol_options.insert(
            HttpProtocolOptions::full_name(),
            Any {
                type_url: options.http.type_url,
                value: http.encode_to_vec(),
            },
        );
    }
    let mut localities = Vec::new();
    for locality in c.load_assignment.endpoints {
        let mut lb_endpoints = Vec::new();
        for e in locality.lb_endpoints {
            let s = e.endpoint.address.socket_address;
            if s.protocol.as_deref().is_some_and(|p| p != "TCP") {
                return None;
            }
            lb_endpoints.push(LbEndpoint {
                host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                    address: Some(Address {
                        address: Some(address::Address::SocketAddress(SocketAddress {
                            address: s.address,
                            port_specifier: Some(socket_address::PortSpecifier::PortValue(
                                s.port_value,
                            )),
                            ..Default::default()
                        })),
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            });
        }
        localities.push(LocalityLbEndpoints {
            lb_endpoints,
            ..Default::default()
        });
    }
    Some(Cluster {
        name: c.name,
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        connect_timeout: c.connect_timeout.map(proto_duration),
        dns_lookup_family: dns_lookup_family as i32,
        typed_extension_protocol_options,
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: c.load_assignment.cluster_name,
            endpoints: localities,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn proto_duration(d: Duration) -> ProtoDuration {
    ProtoDuration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or_default(),
    }
}

/// The first endpoint with a socket address, and the connect timeout (Envoy's default 5 s).
fn target(cluster: &Cluster) -> Option<Target> {
    let connect_timeout = cluster
        .connect_timeout
        .as_ref()
        .map(|d| {
            Duration::new(
                u64::try_from(d.seconds).unwrap_or_default(),
                u32::try_from(d.nanos).unwrap_or_default(),
            )
        })
        .unwrap_or(Duration::from_secs(5));
    let assignment = cluster.load_assignment.as_ref()?;
    assignment
        .endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .find_map(|e| {
            let Some(HostIdentifier::Endpoint(endpoint)) = &e.host_identifier else {
                return None;
            };
            let Some(address::Address::SocketAddress(s)) =
                endpoint.address.as_ref()?.address.as_ref()
            else {
                return None;
            };
            let Some(socket_address::PortSpecifier::PortValue(port)) = s.port_specifier else {
                return None;
            };
            Some(Target {
                host: s.address.clone(),
                port: u16::try_from(port).ok()?,
                connect_timeout,
                tls: None,
            })
        })
}
