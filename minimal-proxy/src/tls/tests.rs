//! The SPIFFE verifier (good chain and SAN, wrong SAN, untrusted chain, expired, no bundle),
//! the TLS inspector and chain choice, the XFCC value; real handshakes in `handshakes.rs`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

mod handshakes;

use super::{
    Material, PeerCert, Secrets,
    client::Connector,
    inspect,
    server::Acceptor,
    verify::{self, Error, Role},
    xfcc,
};
use crate::{
    config::{
        DownstreamTls, PrivateKey, SecretConfig, TransportProtocol, UpstreamTls, Validation,
        choose_chain,
    },
    stats::SslStats,
};

const WEB: &str = "spiffe://mesh.local/service/web";
const API: &str = "spiffe://mesh.local/service/api";
const BUNDLE: &str = "mesh-trust-bundle";

/// A test CA issuing workload leaves as the mesh CA does (URI SAN only, both EKUs).
struct Pki {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    root: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test mesh CA");
        let root = params.self_signed(&key).unwrap().der().clone();
        Pki {
            issuer: rcgen::Issuer::new(params, key),
            root,
        }
    }

    /// (leaf + CA chain, key) for `uri`.
    fn leaf(&self, uri: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().unwrap())];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
        (vec![cert.der().clone(), self.root.clone()], key)
    }

    fn anchors(&self) -> Vec<rustls_pki_types::TrustAnchor<'static>> {
        vec![
            webpki::anchor_from_trusted_cert(&self.root)
                .unwrap()
                .to_owned(),
        ]
    }

    fn bundle(&self) -> Arc<Material> {
        let roots = vec![self.root.clone()];
        Arc::new(Material::new(&SecretConfig::TrustBundle { roots }).unwrap())
    }

    fn certificate(&self, uri: &str) -> Arc<Material> {
        let (chain, key) = self.leaf(uri);
        let secret = SecretConfig::Certificate {
            chain,
            key: PrivateKey(key),
        };
        Arc::new(Material::new(&secret).unwrap())
    }
}

fn now() -> UnixTime {
    UnixTime::now()
}

// === the verifier ===

#[test]
fn a_chain_to_the_bundle_with_the_expected_san_verifies() {
    let pki = Pki::new();
    let (chain, _) = pki.leaf(API);
    for role in [Role::Client, Role::Server] {
        let peer = verify::verify(
            &pki.anchors(),
            &chain[0],
            &chain[1..],
            now(),
            role,
            &[WEB.into(), API.into()],
        )
        .unwrap();
        assert_eq!(peer.uri_sans, vec![API.to_string()]);
        assert_eq!(peer.hash.len(), 64);
    }
    // No SAN matcher: any certificate the bundle trusts.
    verify::verify(&pki.anchors(), &chain[0], &[], now(), Role::Client, &[]).unwrap();
}

#[test]
fn a_wrong_san_is_refused() {
    let pki = Pki::new();
    let (chain, _) = pki.leaf(API);
    let e = verify::verify(
        &pki.anchors(),
        &chain[0],
        &[],
        now(),
        Role::Server,
        &[WEB.into()],
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::SanMismatch {
            found: vec![API.into()],
            expected: vec![WEB.into()],
        }
    );
}

#[test]
fn a_chain_from_another_ca_is_refused() {
    let (ours, theirs) = (Pki::new(), Pki::new());
    let (chain, _) = theirs.leaf(WEB);
    let e = verify::verify(
        &ours.anchors(),
        &chain[0],
        &chain[1..],
        now(),
        Role::Client,
        &[],
    )
    .unwrap_err();
    assert!(matches!(e, Error::Chain(_)), "{e:?}");
}

#[test]
fn an_expired_certificate_is_refused() {
    let pki = Pki::new();
    let (chain, _) = pki.leaf(WEB);
    // rcgen's default validity ends in 4096; be past it.
    let later =
        UnixTime::since_unix_epoch(Duration::from_secs(4_200 * 365 * 24 * 3600 / 100 * 100));
    let e = verify::verify(&pki.anchors(), &chain[0], &[], later, Role::Client, &[]).unwrap_err();
    assert!(
        matches!(e, Error::Chain(webpki::Error::CertExpired { .. })),
        "{e:?}"
    );
}

// === inspector, chain choice, XFCC ===

#[test]
fn the_inspector_tells_a_client_hello_from_plaintext() {
    let hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00];
    assert_eq!(inspect::classify(&hello), Some(TransportProtocol::Tls));
    assert_eq!(
        inspect::classify(b"GET / HTTP/1.1\r\n"),
        Some(TransportProtocol::RawBuffer)
    );
    assert_eq!(
        inspect::classify(b"PRI * HTTP/2.0"),
        Some(TransportProtocol::RawBuffer)
    );
    // A TLS alert record, not a handshake.
    assert_eq!(
        inspect::classify(&[0x15, 0x03, 0x03, 0, 2, 1]),
        Some(TransportProtocol::RawBuffer)
    );
    assert_eq!(inspect::classify(&hello[..3]), None);
    assert_eq!(inspect::classify(&[]), None);
}

#[test]
fn chains_are_chosen_by_exact_transport_then_by_no_match() {
    use TransportProtocol::{Any, RawBuffer, Tls};
    // Permissive: mTLS for TLS, plaintext for the rest.
    assert_eq!(choose_chain(&[Tls, Any], Tls), Some(0));
    assert_eq!(choose_chain(&[Tls, Any], RawBuffer), Some(1));
    // Strict: one chain takes everything (its TLS handshake refuses plaintext).
    assert_eq!(choose_chain(&[Any], RawBuffer), Some(0));
    // Only TLS served: plaintext matches nothing and is closed.
    assert_eq!(choose_chain(&[Tls], RawBuffer), None);
    assert_eq!(choose_chain(&[RawBuffer, Tls], Tls), Some(1));
}

#[test]
fn xfcc_is_by_hash_uri_in_envoys_order() {
    let peer = PeerCert {
        uri_sans: vec![API.into()],
        hash: "ab12".into(),
        ..PeerCert::default()
    };
    assert_eq!(
        xfcc::value(Some(WEB), &peer, true),
        format!("By={WEB};Hash=ab12;URI={API}")
    );
    assert_eq!(
        xfcc::value(Some(WEB), &peer, false),
        format!("By={WEB};Hash=ab12")
    );
    assert_eq!(
        xfcc::value(None, &peer, true),
        format!("Hash=ab12;URI={API}")
    );
}
