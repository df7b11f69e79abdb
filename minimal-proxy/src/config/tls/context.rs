//! The `envoy.transport_sockets.tls` transport socket: `DownstreamTlsContext` (a listener's
//! filter chain) → [`DownstreamTls`], `UpstreamTlsContext` (a cluster) → [`UpstreamTls`].
//! Certificates and trust bundles by SDS name over ADS only; peer SANs by exact URI matchers.

use envoy_types::pb::{
    envoy::{
        config::core::v3::{
            ConfigSource, TransportSocket, config_source::ConfigSourceSpecifier,
            transport_socket::ConfigType,
        },
        extensions::transport_sockets::tls::v3::{
            CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
            SubjectAltNameMatcher, UpstreamTlsContext,
            common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
            subject_alt_name_matcher::SanType,
        },
        r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern},
    },
    google::protobuf::Any,
};
use prost::Name;

use super::{DownstreamTls, UpstreamTls, Validation};
use crate::config::check::{
    self, Refusal, Result, config_source, not_supported, required, unset, unsupported_value,
};

/// A filter chain's transport socket: `None` for plaintext (no socket, or `raw_buffer`).
pub(in crate::config) fn downstream_transport_socket(
    socket: &Option<TransportSocket>,
) -> Result<Option<DownstreamTls>> {
    let Some(any) = typed_config(socket)? else {
        return Ok(None);
    };
    let under = |e: Refusal| e.under("transport_socket.typed_config");
    let context: DownstreamTlsContext = check::decode("", any).map_err(under)?;
    downstream(&context).map(Some).map_err(under)
}

/// A cluster's transport socket: `None` for plaintext.
pub(in crate::config) fn upstream_transport_socket(
    socket: &Option<TransportSocket>,
) -> Result<Option<UpstreamTls>> {
    let Some(any) = typed_config(socket)? else {
        return Ok(None);
    };
    let under = |e: Refusal| e.under("transport_socket.typed_config");
    let context: UpstreamTlsContext = check::decode("", any).map_err(under)?;
    upstream(&context).map(Some).map_err(under)
}

/// The TLS context of a transport socket; `None` when it is absent or plaintext.
fn typed_config(socket: &Option<TransportSocket>) -> Result<Option<&Any>> {
    let Some(TransportSocket {
        // Inert: Envoy finds the socket by its config's type.
        name: _,
        config_type,
    }) = socket
    else {
        return Ok(None);
    };
    match config_type {
        Some(ConfigType::TypedConfig(any)) => {
            if check::type_name(any) == "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
            {
                return Ok(None);
            }
            if check::is::<DownstreamTlsContext>(any) || check::is::<UpstreamTlsContext>(any) {
                return Ok(Some(any));
            }
            Err(unsupported_value(
                "transport_socket.typed_config",
                check::type_name(any),
                &format!(
                    "{}, {}, envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer",
                    DownstreamTlsContext::full_name(),
                    UpstreamTlsContext::full_name()
                ),
            ))
        }
        None => Err(required("transport_socket.typed_config")),
    }
}

#[allow(deprecated)]
fn downstream(c: &DownstreamTlsContext) -> Result<DownstreamTls> {
    let DownstreamTlsContext {
        common_tls_context,
        require_client_certificate,
        require_sni,
        disable_stateful_session_resumption,
        session_timeout,
        ocsp_staple_policy,
        full_scan_certs_on_sni_mismatch,
        prefer_client_ciphers,
        session_ticket_keys_type,
    } = c;
    unset!(
        require_sni,
        disable_stateful_session_resumption,
        session_timeout,
        ocsp_staple_policy,
        full_scan_certs_on_sni_mismatch,
        prefer_client_ciphers,
        session_ticket_keys_type,
    );
    let Some(common) = common_tls_context else {
        return Err(required("common_tls_context"));
    };
    let (certificate, validation) =
        common_context(common).map_err(|e| e.under("common_tls_context"))?;
    let Some(certificate) = certificate else {
        return Err(required(
            "common_tls_context.tls_certificate_sds_secret_configs",
        ));
    };
    let require = require_client_certificate.as_ref().is_some_and(|b| b.value);
    if require && validation.is_none() {
        return Err(Refusal::new(
            "require_client_certificate",
            "needs a validation context to verify the client certificate with",
        ));
    }
    Ok(DownstreamTls {
        certificate,
        validation,
        require_client_certificate: require,
    })
}

#[allow(deprecated)]
fn upstream(c: &UpstreamTlsContext) -> Result<UpstreamTls> {
    let UpstreamTlsContext {
        common_tls_context,
        sni,
        auto_host_sni,
        auto_sni_san_validation,
        allow_renegotiation,
        max_session_keys: _,
        enforce_rsa_key_usage: _,
    } = c;
    unset!(auto_host_sni, auto_sni_san_validation, allow_renegotiation);
    let Some(common) = common_tls_context else {
        return Err(required("common_tls_context"));
    };
    let (certificate, validation) =
        common_context(common).map_err(|e| e.under("common_tls_context"))?;
    let Some(validation) = validation else {
        return Err(Refusal::new(
            "common_tls_context",
            "needs a validation context (validation_context_sds_secret_config or \
             combined_validation_context): minimal-proxy does not connect to an unverified server",
        ));
    };
    Ok(UpstreamTls {
        certificate,
        validation,
        sni: sni.clone(),
    })
}

