//! TLS conversion: xds-server's golden sidecar files (strict, permissive, client side, TCP)
//! convert as generated; SDS secrets convert and never leak their key; each refused TLS field
//! is named by its path.

use std::path::PathBuf;

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::Cluster,
            core::v3::{
                AggregatedConfigSource, ApiConfigSource, ConfigSource, DataSource, TransportSocket,
                config_source::ConfigSourceSpecifier, data_source::Specifier,
                transport_socket::ConfigType,
            },
            listener::v3::{
                FilterChainMatch, Listener, ListenerFilter as EnvoyListenerFilter, listener_filter,
            },
        },
        extensions::{
            filters::listener::tls_inspector::v3::TlsInspector,
            transport_sockets::tls::v3::{
                CertificateValidationContext, CommonTlsContext, DownstreamTlsContext,
                SdsSecretConfig, Secret, SubjectAltNameMatcher, TlsCertificate,
                TlsSessionTicketKeys, UpstreamTlsContext,
                common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
                secret,
                subject_alt_name_matcher::SanType,
            },
        },
        r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern},
    },
    google::protobuf::Any,
};
use prost::Message;
use serde_json::Value;

use super::{any, boolv, listener::listener_with, refused};
use crate::config::{
    DownstreamTls, ForwardClientCert, ListenerFilter, SecretConfig, TransportProtocol, UpstreamTls,
    Validation, cluster_from_proto, listener_from_proto, secret_from_proto,
};

const WEB: &str = "spiffe://mesh.local/service/web";
const API: &str = "spiffe://mesh.local/service/api";
const BUNDLE: &str = "mesh-trust-bundle";

/// Every resource of one type in an xds-server golden file, as the `Any` it was sent as.
fn golden(file: &str, type_url: &str) -> Vec<Any> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../xds-server/src/translate/testdata")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let desc = xds_core::descriptors::message(type_url).unwrap();
    let section = json[type_url].as_object().cloned().unwrap_or_default();
    section
        .values()
        .map(|entry| {
            let message =
                prost_reflect::DynamicMessage::deserialize(desc.clone(), entry["resource"].clone())
                    .unwrap();
            Any {
                type_url: type_url.to_string(),
                value: message.encode_to_vec(),
            }
        })
        .collect()
}

fn golden_listeners(file: &str) -> Vec<crate::config::ListenerConfig> {
    golden(
        file,
        "type.googleapis.com/envoy.config.listener.v3.Listener",
    )
    .iter()
    .map(|a| listener_from_proto(&Listener::decode(a.value.as_slice()).unwrap()).unwrap())
    .collect()
}

fn golden_clusters(file: &str) -> Vec<crate::config::ClusterConfig> {
    golden(file, "type.googleapis.com/envoy.config.cluster.v3.Cluster")
        .iter()
        .map(|a| cluster_from_proto(&Cluster::decode(a.value.as_slice()).unwrap()).unwrap())
        .collect()
}

fn server_tls(cert: &str) -> DownstreamTls {
    DownstreamTls {
        certificate: cert.into(),
        validation: Some(Validation {
            trust_bundle: BUNDLE.into(),
            uri_sans: vec![],
        }),
        require_client_certificate: true,
    }
}

#[test]
fn strict_inbound_is_one_mtls_chain_setting_xfcc() {
    let [l] = golden_listeners("strict_server.json").try_into().unwrap();
    assert!(!l.tls_inspector);
    let [chain] = l.chains.try_into().unwrap();
    assert_eq!(chain.name, "inbound|web|mtls");
    assert_eq!(chain.transport, TransportProtocol::Any);
    assert_eq!(chain.tls, Some(server_tls(WEB)));
    let ListenerFilter::Http(hcm) = chain.filter else {
        panic!("{:?}", chain.filter)
    };
    assert_eq!(
        hcm.forward_client_cert,
        ForwardClientCert::SanitizeSet { uri: true }
    );
}

#[test]
fn permissive_inbound_chooses_by_transport_protocol() {
    let [l] = golden_listeners("permissive.json").try_into().unwrap();
    assert!(l.tls_inspector);
    let [mtls, plain] = l.chains.try_into().unwrap();
    assert_eq!(mtls.transport, TransportProtocol::Tls);
    assert_eq!(mtls.tls, Some(server_tls(WEB)));
    assert_eq!(plain.transport, TransportProtocol::Any);
    assert_eq!(plain.tls, None);
    let ListenerFilter::Http(hcm) = plain.filter else {
        panic!("{:?}", plain.filter)
    };
    assert_eq!(hcm.forward_client_cert, ForwardClientCert::Sanitize);
}

