//! The CA: issued certificates verify against the trust bundle and carry the SPIFFE ID;
//! renewal timing; the key sealed at rest; storage shared by racing replicas; every bad
//! input refused with a clear error and nothing written.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls_pki_types::{CertificateDer, UnixTime, pem::PemObject};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::{authority::Source, issuer::refresh_for_test, *};
use crate::{
    store::{SqliteStore, Store},
    translate::NodeInfo,
};

const HOUR: Duration = Duration::from_secs(3600);
const SRC: Source<'static> = Source {
    cert: "ca.pem",
    key: "ca.key",
};

fn td() -> TrustDomain {
    "mesh.local".parse().unwrap()
}

fn built_in() -> Authority {
    let (cert, key) = Authority::generate(&td()).unwrap();
    Authority::from_pem(&cert, &key, None, SRC, td(), HOUR).unwrap()
}

/// A certificate and key from `params` (self-signed).
fn self_signed(params: CertificateParams) -> (String, String) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p
}

fn ders(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Verifies `chain_pem` (leaf first) against `bundle_pem` for client and server auth with
/// webpki, as rustls would.
fn verify(chain_pem: &str, bundle_pem: &str, at: SystemTime) -> Result<(), webpki::Error> {
    let chain = ders(chain_pem);
    let roots = ders(bundle_pem);
    let anchors: Vec<_> = roots
        .iter()
        .map(|r| webpki::anchor_from_trusted_cert(r).unwrap().to_owned())
        .collect();
    let leaf = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
    let time = UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH).unwrap());
    for usage in [
        webpki::KeyUsage::server_auth(),
        webpki::KeyUsage::client_auth(),
    ] {
        leaf.verify_for_usage(
            &[webpki::ring::ECDSA_P256_SHA256],
            &anchors,
            &chain[1..],
            time,
            usage,
            None,
            None,
        )?;
    }
    Ok(())
}

fn uri_sans(pem: &str) -> Vec<String> {
    let der = &ders(pem)[0];
    let (_, x) = X509Certificate::from_der(der.as_ref()).unwrap();
    let san = x.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect()
}

// === identities ===

#[test]
fn trust_domains_are_validated_and_spiffe_ids_built_from_them() {
    assert_eq!(td().spiffe_id("web"), "spiffe://mesh.local/service/web");
    assert_eq!(
        td().service_of("spiffe://mesh.local/service/web"),
        Some("web")
    );
    assert_eq!(td().service_of("spiffe://other/service/web"), None);
    for bad in [
        "",
        "Mesh.local",
        "mesh local",
        ".mesh",
        "a/b",
        &"a".repeat(256),
    ] {
        let e = bad.parse::<TrustDomain>().unwrap_err();
        assert!(e.contains("not a trust domain"), "{e}");
    }
}

#[test]
fn a_proxy_may_have_only_the_identity_its_node_cluster_names() {
    let node = |cluster: &str| NodeInfo {
        id: "n".into(),
        cluster: cluster.into(),
        ..NodeInfo::default()
    };
    assert_eq!(allowed_identity(&node("web")), Some("web"));
    assert_eq!(allowed_identity(&node("")), None);
    let authority = built_in();
    let now = SystemTime::now();
    let (certs, _) = refresh_for_test(
        &authority,
        &Default::default(),
        vec!["web".into(), "db".into()],
        now,
    );
    let ids = Identities {
        trust_domain: td(),
        bundle: Some(authority.trust_bundle_pem().into()),
        certs,
    };
    let sel = ids.select(&node("web"));
    assert_eq!(
        sel.cert.as_ref().unwrap().1.spiffe_id,
        "spiffe://mesh.local/service/web"
    );
    assert!(sel.bundle.is_some());
    let gateway = ids.select(&node("edge"));
    assert!(
        gateway.cert.is_none(),
        "no service named 'edge': no certificate"
    );
    assert!(gateway.bundle.is_some(), "the bundle goes to anyone");
    let before = refused_requests();
    audit_request(
        &node("web"),
        xds_core::type_url::SECRET,
        [
            "spiffe://mesh.local/service/db",
            "spiffe://mesh.local/service/web",
            TRUST_BUNDLE_SECRET,
        ]
        .into_iter(),
    );
    assert_eq!(refused_requests() - before, 1);
}

// === issuing ===

