//! Minting and hashing proxy-token secrets (pure, no I/O but the OS random source).

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every secret starts with this, so a leaked one is recognisable (secret scanners, logs).
pub const PREFIX: &str = "xdst_";

/// A freshly minted token: the secret (shown once), its id and its hash.
pub struct Minted {
    pub id: String,
    pub secret: String,
    pub secret_sha256: String,
}

/// 32 random bytes for the secret (256 bits: not guessable, so a fast hash is enough), 8 for
/// the id (only unique, not secret).
pub fn mint() -> Minted {
    let mut rng = rand::rng();
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let mut id = [0u8; 8];
    rng.fill_bytes(&mut id);
    let secret = format!("{PREFIX}{}", hex(&secret));
    Minted {
        id: format!("pt-{}", hex(&id)),
        secret_sha256: hash(secret.as_bytes()),
        secret,
    }
}

/// Lowercase hex SHA-256: what the store keeps and what the in-memory index is keyed by.
pub fn hash(secret: &[u8]) -> String {
    hex(&Sha256::digest(secret))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_secrets_are_fresh_and_hashed() {
        let a = mint();
        let b = mint();
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.id, b.id);
        assert!(a.secret.starts_with(PREFIX) && a.secret.len() == PREFIX.len() + 64);
        assert!(a.id.starts_with("pt-") && a.id.len() == 19);
        assert_eq!(a.secret_sha256, hash(a.secret.as_bytes()));
        assert_eq!(
            hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
