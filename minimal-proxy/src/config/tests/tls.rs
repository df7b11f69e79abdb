//! TLS conversion: xds-server's golden sidecar files (strict, permissive, client side, TCP)
//! convert as generated; SDS secrets convert, bad ones are refused by field and never leak
//! their key. The refusals of TLS contexts are in `tls_refusals.rs`.

use std::path::PathBuf;

use envoy_types::pb::{
    envoy::{
        config::{
            cluster::v3::Cluster,
            core::v3::{DataSource, data_source::Specifier},
            listener::v3::Listener,
        },
        extensions::transport_sockets::tls::v3::{
            CertificateValidationContext, Secret, TlsCertificate, TlsSessionTicketKeys, secret,
        },
    },
    google::protobuf::Any,
};
use prost::Message;
use serde_json::Value;

use super::refused;
use crate::config::{
    DownstreamTls, ForwardClientCert, ListenerFilter, SecretConfig, TransportProtocol, UpstreamTls,
    Validation, cluster_from_proto, listener_from_proto, secret_from_proto,
};

pub(super) const WEB: &str = "spiffe://mesh.local/service/web";
pub(super) const API: &str = "spiffe://mesh.local/service/api";
pub(super) const BUNDLE: &str = "mesh-trust-bundle";

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

pub(super) fn server_tls(cert: &str) -> DownstreamTls {
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
