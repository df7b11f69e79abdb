//! Listeners → `Listener`s with an HTTP connection manager (RDS) or a TCP proxy.

use envoy_types::pb::envoy::{
    config::{
        core::v3::{
            Address, ConfigSource, SocketAddress, address,
            socket_address::{PortSpecifier, Protocol},
        },
        listener::v3::{Filter, FilterChain, Listener, filter},
    },
    extensions::filters::{
        http::router::v3::Router,
        network::{
            http_connection_manager::v3::{
                HttpConnectionManager, HttpFilter, Rds,
                http_connection_manager::{CodecType, RouteSpecifier},
                http_filter,
            },
            tcp_proxy::v3::{TcpProxy, tcp_proxy::ClusterSpecifier},
        },
    },
};

use super::{
    access_log::{AccessLog, access_log},
    cluster::to_any,
};
use crate::model::{self, ListenerProtocol};

const HTTP_CONNECTION_MANAGER: &str = "envoy.filters.network.http_connection_manager";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
const ROUTER: &str = "envoy.filters.http.router";

/// The listener `name`. An HTTP listener's routes come over RDS in the `RouteConfiguration`
/// named after the listener itself (see `translate`), so route changes never touch the
/// listener and never drain its connections. `log` is the access log of a live tap.
pub(super) fn listener(
    name: &str,
    listener: &model::Listener,
    rds_config: &ConfigSource,
    log: Option<&AccessLog>,
) -> Listener {
    let filter = match listener.protocol {
        ListenerProtocol::Http => Filter {
            name: HTTP_CONNECTION_MANAGER.to_string(),
            config_type: Some(filter::ConfigType::TypedConfig(to_any(
                &http_connection_manager(name, rds_config, log),
            ))),
        },
        ListenerProtocol::Tcp => Filter {
            name: TCP_PROXY.to_string(),
            config_type: Some(filter::ConfigType::TypedConfig(to_any(&TcpProxy {
                stat_prefix: name.to_string(),
                cluster_specifier: Some(ClusterSpecifier::Cluster(
                    listener.service.clone().unwrap_or_default(),
                )),
                ..TcpProxy::default()
            }))),
        },
    };
    Listener {
        name: name.to_string(),
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                protocol: Protocol::Tcp as i32,
                address: listener.address.clone(),
                port_specifier: Some(PortSpecifier::PortValue(listener.port)),
                ..SocketAddress::default()
            })),
        }),
        filter_chains: vec![FilterChain {
            filters: vec![filter],
            ..FilterChain::default()
        }],
        ..Listener::default()
    }
}

fn http_connection_manager(
    name: &str,
    rds_config: &ConfigSource,
    log: Option<&AccessLog>,
) -> HttpConnectionManager {
    HttpConnectionManager {
        access_log: log.map(access_log).into_iter().collect(),
        stat_prefix: name.to_string(),
        codec_type: CodecType::Auto as i32,
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(rds_config.clone()),
            route_config_name: name.to_string(),
        })),
        http_filters: vec![HttpFilter {
            name: ROUTER.to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(to_any(
                &Router::default(),
            ))),
            ..HttpFilter::default()
        }],
        ..HttpConnectionManager::default()
    }
}
