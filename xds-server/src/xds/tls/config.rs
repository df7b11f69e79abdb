//! The xDS port's TLS flags: off (plaintext, today's behaviour), a serving certificate the
//! mesh CA issues (`builtin`), or the operator's own certificate and key (`files`).

use std::path::PathBuf;

use super::Error;

/// Where the xDS port's serving certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum XdsTlsMode {
    /// Plaintext gRPC (today's behaviour).
    #[default]
    Off,
    /// A certificate issued by the mesh CA (needs --ca builtin or files), with the SANs of
    /// --xds-tls-san, renewed at half its lifetime.
    Builtin,
    /// The operator's certificate and key (--xds-tls-cert-file, --xds-tls-key-file).
    Files,
}

/// TLS on the xDS port.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct XdsTlsConfig {
    /// TLS on the xDS port: `off` (plaintext), `builtin` (a certificate from the mesh CA,
    /// needs --ca) or `files` (--xds-tls-cert-file and --xds-tls-key-file). With TLS on,
    /// GET /api/v1/bootstrap makes proxies connect over TLS, trusting the CA.
    #[arg(long = "xds-tls", env = "XDS_SERVER_XDS_TLS", value_enum, default_value_t = XdsTlsMode::Off)]
    pub mode: XdsTlsMode,

    /// With --xds-tls files: the serving certificate (PEM; the leaf first, then any
    /// intermediates).
    #[arg(long, env = "XDS_SERVER_XDS_TLS_CERT_FILE")]
    pub xds_tls_cert_file: Option<PathBuf>,

    /// With --xds-tls files: the private key of --xds-tls-cert-file (PEM: PKCS#8, SEC1 or
    /// PKCS#1).
    #[arg(long, env = "XDS_SERVER_XDS_TLS_KEY_FILE")]
    pub xds_tls_key_file: Option<PathBuf>,

    /// With --xds-tls files: the CA certificates (PEM) bootstraps tell proxies to trust for
    /// the xDS port. Default: the mesh CA's trust bundle when --ca is on, otherwise the last
    /// certificate of --xds-tls-cert-file (right for a self-signed certificate or a file
    /// ending with its root).
    #[arg(long, env = "XDS_SERVER_XDS_TLS_TRUSTED_CA_FILE")]
    pub xds_tls_trusted_ca_file: Option<PathBuf>,

    /// With --xds-tls builtin: the names (DNS or IP) the serving certificate is valid for,
    /// i.e. the hosts proxies reach the xDS port by; repeat the flag or separate with
    /// commas. Default: localhost, 127.0.0.1, ::1 and this host's name.
    #[arg(long, env = "XDS_SERVER_XDS_TLS_SAN", value_delimiter = ',')]
    pub xds_tls_san: Vec<String>,
}

impl XdsTlsConfig {
    /// Refuses combinations that cannot mean what the operator wants. `ca_on`: whether the
    /// mesh CA is configured (--ca builtin or files).
    pub fn check(&self, ca_on: bool) -> Result<(), Error> {
        let files = self.xds_tls_cert_file.is_some() || self.xds_tls_key_file.is_some();
        match self.mode {
            XdsTlsMode::Builtin if !ca_on => Err(Error::Config(
                "--xds-tls builtin needs the mesh CA to issue its certificate: add --ca builtin \
                 (or --ca files), or give your own certificate with --xds-tls files"
                    .into(),
            )),
            XdsTlsMode::Files
                if self.xds_tls_cert_file.is_none() || self.xds_tls_key_file.is_none() =>
            {
                Err(Error::Config(
                    "--xds-tls files needs both --xds-tls-cert-file and --xds-tls-key-file".into(),
                ))
            }
            XdsTlsMode::Off | XdsTlsMode::Builtin if files => Err(Error::Config(
                "--xds-tls-cert-file and --xds-tls-key-file need --xds-tls files".into(),
            )),
            XdsTlsMode::Off | XdsTlsMode::Builtin if self.xds_tls_trusted_ca_file.is_some() => {
                Err(Error::Config(
                    "--xds-tls-trusted-ca-file needs --xds-tls files (with builtin, proxies trust \
                     the mesh CA)"
                        .into(),
                ))
            }
            XdsTlsMode::Off | XdsTlsMode::Files if !self.xds_tls_san.is_empty() => {
                Err(Error::Config(
                    "--xds-tls-san needs --xds-tls builtin (with files, the names are those of \
                     your certificate)"
                        .into(),
                ))
            }
            _ => Ok(()),
        }
    }
}
