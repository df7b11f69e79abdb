//! TLS on the xDS port: the flag combinations refused, every bad input file refused with a
//! clear error (never quoting the key), the built-in certificate's SANs, handshakes that
//! verify against the CA put into bootstraps, and renewal: new handshakes get the new
//! certificate while a connection made before keeps working.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use clap::Parser;
use futures::StreamExt;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use super::*;
use crate::{
    ca::{Authority, Source, TrustDomain},
    config::Config,
};

const LOCAL: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

fn authority(ttl: Duration) -> Arc<Authority> {
    let td: TrustDomain = "mesh.local".parse().unwrap();
    let (cert, key) = Authority::generate(&td).unwrap();
    let src = Source {
        cert: "ca.pem",
        key: "ca.key",
    };
    Arc::new(Authority::from_pem(&cert, &key, None, src, td, ttl).unwrap())
}

fn flags(args: &[&str]) -> XdsTlsConfig {
    let mut all = vec!["xds-server"];
    all.extend_from_slice(args);
    Config::try_parse_from(all).unwrap().xds_tls
}

/// A self-signed certificate for `localhost` valid from `from` to `to` (seconds from now),
/// and its key (PEM).
fn self_signed(from: i64, to: i64) -> (String, String) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::seconds(from);
    params.not_after = now + time::Duration::seconds(to);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn files(cert: &Path, key: &Path) -> XdsTlsConfig {
    XdsTlsConfig {
        mode: XdsTlsMode::Files,
        xds_tls_cert_file: Some(cert.to_path_buf()),
        xds_tls_key_file: Some(key.to_path_buf()),
        ..XdsTlsConfig::default()
    }
}

fn refused(config: &XdsTlsConfig, authority: Option<&Arc<Authority>>) -> String {
    setup(config, authority, LOCAL).unwrap_err().to_string()
}

#[test]
fn off_by_default_and_flag_combinations_that_cannot_work_are_refused() {
    let config = Config::try_parse_from(["xds-server"]).unwrap();
    if std::env::var("XDS_SERVER_XDS_TLS").is_err() {
        assert_eq!(config.xds_tls.mode, XdsTlsMode::Off);
        assert!(setup(&config.xds_tls, None, LOCAL).unwrap().is_none());
    }
    assert!(Config::try_parse_from(["xds-server", "--xds-tls", "maybe"]).is_err());

    let message = refused(&flags(&["--xds-tls", "builtin"]), None);
    assert!(message.contains("--ca builtin"), "{message}");
    let message = refused(&flags(&["--xds-tls", "files"]), None);
    assert!(message.contains("--xds-tls-cert-file"), "{message}");
    let message = refused(
        &flags(&[
            "--xds-tls-cert-file",
            "c.pem",
            "--xds-tls-key-file",
            "k.pem",
        ]),
        None,
    );
    assert!(message.contains("need --xds-tls files"), "{message}");
    let message = refused(&flags(&["--xds-tls-san", "xds.example"]), None);
    assert!(message.contains("needs --xds-tls builtin"), "{message}");
    let message = refused(
        &flags(&[
            "--xds-tls",
            "builtin",
            "--xds-tls-trusted-ca-file",
            "ca.pem",
        ]),
        Some(&authority(Duration::from_secs(3600))),
    );
    assert!(message.contains("needs --xds-tls files"), "{message}");
    let sans = flags(&[
        "--xds-tls-san",
        "a.example,10.0.0.1",
        "--xds-tls-san",
        "b.example",
    ]);
    assert_eq!(sans.xds_tls_san, ["a.example", "10.0.0.1", "b.example"]);
}