#[test]
fn outbound_cluster_to_an_mtls_service_verifies_its_spiffe_id() {
    let clusters = golden_clusters("strict_client.json");
    let web = clusters.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(
        web.tls,
        Some(UpstreamTls {
            certificate: Some(API.into()),
            validation: Validation {
                trust_bundle: BUNDLE.into(),
                uri_sans: vec![WEB.into()],
            },
            sni: "web".into(),
        })
    );
    assert!(
        clusters
            .iter()
            .filter(|c| c.name != "web")
            .all(|c| c.tls.is_none())
    );
    golden_listeners("strict_client.json");
}

#[test]
fn sidecar_golden_files_convert() {
    for file in ["sidecar_http.json", "sidecar_tcp.json"] {
        assert!(!golden_listeners(file).is_empty(), "{file}");
        assert!(!golden_clusters(file).is_empty(), "{file}");
    }
}

// === secrets ===

/// A CA-signed leaf: (chain PEM, key PEM).
pub(crate) fn leaf_pem(uri: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().unwrap())];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn inline(text: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineString(text.into())),
        ..Default::default()
    })
}

fn cert_secret(chain: &str, key: &str) -> Secret {
    Secret {
        name: WEB.into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(chain),
            private_key: inline(key),
            ..Default::default()
        })),
    }
}

#[test]
fn certificate_and_bundle_secrets_convert() {
    let (chain, key) = leaf_pem(WEB);
    match secret_from_proto(&cert_secret(&chain, &key)).unwrap() {
        SecretConfig::Certificate { chain, key } => {
            assert_eq!(chain.len(), 1);
            assert_eq!(format!("{key:?}"), "PrivateKey([redacted])");
        }
        other => panic!("{other:?}"),
    }
    let bundle = Secret {
        name: BUNDLE.into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(DataSource {
                    specifier: Some(Specifier::InlineBytes(format!("{chain}{chain}").into())),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )),
    };
    match secret_from_proto(&bundle).unwrap() {
        SecretConfig::TrustBundle { roots } => assert_eq!(roots.len(), 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_secrets_are_refused_by_field_without_quoting_the_key() {
    let (chain, key) = leaf_pem(WEB);
    let at = "secret 'spiffe://mesh.local/service/web'";
    let mangled = key.replace("PRIVATE KEY-----\n", "PRIVATE KEY-----\n!!");
    let r = secret_from_proto(&cert_secret(&chain, &mangled));
    let text = format!("{r:?}");
    refused(r, at, "tls_certificate.private_key", "PEM private key");
    let body: String = key.lines().nth(1).unwrap().into();
    assert!(!text.contains(&body), "{text}");
    refused(
        secret_from_proto(&cert_secret("nothing", &key)),
        at,
        "tls_certificate.certificate_chain",
        "no PEM certificate",
    );
    let mut from_file = cert_secret(&chain, &key);
    if let Some(secret::Type::TlsCertificate(c)) = &mut from_file.r#type {
        c.private_key = Some(DataSource {
            specifier: Some(Specifier::Filename("/etc/key.pem".into())),
            ..Default::default()
        });
    }
    refused(
        secret_from_proto(&from_file),
        at,
        "tls_certificate.private_key.filename",
        "not supported",
    );
    let tickets = Secret {
        name: WEB.into(),
        r#type: Some(secret::Type::SessionTicketKeys(
            TlsSessionTicketKeys::default(),
        )),
    };
    refused(
        secret_from_proto(&tickets),
        at,
        "session_ticket_keys",
        "not supported",
    );
    let empty = Secret {
        name: WEB.into(),
        r#type: None,
    };
    refused(secret_from_proto(&empty), at, "", "holds nothing");
    let bundle_with_sans = Secret {
        name: BUNDLE.into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: inline(&chain),
                allow_expired_certificate: true,
                ..Default::default()
            },
        )),
    };
    refused(
        secret_from_proto(&bundle_with_sans),
        "secret 'mesh-trust-bundle'",
        "validation_context.allow_expired_certificate",
        "not supported",
    );
}

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
