//! TLS on the xDS port (`--xds-tls off|builtin|files`).
//!
//! - `config`: the flags and the combinations refused.
//! - `cert`: the serving certificate: the operator's files checked at startup, the SANs of a
//!   built-in one, and [`cert::Rotating`], the certificate new handshakes get.
//! - `acceptor`: the accept loop doing each handshake in its own task, counting refusals.
//! - `renew`: the task keeping the certificate fresh.
//!
//! With `builtin`, the mesh CA issues the certificate and a task re-issues it at half its
//! lifetime (`--workload-cert-ttl`); with `files`, the files are re-read when they change
//! (a certificate renewed on disk, e.g. by cert-manager). Either way new handshakes get the
//! new certificate and open streams stay. The
//! bootstrap endpoint tells proxies which CA to trust ([`XdsTls::trusted_ca_pem`]).
//! Proxy tokens (`--xds-auth`) are unchanged by TLS: TLS only stops them crossing the
//! network in plaintext.

mod acceptor;
mod cert;
mod config;
mod renew;
#[cfg(test)]
mod tests;

pub use acceptor::{HANDSHAKE_TIMEOUT, Io, REASONS, handshake_failures, incoming};
pub use cert::{Rotating, hostname, sans};
pub use config::{XdsTlsConfig, XdsTlsMode};

use std::{path::Path, sync::Arc, time::SystemTime};

use rustls::{ServerConfig, crypto::CryptoProvider};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::ca::Authority;

/// Why TLS on the xDS port could not be set up: each stops startup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("could not read {what} '{path}': {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{what} '{path}' is not a PEM certificate: {reason}; give the PEM certificate (the leaf first, then intermediates)"
    )]
    BadCertificate {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error(
        "the xDS TLS key '{path}' is not a usable PEM private key (PKCS#8, SEC1 EC or PKCS#1 RSA; ECDSA P-256/P-384, RSA or Ed25519): give the key of --xds-tls-cert-file"
    )]
    BadKey { path: String },
    #[error(
        "the xDS TLS key '{key}' does not belong to the certificate '{cert}': give the key the certificate was issued for"
    )]
    KeyMismatch { cert: String, key: String },
    #[error(
        "the xDS TLS certificate '{path}' is not valid now (valid from {not_before} to {not_after}): renew it"
    )]
    Expired {
        path: String,
        not_before: String,
        not_after: String,
    },
    #[error(
        "--xds-tls-san '{0}' is neither an IP address nor a DNS name: give the names proxies reach the xDS port by"
    )]
    BadSan(String),
    #[error("could not issue the xDS serving certificate: {0}")]
    Issue(#[from] crate::ca::Error),
}

/// TLS for the xDS port, ready to serve.
#[derive(Clone)]
pub struct XdsTls {
    acceptor: TlsAcceptor,
    /// What new handshakes present (renewed in place with `builtin`).
    pub current: Arc<Rotating>,
    /// The CA certificates (PEM) proxies trust for this port: public, put into bootstraps.
    pub trusted_ca_pem: Arc<str>,
    _renewal: Option<Arc<AbortOnDrop>>,
}

impl std::fmt::Debug for XdsTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdsTls")
            .field("renewing", &self._renewal.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl XdsTls {
    /// Wraps accepted connections in TLS (see [`incoming`]).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}

/// The crypto the xDS port uses: ring (no aws-lc).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS as `config` asks: `None` when off. Checks every input before anything listens;
/// `authority` is the mesh CA (needed by `builtin`); `xds_addr` (`--xds-addr`) joins the
/// built-in certificate's default names when it is a specific address.
pub fn setup(
    config: &XdsTlsConfig,
    authority: Option<&Arc<Authority>>,
    xds_addr: std::net::SocketAddr,
) -> Result<Option<XdsTls>, Error> {
    setup_with(config, authority, xds_addr, renew::FILE_CHECK_EVERY)
}

/// [`setup`], checking the operator's files for a change every `file_check`.
fn setup_with(
    config: &XdsTlsConfig,
    authority: Option<&Arc<Authority>>,
    xds_addr: std::net::SocketAddr,
    file_check: std::time::Duration,
) -> Result<Option<XdsTls>, Error> {
    config.check(authority.is_some())?;
    let provider = provider();
    let (first, trusted, keeper) = match config.mode {
        XdsTlsMode::Off => return Ok(None),
        XdsTlsMode::Files => {
            let (cert_path, key_path) = match (&config.xds_tls_cert_file, &config.xds_tls_key_file)
            {
                (Some(c), Some(k)) => (c, k),
                _ => unreachable!("checked by XdsTlsConfig::check"),
            };
            let chain = read("the xDS TLS certificate", cert_path)?;
            let key = read("the xDS TLS key", key_path)?;
            let (c, k) = (
                cert_path.display().to_string(),
                key_path.display().to_string(),
            );
            let paths = cert::Paths { cert: &c, key: &k };
            let certified = cert::certified_key(&chain, &key, paths, &provider, SystemTime::now())?;
            let trusted = match (&config.xds_tls_trusted_ca_file, authority) {
                (Some(p), _) => {
                    let pem = read("the xDS trusted CA file", p)?;
                    cert::certificates(&pem, "the xDS trusted CA file", &p.display().to_string())?;
                    pem
                }
                (None, Some(a)) => a.trust_bundle_pem(),
                (None, None) => {
                    let last = certified.cert.last().expect("checked: at least one");
                    pem_of(last.as_ref())
                }
            };
            let keeper = renew::Keeper::Files {
                cert: cert_path.clone(),
                key: key_path.clone(),
                every: file_check,
            };
            (certified, trusted, keeper)
        }
        XdsTlsMode::Builtin => {
            let authority = authority.expect("checked: builtin needs the CA").clone();
            let (dns, mut ips) = sans(&config.xds_tls_san, hostname().as_deref())?;
            // The address --xds-addr names is what bootstraps point proxies at.
            let listen = xds_addr.ip();
            if config.xds_tls_san.is_empty() && !listen.is_unspecified() && !ips.contains(&listen) {
                ips.push(listen);
            }
            let issued = authority.issue_server(&dns, &ips, SystemTime::now())?;
            let certified = builtin_key(&issued, &provider)?;
            tracing::info!(serial = %issued.serial, ?dns, ?ips, "xDS port: serving certificate issued by the mesh CA");
            let trusted = authority.trust_bundle_pem();
            let keeper = renew::Keeper::Issuer {
                authority,
                issued,
                dns,
                ips,
            };
            (certified, trusted, keeper)
        }
    };
    let current = Arc::new(Rotating::new(first));
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
    server.alpn_protocols = vec![b"h2".to_vec()];
    let renewal = Arc::new(AbortOnDrop(tokio::spawn(
        keeper.run(current.clone(), provider),
    )));
    Ok(Some(XdsTls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        current,
        trusted_ca_pem: trusted.into(),
        _renewal: Some(renewal),
    }))
}

fn builtin_key(
    issued: &crate::ca::ServerCert,
    provider: &CryptoProvider,
) -> Result<Arc<rustls::sign::CertifiedKey>, Error> {
    let paths = cert::Paths {
        cert: "(issued by the mesh CA)",
        key: "(issued by the mesh CA)",
    };
    cert::certified_key(
        &issued.chain_pem,
        &issued.key_pem,
        paths,
        provider,
        SystemTime::now(),
    )
}

fn read(what: &'static str, path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
