//! TLS in the configuration: SDS `Secret`s (a workload certificate with its key, or a trust
//! bundle) and the `envoy.transport_sockets.tls` transport socket of a listener's filter chain
//! (`DownstreamTlsContext`) or a cluster (`UpstreamTlsContext`), as xds-server generates them:
//! certificates and trust bundles by SDS name over ADS, peers checked against the bundle and,
//! upstream, exact URI SAN matchers (SPIFFE IDs). Anything else is refused by field.

mod context;
mod inspector;
mod secret;

use std::fmt;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub(super) use context::{downstream_transport_socket, upstream_transport_socket};
pub use inspector::choose_chain;
pub(super) use inspector::{chain_match, check_chain_matches, tls_inspector};
pub use secret::secret_from_proto;

/// One SDS secret, parsed (PEM to DER) and checked when it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretConfig {
    /// `tls_certificate`: the proxy's own certificate chain (leaf first) and its key.
    Certificate {
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKey,
    },
    /// `validation_context.trusted_ca`: the roots peers are verified against.
    TrustBundle { roots: Vec<CertificateDer<'static>> },
    /// Removed by the server (Delta `removed_resources`): what waited for it stops waiting,
    /// and handshakes that need it fail, as in Envoy.
    Removed,
}

/// A private key (DER). Never printed: `Debug` says only that it is redacted, so neither
/// logs, errors nor `/config_dump` (which shows `[redacted]` as Envoy does) carry it.
pub struct PrivateKey(pub PrivateKeyDer<'static>);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

impl Clone for PrivateKey {
    fn clone(&self) -> Self {
        PrivateKey(self.0.clone_key())
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.secret_der() == other.0.secret_der()
    }
}

impl Eq for PrivateKey {}

/// How peers are verified: their chain must lead to a root of the `trust_bundle` secret and,
/// when `uri_sans` is not empty, their leaf must carry one of these URI SANs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The SDS name of the trust bundle (`mesh-trust-bundle`).
    pub trust_bundle: String,
    /// Exact URI SANs, any of which is accepted (`match_typed_subject_alt_names` URI exact).
    pub uri_sans: Vec<String>,
}

/// A listener filter chain's `DownstreamTlsContext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamTls {
    /// The SDS name of the proxy's certificate.
    pub certificate: String,
    /// How client certificates are verified; `None`: none is asked for.
    pub validation: Option<Validation>,
    /// Refuse a client without a certificate (mTLS); needs `validation`.
    pub require_client_certificate: bool,
}

/// A cluster's `UpstreamTlsContext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// The SDS name of the certificate the proxy presents; `None`: no client certificate.
    pub certificate: Option<String>,
    /// How the server's certificate is verified. Required: minimal-proxy does not connect to
    /// an unverified server.
    pub validation: Validation,
    /// The SNI sent; empty: none.
    pub sni: String,
}

impl DownstreamTls {
    /// The SDS names this context needs before it can serve (a listener warms until then).
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.certificate.as_str())
            .chain(self.validation.iter().map(|v| v.trust_bundle.as_str()))
    }
}

impl UpstreamTls {
    /// The SDS names this context needs (a cluster warms until then).
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.certificate
            .as_deref()
            .into_iter()
            .chain(std::iter::once(self.validation.trust_bundle.as_str()))
    }
}