/// The certificate's SDS name and the validation, from a `CommonTlsContext`.
#[allow(deprecated)]
fn common_context(c: &CommonTlsContext) -> Result<(Option<String>, Option<Validation>)> {
    let CommonTlsContext {
        tls_params,
        tls_certificates,
        tls_certificate_sds_secret_configs,
        tls_certificate_provider_instance,
        custom_tls_certificate_selector,
        tls_certificate_certificate_provider,
        tls_certificate_certificate_provider_instance,
        alpn_protocols,
        custom_handshaker,
        key_log,
        validation_context_type,
    } = c;
    unset!(
        tls_params,
        tls_certificates,
        tls_certificate_provider_instance,
        custom_tls_certificate_selector,
        tls_certificate_certificate_provider,
        tls_certificate_certificate_provider_instance,
        alpn_protocols,
        custom_handshaker,
        key_log,
    );
    let certificate = match tls_certificate_sds_secret_configs.as_slice() {
        [] => None,
        [one] => Some(sds_name(one).map_err(|e| e.under("tls_certificate_sds_secret_configs[0]"))?),
        more => {
            return Err(Refusal::new(
                "tls_certificate_sds_secret_configs",
                format!(
                    "only one certificate is supported by minimal-proxy, got {}",
                    more.len()
                ),
            ));
        }
    };
    let validation = match validation_context_type {
        None => None,
        Some(ValidationContextType::ValidationContextSdsSecretConfig(sds)) => Some(Validation {
            trust_bundle: sds_name(sds)
                .map_err(|e| e.under("validation_context_sds_secret_config"))?,
            uri_sans: Vec::new(),
        }),
        Some(ValidationContextType::CombinedValidationContext(combined)) => {
            Some(combined_context(combined).map_err(|e| e.under("combined_validation_context"))?)
        }
        Some(ValidationContextType::ValidationContext(_)) => {
            return Err(Refusal::new(
                "validation_context",
                "is not supported by minimal-proxy: trust bundles come over SDS \
                 (validation_context_sds_secret_config or combined_validation_context)",
            ));
        }
        Some(_) => return Err(not_supported("validation_context_certificate_provider")),
    };
    Ok((certificate, validation))
}

#[allow(deprecated)]
fn combined_context(c: &CombinedCertificateValidationContext) -> Result<Validation> {
    let CombinedCertificateValidationContext {
        default_validation_context,
        validation_context_sds_secret_config,
        validation_context_certificate_provider,
        validation_context_certificate_provider_instance,
    } = c;
    unset!(
        validation_context_certificate_provider,
        validation_context_certificate_provider_instance
    );
    let Some(sds) = validation_context_sds_secret_config else {
        return Err(required("validation_context_sds_secret_config"));
    };
    let trust_bundle =
        sds_name(sds).map_err(|e| e.under("validation_context_sds_secret_config"))?;
    let uri_sans = match default_validation_context {
        Some(d) => san_matchers(d).map_err(|e| e.under("default_validation_context"))?,
        None => Vec::new(),
    };
    Ok(Validation {
        trust_bundle,
        uri_sans,
    })
}

/// The default validation context: exact URI SAN matchers only.
#[allow(deprecated)]
fn san_matchers(v: &CertificateValidationContext) -> Result<Vec<String>> {
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
        trusted_ca,
        ca_certificate_provider_instance,
        system_root_certs,
        watched_directory,
        verify_certificate_spki,
        verify_certificate_hash,
        match_subject_alt_names,
        require_signed_certificate_timestamp,
        crl,
        allow_expired_certificate,
        trust_chain_verification,
        custom_validator_config,
        only_verify_leaf_cert_crl,
        max_verify_depth,
    );
    match_typed_subject_alt_names
        .iter()
        .enumerate()
        .map(|(i, m)| {
            uri_exact(m).map_err(|e| e.under(format!("match_typed_subject_alt_names[{i}]")))
        })
        .collect()
}

fn uri_exact(m: &SubjectAltNameMatcher) -> Result<String> {
    let SubjectAltNameMatcher {
        san_type,
        matcher,
        oid,
    } = m;
    unset!(oid);
    if *san_type != SanType::Uri as i32 {
        let name = SanType::try_from(*san_type)
            .map_or_else(|_| san_type.to_string(), |t| t.as_str_name().to_string());
        return Err(unsupported_value("san_type", name, "URI"));
    }
    match matcher {
        Some(StringMatcher {
            ignore_case: false,
            match_pattern: Some(MatchPattern::Exact(uri)),
        }) if !uri.is_empty() => Ok(uri.clone()),
        Some(_) => Err(Refusal::new(
            "matcher",
            "only a case-sensitive, non-empty exact matcher is supported by minimal-proxy",
        )),
        None => Err(required("matcher")),
    }
}

/// The name of an SDS secret delivered over ADS.
fn sds_name(s: &SdsSecretConfig) -> Result<String> {
    let SdsSecretConfig { name, sds_config } = s;
    if name.is_empty() {
        return Err(required("name"));
    }
    match sds_config {
        Some(
            source @ ConfigSource {
                config_source_specifier: Some(ConfigSourceSpecifier::Ads(_)),
                ..
            },
        ) => config_source(source).map_err(|e| e.under("sds_config"))?,
        Some(_) => {
            return Err(Refusal::new(
                "sds_config",
                "only ads is supported by minimal-proxy (secrets come over the ADS stream)",
            ));
        }
        None => {
            return Err(Refusal::new(
                "sds_config",
                "is required: minimal-proxy takes secrets only over SDS (ads)",
            ));
        }
    }
    Ok(name.clone())
}
