//! Pure certificate checks: a chain against a trust bundle (webpki: signatures, validity
//! period, extended key usage), the URI SAN match webpki cannot do (SPIFFE IDs), and what a
//! certificate says about its holder ([`PeerCert`]).

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

use super::PeerCert;

/// Why a peer's certificate was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("the certificate chain does not verify against the trust bundle: {0}")]
    Chain(webpki::Error),
    #[error("the trust bundle has not arrived (or was removed); no peer can be verified yet")]
    NoTrustBundle,
    #[error("the certificate does not parse: {0}")]
    Parse(String),
    #[error("the certificate's URI SANs {found:?} match none of the expected {expected:?}")]
    SanMismatch {
        found: Vec<String>,
        expected: Vec<String>,
    },
}

/// Which side the peer is: its certificate must allow that use (extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A downstream client (`clientAuth`).
    Client,
    /// An upstream server (`serverAuth`).
    Server,
}

/// Verifies `end_entity` (with `intermediates`) against `anchors` at `now`, then its URI SAN
/// against `uri_sans` (any one; empty: any certificate the bundle trusts). Returns what the
/// certificate says about the peer.
pub fn verify(
    anchors: &[TrustAnchor<'_>],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    role: Role,
    uri_sans: &[String],
) -> Result<PeerCert, Error> {
    let cert = EndEntityCert::try_from(end_entity).map_err(Error::Chain)?;
    let usage = match role {
        Role::Client => KeyUsage::client_auth(),
        Role::Server => KeyUsage::server_auth(),
    };
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        anchors,
        intermediates,
        now,
        usage,
        None,
        None,
    )
    .map_err(Error::Chain)?;
    let peer = peer_cert(end_entity)?;
    if !uri_sans.is_empty() && !peer.uri_sans.iter().any(|san| uri_sans.contains(san)) {
        return Err(Error::SanMismatch {
            found: peer.uri_sans,
            expected: uri_sans.to_vec(),
        });
    }
    Ok(peer)
}

/// What a certificate says about its holder: SANs, subject, and its SHA-256.
pub fn peer_cert(der: &CertificateDer<'_>) -> Result<PeerCert, Error> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| Error::Parse(e.to_string()))?;
    let mut peer = PeerCert {
        subject: cert.subject().to_string(),
        hash: hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref()),
        ..PeerCert::default()
    };
    let san = cert
        .subject_alternative_name()
        .map_err(|e| Error::Parse(e.to_string()))?;
    for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
        match name {
            GeneralName::URI(uri) => peer.uri_sans.push(uri.to_string()),
            GeneralName::DNSName(dns) => peer.dns_sans.push(dns.to_string()),
            _ => {}
        }
    }
    Ok(peer)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
