//! The TLS inspector (`envoy.filters.listener.tls_inspector`): peeks at the first bytes of a
//! connection, without consuming them, to tell a TLS ClientHello from anything else.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::config::TransportProtocol;

/// Envoy's default `listener_filters_timeout`.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// What the first bytes say: a TLS handshake record carrying a ClientHello is `Tls`;
/// anything else `RawBuffer`; `None` while too few bytes have arrived to tell.
pub fn classify(first: &[u8]) -> Option<TransportProtocol> {
    // Record: type 22 (handshake), version 3.x, 2-byte length; then handshake type 1.
    const CHECKS: [fn(u8) -> bool; 6] = [
        |b| b == 0x16,
        |b| b == 0x03,
        |b| b <= 0x04,
        |_| true,
        |_| true,
        |b| b == 0x01,
    ];
    for (i, check) in CHECKS.iter().enumerate() {
        match first.get(i) {
            None => return None,
            Some(b) if !check(*b) => return Some(TransportProtocol::RawBuffer),
            Some(_) => {}
        }
    }
    Some(TransportProtocol::Tls)
}

/// Peeks until the first bytes tell (or the peer closes: `RawBuffer`), within [`TIMEOUT`];
/// `None` when the peer sent nothing in time (Envoy then closes the connection).
pub async fn inspect(tcp: &TcpStream) -> Option<TransportProtocol> {
    let peek = async {
        let mut buf = [0u8; 6];
        loop {
            let n = match tcp.peek(&mut buf).await {
                Ok(0) | Err(_) => return TransportProtocol::RawBuffer,
                Ok(n) => n,
            };
            if let Some(seen) = classify(&buf[..n]) {
                return seen;
            }
            // Fewer bytes than a record header: wait for more without spinning.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(TIMEOUT, peek).await.ok()
}