#[test]
fn builtin_sans_default_to_the_local_names_and_refuse_nonsense() {
    let (dns, ips) = sans(&[], Some("Node-7")).unwrap();
    assert_eq!(dns, ["localhost", "node-7"]);
    assert_eq!(
        ips,
        [
            "127.0.0.1".parse::<std::net::IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
    let (dns, ips) = sans(
        &["xds.mesh.example".into(), "[::1]".into(), "10.1.2.3".into()],
        None,
    )
    .unwrap();
    assert_eq!(dns, ["xds.mesh.example"]);
    assert_eq!(ips.len(), 2);
    let message = sans(&["not a name".into()], None).unwrap_err().to_string();
    assert!(
        message.contains("'not a name'")
            && message.contains("neither an IP address nor a DNS name"),
        "{message}"
    );
}

#[test]
fn bad_certificate_and_key_files_are_refused_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(-60, 3600);
    let cert_path = write(dir.path(), "cert.pem", &cert);
    let key_path = write(dir.path(), "key.pem", &key);

    let missing = dir.path().join("missing.pem");
    let message = refused(&files(&missing, &key_path), None);
    assert!(
        message.contains("could not read the xDS TLS certificate")
            && message.contains("missing.pem"),
        "{message}"
    );

    let garbage = write(dir.path(), "garbage.pem", "hello\n");
    let message = refused(&files(&garbage, &key_path), None);
    assert!(message.contains("no 'BEGIN CERTIFICATE'"), "{message}");

    // A key that is not one: refused without quoting it.
    let not_key = write(
        dir.path(),
        "not-key.pem",
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXN0dWZm\n-----END PRIVATE KEY-----\n",
    );
    let message = refused(&files(&cert_path, &not_key), None);
    assert!(
        message.contains("not a usable PEM private key"),
        "{message}"
    );
    assert!(
        !message.contains("c2VjcmV0"),
        "the key's text reached the message: {message}"
    );

    // Another certificate's key.
    let (_, other_key) = self_signed(-60, 3600);
    let other_key = write(dir.path(), "other.key", &other_key);
    let message = refused(&files(&cert_path, &other_key), None);
    assert!(
        message.contains("does not belong to the certificate"),
        "{message}"
    );
    assert!(!message.contains("PRIVATE KEY"), "{message}");

    // Expired, and not yet valid.
    let (old, old_key) = self_signed(-7200, -3600);
    let message = refused(
        &files(
            &write(dir.path(), "old.pem", &old),
            &write(dir.path(), "old.key", &old_key),
        ),
        None,
    );
    assert!(
        message.contains("is not valid now") && message.contains("renew it"),
        "{message}"
    );
    let (early, early_key) = self_signed(3600, 7200);
    let message = refused(
        &files(
            &write(dir.path(), "early.pem", &early),
            &write(dir.path(), "early.key", &early_key),
        ),
        None,
    );
    assert!(message.contains("is not valid now"), "{message}");

    // A trusted CA file that is not PEM.
    let mut config = files(&cert_path, &key_path);
    config.xds_tls_trusted_ca_file = Some(garbage);
    let message = refused(&config, None);
    assert!(message.contains("the xDS trusted CA file"), "{message}");
}

/// A TLS client trusting `ca_pem`, connecting to `addr` as `name`; returns the stream and
/// the certificate the server presented.
async fn handshake(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    name: &str,
) -> std::io::Result<(
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
)> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    Ok((tls, leaf))
}

