//! A sidecar's inbound side: the listener `inbound|<service>` on the service's inbound port,
//! forwarding to the application through the local cluster `inbound|<service>`, with the
//! service's mTLS mode and its traffic permissions.
//!
//! HTTP-family services get an HTTP connection manager (RBAC HTTP filters, then the router,
//! with the route inline: it never changes apart from the listener); TCP services a TCP proxy
//! behind network RBAC filters. Strict: one filter chain that requires a mesh client
//! certificate. Permissive: a TLS inspector picks the mTLS chain for TLS and the plaintext
//! chain for anything else. Off: the plaintext chain alone.

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::{
                Cluster,
                cluster::{ClusterDiscoveryType, DiscoveryType},
            },
            core::v3::{
                Address, ConfigSource, SocketAddress, address,
                socket_address::{PortSpecifier, Protocol as SocketProtocol},
            },
            endpoint::v3::{
                ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
                lb_endpoint::HostIdentifier,
            },
            listener::v3::{
                Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter,
                listener_filter,
            },
            route::v3::{
                Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route::Action,
                route_action::ClusterSpecifier as RouteCluster, route_match::PathSpecifier,
            },
        },
        extensions::filters::{
            http::router::v3::Router,
            listener::tls_inspector::v3::TlsInspector,
            network::{
                http_connection_manager::v3::{
                    HttpConnectionManager, HttpFilter,
                    http_connection_manager::{
                        CodecType, ForwardClientCertDetails, RouteSpecifier,
                        SetCurrentClientCertDetails,
                    },
                    http_filter,
                },
                tcp_proxy::v3::{TcpProxy, tcp_proxy::ClusterSpecifier},
            },
        },
    },
    google::protobuf::Duration as ProtoDuration,
};

use prost::{Message, Name};

use super::{
    Origin, Resources, Selection,
    cluster::{duration, protocol_options, to_any},
    content_version,
    rbac::{self, Plan},
    tls,
};
use crate::model::{Inbound, Kind, Mesh, MtlsMode, Protocol, Service};

const HTTP_CONNECTION_MANAGER: &str = "envoy.filters.network.http_connection_manager";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
const ROUTER: &str = "envoy.filters.http.router";
const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";

/// The name of a service's inbound listener, its route configuration and its local cluster.
/// `|` is not allowed in object names, so it cannot clash with the operator's.
pub fn inbound_name(service: &str) -> String {
    format!("inbound|{service}")
}

/// The inbound listener of `service`'s sidecars.
pub(super) fn listener(
    mesh: &Mesh,
    service_name: &str,
    service: &Service,
    inbound: &Inbound,
    plan: &Plan,
    sds_config: &ConfigSource,
    warnings: &mut Vec<String>,
) -> Listener {
    let name = inbound_name(service_name);
    let mode = tls::mode(mesh, service_name);
    let http = service.protocol != Protocol::Tcp;
    let rbac = rbac::filters(plan, &mesh.security, service_name, http, warnings);
    let chain = |tls: bool| {
        let filters = if http {
            vec![http_connection_manager(&name, rbac.iter(), tls)]
        } else {
            tcp_filters(&name, rbac.iter())
        };
        FilterChain {
            name: format!("{name}|{}", if tls { "mtls" } else { "plaintext" }),
            filter_chain_match: (tls && mode == MtlsMode::Permissive).then(|| FilterChainMatch {
                transport_protocol: "tls".to_string(),
                ..FilterChainMatch::default()
            }),
            filters,
            transport_socket: tls.then(|| tls::downstream(mesh, service_name, sds_config)),
            ..FilterChain::default()
        }
    };
    let filter_chains = match mode {
        MtlsMode::Strict => vec![chain(true)],
        MtlsMode::Permissive => vec![chain(true), chain(false)],
        MtlsMode::Off => vec![chain(false)],
    };
    let permissive = mode == MtlsMode::Permissive;
    Listener {
        name: name.clone(),
        address: Some(socket_address(&inbound.address, inbound.port)),
        listener_filters: permissive
            .then(|| ListenerFilter {
                name: TLS_INSPECTOR.to_string(),
                config_type: Some(listener_filter::ConfigType::TypedConfig(to_any(
                    &TlsInspector::default(),
                ))),
                ..ListenerFilter::default()
            })
            .into_iter()
            .collect(),
        // A TCP client that waits for the server to speak first sends nothing to inspect:
        // after the inspector's timeout it is treated as plaintext rather than dropped.
        continue_on_listener_filters_timeout: permissive && !http,
        filter_chains,
        ..Listener::default()
    }
}

/// The local cluster `inbound|<service>`: the application, at a fixed address.
pub(super) fn cluster(service_name: &str, service: &Service, inbound: &Inbound) -> Cluster {
    let name = inbound_name(service_name);
    Cluster {
        name: name.clone(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32)),
        connect_timeout: service.connect_timeout.map(duration),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name,
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket_address(&inbound.app_address, inbound.app_port)),
                        ..Endpoint::default()
                    })),
                    ..LbEndpoint::default()
                }],
                ..LocalityLbEndpoints::default()
            }],
            ..ClusterLoadAssignment::default()
        }),
        typed_extension_protocol_options: protocol_options(service.protocol).into_iter().collect(),
        ..Cluster::default()
    }
}

