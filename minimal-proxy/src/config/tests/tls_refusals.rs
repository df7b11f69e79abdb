//! TLS refusals: each field of a transport socket, a filter chain match, the TLS inspector
//! and the XFCC settings that minimal-proxy does not implement is refused by its path.

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::Cluster,
            core::v3::{
                AggregatedConfigSource, ApiConfigSource, ConfigSource, TransportSocket,
                config_source::ConfigSourceSpecifier, transport_socket::ConfigType,
            },
            listener::v3::{
                FilterChainMatch, Listener, ListenerFilter as EnvoyListenerFilter, listener_filter,
            },
        },
        extensions::{
            filters::listener::tls_inspector::v3::TlsInspector,
            transport_sockets::tls::v3::{
                CertificateValidationContext, CommonTlsContext, DownstreamTlsContext,
                SdsSecretConfig, SubjectAltNameMatcher, TlsCertificate, UpstreamTlsContext,
                common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
                subject_alt_name_matcher::SanType,
            },
        },
        r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern},
    },
    google::protobuf::Any,
};

use super::{
    any, boolv,
    listener::listener_with,
    refused,
    tls::{API, BUNDLE, WEB, server_tls},
};
use crate::config::{cluster_from_proto, listener_from_proto};

// === transport sockets ===

fn ads() -> Option<ConfigSource> {
    Some(ConfigSource {
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        resource_api_version: 2,
        ..Default::default()
    })
}

fn sds(name: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.into(),
        sds_config: ads(),
    }
}

fn uri_matcher(san_type: SanType, pattern: MatchPattern) -> SubjectAltNameMatcher {
    SubjectAltNameMatcher {
        san_type: san_type as i32,
        matcher: Some(StringMatcher {
            match_pattern: Some(pattern),
            ignore_case: false,
        }),
        oid: String::new(),
    }
}

fn upstream_context() -> UpstreamTlsContext {
    UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds(API)],
            validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                CombinedCertificateValidationContext {
                    default_validation_context: Some(CertificateValidationContext {
                        match_typed_subject_alt_names: vec![uri_matcher(
                            SanType::Uri,
                            MatchPattern::Exact(WEB.into()),
                        )],
                        ..Default::default()
                    }),
                    validation_context_sds_secret_config: Some(sds(BUNDLE)),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        sni: "web".into(),
        ..Default::default()
    }
}

fn socket(config: Any) -> Option<TransportSocket> {
    Some(TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(ConfigType::TypedConfig(config)),
    })
}

fn cluster_with(context: UpstreamTlsContext) -> Cluster {
    let mut c = super::cluster::eds("web");
    c.transport_socket = socket(any(&context));
    c
}

const CTX: &str = "transport_socket.typed_config.common_tls_context";

#[test]
fn upstream_context_refusals_name_the_field() {
    let at = "cluster 'web'";
    assert!(cluster_from_proto(&cluster_with(upstream_context())).is_ok());
    let combined = |f: &dyn Fn(&mut CertificateValidationContext)| {
        let mut c = upstream_context();
        if let Some(ValidationContextType::CombinedValidationContext(v)) = &mut c
            .common_tls_context
            .as_mut()
            .unwrap()
            .validation_context_type
        {
            f(v.default_validation_context.as_mut().unwrap());
        }
        cluster_from_proto(&cluster_with(c))
    };
    let sans = format!(
        "{CTX}.combined_validation_context.default_validation_context.match_typed_subject_alt_names[0]"
    );
    refused(
        combined(&|v| {
            v.match_typed_subject_alt_names[0] =
                uri_matcher(SanType::Dns, MatchPattern::Exact("web".into()))
        }),
        at,
        &format!("{sans}.san_type"),
        "'DNS' is not supported",
    );
    refused(
        combined(&|v| {
            v.match_typed_subject_alt_names[0] =
                uri_matcher(SanType::Uri, MatchPattern::Prefix("spiffe://".into()))
        }),
        at,
        &format!("{sans}.matcher"),
        "exact matcher",
    );
    refused(
        combined(&|v| v.verify_certificate_hash = vec!["ab".into()]),
        at,
        &format!(
            "{CTX}.combined_validation_context.default_validation_context.verify_certificate_hash"
        ),
        "not supported",
    );
    let mut no_validation = upstream_context();
    no_validation
        .common_tls_context
        .as_mut()
        .unwrap()
        .validation_context_type = None;
    refused(
        cluster_from_proto(&cluster_with(no_validation)),
        at,
        CTX,
        "unverified server",
    );
    let mut inline_cert = upstream_context();
    inline_cert
        .common_tls_context
        .as_mut()
        .unwrap()
        .tls_certificates = vec![TlsCertificate::default()];
    refused(
        cluster_from_proto(&cluster_with(inline_cert)),
        at,
        &format!("{CTX}.tls_certificates"),
        "not supported",
    );
    let mut grpc_sds = upstream_context();
    grpc_sds
        .common_tls_context
        .as_mut()
        .unwrap()
        .tls_certificate_sds_secret_configs[0]
        .sds_config = Some(ConfigSource {
        config_source_specifier: Some(ConfigSourceSpecifier::ApiConfigSource(
            ApiConfigSource::default(),
        )),
        ..Default::default()
    });
    refused(
        cluster_from_proto(&cluster_with(grpc_sds)),
        at,
        &format!("{CTX}.tls_certificate_sds_secret_configs[0].sds_config"),
        "only ads",
    );
    let mut sni_auto = upstream_context();
    sni_auto.auto_host_sni = true;
    refused(
        cluster_from_proto(&cluster_with(sni_auto)),
        at,
        "transport_socket.typed_config.auto_host_sni",
        "not supported",
    );
    let mut other = cluster_with(upstream_context());
    other.transport_socket = socket(any(&TlsInspector::default()));
    refused(
        cluster_from_proto(&other),
        at,
        "transport_socket.typed_config",
        "is not supported",
    );
}

