//! mTLS between sidecars: the TLS contexts of inbound listeners and of the clusters that call
//! mTLS services. Certificates are never in the config: both sides name SDS secrets (the
//! proxy's own certificate, `spiffe://<trust-domain>/service/<name>`, and the trust bundle),
//! fetched where the proxy fetches everything else (see `translate/secret.rs`).

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::Cluster,
            core::v3::{ConfigSource, TransportSocket, transport_socket},
        },
        extensions::transport_sockets::tls::v3::{
            CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
            SubjectAltNameMatcher, UpstreamTlsContext,
            common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
            subject_alt_name_matcher::SanType,
        },
        r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern},
    },
    google::protobuf::BoolValue,
};

use super::cluster::to_any;
use crate::model::{Mesh, MtlsMode, TRUST_BUNDLE_SECRET};

const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";

/// The mTLS mode `service` runs in: its own, else the mesh default, for a service with
/// sidecars; always off for one without (its endpoints are plain applications).
pub(crate) fn mode(mesh: &Mesh, service: &str) -> MtlsMode {
    match mesh.services.get(service) {
        Some(s) if s.inbound.is_some() => s.mtls.unwrap_or(mesh.security.mtls_default),
        _ => MtlsMode::Off,
    }
}

/// Whether any service is called over mTLS (then proxies need their identity).
pub(crate) fn any_mtls(mesh: &Mesh) -> bool {
    mesh.services
        .keys()
        .any(|name| mode(mesh, name).callers_use_tls())
}

fn sds(name: String, config: &ConfigSource) -> SdsSecretConfig {
    SdsSecretConfig {
        name,
        sds_config: Some(config.clone()),
    }
}

/// The server side of an inbound listener of `service`: its own certificate, and a client
/// certificate required and verified against the trust bundle (any mesh identity; which ones
/// may call is the traffic permissions' business).
pub(super) fn downstream(mesh: &Mesh, service: &str, config: &ConfigSource) -> TransportSocket {
    let context = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds(mesh.security.spiffe_id(service), config)],
            validation_context_type: Some(ValidationContextType::ValidationContextSdsSecretConfig(
                sds(TRUST_BUNDLE_SECRET.to_string(), config),
            )),
            ..CommonTlsContext::default()
        }),
        require_client_certificate: Some(BoolValue { value: true }),
        ..DownstreamTlsContext::default()
    };
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(to_any(&context))),
    }
}

/// The client side of a call from the sidecar of `own` to `destination`: `own`'s certificate,
/// and the peer must present `destination`'s SPIFFE ID (URI SAN, exact) signed by the trust
/// bundle. The SNI is the destination's name, for logs and for servers that route on it.
pub(super) fn upstream(
    mesh: &Mesh,
    own: &str,
    destination: &str,
    config: &ConfigSource,
) -> TransportSocket {
    let peer = SubjectAltNameMatcher {
        san_type: SanType::Uri as i32,
        matcher: Some(StringMatcher {
            match_pattern: Some(MatchPattern::Exact(mesh.security.spiffe_id(destination))),
            ..StringMatcher::default()
        }),
        ..SubjectAltNameMatcher::default()
    };
    let validation = CombinedCertificateValidationContext {
        default_validation_context: Some(CertificateValidationContext {
            match_typed_subject_alt_names: vec![peer],
            ..CertificateValidationContext::default()
        }),
        validation_context_sds_secret_config: Some(sds(TRUST_BUNDLE_SECRET.to_string(), config)),
        ..CombinedCertificateValidationContext::default()
    };
    let context = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds(mesh.security.spiffe_id(own), config)],
            validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                validation,
            )),
            ..CommonTlsContext::default()
        }),
        sni: destination.to_string(),
        ..UpstreamTlsContext::default()
    };
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(to_any(&context))),
    }
}

/// Makes `cluster` (of service `destination`) call over mTLS when the service wants it and
/// the proxy has an identity (`own`, the service it is the sidecar of). A proxy without one (a
/// gateway) calls permissive services in plaintext and cannot call strict ones: the cluster
/// stays plaintext, the strict sidecars refuse it, and `warnings` says so.
pub(super) fn secure_cluster(
    cluster: &mut Cluster,
    mesh: &Mesh,
    own: Option<&str>,
    destination: &str,
    config: &ConfigSource,
    warnings: &mut Vec<String>,
) {
    let mode = mode(mesh, destination);
    if !mode.callers_use_tls() {
        return;
    }
    if !mesh.security.ca {
        warnings.push(format!(
            "service '{destination}' wants mTLS but xds-server runs without a mesh CA, so this \
             proxy has no certificate to call it with: the cluster waits for one; start \
             xds-server with --ca builtin (or --ca files), or set mtls: off on '{destination}'"
        ));
    }
    match own {
        Some(own) => cluster.transport_socket = Some(upstream(mesh, own, destination, config)),
        None if mode == MtlsMode::Strict => warnings.push(format!(
            "service '{destination}' is strict mTLS but this proxy is no service's sidecar (its \
             node cluster names no service), so it has no certificate: its calls to \
             '{destination}' are refused; make '{destination}' permissive or run this proxy as \
             a service's sidecar"
        )),
        None => {}
    }
}