fn socket_address(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            protocol: SocketProtocol::Tcp as i32,
            address: ip.to_string(),
            port_specifier: Some(PortSpecifier::PortValue(port)),
            ..SocketAddress::default()
        })),
    }
}

/// The HTTP connection manager of an inbound chain. Over mTLS, the application is told who
/// called: `x-forwarded-client-cert` carries the caller's SPIFFE ID (set by the sidecar, any
/// incoming one dropped).
fn http_connection_manager<'a>(
    name: &str,
    rbac: impl Iterator<Item = &'a rbac::Filter>,
    tls: bool,
) -> Filter {
    let mut http_filters: Vec<HttpFilter> = rbac
        .map(|f| HttpFilter {
            name: f.name.clone(),
            config_type: Some(http_filter::ConfigType::TypedConfig(to_any(
                &f.clone().http(),
            ))),
            ..HttpFilter::default()
        })
        .collect();
    http_filters.push(HttpFilter {
        name: ROUTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(to_any(
            &Router::default(),
        ))),
        ..HttpFilter::default()
    });
    let route = Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix("/".to_string())),
            ..RouteMatch::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(RouteCluster::Cluster(name.to_string())),
            // No timeout of the sidecar's own: the caller's route sets it.
            timeout: Some(ProtoDuration::default()),
            ..RouteAction::default()
        })),
        ..Route::default()
    };
    let hcm = HttpConnectionManager {
        stat_prefix: name.to_string(),
        codec_type: CodecType::Auto as i32,
        route_specifier: Some(RouteSpecifier::RouteConfig(RouteConfiguration {
            name: name.to_string(),
            virtual_hosts: vec![VirtualHost {
                name: name.to_string(),
                domains: vec!["*".to_string()],
                routes: vec![route],
                ..VirtualHost::default()
            }],
            ..RouteConfiguration::default()
        })),
        http_filters,
        forward_client_cert_details: if tls {
            ForwardClientCertDetails::SanitizeSet as i32
        } else {
            ForwardClientCertDetails::Sanitize as i32
        },
        set_current_client_cert_details: tls.then_some(SetCurrentClientCertDetails {
            uri: true,
            ..SetCurrentClientCertDetails::default()
        }),
        ..HttpConnectionManager::default()
    };
    Filter {
        name: HTTP_CONNECTION_MANAGER.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(to_any(&hcm))),
    }
}

/// The network filters of a TCP inbound chain: the RBAC filters, then the TCP proxy.
fn tcp_filters<'a>(name: &str, rbac: impl Iterator<Item = &'a rbac::Filter>) -> Vec<Filter> {
    let mut filters: Vec<Filter> = rbac
        .map(|f| Filter {
            name: f.name.clone(),
            config_type: Some(filter::ConfigType::TypedConfig(to_any(
                &f.clone().network(name),
            ))),
        })
        .collect();
    filters.push(Filter {
        name: TCP_PROXY.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(to_any(&TcpProxy {
            stat_prefix: name.to_string(),
            cluster_specifier: Some(ClusterSpecifier::Cluster(name.to_string())),
            ..TcpProxy::default()
        }))),
    });
    filters
}

/// Adds the inbound listener and local cluster of the service `selection` is the sidecar of,
/// if that service declares `inbound`. Returns the listener's address, port and name, which it
/// holds against the selected listeners.
pub(super) fn add(
    mesh: &Mesh,
    selection: &Selection,
    config_source: &ConfigSource,
    out: &mut Resources,
) -> Option<(String, u32, String)> {
    let service_name = selection.sidecar.as_deref()?;
    let service = mesh.services.get(service_name)?;
    let inbound = service.inbound.as_ref()?;
    let permissions = mesh
        .traffic_permissions
        .iter()
        .map(|(n, p)| (n.as_str(), p));
    let plan = Plan::new(service_name, permissions, mesh.security.permissions_default);
    if !plan.is_empty() && !tls::mode(mesh, service_name).callers_use_tls() {
        out.warnings.push(format!(
            "service '{service_name}' has traffic permissions but its mTLS is off: they match \
             callers by certificate, so none matches a plaintext caller (only the default \
             applies); set mtls: strict or permissive"
        ));
    }
    if tls::mode(mesh, service_name).callers_use_tls() && !mesh.security.ca {
        out.warnings.push(format!(
            "service '{service_name}' wants mTLS but xds-server runs without a mesh CA, so no \
             certificate comes: this sidecar's inbound listener waits for one and takes no \
             traffic; start xds-server with --ca builtin (or --ca files), or set mtls: off"
        ));
    }
    let name = inbound_name(service_name);
    let message = listener(
        mesh,
        service_name,
        service,
        inbound,
        &plan,
        config_source,
        &mut out.warnings,
    );
    let mut origins = vec![Origin::whole(Kind::Service, service_name)];
    for (permission, p) in plan.applied() {
        let part = serde_json::to_vec(p).unwrap_or_default();
        origins.push(Origin::part(Kind::TrafficPermission, permission, &part));
    }
    let value = message.encode_to_vec();
    let version = content_version(&value);
    out.insert(&name, Listener::type_url(), value, version, origins.into());
    out.add(
        &name,
        &cluster(service_name, service, inbound),
        Origin::whole(Kind::Service, service_name),
    );
    Some((inbound.address.clone(), inbound.port, name))
}
