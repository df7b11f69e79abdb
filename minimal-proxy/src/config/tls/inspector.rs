//! The listener side of TLS: the `envoy.filters.listener.tls_inspector` listener filter and
//! filter chain matches on `transport_protocol` (the only match minimal-proxy implements).

use envoy_types::pb::envoy::{
    config::listener::v3::{FilterChainMatch, ListenerFilter, listener_filter::ConfigType},
    extensions::filters::listener::tls_inspector::v3::TlsInspector,
};
use prost::Name;

use crate::config::{
    FilterChainConfig, TransportProtocol,
    check::{self, Refusal, Result, not_supported, required, unset, unsupported_value},
};

/// Whether the listener filters are the TLS inspector (the only listener filter supported).
pub(in crate::config) fn tls_inspector(filters: &[ListenerFilter]) -> Result<bool> {
    let mut inspector = false;
    for (i, f) in filters.iter().enumerate() {
        listener_filter(f).map_err(|e| e.under(format!("listener_filters[{i}]")))?;
        inspector = true;
    }
    Ok(inspector)
}

fn listener_filter(f: &ListenerFilter) -> Result<()> {
    let ListenerFilter {
        // Inert: Envoy finds the filter by its config's type.
        name: _,
        filter_disabled,
        config_type,
    } = f;
    unset!(filter_disabled);
    let any = match config_type {
        Some(ConfigType::TypedConfig(any)) => any,
        Some(ConfigType::ConfigDiscovery(_)) => return Err(not_supported("config_discovery")),
        None => return Err(required("typed_config")),
    };
    if !check::is::<TlsInspector>(any) {
        return Err(unsupported_value(
            "typed_config",
            check::type_name(any),
            &TlsInspector::full_name(),
        ));
    }
    let TlsInspector {
        enable_ja3_fingerprinting,
        enable_ja4_fingerprinting,
        initial_read_buffer_size,
        close_connection_on_client_hello_parsing_errors,
        max_client_hello_size,
    } = &check::decode::<TlsInspector>("typed_config", any)?;
    check::nested(|| {
        unset!(
            enable_ja3_fingerprinting,
            enable_ja4_fingerprinting,
            initial_read_buffer_size,
            close_connection_on_client_hello_parsing_errors,
            max_client_hello_size,
        );
        Ok(())
    })
    .map_err(|e| e.under("typed_config"))
}

/// A filter chain's match: `transport_protocol` only (`tls`, `raw_buffer` or unset).
pub(in crate::config) fn chain_match(m: &FilterChainMatch) -> Result<TransportProtocol> {
    #[allow(deprecated)]
    let FilterChainMatch {
        destination_port,
        prefix_ranges,
        address_suffix,
        suffix_len,
        direct_source_prefix_ranges,
        source_type,
        source_prefix_ranges,
        source_ports,
        server_names,
        transport_protocol,
        application_protocols,
    } = m;
    unset!(
        destination_port,
        prefix_ranges,
        address_suffix,
        suffix_len,
        direct_source_prefix_ranges,
        source_type,
        source_prefix_ranges,
        source_ports,
        server_names,
        application_protocols,
    );
    match transport_protocol.as_str() {
        "" => Ok(TransportProtocol::Any),
        "tls" => Ok(TransportProtocol::Tls),
        "raw_buffer" => Ok(TransportProtocol::RawBuffer),
        other => Err(unsupported_value(
            "transport_protocol",
            other,
            "tls, raw_buffer (or unset)",
        )),
    }
}

/// Two chains with the same match would make the second unreachable: Envoy refuses that.
pub(in crate::config) fn check_chain_matches(
    chains: &[FilterChainConfig],
    _inspector: bool,
) -> Result<()> {
    for (i, chain) in chains.iter().enumerate() {
        if let Some(j) = chains[..i]
            .iter()
            .position(|c| c.transport == chain.transport)
        {
            return Err(Refusal::new(
                format!("filter_chains[{i}].filter_chain_match"),
                format!(
                    "matches the same connections as filter_chains[{j}] (multiple filter \
                     chains with the same matching rules are defined)"
                ),
            ));
        }
    }
    Ok(())
}

/// The chain (by its `transport_protocol` match) serving a connection the inspector saw as
/// `seen` (`Tls` or `RawBuffer`; without an inspector, `RawBuffer`): the exact match first,
/// then the chain without a match; `None`: no chain takes it (Envoy closes it).
pub fn choose_chain(chains: &[TransportProtocol], seen: TransportProtocol) -> Option<usize> {
    chains
        .iter()
        .position(|c| *c == seen)
        .or_else(|| chains.iter().position(|c| *c == TransportProtocol::Any))
}
