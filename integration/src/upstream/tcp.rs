//! A TCP echo upstream: greets every connection with `<name>\n`, then sends back every byte it
//! receives until the client closes; counts connections.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    task::JoinHandle,
};

/// A running TCP echo; it stops accepting when dropped.
pub struct TcpUpstream {
    name: String,
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl TcpUpstream {
    /// Binds 127.0.0.1 on an ephemeral port and serves on the current tokio runtime.
    pub fn start(name: &str) -> TcpUpstream {
        let listener = super::bind_local();
        let addr = listener.local_addr().expect("TCP upstream address");
        let connections = Arc::new(AtomicU64::new(0));
        let greeting = format!("{name}\n");
        let accept = tokio::spawn({
            let connections = connections.clone();
            async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    let greeting = greeting.clone();
                    tokio::spawn(async move {
                        if stream.write_all(greeting.as_bytes()).await.is_err() {
                            return;
                        }
                        let (mut read, mut write) = stream.split();
                        let _ = tokio::io::copy(&mut read, &mut write).await;
                    });
                }
            }
        });
        TcpUpstream {
            name: name.to_string(),
            addr,
            connections,
            accept,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TcpUpstream {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One TCP conversation through `127.0.0.1:port`: reads the greeting line, sends `payload`,
/// closes its sending side (a half-close) and reads until the other side closes too. Returns
/// (greeting, every byte that came back after the greeting). `Err` says what went wrong; the
/// whole conversation is bounded by `timeout`.
pub async fn converse(
    port: u16,
    payload: &[u8],
    timeout: Duration,
) -> Result<(String, Vec<u8>), String> {
    let talk = async {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect to 127.0.0.1:{port}: {e}"))?;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let mut greeting = String::new();
        read.read_line(&mut greeting)
            .await
            .map_err(|e| format!("read the greeting: {e}"))?;
        if greeting.is_empty() {
            return Err("the connection closed before any greeting".to_string());
        }
        let send = async {
            write.write_all(payload).await?;
            write.shutdown().await
        };
        let mut echoed = Vec::with_capacity(payload.len());
        let (sent, received) = tokio::join!(send, read.read_to_end(&mut echoed));
        sent.map_err(|e| format!("send {} bytes and half-close: {e}", payload.len()))?;
        received.map_err(|e| format!("read back until the close: {e}"))?;
        Ok((greeting.trim_end().to_string(), echoed))
    };
    tokio::time::timeout(timeout, talk)
        .await
        .map_err(|_| format!("the conversation did not end within {timeout:?}"))?
}
