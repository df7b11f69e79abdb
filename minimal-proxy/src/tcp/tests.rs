//! The TCP proxy against real echo servers on 127.0.0.1.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{
    config::{ListenerConfig, ListenerFilter, TcpProxy, UpstreamProtocol},
    http::tests::support::{Task, cluster, eventually, runtime},
    listener::Manager,
    runtime::Runtime,
    upstream::Cluster,
};

/// A TCP server echoing every byte back.
async fn echo_server() -> (SocketAddr, Task) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (address, Task(task))
}

fn tcp_listener(idle_timeout: Option<Duration>) -> ListenerConfig {
    ListenerConfig::single(
        "tcp",
        "127.0.0.1:0".parse().unwrap(),
        ListenerFilter::Tcp(TcpProxy {
            stat_prefix: "db".into(),
            cluster: "echo".into(),
            idle_timeout,
            access_log: Vec::new(),
            rbac: Vec::new(),
        }),
    )
}

async fn proxy(
    clusters: Vec<Arc<Cluster>>,
    idle_timeout: Option<Duration>,
    drain_time: Duration,
) -> (Runtime, Manager, SocketAddr) {
    let runtime = runtime(clusters, vec![]);
    let manager = Manager::new(runtime.clone(), drain_time);
    assert!(
        manager
            .apply(vec![tcp_listener(idle_timeout)])
            .await
            .is_empty()
    );
    let address = manager.local_addr("tcp").await.unwrap();
    (runtime, manager, address)
}

/// Reads until the peer closes (or fails); what was read.
async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    out
}

#[tokio::test]
async fn bytes_go_both_ways_and_are_counted() {
    let (echo, _task) = echo_server().await;
    let upstream = cluster("echo", &[echo], UpstreamProtocol::Http1);
    let (runtime, _manager, address) = proxy(vec![upstream], None, Duration::from_secs(1)).await;
    let mut client = TcpStream::connect(address).await.unwrap();
    client.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 5];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hello");
    client.shutdown().await.unwrap();
    assert!(read_to_end(&mut client).await.is_empty());
    let stats = runtime.stats.tcp("db");
    assert_eq!(stats.downstream_cx_total.get(), 1);
    eventually(Duration::from_secs(5), || {
        stats.downstream_cx_rx_bytes_total.get() == 5
            && stats.downstream_cx_tx_bytes_total.get() == 5
    })
    .await;
}

#[tokio::test]
async fn without_a_cluster_or_a_host_the_connection_is_closed() {
    let (_runtime, _manager, address) = proxy(vec![], None, Duration::from_secs(1)).await;
    let mut client = TcpStream::connect(address).await.unwrap();
    assert!(read_to_end(&mut client).await.is_empty());

    let empty = cluster("echo", &[], UpstreamProtocol::Http1);
    let (_runtime, _manager, address) = proxy(vec![empty], None, Duration::from_secs(1)).await;
    let mut client = TcpStream::connect(address).await.unwrap();
    assert!(read_to_end(&mut client).await.is_empty());
}

#[tokio::test]
async fn an_idle_connection_is_closed_at_the_idle_timeout() {
    let (echo, _task) = echo_server().await;
    let upstream = cluster("echo", &[echo], UpstreamProtocol::Http1);
    let idle = Duration::from_millis(200);
    let (runtime, _manager, address) =
        proxy(vec![upstream], Some(idle), Duration::from_secs(1)).await;
    let mut client = TcpStream::connect(address).await.unwrap();
    client.write_all(b"x").await.unwrap();
    let mut back = [0u8; 1];
    client.read_exact(&mut back).await.unwrap();
    let since = tokio::time::Instant::now();
    assert!(read_to_end(&mut client).await.is_empty());
    assert!(
        since.elapsed() >= idle - Duration::from_millis(20),
        "{:?}",
        since.elapsed()
    );
    assert_eq!(runtime.stats.tcp("db").idle_timeout.get(), 1);
}

#[tokio::test]
async fn a_drained_tcp_connection_lives_until_the_drain_time_ends() {
    let (echo, _task) = echo_server().await;
    let upstream = cluster("echo", &[echo], UpstreamProtocol::Http1);
    let drain_time = Duration::from_millis(300);
    let (_runtime, manager, address) = proxy(vec![upstream], None, drain_time).await;
    let mut client = TcpStream::connect(address).await.unwrap();
    client.write_all(b"a").await.unwrap();
    let mut back = [0u8; 1];
    client.read_exact(&mut back).await.unwrap();

    let removed = tokio::time::Instant::now();
    assert!(manager.apply(vec![]).await.is_empty());
    // Still proxying while the listener drains.
    client.write_all(b"b").await.unwrap();
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"b");
    // Cut at the end of the drain time.
    assert!(read_to_end(&mut client).await.is_empty());
    assert!(removed.elapsed() >= drain_time - Duration::from_millis(20));
}

#[tokio::test]
async fn each_connection_leaves_an_access_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tcp.log");
    let (echo, _task) = echo_server().await;
    let upstream = cluster("echo", &[echo], UpstreamProtocol::Http1);
    let runtime = runtime(vec![upstream], vec![]);
    let manager = Manager::new(runtime.clone(), Duration::from_secs(1));
    let mut listener = tcp_listener(None);
    if let ListenerFilter::Tcp(tcp) = &mut listener.chains[0].filter {
        tcp.access_log = vec![crate::config::AccessLog {
            path: path.to_string_lossy().into_owned(),
            json_format: Some(
                [
                    ("rx", "%BYTES_RECEIVED%"),
                    ("tx", "%BYTES_SENT%"),
                    ("host", "%UPSTREAM_HOST%"),
                    ("cluster", "%UPSTREAM_CLUSTER%"),
                    ("flags", "%RESPONSE_FLAGS%"),
                    ("code", "%RESPONSE_CODE%"),
                    ("proto", "%PROTOCOL%"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
        }];
    }
    assert!(manager.apply(vec![listener]).await.is_empty());
    let address = manager.local_addr("tcp").await.unwrap();
    let mut client = TcpStream::connect(address).await.unwrap();
    client.write_all(b"ping!").await.unwrap();
    let mut back = [0u8; 5];
    client.read_exact(&mut back).await.unwrap();
    client.shutdown().await.unwrap();
    assert!(read_to_end(&mut client).await.is_empty());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let line = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            break serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "no access log line");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(line["rx"], 5);
    assert_eq!(line["tx"], 5);
    assert_eq!(line["host"], echo.to_string());
    assert_eq!(line["cluster"], "echo");
    assert_eq!(line["flags"], "-");
    assert_eq!(line["code"], 0);
    assert!(line["proto"].is_null());
}
