//! Service identities: the mesh CA, the SPIFFE identities it certifies, and the workload
//! certificates SDS hands to sidecars.
//!
//! - `authority`: the CA (built-in or the operator's own), checked when loaded; issues
//!   workload certificates.
//! - `seal`: the built-in CA's key, encrypted at rest with the operator's key.
//! - `storage`: the built-in CA kept in the store, so every replica shares one.
//! - `renewal`: pure timing: when a certificate is due for re-issue.
//! - `summary`: the CA's public facts for the admin API (`GET /api/v1/ca`).
//! - `issuer`: the task keeping one fresh certificate per service identity and publishing
//!   them with the mesh snapshots, where SDS (`translate/secret.rs`) picks them up.
//!
//! Key material never reaches a log, an API response or an error message: the types holding
//! it print as redacted.

mod authority;
mod config;
mod issuer;
mod renewal;
mod seal;
mod storage;
mod summary;
#[cfg(test)]
mod tests;

pub use authority::{Authority, ServerCert, Source, WorkloadCert};
pub use config::{CaConfig, CaMode};
pub use issuer::{Identities, Issued, audit_request, refused_requests, spawn as spawn_issuer};
pub use renewal::{due, next_wake, renew_at};
pub use seal::SealKey;
pub use storage::{StoredCa, load_or_create};
pub use summary::{CaSummary, Root};

use std::{fmt, str::FromStr};

use crate::translate::NodeInfo;

/// The SDS name of the trust bundle (the mesh's root certificates): sent to every proxy.
pub const TRUST_BUNDLE_SECRET: &str = "mesh-trust-bundle";

/// The trust domain when none is given.
pub const DEFAULT_TRUST_DOMAIN: &str = "mesh.local";

/// The SPIFFE trust domain: the authority part of every identity the mesh CA certifies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustDomain(String);

impl TrustDomain {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `spiffe://<trust-domain>/service/<service>`: the identity of `service`, which is the
    /// URI SAN of its certificate and the SDS name of its certificate secret.
    pub fn spiffe_id(&self, service: &str) -> String {
        spiffe_id(self.as_str(), service)
    }

    /// The service named by `spiffe_id`, when it is one of this trust domain's.
    pub fn service_of<'a>(&self, spiffe_id: &'a str) -> Option<&'a str> {
        spiffe_id
            .strip_prefix("spiffe://")?
            .strip_prefix(self.as_str())?
            .strip_prefix("/service/")
            .filter(|s| !s.is_empty() && !s.contains('/'))
    }
}

impl Default for TrustDomain {
    fn default() -> Self {
        Self(DEFAULT_TRUST_DOMAIN.to_string())
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = String;

    /// The SPIFFE rules: lowercase letters, digits, `.`, `-` and `_`; at most 255 bytes.
    fn from_str(s: &str) -> Result<Self, String> {
        let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c);
        if s.is_empty() || s.len() > 255 || !s.chars().all(ok) || s.starts_with('.') {
            return Err(format!(
                "'{s}' is not a trust domain: use 1 to 255 lowercase letters, digits, '.', '-' \
                 or '_' (for example 'mesh.local')"
            ));
        }
        Ok(Self(s.to_string()))
    }
}

/// `spiffe://<trust_domain>/service/<service>`.
pub fn spiffe_id(trust_domain: &str, service: &str) -> String {
    format!("spiffe://{trust_domain}/service/{service}")
}

/// The one service identity a stream from `node` may receive certificates for: the service its
/// node cluster names (the proxy is that service's sidecar). The single place to bind this to
/// the stream's credentials (a proxy token's node cluster) once xDS is authenticated.
pub fn allowed_identity(node: &NodeInfo) -> Option<&str> {
    Some(node.cluster.as_str()).filter(|c| !c.is_empty())
}

/// Why the CA could not be set up: each refuses startup before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not read {what} '{path}': {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} '{path}' is not a PEM certificate: {reason}")]
    BadCertificate {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("the CA key '{path}' is not a PEM private key (PKCS#8, EC or RSA) rcgen can sign with")]
    BadKey { path: String },
    #[error(
        "the CA key '{key}' does not belong to the certificate '{cert}': give the key the certificate was issued for"
    )]
    KeyMismatch { cert: String, key: String },
    #[error(
        "the CA certificate '{path}' is not valid now (valid from {not_before} to {not_after}): renew it"
    )]
    Expired {
        path: String,
        not_before: String,
        not_after: String,
    },
    #[error(
        "the certificate '{path}' is not a CA: it lacks basicConstraints CA:true; give a CA (intermediate) certificate"
    )]
    NotCa { path: String },
    #[error("the CA key encryption key '{path}' is unusable: {reason}")]
    BadSealKey { path: String, reason: String },
    #[error(
        "the stored CA key cannot be decrypted with the given --ca-key-encryption-key-file: give the key it was encrypted with"
    )]
    WrongSealKey,
    #[error(
        "the stored CA key is encrypted: give --ca-key-encryption-key-file with the key it was encrypted with"
    )]
    SealKeyMissing,
    #[error("the stored CA is unusable: {0}")]
    Stored(String),
    #[error("could not issue a certificate: {0}")]
    Issue(String),
    #[error("{0}")]
    Config(String),
    #[error("the CA could not be read from or written to the store: {0}")]
    Store(#[from] crate::store::Error),
}