#[test]
fn a_workload_certificate_verifies_and_carries_the_spiffe_id() {
    let authority = built_in();
    let now = SystemTime::now();
    let cert = authority.issue("web", now).unwrap();
    assert_eq!(cert.spiffe_id, "spiffe://mesh.local/service/web");
    assert_eq!(
        uri_sans(&cert.chain_pem),
        ["spiffe://mesh.local/service/web"]
    );
    verify(&cert.chain_pem, &authority.trust_bundle_pem(), now).unwrap();
    // Valid for the TTL, not after.
    assert_eq!(cert.not_after, now + HOUR);
    let late = now + HOUR + Duration::from_secs(5);
    assert!(verify(&cert.chain_pem, &authority.trust_bundle_pem(), late).is_err());
    // ECDSA P-256, and the key is the certificate's.
    let key = KeyPair::from_pem(&cert.key_pem).unwrap();
    assert_eq!(key.algorithm(), &PKCS_ECDSA_P256_SHA256);
    let leaf = ders(&cert.chain_pem).remove(0);
    let (_, x) = X509Certificate::from_der(leaf.as_ref()).unwrap();
    assert_eq!(
        x.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );
    assert!(!x.is_ca());
    // Another CA's bundle does not verify it.
    assert!(verify(&cert.chain_pem, &built_in().trust_bundle_pem(), now).is_err());
    // Each issue is new.
    assert_ne!(authority.issue("web", now).unwrap().serial, cert.serial);
}

#[test]
fn an_operator_intermediate_issues_through_its_chain_to_the_root() {
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let root_params = ca_params();
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = rcgen::Issuer::new(root_params, root_key);
    let inter_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let inter = ca_params().signed_by(&inter_key, &root_issuer).unwrap();
    let authority = Authority::from_pem(
        &inter.pem(),
        &inter_key.serialize_pem(),
        Some((&root.pem(), "root.pem")),
        SRC,
        td(),
        HOUR,
    )
    .unwrap();
    assert_eq!(
        authority.trust_bundle_pem(),
        root.pem(),
        "the root is what proxies trust"
    );
    let cert = authority.issue("api", SystemTime::now()).unwrap();
    assert_eq!(ders(&cert.chain_pem).len(), 3, "leaf, intermediate, root");
    verify(
        &cert.chain_pem,
        &authority.trust_bundle_pem(),
        SystemTime::now(),
    )
    .unwrap();
}

#[test]
fn while_rotating_the_bundle_holds_both_roots() {
    let old = built_in();
    let mut new = built_in();
    new.keep_trusting(&old.trust_bundle_pem(), "old", "old.pem")
        .unwrap();
    new.keep_trusting(&old.trust_bundle_pem(), "old", "old.pem")
        .unwrap();
    assert_eq!(new.roots(), 2, "kept once");
    let now = SystemTime::now();
    let bundle = new.trust_bundle_pem();
    verify(&old.issue("a", now).unwrap().chain_pem, &bundle, now).unwrap();
    verify(&new.issue("a", now).unwrap().chain_pem, &bundle, now).unwrap();
}

// === renewal ===

#[test]
fn renewal_falls_at_half_the_lifetime() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    assert_eq!(renew_at(t0, t0 + 24 * HOUR), t0 + 12 * HOUR);
    assert!(!due(
        t0 + 12 * HOUR - Duration::from_secs(1),
        t0 + 12 * HOUR
    ));
    assert!(due(t0 + 12 * HOUR, t0 + 12 * HOUR));
    assert_eq!(
        next_wake([t0 + 3 * HOUR, t0 + HOUR, t0 + 2 * HOUR]),
        Some(t0 + HOUR)
    );
    assert_eq!(next_wake([]), None);
    // A certificate cut short by its CA's expiry renews at half of what it has.
    assert_eq!(renew_at(t0, t0 + 2 * HOUR), t0 + HOUR);
}

#[test]
fn the_issuer_reissues_due_certificates_and_keeps_the_rest() {
    let authority = built_in();
    let t0 = SystemTime::now();
    let services = || vec!["a".to_string(), "b".to_string()];
    let (first, changed) = refresh_for_test(&authority, &Default::default(), services(), t0);
    assert!(changed);
    let (same, changed) = refresh_for_test(
        &authority,
        &first,
        services(),
        t0 + HOUR / 2 - Duration::from_secs(1),
    );
    assert!(!changed);
    assert_eq!(same["a"].serial, first["a"].serial);
    let (renewed, changed) = refresh_for_test(&authority, &first, services(), t0 + HOUR / 2);
    assert!(changed);
    assert_ne!(renewed["a"].serial, first["a"].serial);
    let (gone, changed) = refresh_for_test(&authority, &renewed, vec!["a".into()], t0 + HOUR / 2);
    assert!(changed, "a service removed drops its certificate");
    assert_eq!(gone.keys().collect::<Vec<_>>(), ["a"]);
}

// === secrets never printed ===

