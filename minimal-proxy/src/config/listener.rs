//! LDS `Listener` → [`ListenerConfig`]: a TCP address and its filter chains, each holding one
//! network filter, an HTTP connection manager or a TCP proxy (after any network RBAC
//! filters), with optional TLS (`transport_socket`) and a match on `transport_protocol` only
//! (told by the `tls_inspector` listener filter).

mod access_log;
mod grpc_log;
mod hcm;
mod tcp_proxy;
mod xfcc;

use envoy_types::pb::envoy::{
    config::listener::v3::{Filter, FilterChain, Listener, filter::ConfigType},
    extensions::filters::network::{
        http_connection_manager::v3::HttpConnectionManager as EnvoyHcm,
        tcp_proxy::v3::TcpProxy as EnvoyTcpProxy,
    },
};
use prost::Name;

use super::{
    FilterChainConfig, ListenerConfig, ListenerFilter, Rejection, TransportProtocol,
    check::{self, Refusal, Result, not_supported, required, socket_address, unset},
    rbac,
};

/// Converts a listener: one filter chain holding an HTTP connection manager (router filter
/// only) or a TCP proxy.
pub fn listener_from_proto(listener: &Listener) -> std::result::Result<ListenerConfig, Rejection> {
    convert(listener).map_err(|r| r.into_rejection(format!("listener '{}'", listener.name)))
}

#[allow(deprecated)] // Deprecated fields are named so that they are refused.
fn convert(l: &Listener) -> Result<ListenerConfig> {
    let Listener {
        name,
        address,
        additional_addresses,
        // Inert: only renames the listener's stats.
        stat_prefix: _,
        stats_matcher,
        filter_chains,
        fcds_config,
        filter_chain_matcher,
        use_original_dst,
        default_filter_chain,
        per_connection_buffer_limit_bytes,
        per_connection_buffer_high_watermark_timeout,
        // Inert: read by no feature the proxy accepts.
        metadata: _,
        deprecated_v1,
        drain_type,
        listener_filters,
        listener_filters_timeout,
        continue_on_listener_filters_timeout,
        transparent,
        freebind,
        socket_options,
        tcp_fast_open_queue_length,
        // Inert: read only by tracing and original-destination features, both refused.
        traffic_direction: _,
        udp_listener_config,
        api_listener,
        connection_balance_config,
        reuse_port,
        enable_reuse_port,
        access_log,
        tcp_backlog_size,
        max_connections_to_accept_per_socket_event,
        bind_to_port,
        enable_mptcp,
        ignore_global_conn_limit,
        bypass_overload_manager,
        tcp_keepalive,
        listener_specifier,
    } = l;
    if name.is_empty() {
        return Err(required("name"));
    }
    unset!(
        additional_addresses,
        stats_matcher,
        fcds_config,
        filter_chain_matcher,
        default_filter_chain,
        per_connection_buffer_limit_bytes,
        per_connection_buffer_high_watermark_timeout,
        deprecated_v1,
        drain_type,
        listener_filters_timeout,
        continue_on_listener_filters_timeout,
        socket_options,
        tcp_fast_open_queue_length,
        udp_listener_config,
        api_listener,
        connection_balance_config,
        reuse_port,
        enable_reuse_port,
        access_log,
        tcp_backlog_size,
        max_connections_to_accept_per_socket_event,
        enable_mptcp,
        ignore_global_conn_limit,
        bypass_overload_manager,
        tcp_keepalive,
        listener_specifier,
    );
    // Explicit defaults change nothing.
    check::bool_default("use_original_dst", use_original_dst, false)?;
    check::bool_default("transparent", transparent, false)?;
    check::bool_default("freebind", freebind, false)?;
    check::bool_default("bind_to_port", bind_to_port, true)?;
    let address = match address {
        Some(a) => socket_address(a).map_err(|e| e.under("address"))?,
        None => return Err(required("address")),
    };
    let tls_inspector = super::tls::tls_inspector(listener_filters)?;
    if filter_chains.is_empty() {
        return Err(required("filter_chains"));
    }
    let chains = filter_chains
        .iter()
        .enumerate()
        .map(|(i, c)| filter_chain(c).map_err(|e| e.under(format!("filter_chains[{i}]"))))
        .collect::<Result<Vec<_>>>()?;
    super::tls::check_chain_matches(&chains, tls_inspector)?;
    Ok(ListenerConfig {
        name: name.clone(),
        address,
        chains,
        tls_inspector,
    })
}

#[allow(deprecated)] // Deprecated fields are named so that they are refused.
fn filter_chain(c: &FilterChain) -> Result<FilterChainConfig> {
    let FilterChain {
        filter_chain_match,
        filters,
        use_proxy_proto,
        // Inert: read by no feature the proxy accepts.
        metadata: _,
        transport_socket,
        transport_socket_connect_timeout,
        name,
    } = c;
    let transport = match filter_chain_match {
        Some(m) => super::tls::chain_match(m).map_err(|e| e.under("filter_chain_match"))?,
        None => TransportProtocol::Any,
    };
    let tls = super::tls::downstream_transport_socket(transport_socket)?;
    unset!(transport_socket_connect_timeout);
    check::bool_default("use_proxy_proto", use_proxy_proto, false)?;
    let Some((last, before)) = filters.split_last() else {
        return Err(required("filters"));
    };
    // Network RBAC filters may come first; the last filter does the proxying.
    let rbac = rbac::network_filters(before)?;
    let mut proxied = filter(last).map_err(|e| e.under(format!("filters[{}]", before.len())))?;
    match &mut proxied {
        ListenerFilter::Tcp(tcp) => tcp.rbac = rbac,
        ListenerFilter::Http(_) if !rbac.is_empty() => return Err(rbac::not_before_hcm()),
        ListenerFilter::Http(_) => {}
    }
    Ok(FilterChainConfig {
        name: name.clone(),
        transport,
        tls,
        filter: proxied,
    })
}

/// The network filter, found by its config's type as Envoy does.
fn filter(f: &Filter) -> Result<ListenerFilter> {
    let Filter {
        // Inert: Envoy finds the filter by its config's type.
        name: _,
        config_type,
    } = f;
    let any = match config_type {
        Some(ConfigType::TypedConfig(any)) => any,
        Some(ConfigType::ConfigDiscovery(_)) => return Err(not_supported("config_discovery")),
        None => return Err(required("typed_config")),
    };
    let under = |e: Refusal| e.under("typed_config");
    if check::is::<EnvoyHcm>(any) {
        let hcm: EnvoyHcm = check::decode("", any).map_err(under)?;
        return hcm::http_connection_manager(&hcm)
            .map(ListenerFilter::Http)
            .map_err(under);
    }
    if check::is::<EnvoyTcpProxy>(any) {
        let tcp: EnvoyTcpProxy = check::decode("", any).map_err(under)?;
        return tcp_proxy::tcp_proxy(&tcp)
            .map(ListenerFilter::Tcp)
            .map_err(under);
    }
    Err(under(check::unsupported_value(
        "",
        check::type_name(any),
        &format!("{}, {}", EnvoyHcm::full_name(), EnvoyTcpProxy::full_name()),
    )))
}
