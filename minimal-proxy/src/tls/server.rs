//! The listener side: a filter chain's `DownstreamTlsContext` as a rustls server config whose
//! certificate and client verification read the current secrets at each handshake; the
//! handshake itself, counted in `listener.<address>.ssl.*`.

use std::{sync::Arc, time::Duration};

use rustls::{
    ServerConfig,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio::net::TcpStream;

use super::{
    Io, Material, PeerCert, Secrets,
    verifier::{Check, ClientVerifier},
};
use crate::{config::DownstreamTls, stats::SslStats};

/// How long a client may take to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// One filter chain's TLS: built once per listener generation; a rotated certificate or
/// bundle is picked up by the next handshake without rebuilding it.
#[derive(Clone)]
pub struct Acceptor {
    acceptor: tokio_rustls::TlsAcceptor,
    /// The SDS name of the proxy's certificate (for the `By` of `x-forwarded-client-cert`).
    certificate: String,
    secrets: Secrets,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// A completed server handshake.
#[derive(Debug)]
pub struct Accepted {
    pub io: Io,
    /// The verified client certificate, when one was presented.
    pub peer: Option<Arc<PeerCert>>,
    /// This proxy's URI SAN as presented (the `By` of `x-forwarded-client-cert`).
    pub local_uri: Option<String>,
}

impl Acceptor {
    pub fn new(tls: &DownstreamTls, secrets: &Secrets) -> Result<Acceptor, rustls::Error> {
        let provider = super::provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &tls.validation {
            Some(v) => builder.with_client_cert_verifier(Arc::new(ClientVerifier {
                check: Check {
                    secrets: secrets.clone(),
                    trust_bundle: v.trust_bundle.clone(),
                    uri_sans: v.uri_sans.clone(),
                    provider,
                },
                mandatory: tls.require_client_certificate,
            })),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(SdsCertificate {
            secrets: secrets.clone(),
            name: tls.certificate.clone(),
        }));
        // No resumption: each handshake verifies the client against the current bundle and
        // sees its current certificate (rotation), at the cost of a full handshake.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(Acceptor {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            certificate: tls.certificate.clone(),
            secrets: secrets.clone(),
        })
    }

    /// The server handshake on `tcp`, within [`HANDSHAKE_TIMEOUT`], counted in `stats`.
    pub async fn accept(&self, tcp: TcpStream, stats: &SslStats) -> Option<Accepted> {
        let local_uri = match self.secrets.get(&self.certificate).as_deref() {
            Some(Material::Certificate { uri, .. }) => uri.clone(),
            _ => None,
        };
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await;
        let stream = match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                count_failure(&e, stats);
                tracing::debug!(error = %e, "downstream TLS handshake failed");
                return None;
            }
            Err(_) => {
                stats.connection_error.inc();
                return None;
            }
        };
        stats.handshake.inc();
        let peer = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| super::verify::peer_cert(leaf).ok())
            .map(Arc::new);
        Some(Accepted {
            io: Io::Tls(Box::new(tokio_rustls::TlsStream::Server(stream))),
            peer,
            local_uri,
        })
    }
}

/// `ssl.connection_error`, and the verification counters when that was the cause.
pub(super) fn count_failure(e: &std::io::Error, stats: &SslStats) {
    stats.connection_error.inc();
    let cause = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match cause {
        Some(rustls::Error::InvalidCertificate(_)) => stats.fail_verify_error.inc(),
        Some(rustls::Error::NoCertificatesPresented) => stats.fail_verify_no_cert.inc(),
        _ => {}
    }
}

/// The proxy's certificate, looked up by SDS name at each handshake (rotation).
#[derive(Debug)]
pub(super) struct SdsCertificate {
    pub(super) secrets: Secrets,
    pub(super) name: String,
}

impl SdsCertificate {
    pub(super) fn current(&self) -> Option<Arc<CertifiedKey>> {
        match self.secrets.get(&self.name).as_deref() {
            Some(Material::Certificate { key, .. }) => Some(key.clone()),
            _ => None,
        }
    }
}

impl ResolvesServerCert for SdsCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}
