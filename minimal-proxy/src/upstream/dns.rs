//! STRICT_DNS clusters: every host name of the assignment is resolved (each address found
//! becomes a host, with the endpoint's weight, labels and health), at start and then every
//! `refresh`. A name that fails to resolve keeps its previous addresses.

use std::{net::SocketAddr, sync::Weak, time::Duration};

use crate::config::{DnsFamily, Endpoint, EndpointAddress, LoadAssignment};

use super::membership::Shared;

/// Resolves the assignment's names now and every `refresh`, applying each result.
pub(crate) async fn run(
    shared: Weak<Shared>,
    assignment: LoadAssignment,
    refresh: Duration,
    family: DnsFamily,
) {
    // Last good addresses per endpoint, in assignment order.
    let mut known: Vec<Vec<SocketAddr>> = Vec::new();
    loop {
        let mut resolved = assignment.clone();
        let mut index = 0;
        let mut failed = false;
        for locality in &mut resolved.localities {
            let mut endpoints = Vec::new();
            for endpoint in &locality.endpoints {
                if known.len() <= index {
                    known.push(Vec::new());
                }
                let addresses = match &endpoint.address {
                    EndpointAddress::Socket(address) => vec![*address],
                    EndpointAddress::Dns { host, port } => match resolve(host, *port, family).await
                    {
                        Ok(found) => found,
                        Err(e) => {
                            tracing::warn!("cannot resolve {host}:{port}: {e}");
                            failed = true;
                            known[index].clone()
                        }
                    },
                };
                known[index] = addresses.clone();
                index += 1;
                endpoints.extend(addresses.into_iter().map(|address| Endpoint {
                    address: EndpointAddress::Socket(address),
                    ..endpoint.clone()
                }));
            }
            locality.endpoints = endpoints;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.stats.update_attempt.inc();
        if failed {
            shared.stats.update_failure.inc();
        } else {
            shared.stats.update_success.inc();
        }
        shared.apply_assignment(&resolved);
        drop(shared);
        tokio::time::sleep(refresh).await;
    }
}

/// The addresses of `host`, filtered and ordered by the lookup family as Envoy's are.
async fn resolve(host: &str, port: u16, family: DnsFamily) -> std::io::Result<Vec<SocketAddr>> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    let (v4, v6): (Vec<_>, Vec<_>) = all.into_iter().partition(SocketAddr::is_ipv4);
    let chosen = match family {
        DnsFamily::V4Only => v4,
        DnsFamily::V4Preferred if !v4.is_empty() => v4,
        DnsFamily::V4Preferred => v6,
        DnsFamily::Auto if !v6.is_empty() => v6,
        DnsFamily::Auto => v4,
    };
    let mut unique = Vec::with_capacity(chosen.len());
    for address in chosen {
        if !unique.contains(&address) {
            unique.push(address);
        }
    }
    if unique.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no address of the requested family ({family:?})"),
        ));
    }
    Ok(unique)
}
