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
