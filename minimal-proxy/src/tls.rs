//! TLS on listeners and clusters (rustls): certificates and trust bundles from SDS, the
//! SPIFFE verifier, and what a verified peer certificate says about the peer.

/// What a verified client certificate says about the downstream peer: RBAC's
/// `authenticated` principal matches its URI SANs first, then DNS SANs, then the subject, as
/// Envoy's does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerCert {
    /// URI SANs, e.g. `spiffe://mesh.local/service/web`.
    pub uri_sans: Vec<String>,
    pub dns_sans: Vec<String>,
    /// The subject as RFC 2253 text.
    pub subject: String,
}
