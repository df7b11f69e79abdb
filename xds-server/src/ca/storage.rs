//! Where the CA comes from at startup: the built-in one from the store (created on first
//! start; replicas racing end up with the one written first) or the operator's files. Every
//! check runs before anything is written, so a bad input leaves the store untouched.

use std::path::Path;

use super::{Authority, CaConfig, CaMode, Error, SealKey, authority::Source};
use crate::store::Store;
pub use crate::store::StoredCa;

fn read(what: &'static str, path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// The mesh CA `config` asks for; `None` when it is off.
pub async fn load_or_create(
    store: &dyn Store,
    config: &CaConfig,
) -> Result<Option<Authority>, Error> {
    config.check()?;
    let (trust_domain, ttl) = (config.trust_domain(), config.ttl());
    let seal = match &config.ca_key_encryption_key_file {
        Some(path) => Some(SealKey::from_file(path)?),
        None => None,
    };
    let mut authority = match config.ca_mode {
        CaMode::Off => return Ok(None),
        CaMode::Files => {
            let (cert_path, key_path) = match (&config.ca_cert_file, &config.ca_key_file) {
                (Some(c), Some(k)) => (c, k),
                _ => unreachable!("checked by CaConfig::check"),
            };
            let cert = read("the CA certificate", cert_path)?;
            let key = read("the CA key", key_path)?;
            let chain = match &config.ca_chain_file {
                Some(p) => Some((read("the CA chain", p)?, p.display().to_string())),
                None => None,
            };
            let (c, k) = (
                cert_path.display().to_string(),
                key_path.display().to_string(),
            );
            let mut authority = Authority::from_pem(
                &cert,
                &key,
                chain.as_ref().map(|(pem, p)| (pem.as_str(), p.as_str())),
                Source { cert: &c, key: &k },
                trust_domain,
                ttl,
            )?;
            if !config.ca_drop_stored_root
                && let Some(stored) = store.ca_get().await?
            {
                authority.keep_trusting(
                    &stored.certificate_pem,
                    "the stored built-in CA certificate",
                    "the store",
                )?;
                tracing::info!(
                    "the built-in CA's root stays in the trust bundle beside your CA's \
                     (certificates it issued keep verifying); --ca-drop-stored-root removes it"
                );
            }
            authority
        }
        CaMode::Builtin => builtin(store, seal.as_ref(), config).await?,
    };
    if let Some(path) = &config.ca_extra_roots_file {
        let pem = read("the extra roots", path)?;
        authority.keep_trusting(&pem, "the extra roots", &path.display().to_string())?;
    }
    tracing::info!(trust_domain = %authority.trust_domain(), roots = authority.roots(),
        ttl = ?authority.ttl(), "mesh CA ready");
    Ok(Some(authority))
}

async fn builtin(
    store: &dyn Store,
    seal: Option<&SealKey>,
    config: &CaConfig,
) -> Result<Authority, Error> {
    let stored = match store.ca_get().await? {
        Some(stored) => stored,
        None => {
            let (certificate_pem, key) = Authority::generate(&config.trust_domain())?;
            let (private_key, key_sealed) = match seal {
                Some(s) => (s.seal(&key)?, true),
                None => (key, false),
            };
            let ca = StoredCa {
                certificate_pem,
                private_key,
                key_sealed,
            };
            let stored = store.ca_insert_if_absent(&ca).await?;
            if stored == ca {
                tracing::info!("created the built-in mesh CA and stored it");
            }
            stored
        }
    };
    let key = match (stored.key_sealed, seal) {
        (true, Some(s)) => s.open(&stored.private_key)?,
        (true, None) => return Err(Error::SealKeyMissing),
        (false, seal) => {
            if seal.is_some() {
                tracing::warn!(
                    "the stored CA key is in plain text (it was stored before \
                     --ca-key-encryption-key-file was given); it stays so"
                );
            } else {
                tracing::warn!(
                    "the built-in CA's private key is stored in plain text: anyone who reads \
                     the database can issue mesh identities; give --ca-key-encryption-key-file"
                );
            }
            stored.private_key.clone()
        }
    };
    let source = Source {
        cert: "the stored CA certificate",
        key: "the stored CA key",
    };
    Authority::from_pem(
        &stored.certificate_pem,
        &key,
        None,
        source,
        config.trust_domain(),
        config.ttl(),
    )
}
