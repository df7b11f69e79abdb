//! Real handshakes over loopback between the listener and cluster sides: mTLS with the
//! peer's identity, a wrong server SAN, a client without a certificate or from another CA,
//! plaintext refused, rotation picked up by the next handshake on both sides.

use super::*;

fn secrets(pki: &Pki, names: &[&str]) -> Secrets {
    let secrets = Secrets::default();
    let mut map: HashMap<String, Arc<Material>> = HashMap::new();
    map.insert(BUNDLE.into(), pki.bundle());
    for name in names {
        map.insert(name.to_string(), pki.certificate(name));
    }
    secrets.publish(map);
    secrets
}

fn validation(sans: &[&str]) -> Validation {
    Validation {
        trust_bundle: BUNDLE.into(),
        uri_sans: sans.iter().map(|s| s.to_string()).collect(),
    }
}

fn server(secrets: &Secrets, require: bool) -> Acceptor {
    let tls = DownstreamTls {
        certificate: WEB.into(),
        validation: Some(validation(&[])),
        require_client_certificate: require,
    };
    Acceptor::new(&tls, secrets).unwrap()
}

fn client(secrets: &Secrets, certificate: Option<&str>, sans: &[&str]) -> Connector {
    let tls = UpstreamTls {
        certificate: certificate.map(str::to_string),
        validation: validation(sans),
        sni: "web".into(),
    };
    Connector::new(&tls, secrets)
}

/// A server accepting one connection at a time with `acceptor`, echoing one line prefixed
/// with the peer's URI SAN (and, after `#`, its certificate's hash); returns its address and
/// its stats.
async fn echo_server(acceptor: Acceptor) -> (std::net::SocketAddr, Arc<SslStats>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stats = Arc::new(SslStats::default());
    let counted = stats.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let Some(accepted) = acceptor.accept(tcp, &counted).await else {
                continue;
            };
            let mut io = accepted.io;
            let (peer, hash) = accepted
                .peer
                .map(|p| (p.uri_sans.join(","), p.hash.clone()))
                .unwrap_or_default();
            let mut buf = [0u8; 64];
            let n = io.read(&mut buf).await.unwrap_or(0);
            let reply = format!("{peer}|{}#{hash}", String::from_utf8_lossy(&buf[..n]));
            let _ = io.write_all(reply.as_bytes()).await;
            let _ = io.shutdown().await;
        }
    });
    (address, stats)
}

async fn call(
    connector: &Connector,
    address: std::net::SocketAddr,
    stats: &SslStats,
) -> Result<String, String> {
    let tcp = TcpStream::connect(address).await.unwrap();
    let mut io = connector
        .connect(tcp, stats)
        .await
        .map_err(|e| e.to_string())?;
    io.write_all(b"hi").await.map_err(|e| e.to_string())?;
    let mut out = String::new();
    io.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    if out.is_empty() {
        return Err("closed".into());
    }
    Ok(out)
}

#[tokio::test]
async fn mtls_both_ways_gives_the_server_the_clients_identity() {
    let pki = Pki::new();
    let secrets = secrets(&pki, &[WEB, API]);
    let (address, server_stats) = echo_server(server(&secrets, true)).await;
    let stats = SslStats::default();
    let reply = call(&client(&secrets, Some(API), &[WEB]), address, &stats).await;
    assert!(reply.unwrap().starts_with(&format!("{API}|hi#")));
    assert_eq!(stats.handshake.get(), 1);
    assert_eq!(server_stats.handshake.get(), 1);

    // The server is not who the client expects.
    let wrong = call(&client(&secrets, Some(API), &[API]), address, &stats).await;
    assert!(wrong.is_err(), "{wrong:?}");
    assert_eq!(stats.fail_verify_error.get(), 1);

    // No client certificate where one is required.
    let anonymous = call(&client(&secrets, None, &[WEB]), address, &stats).await;
    assert!(anonymous.is_err(), "{anonymous:?}");
    assert!(server_stats.connection_error.get() >= 1);
}

#[tokio::test]
async fn a_client_of_another_ca_is_refused_and_plaintext_fails_the_handshake() {
    let (pki, other) = (Pki::new(), Pki::new());
    let ours = secrets(&pki, &[WEB]);
    let (address, server_stats) = echo_server(server(&ours, true)).await;
    let theirs = secrets(&other, &[API]);
    let stats = SslStats::default();
    // Their client trusts our CA (so it gets as far as presenting its certificate).
    let mut map = (*theirs.snapshot()).clone();
    map.insert(BUNDLE.into(), pki.bundle());
    theirs.publish(map);
    let r = call(&client(&theirs, Some(API), &[WEB]), address, &stats).await;
    assert!(r.is_err(), "{r:?}");

    let mut plain = TcpStream::connect(address).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out).await;
    assert!(!String::from_utf8_lossy(&out).contains("hi"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server_stats.fail_verify_error.get() < 1 || server_stats.connection_error.get() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{server_stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_rotated_certificate_is_used_by_the_next_handshake() {
    let pki = Pki::new();
    let secrets = secrets(&pki, &[WEB, API]);
    let acceptor = server(&secrets, true);
    let (address, _) = echo_server(acceptor).await;
    let connector = client(&secrets, Some(API), &[WEB]);
    let stats = SslStats::default();
    // What the server presents, seen from the client side.
    let presented = || async {
        let tcp = TcpStream::connect(address).await.unwrap();
        let io = connector.connect(tcp, &stats).await.unwrap();
        let crate::tls::Io::Tls(tls) = io else {
            panic!("plaintext")
        };
        let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        verify::peer_cert(&leaf).unwrap().hash
    };
    let before = presented().await;
    assert_eq!(presented().await, before);
    let mut map = (*secrets.snapshot()).clone();
    map.insert(WEB.into(), pki.certificate(WEB));
    secrets.publish(map);
    let after = presented().await;
    assert_ne!(
        after, before,
        "the next handshake presents the new certificate"
    );

    // The client side alike: the server sees the renewed client certificate.
    let client_hash = || async {
        let reply = call(&connector, address, &stats).await.unwrap();
        reply.split_once('#').unwrap().1.to_string()
    };
    let before = client_hash().await;
    let mut map = (*secrets.snapshot()).clone();
    map.insert(API.into(), pki.certificate(API));
    secrets.publish(map);
    assert_ne!(
        client_hash().await,
        before,
        "the client presents its new certificate"
    );
}

#[test]
fn a_removed_bundle_verifies_no_one() {
    let pki = Pki::new();
    let (chain, _) = pki.leaf(API);
    let secrets = Secrets::default();
    secrets.publish(HashMap::from([(
        BUNDLE.to_string(),
        Arc::new(Material::Removed),
    )]));
    let check = crate::tls::verifier::Check {
        secrets,
        trust_bundle: BUNDLE.into(),
        uri_sans: vec![],
        provider: crate::tls::provider(),
    };
    let verifier = crate::tls::verifier::ClientVerifier {
        check,
        mandatory: true,
    };
    use rustls::server::danger::ClientCertVerifier;
    let e = verifier
        .verify_client_cert(&chain[0], &[], now())
        .unwrap_err();
    assert!(format!("{e:?}").contains("NoTrustBundle"), "{e:?}");
}
