//! The built-in CA in the store, on both backends: replicas starting at once (each with its
//! own connection) end up with one CA; a restart loads the same one; the key is sealed at
//! rest and opens only with its key. Postgres runs when `XDS_TEST_POSTGRES_URL` is set.

use std::{path::Path, sync::Arc, time::Duration};

use xds_server::{
    ca::{CaConfig, CaMode, load_or_create},
    store::{PostgresStore, SqliteStore, Store},
};

const POLL: Duration = Duration::from_secs(1);

fn config(seal: &Path) -> CaConfig {
    CaConfig {
        ca_mode: CaMode::Builtin,
        ca_key_encryption_key_file: Some(seal.to_path_buf()),
        ..CaConfig::default()
    }
}

/// Three replicas race to create the CA, then one restarts: all hold the same root.
async fn one_ca_for_all(replicas: Vec<Arc<dyn Store>>, dir: &Path) {
    let seal = dir.join("seal");
    // 32 bytes of 0x2a, base64.
    std::fs::write(&seal, "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=\n").unwrap();
    let config = config(&seal);
    let loads = replicas.iter().map(|s| load_or_create(s.as_ref(), &config));
    let bundles: Vec<String> = futures::future::join_all(loads)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap().trust_bundle_pem())
        .collect();
    assert!(
        bundles.iter().all(|b| *b == bundles[0]),
        "one CA for every replica"
    );
    let again = load_or_create(replicas[0].as_ref(), &config)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.trust_bundle_pem(),
        bundles[0],
        "the same CA after a restart"
    );
    let stored = replicas[1].ca_get().await.unwrap().unwrap();
    assert!(stored.key_sealed);
    assert!(
        !stored.private_key.contains("PRIVATE KEY"),
        "sealed at rest"
    );
    assert!(
        !format!("{stored:?}").contains(&stored.private_key),
        "Debug hides the key"
    );
    // Another key does not open it, and nothing is rewritten.
    std::fs::write(&seal, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let e = load_or_create(replicas[2].as_ref(), &config)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot be decrypted"), "{e}");
    assert_eq!(replicas[0].ca_get().await.unwrap().unwrap(), stored);
}

#[tokio::test]
async fn sqlite_replicas_share_one_ca() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesh.db");
    let mut replicas: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..3 {
        replicas.push(Arc::new(SqliteStore::open(&db, POLL).await.unwrap()));
    }
    one_ca_for_all(replicas, dir.path()).await;
}

#[tokio::test]
async fn postgres_replicas_share_one_ca() {
    let Some(server) = integration::postgres::server() else {
        return;
    };
    let url = integration::postgres::fresh_database(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let connects = (0..3).map(|_| PostgresStore::connect(&url, POLL));
    let replicas = futures::future::join_all(connects)
        .await
        .into_iter()
        .map(|s| Arc::new(s.unwrap()) as Arc<dyn Store>)
        .collect();
    one_ca_for_all(replicas, dir.path()).await;
}

/// Runs the real binary with `args` on a fresh SQLite file; returns its exit success, its
/// output (stdout and stderr) and whether a CA row was written.
async fn start_binary(args: &[&str]) -> (bool, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesh.db");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_xds-server"))
        .args([
            "--admin-addr",
            "127.0.0.1:0",
            "--xds-addr",
            "127.0.0.1:0",
            "--sqlite-file",
        ])
        .arg(&db)
        .args(args)
        .env_remove("DATABASE_URL")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("a bad CA input stops startup at once")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let written = match SqliteStore::open(&db, POLL).await {
        Ok(store) => store.ca_get().await.unwrap().is_some(),
        Err(_) => false,
    };
    (out.status.success(), text, written)
}

#[tokio::test]
async fn the_binary_refuses_bad_ca_inputs_at_startup_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad_cert = dir.path().join("bad.pem");
    std::fs::write(
        &bad_cert,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let key = dir.path().join("ca.key");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "c2hvcnQ=").unwrap();
    let (c, k, s) = (
        bad_cert.to_str().unwrap(),
        key.to_str().unwrap(),
        short.to_str().unwrap(),
    );
    let cases: [(&[&str], &str); 5] = [
        (
            &["--ca", "files", "--ca-cert-file", c, "--ca-key-file", k],
            "is not a PEM certificate",
        ),
        (
            &["--ca", "builtin", "--ca-key-encryption-key-file", s],
            "decodes to 5 bytes, not 32",
        ),
        (
            &["--ca", "files", "--ca-cert-file", c],
            "needs both --ca-cert-file and --ca-key-file",
        ),
        (
            &["--ca", "builtin", "--trust-domain", "Not A Domain"],
            "is not a trust domain",
        ),
        (
            &["--mtls-default", "strict"],
            "--mtls-default strict needs the mesh CA",
        ),
    ];
    for (args, says) in cases {
        let (ok, text, written) = start_binary(args).await;
        assert!(!ok, "{args:?} must stop startup: {text}");
        assert!(
            text.contains(says),
            "{args:?}: the error says '{says}': {text}"
        );
        assert!(
            !text.contains("PRIVATE KEY"),
            "no key material in the output: {text}"
        );
        assert!(!written, "{args:?}: nothing written");
    }
}