#[test]
fn debug_output_holds_no_key() {
    let authority = built_in();
    let cert = authority.issue("web", SystemTime::now()).unwrap();
    for printed in [format!("{cert:?}"), format!("{authority:?}")] {
        assert!(!printed.contains("PRIVATE KEY"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }
    let secret = crate::translate::SdsSelection {
        cert: Some(("web".into(), Arc::new(cert.clone()))),
        bundle: None,
    };
    assert!(!format!("{secret:?}").contains("PRIVATE KEY"));
}

// === bad input ===

#[test]
fn bad_ca_files_are_refused_with_what_was_wrong() {
    let (cert, key) = Authority::generate(&td()).unwrap();
    let load = |c: &str, k: &str| Authority::from_pem(c, k, None, SRC, td(), HOUR).unwrap_err();
    let e = load("not a certificate", &key);
    assert!(matches!(e, Error::BadCertificate { .. }), "{e}");
    assert!(e.to_string().contains("ca.pem"));
    let e = load(&cert, "not a key");
    assert!(matches!(e, Error::BadKey { .. }), "{e}");
    let other_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem();
    let e = load(&cert, &other_key);
    assert!(matches!(e, Error::KeyMismatch { .. }), "{e}");
    // Not a CA.
    let (leaf, leaf_key) = self_signed(CertificateParams::default());
    let e = load(&leaf, &leaf_key);
    assert!(matches!(e, Error::NotCa { .. }), "{e}");
    assert!(e.to_string().contains("basicConstraints CA:true"));
    // Expired.
    let mut expired = ca_params();
    expired.not_before = rcgen::date_time_ymd(2000, 1, 1);
    expired.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let (old, old_key) = self_signed(expired);
    let e = load(&old, &old_key);
    assert!(matches!(e, Error::Expired { .. }), "{e}");
    // No message quotes the key.
    for e in [load(&cert, &other_key), load(&cert, "not a key")] {
        assert!(!e.to_string().contains("PRIVATE KEY"));
    }
}

#[test]
fn seal_keys_must_be_32_bytes_of_base64_and_open_only_their_own() {
    use base64::Engine;
    let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
    assert!(
        SealKey::from_base64("not base64!")
            .unwrap_err()
            .contains("not base64")
    );
    assert!(
        SealKey::from_base64(&b64(16))
            .unwrap_err()
            .contains("16 bytes, not 32")
    );
    let key = SealKey::from_base64(&b64(32)).unwrap();
    let sealed = key.seal("-----BEGIN PRIVATE KEY-----\nabc\n").unwrap();
    assert!(!sealed.contains("PRIVATE KEY"));
    assert_eq!(
        key.open(&sealed).unwrap(),
        "-----BEGIN PRIVATE KEY-----\nabc\n"
    );
    let other =
        SealKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([8u8; 32])).unwrap();
    assert!(matches!(other.open(&sealed), Err(Error::WrongSealKey)));
    assert!(format!("{key:?}").contains("redacted"));
}

// === storage ===

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }
    async fn store(&self) -> Arc<dyn Store> {
        Arc::new(
            SqliteStore::open(&self.0.path().join("db"), Duration::from_secs(1))
                .await
                .unwrap(),
        )
    }
}

fn builtin_config(seal: Option<PathBuf>) -> CaConfig {
    CaConfig {
        ca_mode: CaMode::Builtin,
        ca_key_encryption_key_file: seal,
        ..CaConfig::default()
    }
}

#[tokio::test]
async fn the_built_in_ca_is_created_once_sealed_and_loaded_back() {
    use base64::Engine;
    let dir = Dir::new();
    let store = dir.store().await;
    let seal = dir.file(
        "seal",
        &base64::engine::general_purpose::STANDARD.encode([1u8; 32]),
    );
    let config = builtin_config(Some(seal));
    let a = load_or_create(store.as_ref(), &config)
        .await
        .unwrap()
        .unwrap();
    let stored = store.ca_get().await.unwrap().unwrap();
    assert!(stored.key_sealed && !stored.private_key.contains("PRIVATE KEY"));
    let b = load_or_create(store.as_ref(), &config)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        a.trust_bundle_pem(),
        b.trust_bundle_pem(),
        "the same CA on restart"
    );
    // Certificates from either verify against the other's bundle.
    let now = SystemTime::now();
    verify(
        &a.issue("x", now).unwrap().chain_pem,
        &b.trust_bundle_pem(),
        now,
    )
    .unwrap();
}

#[tokio::test]
async fn replicas_starting_at_once_end_up_with_one_ca() {
    let dir = Dir::new();
    let store = dir.store().await;
    let config = builtin_config(None);
    let (a, b, c) = tokio::join!(
        load_or_create(store.as_ref(), &config),
        load_or_create(store.as_ref(), &config),
        load_or_create(store.as_ref(), &config),
    );
    let bundles: Vec<String> = [a, b, c]
        .into_iter()
        .map(|r| r.unwrap().unwrap().trust_bundle_pem())
        .collect();
    assert!(bundles.iter().all(|b| *b == bundles[0]), "one CA");
}

