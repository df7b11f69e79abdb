//! TLS on accepted xDS connections: each handshake runs in its own task (a slow or silent
//! client holds up no one), bounded by [`HANDSHAKE_TIMEOUT`]; a refused handshake is counted
//! by reason and logged with the peer's address, never with key material.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once; further connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// Why a handshake was refused: the `reason` label of `xds_tls_handshake_failures_total`.
pub const REASONS: [&str; 5] = [
    "not_tls",
    "rejected_by_client",
    "client_certificate",
    "timeout",
    "other",
];

static FAILURES: [AtomicU64; REASONS.len()] = [const { AtomicU64::new(0) }; REASONS.len()];

/// Refused handshakes so far, by reason (in the order of [`REASONS`]).
pub fn handshake_failures() -> [(&'static str, u64); REASONS.len()] {
    std::array::from_fn(|i| (REASONS[i], FAILURES[i].load(Ordering::Relaxed)))
}

fn count(reason: &'static str) {
    if let Some(i) = REASONS.iter().position(|r| *r == reason) {
        FAILURES[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// An accepted connection: plaintext, or TLS after its handshake.
#[derive(Debug)]
pub enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => s.get_ref().0,
        }
    }
}

impl Connected for Io {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp().connect_info()
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Io::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Io::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Accepts on `listener` and hands out connections whose TLS handshake succeeded. Ends when
/// the receiving side (the gRPC server) is gone.
pub fn incoming(listener: TcpListener, acceptor: TlsAcceptor) -> ReceiverStream<io::Result<Io>> {
    let (tx, rx) = mpsc::channel(16);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "xDS port: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let reason =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(Io::Tls(Box::new(tls)))).await;
                            return;
                        }
                        Ok(Err(e)) => classify(&e),
                        Err(_) => "timeout",
                    };
                count(reason);
                tracing::info!(%peer, reason, "xDS port: TLS handshake refused (a plaintext client, or one that does not trust this server's certificate?)");
            });
        }
    });
    ReceiverStream::new(rx)
}

/// The reason label of a failed handshake.
fn classify(e: &io::Error) -> &'static str {
    let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return "other";
    };
    match tls {
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => "not_tls",
        rustls::Error::AlertReceived(_) => "rejected_by_client",
        rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_) => {
            "client_certificate"
        }
        _ => "other",
    }
}
