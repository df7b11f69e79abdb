//! A secret made ready for rustls, once per version: a certificate with its signing key
//! (`CertifiedKey`), or a trust bundle as webpki trust anchors.

use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, TrustAnchor};

use crate::config::SecretConfig;

/// One secret in the form handshakes use.
#[derive(Debug)]
pub enum Material {
    /// The proxy's certificate chain and key, plus the leaf's URI SAN (the `By` of
    /// `x-forwarded-client-cert`).
    Certificate {
        key: Arc<CertifiedKey>,
        uri: Option<String>,
    },
    /// The roots a peer's chain must lead to.
    TrustBundle(Vec<TrustAnchor<'static>>),
    /// Removed by the server: handshakes that need it fail.
    Removed,
}

/// Why a secret could not be made ready (the config layer checked it already, so this is
/// rare: a root certificate webpki cannot use as a trust anchor).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the private key cannot be loaded: {0}")]
    Key(rustls::Error),
    #[error("trusted_ca[{index}] cannot be used as a trust anchor: {reason}")]
    Anchor { index: usize, reason: String },
}

impl Material {
    pub fn new(secret: &SecretConfig) -> Result<Material, Error> {
        Ok(match secret {
            SecretConfig::Certificate { chain, key } => {
                let signing =
                    rustls::crypto::ring::sign::any_supported_type(&key.0).map_err(Error::Key)?;
                let uri = chain
                    .first()
                    .and_then(|leaf| super::verify::peer_cert(leaf).ok())
                    .and_then(|p| p.uri_sans.into_iter().next());
                Material::Certificate {
                    key: Arc::new(CertifiedKey::new(chain.clone(), signing)),
                    uri,
                }
            }
            SecretConfig::TrustBundle { roots } => Material::TrustBundle(anchors(roots)?),
            SecretConfig::Removed => Material::Removed,
        })
    }
}

fn anchors(roots: &[CertificateDer<'static>]) -> Result<Vec<TrustAnchor<'static>>, Error> {
    roots
        .iter()
        .enumerate()
        .map(|(index, root)| {
            webpki::anchor_from_trusted_cert(root)
                .map(|a| a.to_owned())
                .map_err(|e| Error::Anchor {
                    index,
                    reason: e.to_string(),
                })
        })
        .collect()
}
