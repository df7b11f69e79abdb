//! TLS on listeners and clusters (rustls): certificates and trust bundles from SDS, the
//! SPIFFE verifier, and what a verified peer certificate says about the peer.
//!
//! # Layout
//!
//! - [`Secrets`] (here): the SDS secrets in use, swapped whole by the xDS client; every
//!   handshake reads the current ones, so a rotated certificate is used by the next handshake
//!   without rebuilding a listener or a cluster, and open connections stay.
//! - [`material`]: a secret made ready for rustls (signing key, trust anchors), once per version.
//! - [`verify`]: pure: a chain against a trust bundle (webpki), the URI SAN match, [`PeerCert`].
//! - [`verifier`]: the rustls verifiers built on it, one each way.
//! - [`server`] / [`client`]: the listener and cluster sides (configs, handshakes, stats).
//! - [`inspect`]: the TLS inspector (is the first record a ClientHello?).
//! - [`io`]: one stream type for plaintext and TLS, both directions.
//! - [`xfcc`]: the `x-forwarded-client-cert` value.

pub mod client;
pub mod inspect;
pub mod io;
pub mod material;
pub mod server;
#[cfg(test)]
mod tests;
pub mod verifier;
pub mod verify;
pub mod xfcc;

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwap;

pub use io::Io;
pub use material::Material;

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
    /// SHA-256 of the certificate (DER), lowercase hex: the `Hash` of
    /// `x-forwarded-client-cert`.
    pub hash: String,
}

/// The SDS secrets in use, by name: shared by every TLS context of the process.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    current: Arc<ArcSwap<HashMap<String, Arc<Material>>>>,
}

impl Secrets {
    /// One secret as it is now (`None`: not arrived, or removed).
    pub fn get(&self, name: &str) -> Option<Arc<Material>> {
        self.current.load().get(name).cloned()
    }

    /// Replaces the whole set; handshakes already past their certificate choice are unaffected.
    pub fn publish(&self, secrets: HashMap<String, Arc<Material>>) {
        self.current.store(Arc::new(secrets));
    }

    /// The set as it is now (to reuse unchanged materials when publishing).
    pub fn snapshot(&self) -> Arc<HashMap<String, Arc<Material>>> {
        self.current.load_full()
    }
}

/// The crypto provider every TLS context uses (ring).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
