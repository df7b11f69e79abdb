//! A static cluster's `transport_socket` as the gRPC clients use it (the xDS server, the
//! metrics and access-log services): Envoy's `UpstreamTlsContext` with a trusted CA (inline
//! or a file), the name the server's certificate must carry (`sni` or one exact SAN
//! matcher) and optionally a client certificate. Anything else is refused by field.
//!
//! The transport socket applies to the gRPC channels built on the cluster; the cluster's own
//! runtime config (as an upstream for static routes) does not carry it.

use std::{fmt, path::Path, sync::Arc};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde::Deserialize;
use serde_json::Value;

use super::{Error, decode, join};

const SOCKET_NAME: &str = "envoy.transport_sockets.tls";
const CONTEXT_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

/// TLS to a gRPC server: what to trust, which name to verify, and who the proxy is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GrpcTls {
    /// The CA certificates (PEM) the server's certificate must chain to.
    pub trusted_ca_pem: String,
    /// The name (DNS or IP) the server's certificate must carry, also sent as SNI when a DNS
    /// name; `None`: the cluster's endpoint host.
    pub server_name: Option<String>,
    /// A client certificate chain and key (PEM), from `tls_certificates`.
    pub client_cert: Option<(String, String)>,
}

impl fmt::Debug for GrpcTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcTls")
            .field("server_name", &self.server_name)
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportSocket {
    #[serde(default)]
    name: String,
    typed_config: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamTlsContext {
    #[serde(rename = "@type")]
    type_url: String,
    #[serde(default)]
    sni: Option<String>,
    #[serde(default)]
    common_tls_context: Option<CommonTlsContext>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonTlsContext {
    #[serde(default)]
    alpn_protocols: Vec<String>,
    #[serde(default)]
    validation_context: Option<ValidationContext>,
    #[serde(default)]
    tls_certificates: Vec<TlsCertificate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidationContext {
    trusted_ca: DataSource,
    #[serde(default)]
    match_typed_subject_alt_names: Vec<SanMatcher>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SanMatcher {
    san_type: String,
    matcher: ExactMatcher,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExactMatcher {
    exact: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsCertificate {
    certificate_chain: DataSource,
    private_key: DataSource,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataSource {
    #[serde(default)]
    inline_string: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

/// Parses `transport_socket` at `path` (e.g. `static_resources.clusters[0].transport_socket`).
pub(super) fn parse(value: &Value, path: &str) -> Result<Arc<GrpcTls>, Error> {
    let socket: TransportSocket = decode(value, path)?;
    if !socket.name.is_empty() && socket.name != SOCKET_NAME {
        return Err(Error::field(
            join(path, "name"),
            format!(
                "'{}' is not supported by minimal-proxy: use {SOCKET_NAME}",
                socket.name
            ),
        ));
    }
    let path = join(path, "typed_config");
    let type_url = socket.typed_config.get("@type").and_then(Value::as_str);
    if type_url != Some(CONTEXT_TYPE) {
        return Err(Error::field(
            join(&path, "@type"),
            format!("minimal-proxy supports only {CONTEXT_TYPE} here"),
        ));
    }
    let context: UpstreamTlsContext = decode(&socket.typed_config, &path)?;
    debug_assert_eq!(context.type_url, CONTEXT_TYPE);
    let common_path = join(&path, "common_tls_context");
    let common = context.common_tls_context.ok_or_else(|| {
        Error::field(
            &common_path,
            "is required: minimal-proxy verifies the server, give validation_context.trusted_ca",
        )
    })?;
    if common.alpn_protocols.iter().any(|p| p != "h2") {
        return Err(Error::field(
            join(&common_path, "alpn_protocols"),
            "gRPC runs over HTTP/2: only 'h2' is supported",
        ));
    }
    let validation_path = join(&common_path, "validation_context");
    let validation = common.validation_context.ok_or_else(|| {
        Error::field(
            &validation_path,
            "is required: minimal-proxy verifies the server's certificate (give trusted_ca)",
        )
    })?;
    let ca_path = join(&validation_path, "trusted_ca");
    let trusted_ca_pem = data(&validation.trusted_ca, &ca_path)?;
    certificates(&trusted_ca_pem, &ca_path)?;
    let san = match validation.match_typed_subject_alt_names.as_slice() {
        [] => None,
        [m] => {
            let at = join(&validation_path, "match_typed_subject_alt_names[0]");
            if m.san_type != "DNS" && m.san_type != "IP_ADDRESS" {
                return Err(Error::field(
                    join(&at, "san_type"),
                    format!(
                        "'{}' is not supported here: use DNS or IP_ADDRESS",
                        m.san_type
                    ),
                ));
            }
            Some(m.matcher.exact.clone())
        }
        _ => {
            return Err(Error::field(
                join(&validation_path, "match_typed_subject_alt_names"),
                "minimal-proxy verifies the server by one name: give at most one matcher",
            ));
        }
    };
    let server_name = match (context.sni, san) {
        (Some(sni), Some(san)) if sni != san => {
            return Err(Error::field(
                join(&path, "sni"),
                format!(
                    "'{sni}' differs from the SAN matcher '{san}': minimal-proxy verifies the \
                     name it sends, so make them the same"
                ),
            ));
        }
        (sni, san) => sni.or(san).filter(|n| !n.is_empty()),
    };
    let client_cert = match common.tls_certificates.as_slice() {
        [] => None,
        [c] => {
            let at = join(&common_path, "tls_certificates[0]");
            let chain_path = join(&at, "certificate_chain");
            let chain = data(&c.certificate_chain, &chain_path)?;
            certificates(&chain, &chain_path)?;
            let key_path = join(&at, "private_key");
            let key = data(&c.private_key, &key_path)?;
            if PrivateKeyDer::from_pem_slice(key.as_bytes()).is_err() {
                return Err(Error::field(
                    key_path,
                    "is not a PEM private key (PKCS#8, SEC1 or PKCS#1)",
                ));
            }
            Some((chain, key))
        }
        _ => {
            return Err(Error::field(
                join(&common_path, "tls_certificates"),
                "give at most one client certificate",
            ));
        }
    };
    Ok(Arc::new(GrpcTls {
        trusted_ca_pem,
        server_name,
        client_cert,
    }))
}

/// Refuses a static cluster with a transport socket beside static listeners: the socket is
/// applied to the gRPC clients only, so a listener routing to that cluster would reach it in
/// plaintext; refused rather than silently downgraded.
pub(super) fn only_for_grpc(
    clusters: &[super::resources::ParsedCluster],
    listeners: &[super::StaticResource<crate::config::ListenerConfig>],
) -> Result<(), Error> {
    if listeners.is_empty() {
        return Ok(());
    }
    match clusters
        .iter()
        .position(|(_, t)| t.as_ref().is_some_and(|t| t.tls.is_some()))
    {
        Some(i) => Err(Error::field(
            format!("static_resources.clusters[{i}].transport_socket"),
            "minimal-proxy applies a static cluster's transport socket to gRPC services (xDS, \
             metrics, access logs) only, and this bootstrap also has static listeners that could \
             route to it in plaintext: deliver those listeners over xDS, or drop the transport \
             socket",
        )),
        None => Ok(()),
    }
}

/// A data source's text: `inline_string` or `filename` (read now).
fn data(source: &DataSource, path: &str) -> Result<String, Error> {
    match (&source.inline_string, &source.filename) {
        (Some(text), None) => Ok(text.clone()),
        (None, Some(file)) => std::fs::read_to_string(Path::new(file)).map_err(|e| {
            Error::field(join(path, "filename"), format!("cannot read '{file}': {e}"))
        }),
        _ => Err(Error::field(
            path,
            "give exactly one of inline_string or filename",
        )),
    }
}

/// Checks `pem` holds at least one certificate.
fn certificates(pem: &str, path: &str) -> Result<(), Error> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::field(path, format!("is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::field(
            path,
            "holds no 'BEGIN CERTIFICATE' block: give the CA certificates in PEM",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
