//! `Address` → a socket address: TCP, an IP literal (or, for STRICT_DNS endpoints, a host
//! name) and a numeric port. Pipes, internal addresses, named ports and resolvers are refused.

use std::net::{IpAddr, SocketAddr};

use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, address,
    socket_address::{PortSpecifier, Protocol},
};

use super::{Refusal, Result, not_supported, required, unset, unsupported_value};
use crate::config::EndpointAddress;

/// A listener's or static endpoint's address: an IP literal and a port.
pub(in crate::config) fn socket_address(address: &Address) -> Result<SocketAddr> {
    match endpoint_address(address, false)? {
        EndpointAddress::Socket(addr) => Ok(addr),
        // `endpoint_address` only returns names when they are allowed.
        EndpointAddress::Dns { host, .. } => Err(ip_required(&host)),
    }
}

/// An endpoint's address; host names only when `allow_dns` (STRICT_DNS clusters, which
/// resolve them).
pub(in crate::config) fn endpoint_address(
    address: &Address,
    allow_dns: bool,
) -> Result<EndpointAddress> {
    let Address { address } = address;
    let socket = match address {
        Some(address::Address::SocketAddress(s)) => s,
        Some(address::Address::Pipe(_)) => return Err(not_supported("pipe")),
        Some(address::Address::EnvoyInternalAddress(_)) => {
            return Err(not_supported("envoy_internal_address"));
        }
        None => return Err(required("socket_address")),
    };
    let SocketAddress {
        protocol,
        address,
        resolver_name,
        ipv4_compat,
        network_namespace_filepath,
        port_specifier,
    } = socket;
    let under = |r: Refusal| r.under("socket_address");
    match Protocol::try_from(*protocol) {
        Ok(Protocol::Tcp) => {}
        Ok(other) => {
            return Err(under(unsupported_value(
                "protocol",
                other.as_str_name(),
                "TCP",
            )));
        }
        Err(_) => return Err(under(super::unknown_enum("protocol", *protocol, "TCP"))),
    }
    super::nested(|| {
        unset!(resolver_name, ipv4_compat, network_namespace_filepath);
        Ok(())
    })
    .map_err(under)?;
    let port = match port_specifier {
        Some(PortSpecifier::PortValue(p)) => u16::try_from(*p).map_err(|_| {
            under(Refusal::new(
                "port_value",
                format!("must be at most 65535, got {p}"),
            ))
        })?,
        Some(PortSpecifier::NamedPort(_)) => return Err(under(not_supported("named_port"))),
        None => return Err(under(required("port_value"))),
    };
    if address.is_empty() {
        return Err(under(required("address")));
    }
    match address.parse::<IpAddr>() {
        Ok(ip) => Ok(EndpointAddress::Socket(SocketAddr::new(ip, port))),
        Err(_) if allow_dns => Ok(EndpointAddress::Dns {
            host: address.clone(),
            port,
        }),
        Err(_) => Err(under(ip_required(address))),
    }
}

fn ip_required(host: &str) -> Refusal {
    Refusal::new(
        "address",
        format!("'{host}' is not an IP address; only STRICT_DNS clusters resolve host names"),
    )
}
