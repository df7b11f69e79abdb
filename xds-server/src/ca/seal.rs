//! The built-in CA's key at rest: ChaCha20-Poly1305 (ring) under a 32-byte key the operator
//! provides, so a copy of the database alone does not give away the CA.

use std::{fmt, path::Path};

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::{
    aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};

use super::Error;

/// Prefix of a sealed key as stored: the format's version, so it can change later.
const SEALED_PREFIX: &str = "chacha20poly1305:v1:";
/// Binds a sealed blob to its use: it does not open as anything else.
const AAD: &[u8] = b"xds-server mesh CA private key";

/// The key encrypting the CA key. Prints as redacted.
pub struct SealKey(LessSafeKey);

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey([redacted])")
    }
}

impl SealKey {
    /// Reads `path`: 32 random bytes in base64 (`head -c 32 /dev/urandom | base64`).
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            what: "the CA key encryption key",
            path: path.display().to_string(),
            source,
        })?;
        Self::from_base64(text.trim()).map_err(|reason| Error::BadSealKey {
            path: path.display().to_string(),
            reason,
        })
    }

    /// 32 bytes in base64; the error says what was wrong, never the key.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let how = "make one with `head -c 32 /dev/urandom | base64`";
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| format!("it is not base64; {how}"))?;
        if bytes.len() != 32 {
            return Err(format!(
                "it decodes to {} bytes, not 32; {how}",
                bytes.len()
            ));
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| how.to_string())?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// Encrypts `plain` under a fresh random nonce.
    pub fn seal(&self, plain: &str) -> Result<String, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::Issue("the system random source failed".into()))?;
        let mut data = plain.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut data,
            )
            .map_err(|_| Error::Issue("could not encrypt the CA key".into()))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&data);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(blob)))
    }

    /// Decrypts what [`SealKey::seal`] made; a wrong key or altered blob is
    /// [`Error::WrongSealKey`].
    pub fn open(&self, sealed: &str) -> Result<String, Error> {
        let blob = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(|| Error::Stored("the sealed CA key is not in a known format".into()))?;
        let (nonce, data) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::WrongSealKey)?;
        let mut data = data.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(AAD), &mut data)
            .map_err(|_| Error::WrongSealKey)?;
        String::from_utf8(plain.to_vec())
            .map_err(|_| Error::Stored("the decrypted CA key is not text".into()))
    }
}
