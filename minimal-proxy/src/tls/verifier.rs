//! The rustls verifiers, one each way, on [`super::verify`]: the peer's chain against the
//! current trust bundle (read at each handshake, so a new bundle applies at once), then its
//! URI SAN. Handshake signatures are checked with the ring provider's algorithms.

use std::sync::Arc;

use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    server::danger::{ClientCertVerified, ClientCertVerifier},
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{
    Material, Secrets,
    verify::{self, Error, Role},
};

/// Verifies downstream clients (listener side).
#[derive(Debug)]
pub struct ClientVerifier {
    pub(super) check: Check,
    /// `require_client_certificate`.
    pub(super) mandatory: bool,
}

/// Verifies upstream servers (cluster side).
#[derive(Debug)]
pub struct ServerVerifier {
    pub(super) check: Check,
}

/// What both sides check: the bundle's name and the accepted URI SANs.
#[derive(Debug)]
pub(super) struct Check {
    pub(super) secrets: Secrets,
    pub(super) trust_bundle: String,
    pub(super) uri_sans: Vec<String>,
    pub(super) provider: Arc<CryptoProvider>,
}

impl Check {
    fn run(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        role: Role,
    ) -> Result<(), rustls::Error> {
        let bundle = self.secrets.get(&self.trust_bundle);
        let anchors = match bundle.as_deref() {
            Some(Material::TrustBundle(anchors)) => anchors.as_slice(),
            _ => return Err(to_rustls(Error::NoTrustBundle)),
        };
        verify::verify(
            anchors,
            end_entity,
            intermediates,
            now,
            role,
            &self.uri_sans,
        )
        .map(|_| ())
        .map_err(to_rustls)
    }

    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// rustls's error for a refused certificate: the common cases by kind (so the peer gets the
/// right alert), the rest with our message.
fn to_rustls(e: Error) -> rustls::Error {
    let kind = match &e {
        Error::Chain(webpki::Error::CertExpired { .. }) => CertificateError::Expired,
        Error::Chain(webpki::Error::CertNotValidYet { .. }) => CertificateError::NotValidYet,
        Error::Chain(webpki::Error::UnknownIssuer) => CertificateError::UnknownIssuer,
        Error::Chain(webpki::Error::InvalidSignatureForPublicKey) => CertificateError::BadSignature,
        _ => CertificateError::Other(OtherError(Arc::new(e))),
    };
    rustls::Error::InvalidCertificate(kind)
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Envoy sends the CA list; an empty one lets the client pick its certificate freely.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check
            .run(end_entity, intermediates, now, Role::Client)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.check.schemes()
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        // SPIFFE: the identity is the URI SAN, not the name dialled (leaves have no DNS SAN).
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check
            .run(end_entity, intermediates, now, Role::Server)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.check.schemes()
    }
}
