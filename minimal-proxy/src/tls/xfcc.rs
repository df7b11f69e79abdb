//! The `x-forwarded-client-cert` value Envoy sets for SANITIZE_SET: `By` (this proxy's URI
//! SAN), `Hash` (SHA-256 of the client certificate, always) and, when asked, `URI` (the
//! client's URI SAN), separated by `;`, in Envoy's order.

use super::PeerCert;

/// The header's value for one mTLS connection.
pub fn value(local_uri: Option<&str>, peer: &PeerCert, uri: bool) -> String {
    let mut parts = Vec::with_capacity(3);
    if let Some(by) = local_uri {
        parts.push(format!("By={}", quote(by)));
    }
    parts.push(format!("Hash={}", peer.hash));
    if uri && let Some(first) = peer.uri_sans.first() {
        parts.push(format!("URI={}", quote(first)));
    }
    parts.join(";")
}

/// Envoy quotes a value holding a separator (`,` `;` `=`), escaping `"`.
fn quote(v: &str) -> String {
    if v.contains([',', ';', '=', '"']) {
        format!("\"{}\"", v.replace('"', "\\\""))
    } else {
        v.to_string()
    }
}