#[tokio::test]
async fn operator_files_serve_and_a_self_signed_certificate_is_what_proxies_trust() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(-60, 3600);
    let config = files(
        &write(dir.path(), "c.pem", &cert),
        &write(dir.path(), "k.pem", &key),
    );
    let tls = setup(&config, None, LOCAL).unwrap().unwrap();
    assert!(tls.trusted_ca_pem.contains("BEGIN CERTIFICATE"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut accepted = incoming(listener, tls.acceptor());
    let client = tokio::spawn({
        let ca = tls.trusted_ca_pem.to_string();
        async move { handshake(addr, &ca, "localhost").await }
    });
    assert!(matches!(accepted.next().await, Some(Ok(Io::Tls(_)))));
    client
        .await
        .unwrap()
        .expect("the client trusts the bootstrap's CA");
}

#[tokio::test]
async fn builtin_certificate_verifies_against_the_mesh_ca_and_renews_without_cutting_connections() {
    let ca = authority(Duration::from_secs(2));
    let config = XdsTlsConfig {
        mode: XdsTlsMode::Builtin,
        ..XdsTlsConfig::default()
    };
    let tls = setup(&config, Some(&ca), LOCAL).unwrap().unwrap();
    assert_eq!(&*tls.trusted_ca_pem, ca.trust_bundle_pem());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut accepted = incoming(listener, tls.acceptor());

    let (mut first, first_leaf) = {
        let client = tokio::spawn({
            let ca = tls.trusted_ca_pem.to_string();
            async move { handshake(addr, &ca, "localhost").await }
        });
        let Some(Ok(server_side)) = accepted.next().await else {
            panic!("no connection")
        };
        let (client, leaf) = client.await.unwrap().unwrap();
        ((client, server_side), leaf)
    };
    // By IP too.
    let by_ip = tokio::spawn({
        let ca = tls.trusted_ca_pem.to_string();
        async move { handshake(addr, &ca, "127.0.0.1").await }
    });
    let _ip_conn = accepted.next().await;
    by_ip.await.unwrap().expect("127.0.0.1 is a default SAN");

    // Renewed at half of the 2 s lifetime: new handshakes get the new certificate.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let renewed = loop {
        let client = tokio::spawn({
            let ca = tls.trusted_ca_pem.to_string();
            async move { handshake(addr, &ca, "localhost").await }
        });
        let _server_side = accepted.next().await;
        let (_, leaf) = client.await.unwrap().unwrap();
        if leaf != first_leaf {
            break leaf;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the serving certificate was not renewed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_ne!(renewed, first_leaf);

    // The connection made before the renewal still carries data both ways.
    let Io::Tls(server_side) = &mut first.1 else {
        panic!("plaintext")
    };
    server_side.write_all(b"ping").await.unwrap();
    server_side.flush().await.unwrap();
    let mut buf = [0u8; 4];
    first.0.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused_and_counted() {
    let ca = authority(Duration::from_secs(3600));
    let other = authority(Duration::from_secs(3600));
    let config = XdsTlsConfig {
        mode: XdsTlsMode::Builtin,
        ..XdsTlsConfig::default()
    };
    let tls = setup(&config, Some(&ca), LOCAL).unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _accepted = incoming(listener, tls.acceptor());
    let count = |reason: &str| {
        handshake_failures()
            .iter()
            .find(|(r, _)| *r == reason)
            .map(|(_, n)| *n)
            .unwrap()
    };
    let (rejected, not_tls) = (count("rejected_by_client"), count("not_tls"));
    let error = handshake(addr, &other.trust_bundle_pem(), "localhost")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
    // Plaintext bytes (an HTTP/2 preface) on the TLS port.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count("rejected_by_client") <= rejected || count("not_tls") <= not_tls {
        assert!(std::time::Instant::now() < deadline, "refusals not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn changed_operator_files_are_reloaded_and_unusable_ones_keep_the_current_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(-60, 3600);
    let cert_path = write(dir.path(), "c.pem", &cert);
    let key_path = write(dir.path(), "k.pem", &key);
    let tick = Duration::from_millis(50);
    let tls = setup_with(&files(&cert_path, &key_path), None, LOCAL, tick)
        .unwrap()
        .unwrap();
    let first = tls.current.current().cert[0].clone();

    // A certificate without its key yet (a half-done rotation): the current one stays.
    let (next_cert, next_key) = self_signed(-60, 7200);
    std::fs::write(&cert_path, &next_cert).unwrap();
    tokio::time::sleep(tick * 6).await;
    assert_eq!(tls.current.current().cert[0], first);

    // Both written: new handshakes get the new certificate.
    std::fs::write(&key_path, &next_key).unwrap();
    let expected = CertificateDer::from_pem_slice(next_cert.as_bytes()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tls.current.current().cert[0] != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "the changed files were not reloaded"
        );
        tokio::time::sleep(tick).await;
    }
}

#[tokio::test]
async fn a_specific_xds_address_joins_the_builtin_certificates_names() {
    let ca = authority(Duration::from_secs(3600));
    let config = XdsTlsConfig {
        mode: XdsTlsMode::Builtin,
        ..XdsTlsConfig::default()
    };
    let names = |addr: &str| {
        let tls = setup(&config, Some(&ca), addr.parse().unwrap())
            .unwrap()
            .unwrap();
        let leaf = tls.current.current().cert[0].clone();
        let (_, x509) = <x509_parser::prelude::X509Certificate as x509_parser::prelude::FromDer<
            _,
        >>::from_der(leaf.as_ref())
        .unwrap();
        let san = x509.subject_alternative_name().unwrap().unwrap().value;
        format!("{:?}", san.general_names)
    };
    let specific = names("10.1.2.3:18000");
    assert!(
        specific.contains("10.1.2.3") || specific.contains("[10, 1, 2, 3]"),
        "{specific}"
    );
    assert!(specific.contains("localhost"), "{specific}");
    let any = names("0.0.0.0:18000");
    assert!(!any.contains("[0, 0, 0, 0]"), "{any}");
}
