//! What the operator may see of the mesh CA (`GET /api/v1/ca`): the trust domain, the
//! certificate lifetime and each root of the trust bundle, public facts only; never a key.

use chrono::{DateTime, Utc};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::Authority;

/// The CA as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CaSummary {
    pub trust_domain: String,
    /// Workload certificates' lifetime; they are re-issued at half of it.
    pub workload_cert_ttl_seconds: u64,
    /// The trust bundle, the current CA's root first.
    pub roots: Vec<Root>,
}

/// One root of the trust bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Root {
    /// The subject, RFC 4514 text.
    pub subject: String,
    pub not_after: DateTime<Utc>,
    /// SHA-256 of the DER certificate, lowercase hex (as `openssl x509 -fingerprint -sha256`
    /// prints it, without the colons).
    pub sha256: String,
    /// Whether the current CA issues under it; the others are kept only while rotating.
    pub issuing: bool,
}

impl Authority {
    /// The CA's public facts.
    pub fn summary(&self) -> CaSummary {
        let roots = CertificateDer::pem_slice_iter(self.trust_bundle_pem().as_bytes())
            .filter_map(Result::ok)
            .enumerate()
            .filter_map(|(i, der)| {
                let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
                let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)?;
                Some(Root {
                    subject: cert.subject().to_string(),
                    not_after,
                    sha256: crate::proxy_auth::secret::hash(der.as_ref()),
                    issuing: i == 0,
                })
            })
            .collect();
        CaSummary {
            trust_domain: self.trust_domain().as_str().to_string(),
            workload_cert_ttl_seconds: self.ttl().as_secs(),
            roots,
        }
    }
}