#[tokio::test]
async fn a_stored_ca_that_does_not_open_with_the_given_key_stops_startup() {
    use base64::Engine;
    let enc = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let dir = Dir::new();
    let store = dir.store().await;
    let first = dir.file("k1", &enc(1));
    load_or_create(store.as_ref(), &builtin_config(Some(first)))
        .await
        .unwrap();
    let stored = store.ca_get().await.unwrap();
    let wrong = dir.file("k2", &enc(2));
    let e = load_or_create(store.as_ref(), &builtin_config(Some(wrong)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WrongSealKey), "{e}");
    let e = load_or_create(store.as_ref(), &builtin_config(None))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::SealKeyMissing), "{e}");
    assert_eq!(store.ca_get().await.unwrap(), stored, "nothing written");
}

#[tokio::test]
async fn bad_startup_inputs_write_nothing() {
    let dir = Dir::new();
    let store = dir.store().await;
    let short = dir.file("short", "c2hvcnQ=");
    let e = load_or_create(store.as_ref(), &builtin_config(Some(short)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadSealKey { .. }), "{e}");
    assert!(e.to_string().contains("not 32"));
    let missing = CaConfig {
        ca_mode: CaMode::Files,
        ca_cert_file: Some(dir.0.path().join("absent.pem")),
        ca_key_file: Some(dir.0.path().join("absent.key")),
        ..CaConfig::default()
    };
    let e = load_or_create(store.as_ref(), &missing).await.unwrap_err();
    assert!(matches!(e, Error::Read { .. }), "{e}");
    let half = CaConfig {
        ca_mode: CaMode::Files,
        ..CaConfig::default()
    };
    assert!(matches!(
        load_or_create(store.as_ref(), &half).await,
        Err(Error::Config(_))
    ));
    let (cert, _) = Authority::generate(&td()).unwrap();
    let other_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem();
    let mismatched = CaConfig {
        ca_mode: CaMode::Files,
        ca_cert_file: Some(dir.file("ca.pem", &cert)),
        ca_key_file: Some(dir.file("ca.key", &other_key)),
        ..CaConfig::default()
    };
    let e = load_or_create(store.as_ref(), &mismatched)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::KeyMismatch { .. }), "{e}");
    assert_eq!(store.ca_get().await.unwrap(), None, "nothing written");
    assert!(
        load_or_create(store.as_ref(), &CaConfig::default())
            .await
            .unwrap()
            .is_none(),
        "off by default"
    );
}

#[tokio::test]
async fn an_operator_ca_replacing_the_built_in_one_keeps_its_root_until_told() {
    let dir = Dir::new();
    let store = dir.store().await;
    let old = load_or_create(store.as_ref(), &builtin_config(None))
        .await
        .unwrap()
        .unwrap();
    let (cert, key) = Authority::generate(&td()).unwrap();
    let mut files = CaConfig {
        ca_mode: CaMode::Files,
        ca_cert_file: Some(dir.file("ca.pem", &cert)),
        ca_key_file: Some(dir.file("ca.key", &key)),
        ..CaConfig::default()
    };
    let new = load_or_create(store.as_ref(), &files)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.roots(), 2);
    let now = SystemTime::now();
    verify(
        &old.issue("a", now).unwrap().chain_pem,
        &new.trust_bundle_pem(),
        now,
    )
    .unwrap();
    files.ca_drop_stored_root = true;
    let dropped = load_or_create(store.as_ref(), &files)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dropped.roots(), 1);
    assert!(
        verify(
            &old.issue("a", now).unwrap().chain_pem,
            &dropped.trust_bundle_pem(),
            now
        )
        .is_err()
    );
}

#[test]
fn the_proxy_config_view_of_secrets_redacts_the_key() {
    use crate::translate::{SdsSelection, Selection, resources_to_json, translate};
    let authority = built_in();
    let cert = authority.issue("web", SystemTime::now()).unwrap();
    let selection = Selection {
        secrets: SdsSelection {
            cert: Some(("web".into(), Arc::new(cert))),
            bundle: Some(authority.trust_bundle_pem().into()),
        },
        ..Selection::default()
    };
    let resources = translate(&crate::model::Mesh::default(), &selection);
    let secrets = resources.of_type(xds_core::type_url::SECRET).unwrap();
    assert_eq!(
        secrets.keys().collect::<Vec<_>>(),
        [TRUST_BUNDLE_SECRET, "spiffe://mesh.local/service/web"]
    );
    let shown = resources_to_json(&resources).to_string();
    assert!(shown.contains("BEGIN CERTIFICATE"), "the chain is shown");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("[redacted]"));
}
