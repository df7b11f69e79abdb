//! The CA's command-line flags.

use std::path::PathBuf;

use super::{Error, TrustDomain};
use crate::model::Duration;

/// Where the mesh CA comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CaMode {
    /// No CA: no identities, SDS serves no secrets (today's behaviour).
    #[default]
    Off,
    /// A CA the server creates on first start and keeps in the store (shared by replicas).
    Builtin,
    /// The operator's CA (an intermediate) from --ca-cert-file and --ca-key-file.
    Files,
}

/// Service identities and the CA that certifies them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CaConfig {
    /// Which CA issues workload certificates (served over SDS): `off`, `builtin` (created on
    /// first start, kept in the store) or `files` (--ca-cert-file, --ca-key-file).
    #[arg(long = "ca", env = "XDS_SERVER_CA", value_enum, default_value_t = CaMode::Off)]
    pub ca_mode: CaMode,

    /// The SPIFFE trust domain: identities are `spiffe://<trust-domain>/service/<name>`.
    #[arg(long, env = "XDS_SERVER_TRUST_DOMAIN", default_value = super::DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: Option<TrustDomain>,

    /// How long a workload certificate is valid; it is re-issued and pushed at half of it.
    #[arg(long, env = "XDS_SERVER_WORKLOAD_CERT_TTL", default_value = "24h")]
    pub workload_cert_ttl: Option<Duration>,

    /// A file of 32 random bytes in base64 encrypting the built-in CA's key in the store.
    /// Without it the key is stored in plain text (the server warns).
    #[arg(long, env = "XDS_SERVER_CA_KEY_ENCRYPTION_KEY_FILE")]
    pub ca_key_encryption_key_file: Option<PathBuf>,

    /// The operator's CA certificate (PEM, basicConstraints CA:true), with --ca files.
    #[arg(long, env = "XDS_SERVER_CA_CERT_FILE")]
    pub ca_cert_file: Option<PathBuf>,

    /// The private key of --ca-cert-file (PEM, PKCS#8).
    #[arg(long, env = "XDS_SERVER_CA_KEY_FILE")]
    pub ca_key_file: Option<PathBuf>,

    /// The certificates above --ca-cert-file up to the root (PEM); its last certificate is
    /// the root proxies trust. Without it, --ca-cert-file itself is trusted.
    #[arg(long, env = "XDS_SERVER_CA_CHAIN_FILE")]
    pub ca_chain_file: Option<PathBuf>,

    /// Further roots proxies keep trusting (PEM), e.g. the previous CA's while rotating.
    #[arg(long, env = "XDS_SERVER_CA_EXTRA_ROOTS_FILE")]
    pub ca_extra_roots_file: Option<PathBuf>,

    /// With --ca files: stop trusting the built-in CA found in the store. By default its root
    /// stays in the trust bundle, so certificates it issued keep verifying while proxies move.
    #[arg(long, env = "XDS_SERVER_CA_DROP_STORED_ROOT")]
    pub ca_drop_stored_root: bool,
}

impl CaConfig {
    pub fn trust_domain(&self) -> TrustDomain {
        self.trust_domain.clone().unwrap_or_default()
    }

    /// The TTL (24 h when unset).
    pub fn ttl(&self) -> std::time::Duration {
        self.workload_cert_ttl
            .map_or(std::time::Duration::from_secs(24 * 3600), Duration::get)
    }

    /// Refuses combinations that cannot mean what the operator wants.
    pub fn check(&self) -> Result<(), Error> {
        let files = self.ca_cert_file.is_some() || self.ca_key_file.is_some();
        match self.ca_mode {
            CaMode::Files if self.ca_cert_file.is_none() || self.ca_key_file.is_none() => Err(
                Error::Config("--ca files needs both --ca-cert-file and --ca-key-file".into()),
            ),
            CaMode::Off | CaMode::Builtin if files => Err(Error::Config(
                "--ca-cert-file and --ca-key-file need --ca files".into(),
            )),
            _ if self.ttl() < std::time::Duration::from_secs(2) => Err(Error::Config(
                "--workload-cert-ttl must be at least 2s".into(),
            )),
            _ => Ok(()),
        }
    }
}
