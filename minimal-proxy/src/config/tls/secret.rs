//! SDS `Secret` → [`SecretConfig`]: `tls_certificate` (PEM chain and PKCS#8/SEC1/PKCS#1 key,
//! inline) or `validation_context` (inline PEM `trusted_ca`). The key is checked to load with
//! the ring provider, so a bad key is a NACK, not a failed handshake later; no refusal ever
//! quotes it.

use envoy_types::pb::envoy::{
    config::core::v3::{DataSource, data_source::Specifier},
    extensions::transport_sockets::tls::v3::{
        CertificateValidationContext, Secret, TlsCertificate, secret::Type,
    },
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::{PrivateKey, SecretConfig};
use crate::config::{
    Rejection,
    check::{Refusal, Result, not_supported, required, unset},
};

/// Converts one secret; the refusal names the secret and the field, never the key.
pub fn secret_from_proto(secret: &Secret) -> std::result::Result<SecretConfig, Rejection> {
    convert(secret).map_err(|r| r.into_rejection(format!("secret '{}'", secret.name)))
}

fn convert(secret: &Secret) -> Result<SecretConfig> {
    let Secret { name, r#type } = secret;
    if name.is_empty() {
        return Err(required("name"));
    }
    match r#type {
        Some(Type::TlsCertificate(c)) => certificate(c).map_err(|e| e.under("tls_certificate")),
        Some(Type::ValidationContext(v)) => {
            trust_bundle(v).map_err(|e| e.under("validation_context"))
        }
        Some(Type::SessionTicketKeys(_)) => Err(not_supported("session_ticket_keys")),
        Some(Type::GenericSecret(_)) => Err(not_supported("generic_secret")),
        None => Err(Refusal::new(
            "",
            "holds nothing: set tls_certificate or validation_context",
        )),
    }
}

fn certificate(c: &TlsCertificate) -> Result<SecretConfig> {
    let TlsCertificate {
        certificate_chain,
        private_key,
        pkcs12,
        watched_directory,
        private_key_provider,
        password,
        ocsp_staple,
        signed_certificate_timestamp,
        tls_params,
    } = c;
    unset!(
        pkcs12,
        watched_directory,
        private_key_provider,
        password,
        ocsp_staple,
        signed_certificate_timestamp,
        tls_params,
    );
    let chain_pem = inline("certificate_chain", certificate_chain)?;
    let chain = certificates("certificate_chain", chain_pem)?;
    let key_pem = inline("private_key", private_key)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
        Refusal::new(
            "private_key",
            "does not hold a PEM private key (PKCS#8, SEC1 or PKCS#1)",
        )
    })?;
    rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
        Refusal::new(
            "private_key",
            "is a key type minimal-proxy cannot sign with (supported: ECDSA P-256/P-384, \
             Ed25519, RSA)",
        )
    })?;
    Ok(SecretConfig::Certificate {
        chain,
        key: PrivateKey(key),
    })
}

#[allow(deprecated)] // Deprecated fields are named so that they are refused.
fn trust_bundle(v: &CertificateValidationContext) -> Result<SecretConfig> {
    let CertificateValidationContext {
        trusted_ca,
        ca_certificate_provider_instance,
        system_root_certs,
        watched_directory,
        verify_certificate_spki,
        verify_certificate_hash,
        match_typed_subject_alt_names,
        match_subject_alt_names,
        require_signed_certificate_timestamp,
        crl,
        allow_expired_certificate,
        trust_chain_verification,
        custom_validator_config,
        only_verify_leaf_cert_crl,
        max_verify_depth,
        suppress_client_ca_list: _,
    } = v;
    unset!(
        ca_certificate_provider_instance,
        system_root_certs,
        watched_directory,
        verify_certificate_spki,
        verify_certificate_hash,
        match_typed_subject_alt_names,
        match_subject_alt_names,
        require_signed_certificate_timestamp,
        crl,
        allow_expired_certificate,
        trust_chain_verification,
        custom_validator_config,
        only_verify_leaf_cert_crl,
        max_verify_depth,
    );
    let pem = inline("trusted_ca", trusted_ca)?;
    let roots = certificates("trusted_ca", pem)?;
    Ok(SecretConfig::TrustBundle { roots })
}

/// The bytes of an inline data source (`inline_bytes` or `inline_string`).
fn inline<'a>(field: &str, source: &'a Option<DataSource>) -> Result<&'a [u8]> {
    let Some(DataSource {
        watched_directory,
        specifier,
    }) = source
    else {
        return Err(required(field));
    };
    let under = |e: Refusal| e.under(field);
    unset!(watched_directory);
    match specifier {
        Some(Specifier::InlineBytes(b)) => Ok(b),
        Some(Specifier::InlineString(s)) => Ok(s.as_bytes()),
        Some(Specifier::Filename(_)) => Err(under(not_supported("filename"))),
        Some(Specifier::EnvironmentVariable(_)) => {
            Err(under(not_supported("environment_variable")))
        }
        None => Err(under(required("inline_bytes"))),
    }
}

/// Every PEM certificate in `pem`; at least one.
fn certificates(field: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs: std::result::Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(Refusal::new(field, "holds no PEM certificate")),
        Err(e) => Err(Refusal::new(
            field,
            format!("is not valid PEM certificates: {e}"),
        )),
    }
}
