//! What a tapped proxy presents on its access-log stream when the xDS port requires proxy
//! tokens: the access-log config pushed to it carries no proxy token (the server keeps only
//! their hashes), so it carries this instead, an HMAC of the proxy's node id and cluster under
//! a key this process makes at start. It is good only for sending access logs as that node, to
//! this process (taps are per replica: a proxy's access logs go where its xDS comes from).

use std::{fmt, sync::Arc};

use base64::Engine;
use ring::{hmac, rand::SystemRandom};

/// Every credential starts with this, which is how the access-log service tells one from a
/// proxy token.
pub const PREFIX: &str = "xdstap_";

/// The key credentials are made and checked with. Prints without the key.
#[derive(Clone)]
pub struct TapKey(Arc<hmac::Key>);

impl TapKey {
    /// A fresh random key.
    ///
    /// # Panics
    /// When the OS random source fails (nothing else can be trusted then).
    pub fn generate() -> TapKey {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .expect("the OS random source");
        TapKey(Arc::new(key))
    }

    /// The credential of the node `node_id` in `cluster`.
    pub fn credential(&self, node_id: &str, cluster: &str) -> Credential {
        let tag = hmac::sign(&self.0, &message(node_id, cluster));
        Credential(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
        ))
    }

    /// Whether `credential` is this key's for `node_id` in `cluster` (constant time).
    pub fn verify(&self, credential: &str, node_id: &str, cluster: &str) -> bool {
        let Some(tag) = credential.strip_prefix(PREFIX).and_then(|t| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
        }) else {
            return false;
        };
        hmac::verify(&self.0, &message(node_id, cluster), &tag).is_ok()
    }
}

impl PartialEq for TapKey {
    /// The same key (one per process).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TapKey {}

impl fmt::Debug for TapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TapKey([redacted])")
    }
}

/// One node's credential, as pushed in its access-log config. Prints redacted.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Credential(String);

impl Credential {
    /// What a stream presented, to be verified.
    pub fn from_presented(text: String) -> Credential {
        Credential(text)
    }

    /// The text to send (`authorization: Bearer <this>`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential([redacted])")
    }
}

/// A bearer on the access-log service that looked like a credential (checked against the
/// stream's node once its first message names it).
#[derive(Debug, Clone)]
pub struct Presented(pub Credential);

fn message(node_id: &str, cluster: &str) -> Vec<u8> {
    // A separator no node id or cluster can hold unnoticed: lengths first.
    format!("tap\n{}\n{node_id}\n{cluster}", node_id.len()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_holds_only_for_its_node_and_key() {
        let key = TapKey::generate();
        let c = key.credential("web-1", "web");
        assert!(c.expose().starts_with(PREFIX));
        assert!(key.verify(c.expose(), "web-1", "web"));
        assert!(!key.verify(c.expose(), "web-2", "web"));
        assert!(!key.verify(c.expose(), "web-1", "api"));
        assert!(!TapKey::generate().verify(c.expose(), "web-1", "web"));
        assert!(!key.verify("xdstap_not-base64!", "web-1", "web"));
        assert!(!key.verify("xdst_other", "web-1", "web"));
        // Moving the boundary between id and cluster changes the credential.
        assert!(!key.verify(key.credential("a\nb", "c").expose(), "a", "b\nc"));
        assert!(!format!("{c:?}{key:?}").contains(c.expose()));
    }
}