fn hcm_listener() -> Listener {
    listener_with(any(&super::listener::hcm()))
}

fn server_context() -> DownstreamTlsContext {
    DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds(WEB)],
            validation_context_type: Some(ValidationContextType::ValidationContextSdsSecretConfig(
                sds(BUNDLE),
            )),
            ..Default::default()
        }),
        require_client_certificate: boolv(true),
        ..Default::default()
    }
}

fn inspector() -> EnvoyListenerFilter {
    EnvoyListenerFilter {
        name: "envoy.filters.listener.tls_inspector".into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(any(
            &TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

#[test]
fn listener_tls_refusals_name_the_field() {
    let at = "listener 'ingress'";
    let with = |f: &dyn Fn(&mut Listener)| {
        let mut l = hcm_listener();
        l.filter_chains[0].transport_socket = socket(any(&server_context()));
        f(&mut l);
        listener_from_proto(&l)
    };
    let ok = with(&|_| {}).unwrap();
    assert_eq!(ok.chains[0].tls, Some(server_tls(WEB)));
    refused(
        with(&|l| {
            let mut c = server_context();
            c.common_tls_context
                .as_mut()
                .unwrap()
                .validation_context_type = None;
            l.filter_chains[0].transport_socket = socket(any(&c));
        }),
        at,
        "filter_chains[0].transport_socket.typed_config.require_client_certificate",
        "needs a validation context",
    );
    refused(
        with(&|l| {
            let mut c = server_context();
            c.require_sni = boolv(true);
            l.filter_chains[0].transport_socket = socket(any(&c));
        }),
        at,
        "filter_chains[0].transport_socket.typed_config.require_sni",
        "not supported",
    );
    refused(
        with(&|l| {
            let mut c = server_context();
            c.common_tls_context
                .as_mut()
                .unwrap()
                .tls_certificate_sds_secret_configs
                .clear();
            l.filter_chains[0].transport_socket = socket(any(&c));
        }),
        at,
        "filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs",
        "is required",
    );
    refused(
        with(&|l| {
            l.filter_chains[0].filter_chain_match = Some(FilterChainMatch {
                server_names: vec!["web".into()],
                ..Default::default()
            })
        }),
        at,
        "filter_chains[0].filter_chain_match.server_names",
        "not supported",
    );
    refused(
        with(&|l| {
            l.filter_chains[0].filter_chain_match = Some(FilterChainMatch {
                transport_protocol: "quic".into(),
                ..Default::default()
            })
        }),
        at,
        "filter_chains[0].filter_chain_match.transport_protocol",
        "'quic' is not supported",
    );
    refused(
        with(&|l| {
            let second = l.filter_chains[0].clone();
            l.filter_chains.push(second);
        }),
        at,
        "filter_chains[1].filter_chain_match",
        "same matching rules",
    );
    refused(
        with(&|l| {
            let mut f = inspector();
            f.config_type = Some(listener_filter::ConfigType::TypedConfig(any(
                &TlsInspector {
                    enable_ja3_fingerprinting: boolv(true),
                    ..Default::default()
                },
            )));
            l.listener_filters = vec![f];
        }),
        at,
        "listener_filters[0].typed_config.enable_ja3_fingerprinting",
        "not supported",
    );
    refused(
        with(&|l| {
            let mut f = inspector();
            f.config_type = Some(listener_filter::ConfigType::TypedConfig(any(
                &server_context(),
            )));
            l.listener_filters = vec![f];
        }),
        at,
        "listener_filters[0].typed_config",
        "is not supported",
    );
    let inspected = with(&|l| l.listener_filters = vec![inspector()]).unwrap();
    assert!(inspected.tls_inspector);
}

#[test]
fn xfcc_modes_other_than_sanitize_and_sanitize_set_uri_are_refused() {
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        HttpConnectionManager as Hcm,
        http_connection_manager::{ForwardClientCertDetails, SetCurrentClientCertDetails},
    };
    let at = "listener 'ingress'";
    let with = |f: &dyn Fn(&mut Hcm)| {
        let mut l = hcm_listener();
        let mut hcm: Hcm = crate::config::check::decode(
            "",
            match &l.filter_chains[0].filters[0].config_type {
                Some(
                    envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(
                        a,
                    ),
                ) => a,
                _ => unreachable!(),
            },
        )
        .unwrap();
        f(&mut hcm);
        l.filter_chains[0].filters[0].config_type = Some(
            envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(any(
                &hcm,
            )),
        );
        listener_from_proto(&l)
    };
    let field = "filter_chains[0].filters[0].typed_config";
    refused(
        with(&|h| h.forward_client_cert_details = ForwardClientCertDetails::AppendForward as i32),
        at,
        &format!("{field}.forward_client_cert_details"),
        "'APPEND_FORWARD' is not supported",
    );
    refused(
        with(&|h| {
            h.forward_client_cert_details = ForwardClientCertDetails::SanitizeSet as i32;
            h.set_current_client_cert_details = Some(SetCurrentClientCertDetails {
                cert: true,
                ..Default::default()
            });
        }),
        at,
        &format!("{field}.set_current_client_cert_details.cert"),
        "not supported",
    );
}
