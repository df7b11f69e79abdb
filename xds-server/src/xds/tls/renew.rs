//! Keeping the xDS port's certificate fresh: the built-in one re-issued by the mesh CA at half
//! its lifetime, the operator's files re-read when they change. A new certificate is used by
//! new handshakes; connections already open keep theirs. A failure keeps the current one
//! and is logged (never with key material).

use std::{
    net::IpAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use rustls::crypto::CryptoProvider;

use super::{Error, Rotating, builtin_key, cert, read};
use crate::ca::{Authority, ServerCert, renew_at};

/// How often the operator's files are checked for a change.
pub const FILE_CHECK_EVERY: Duration = Duration::from_secs(10);

/// After a failed renewal, how long until the next attempt.
const RETRY: Duration = Duration::from_secs(5);

/// What keeps the certificate fresh.
pub enum Keeper {
    /// Re-issue from the mesh CA at half the lifetime of `issued`.
    Issuer {
        authority: Arc<Authority>,
        issued: ServerCert,
        dns: Vec<String>,
        ips: Vec<IpAddr>,
    },
    /// Re-read the files when their modification time or size changes.
    Files {
        cert: PathBuf,
        key: PathBuf,
        every: Duration,
    },
}

impl Keeper {
    /// Runs for ever, replacing what `current` presents.
    pub async fn run(self, current: Arc<Rotating>, provider: Arc<CryptoProvider>) {
        match self {
            Keeper::Issuer {
                authority,
                issued,
                dns,
                ips,
            } => reissue(authority, issued, dns, ips, current, provider).await,
            Keeper::Files { cert, key, every } => reload(cert, key, every, current, provider).await,
        }
    }
}

async fn reissue(
    authority: Arc<Authority>,
    mut issued: ServerCert,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    current: Arc<Rotating>,
    provider: Arc<CryptoProvider>,
) {
    loop {
        let at = renew_at(issued.issued_at, issued.not_after);
        tokio::time::sleep(at.duration_since(SystemTime::now()).unwrap_or_default()).await;
        let next = authority
            .issue_server(&dns, &ips, SystemTime::now())
            .map_err(Error::from)
            .and_then(|c| Ok((builtin_key(&c, &provider)?, c)));
        match next {
            Ok((key, cert)) => {
                current.replace(key);
                tracing::info!(serial = %cert.serial,
                    "xDS port: serving certificate renewed (new handshakes get it)");
                issued = cert;
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?RETRY,
                    "xDS port: could not renew the serving certificate");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// What tells a file changed: its modification time and size.
fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

async fn reload(
    cert_path: PathBuf,
    key_path: PathBuf,
    every: Duration,
    current: Arc<Rotating>,
    provider: Arc<CryptoProvider>,
) {
    let mut seen = (stamp(&cert_path), stamp(&key_path));
    loop {
        tokio::time::sleep(every).await;
        let now = (stamp(&cert_path), stamp(&key_path));
        if now == seen {
            continue;
        }
        let loaded = read("the xDS TLS certificate", &cert_path).and_then(|chain| {
            let key = read("the xDS TLS key", &key_path)?;
            let (c, k) = (
                cert_path.display().to_string(),
                key_path.display().to_string(),
            );
            let paths = cert::Paths { cert: &c, key: &k };
            cert::certified_key(&chain, &key, paths, &provider, SystemTime::now())
        });
        match loaded {
            Ok(key) => {
                current.replace(key);
                seen = now;
                tracing::info!(cert = %cert_path.display(),
                    "xDS port: certificate files changed and reloaded (new handshakes get them)");
            }
            // Half-written files (the certificate replaced, the key not yet) are retried on
            // the next check; the current certificate stays meanwhile.
            Err(e) => tracing::warn!(error = %e,
                "xDS port: the certificate files changed but cannot be used; keeping the current certificate"),
        }
    }
}
