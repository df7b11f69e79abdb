//! `listener_from_proto`: refusals of the listener's and its filter chain's own fields.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use super::listener::{L, hcm, listener_with, socket};

use envoy_types::pb::envoy::{
    config::{
        core::v3::TransportSocket,
        listener::v3::{FilterChainMatch, Listener, ListenerFilter},
    },
    extensions::filters::network::redis_proxy::v3::RedisProxy,
};

use super::{any, boolv, refused};
use crate::config::listener_from_proto;

#[test]
fn listener_refusals_name_the_field() {
    let base = || listener_with(any(&hcm()));
    let cases: Vec<(Listener, &str, &str)> = vec![
        (
            Listener {
                address: socket("ingress.local", 80),
                ..base()
            },
            "address.socket_address.address",
            "not an IP address",
        ),
        (
            Listener {
                address: None,
                ..base()
            },
            "address",
            "is required",
        ),
        (
            Listener {
                use_original_dst: boolv(true),
                ..base()
            },
            "use_original_dst",
            "supported: false",
        ),
        (
            Listener {
                listener_filters: vec![ListenerFilter::default()],
                ..base()
            },
            // Only the TLS inspector is supported (see tls.rs); this one has no config.
            "listener_filters[0].typed_config",
            "is required",
        ),
        (
            Listener {
                per_connection_buffer_limit_bytes: super::u32v(1024),
                ..base()
            },
            "per_connection_buffer_limit_bytes",
            "not supported",
        ),
        (
            Listener {
                filter_chains: [base().filter_chains, base().filter_chains].concat(),
                ..base()
            },
            "filter_chains[1].filter_chain_match",
            "same matching rules",
        ),
        (
            Listener {
                filter_chains: vec![],
                ..base()
            },
            "filter_chains",
            "is required",
        ),
    ];
    for (l, field, reason) in cases {
        refused(listener_from_proto(&l), L, field, reason);
    }

    let mut l = base();
    l.filter_chains[0].filter_chain_match = Some(FilterChainMatch {
        server_names: vec!["a".into()],
        ..Default::default()
    });
    refused(
        listener_from_proto(&l),
        L,
        "filter_chains[0].filter_chain_match.server_names",
        "not supported",
    );
    l.filter_chains[0].filter_chain_match = Some(FilterChainMatch::default());
    listener_from_proto(&l).expect("an empty match is no match");

    let mut l = base();
    l.filter_chains[0].transport_socket = Some(TransportSocket::default());
    refused(
        listener_from_proto(&l),
        L,
        "filter_chains[0].transport_socket.typed_config",
        "is required",
    );

    let mut l = base();
    let again = l.filter_chains[0].filters[0].clone();
    l.filter_chains[0].filters.push(again);
    refused(
        listener_from_proto(&l),
        L,
        "filter_chains[0].filters",
        "only one network filter",
    );

    refused(
        listener_from_proto(&listener_with(any(&RedisProxy::default()))),
        L,
        "filter_chains[0].filters[0].typed_config",
        "'envoy.extensions.filters.network.redis_proxy.v3.RedisProxy' is not supported by minimal-proxy; supported: envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
    );
}
