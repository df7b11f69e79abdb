//! The cluster side: an `UpstreamTlsContext` as a rustls client config that presents the
//! proxy's current certificate and verifies the server's chain and URI SAN; the handshake on
//! a new upstream connection, counted in `cluster.<name>.ssl.*`.

use std::sync::Arc;

use rustls::{ClientConfig, SignatureScheme, client::ResolvesClientCert, sign::CertifiedKey};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::{
    Io, Secrets,
    server::{SdsCertificate, count_failure},
    verifier::{Check, ServerVerifier},
};
use crate::{config::UpstreamTls, stats::SslStats};

/// One cluster's TLS: built with the cluster; reads the current secrets at each handshake.
#[derive(Clone)]
pub struct Connector {
    /// `Err` when rustls refused the configuration: every connection then fails with it
    /// (never plaintext instead).
    connector: Result<tokio_rustls::TlsConnector, String>,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub fn new(tls: &UpstreamTls, secrets: &Secrets) -> Connector {
        let server_name = match ServerName::try_from(tls.sni.clone()) {
            Ok(name) => name,
            // Unused without SNI, but rustls needs one: any valid name.
            Err(_) => ServerName::from(std::net::IpAddr::from([127, 0, 0, 1])),
        };
        Connector {
            connector: Self::config(tls, secrets)
                .map(|c| tokio_rustls::TlsConnector::from(Arc::new(c)))
                .map_err(|e| e.to_string()),
            server_name,
        }
    }

    fn config(tls: &UpstreamTls, secrets: &Secrets) -> Result<ClientConfig, rustls::Error> {
        let provider = super::provider();
        let verifier = ServerVerifier {
            check: Check {
                secrets: secrets.clone(),
                trust_bundle: tls.validation.trust_bundle.clone(),
                uri_sans: tls.validation.uri_sans.clone(),
                provider: provider.clone(),
            },
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        let mut config = match &tls.certificate {
            Some(name) => builder.with_client_cert_resolver(Arc::new(SdsCertificate {
                secrets: secrets.clone(),
                name: name.clone(),
            })),
            None => builder.with_no_client_auth(),
        };
        // No SNI when none is configured (Envoy sends none then).
        config.enable_sni = !tls.sni.is_empty();
        // Every connection handshakes in full: a resumed session would skip the verifier
        // (a new trust bundle) and keep presenting the certificate of before a rotation.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(config)
    }

    /// The client handshake on a new connection; the error says why (for the 503's detail).
    pub async fn connect(&self, tcp: TcpStream, stats: &SslStats) -> Result<Io, std::io::Error> {
        let connector = match &self.connector {
            Ok(c) => c,
            Err(e) => {
                stats.connection_error.inc();
                return Err(std::io::Error::other(e.clone()));
            }
        };
        match connector.connect(self.server_name.clone(), tcp).await {
            Ok(stream) => {
                stats.handshake.inc();
                Ok(Io::Tls(Box::new(tokio_rustls::TlsStream::Client(stream))))
            }
            Err(e) => {
                count_failure(&e, stats);
                Err(e)
            }
        }
    }
}

impl ResolvesClientCert for SdsCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current()
    }

    fn has_certs(&self) -> bool {
        true
    }
}
