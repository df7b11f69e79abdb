//! The tonic endpoint of a gRPC server named by a static cluster (the xDS server, the
//! metrics and access-log services): plaintext, or TLS as the cluster's `transport_socket`
//! says ([`GrpcTls`]: the trusted CA only, no system roots; the server's certificate must
//! carry the expected name).

use std::net::Ipv6Addr;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::bootstrap::{GrpcTls, Target};

/// `http://host:port`, or `https://` with TLS.
pub fn uri(target: &Target) -> String {
    let scheme = if target.tls.is_some() {
        "https"
    } else {
        "http"
    };
    match target.host.parse::<Ipv6Addr>() {
        Ok(ip) => format!("{scheme}://[{ip}]:{}", target.port),
        Err(_) => format!("{scheme}://{}:{}", target.host, target.port),
    }
}

/// The endpoint for `target`, with its TLS settings; the error says what was wrong.
pub fn endpoint(target: &Target) -> Result<Endpoint, String> {
    let uri = uri(target);
    let endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|e| format!("'{uri}' is not a valid URI: {e}"))?
        .connect_timeout(target.connect_timeout)
        .tcp_nodelay(true);
    match &target.tls {
        None => Ok(endpoint),
        Some(tls) => endpoint
            .tls_config(client_tls(tls, &target.host))
            .map_err(|e| format!("TLS settings for '{uri}' are unusable: {e}")),
    }
}

/// tonic's TLS settings: trust only the bootstrap's CA, verify `tls.server_name` (or the
/// host connected to).
fn client_tls(tls: &GrpcTls, host: &str) -> ClientTlsConfig {
    let name = tls.server_name.as_deref().unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&tls.trusted_ca_pem))
        .domain_name(name);
    if let Some((chain, key)) = &tls.client_cert {
        config = config.identity(Identity::from_pem(chain, key));
    }
    config
}
