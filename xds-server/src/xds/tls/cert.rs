//! The serving certificate: the operator's files checked before anything listens (PEM shape,
//! a key that is the certificate's, valid now), the SANs a built-in one gets, and the
//! certificate in place that new handshakes use ([`Rotating`]).

use std::{
    fmt,
    net::IpAddr,
    sync::{Arc, RwLock},
    time::SystemTime,
};

use rustls::{
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

use super::Error;

/// The certificate new handshakes get; replaced whole when renewed (connections already
/// open keep theirs).
pub struct Rotating {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Rotating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotating").finish_non_exhaustive()
    }
}

impl Rotating {
    pub fn new(first: Arc<CertifiedKey>) -> Self {
        Self {
            current: RwLock::new(first),
        }
    }

    /// New handshakes present `next` from now on.
    pub fn replace(&self, next: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
    }

    /// What a handshake starting now presents.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for Rotating {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Where a PEM came from, for error messages (never its content).
#[derive(Debug, Clone, Copy)]
pub struct Paths<'a> {
    pub cert: &'a str,
    pub key: &'a str,
}

/// Every certificate in `pem` (at least one), each parsing as X.509.
pub fn certificates(
    pem: &str,
    what: &'static str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |reason: String| Error::BadCertificate {
        what,
        path: path.to_string(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("{e}")))?;
    if certs.is_empty() {
        return Err(bad("there is no 'BEGIN CERTIFICATE' block in it".into()));
    }
    for c in &certs {
        X509Certificate::from_der(c.as_ref()).map_err(|e| bad(e.to_string()))?;
    }
    Ok(certs)
}

/// A certificate chain (leaf first) and its key, checked: the key parses and is a type the
/// provider signs with, it belongs to the leaf, and the leaf is valid at `now`.
pub fn certified_key(
    chain_pem: &str,
    key_pem: &str,
    paths: Paths<'_>,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<Arc<CertifiedKey>, Error> {
    let chain = certificates(chain_pem, "the xDS TLS certificate", paths.cert)?;
    let bad_key = || Error::BadKey {
        path: paths.key.to_string(),
    };
    // The PEM parser's errors could quote the key: say only what was wrong.
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| bad_key())?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| bad_key())?;
    let certified = CertifiedKey::new(chain, signing);
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
        certified.keys_match()
    {
        return Err(Error::KeyMismatch {
            cert: paths.cert.to_string(),
            key: paths.key.to_string(),
        });
    }
    check_validity(&certified.cert[0], paths.cert, now)?;
    Ok(Arc::new(certified))
}

/// Refuses a certificate that is not valid at `now` (expired, or not yet valid).
fn check_validity(cert: &CertificateDer<'_>, path: &str, now: SystemTime) -> Result<(), Error> {
    let (_, x509) =
        X509Certificate::from_der(cert.as_ref()).map_err(|e| Error::BadCertificate {
            what: "the xDS TLS certificate",
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let at = ASN1Time::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or_else(|_| ASN1Time::now());
    let validity = x509.validity();
    if !validity.is_valid_at(at) {
        return Err(Error::Expired {
            path: path.to_string(),
            not_before: validity.not_before.to_string(),
            not_after: validity.not_after.to_string(),
        });
    }
    Ok(())
}

/// The SANs of a built-in serving certificate: `flags` (DNS names and IP addresses), or by
/// default localhost, 127.0.0.1, ::1 and `hostname` (when it is a DNS name).
pub fn sans(flags: &[String], hostname: Option<&str>) -> Result<(Vec<String>, Vec<IpAddr>), Error> {
    let given: Vec<String> = if flags.is_empty() {
        let mut d = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        d.extend(
            hostname
                .filter(|h| dns_name(h))
                .map(str::to_ascii_lowercase),
        );
        d
    } else {
        flags.iter().map(|s| s.trim().to_string()).collect()
    };
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    for name in given {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        } else if dns_name(&name) {
            let name = name.to_ascii_lowercase();
            if !dns.contains(&name) {
                dns.push(name);
            }
        } else {
            return Err(Error::BadSan(name));
        }
    }
    Ok((dns, ips))
}

/// A DNS name (labels of letters, digits and '-'; a leading `*.` wildcard allowed).
fn dns_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label)
}

/// This host's name (Linux), for the default SANs.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}
