//! Circuit breakers as Envoy applies them: a request without a free connection waits as
//! pending within `max_pending_requests`, `max_requests` is checked when a connection takes a
//! request, `max_connections` bounds the pool (and the TCP proxy), `max_retries` the retries.

use tokio::task::JoinHandle;

use super::*;
use crate::upstream::Error;

type Sent = JoinHandle<Result<(u16, String), Error>>;

/// Sends one GET to `host` in its own task.
fn spawn_send(c: &Arc<Cluster>, host: &Arc<Host>) -> Sent {
    let (c, h) = (c.clone(), host.clone());
    tokio::spawn(async move { send(&c, &h).await })
}

/// Envoy's observed behaviour (integration `circuit_breaking`): with every limit at 1 and one
/// request held at the upstream, of five more one waits for the connection and four are
/// refused at once; the waiting one is sent once the connection is free and answers 200.
#[tokio::test]
async fn all_limits_one_queues_one_and_refuses_the_rest() {
    let hold = Arc::new(Semaphore::new(0));
    let up = Upstream::holding("slow", hold.clone()).await;
    let mut config = one_host(up.address);
    config.circuit_breakers = CircuitBreakers {
        max_connections: 1,
        max_pending_requests: 1,
        max_requests: 1,
        max_retries: 0,
    };
    let c = cluster(config);
    let host = host_at(&c, up.address);
    let held = spawn_send(&c, &host);
    eventually(Duration::from_secs(5), || up.requests() == 1).await;
    let more: Vec<Sent> = (0..5).map(|_| spawn_send(&c, &host)).collect();
    let s = c.stats();
    eventually(Duration::from_secs(5), || {
        more.iter().filter(|t| t.is_finished()).count() == 4
            && s.upstream_rq_pending_active.get() == 1
    })
    .await;
    assert_eq!(s.circuit_breakers_rq_pending_open.get(), 1);
    assert_eq!(up.requests(), 1, "the waiting request has not been sent");
    hold.add_permits(2);
    assert_eq!(held.await.unwrap().unwrap().0, 200);
    let mut outcomes = Vec::new();
    for task in more {
        outcomes.push(match task.await.unwrap() {
            Ok((status, _)) => status.to_string(),
            Err(e) => format!("{e:?}"),
        });
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            "200",
            "Overflow(\"max_pending_requests\")",
            "Overflow(\"max_pending_requests\")",
            "Overflow(\"max_pending_requests\")",
            "Overflow(\"max_pending_requests\")",
        ]
    );
    assert_eq!(s.upstream_rq_pending_overflow.get(), 4);
    assert_eq!(
        s.upstream_rq_pending_total.get(),
        2,
        "the held one while its connection opened, and the queued one"
    );
    assert_eq!(s.upstream_rq_pending_active.get(), 0);
    assert_eq!(s.circuit_breakers_rq_pending_open.get(), 0);
    assert_eq!(s.upstream_rq_total.get(), 2);
    assert_eq!(up.connections.load(Ordering::Relaxed), 1);
}

/// A connection coming back frees its request's slot before a waiter takes the connection, so
/// with `max_requests` equal to `max_connections` every queued request is served in turn.
#[tokio::test]
async fn queued_requests_are_served_in_turn_under_max_requests() {
    let hold = Arc::new(Semaphore::new(0));
    let up = Upstream::holding("slow", hold.clone()).await;
    let mut config = one_host(up.address);
    config.circuit_breakers.max_connections = 1;
    config.circuit_breakers.max_requests = 1;
    let c = cluster(config);
    let host = host_at(&c, up.address);
    let first = spawn_send(&c, &host);
    eventually(Duration::from_secs(5), || up.requests() == 1).await;
    let queued: Vec<Sent> = (0..3).map(|_| spawn_send(&c, &host)).collect();
    let s = c.stats();
    eventually(Duration::from_secs(5), || {
        s.upstream_rq_pending_active.get() == 3
    })
    .await;
    for served in 1..=4 {
        eventually(Duration::from_secs(5), || up.requests() == served).await;
        assert_eq!(s.upstream_rq_active.get(), 1, "one request at a time");
        hold.add_permits(1);
    }
    assert_eq!(first.await.unwrap().unwrap().0, 200);
    for task in queued {
        assert_eq!(task.await.unwrap().unwrap().0, 200);
    }
    assert_eq!(s.upstream_rq_pending_overflow.get(), 0);
    assert_eq!(up.connections.load(Ordering::Relaxed), 1);
}

/// With connections to spare, `max_requests` still refuses a request once a connection takes
/// it (Envoy opens the connection, then fails the request with an overflow).
#[tokio::test]
async fn max_requests_refuses_beyond_the_active_limit() {
    let hold = Arc::new(Semaphore::new(0));
    let up = Upstream::holding("slow", hold.clone()).await;
    let mut config = one_host(up.address);
    config.circuit_breakers.max_requests = 1;
    let c = cluster(config);
    let host = host_at(&c, up.address);
    let first = spawn_send(&c, &host);
    eventually(Duration::from_secs(5), || up.requests() == 1).await;
    assert!(matches!(
        send(&c, &host).await,
        Err(Error::Overflow("max_requests"))
    ));
    let s = c.stats();
    assert_eq!(s.upstream_rq_pending_overflow.get(), 1);
    assert_eq!(s.circuit_breakers_rq_open.get(), 1);
    assert_eq!(
        s.upstream_rq_total.get(),
        1,
        "the refused one never went out"
    );
    hold.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap().0, 200);
    eventually(Duration::from_secs(5), || {
        s.circuit_breakers_rq_open.get() == 0
    })
    .await;
}

/// HTTP/2 multiplexes: a request finds the shared connection at once, so past `max_requests`
/// it is refused without waiting.
#[tokio::test]
async fn http2_max_requests_refuses_without_queueing() {
    let hold = Arc::new(Semaphore::new(0));
    let up = Upstream::holding("slow", hold.clone()).await;
    let mut config = one_host(up.address);
    config.protocol = UpstreamProtocol::Http2;
    config.circuit_breakers.max_requests = 1;
    let c = cluster(config);
    let host = host_at(&c, up.address);
    let first = spawn_send(&c, &host);
    eventually(Duration::from_secs(5), || up.requests() == 1).await;
    assert!(matches!(
        send(&c, &host).await,
        Err(Error::Overflow("max_requests"))
    ));
    let s = c.stats();
    assert_eq!(
        (
            s.upstream_rq_pending_total.get(),
            s.upstream_rq_pending_overflow.get()
        ),
        (1, 1),
        "only the first waited, for the connection to open"
    );
    hold.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap().0, 200);
}

/// `max_connections` reached: the next request waits for the connection; `max_pending_requests`
/// reached: the one after is refused.
#[tokio::test]
async fn max_connections_queues_and_max_pending_refuses() {
    let hold = Arc::new(Semaphore::new(0));
    let up = Upstream::holding("slow", hold.clone()).await;
    let mut config = one_host(up.address);
    config.circuit_breakers.max_connections = 1;
    config.circuit_breakers.max_pending_requests = 1;
    let c = cluster(config);
    let host = host_at(&c, up.address);
    let spawn = || {
        let (c, h) = (c.clone(), host.clone());
        tokio::spawn(async move { send(&c, &h).await })
    };
    let first = spawn();
    eventually(Duration::from_secs(5), || up.requests() == 1).await;
    // No connection free and none may be opened: the second waits, pending.
    let second = spawn();
    let s = c.stats();
    eventually(Duration::from_secs(5), || {
        s.upstream_rq_pending_active.get() == 1
    })
    .await;
    assert!(s.upstream_cx_overflow.get() >= 1);
    // The pending queue is full.
    assert!(matches!(
        send(&c, &host).await,
        Err(Error::Overflow("max_pending_requests"))
    ));
    hold.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap().0, 200);
    assert_eq!(second.await.unwrap().unwrap().0, 200);
    assert_eq!(
        up.connections.load(Ordering::Relaxed),
        1,
        "the second reused the first's"
    );
    assert_eq!(s.upstream_rq_pending_overflow.get(), 1);
}

#[tokio::test]
async fn tcp_connections_count_against_max_connections() {
    let up = Upstream::start("tcp").await;
    let mut config = one_host(up.address);
    config.circuit_breakers.max_connections = 1;
    let c = cluster(config);
    let host = host_at(&c, up.address);
    let (_stream, guard) = c.connect(&host).await.unwrap();
    assert!(matches!(
        c.connect(&host).await,
        Err(Error::Overflow("max_connections"))
    ));
    let s = c.stats();
    assert_eq!(
        (s.upstream_cx_overflow.get(), s.upstream_cx_active.get()),
        (1, 1)
    );
    assert_eq!(s.circuit_breakers_cx_open.get(), 1);
    drop(guard);
    assert_eq!(s.upstream_cx_active.get(), 0);
    assert!(c.connect(&host).await.is_ok());
    assert_eq!(s.upstream_cx_total.get(), 2);
}

#[test]
fn max_retries_hands_out_slots_until_they_come_back() {
    let mut config = one_host(addr(1));
    config.circuit_breakers.max_retries = 1;
    let c = cluster(config);
    let retry = c.try_retry().expect("one slot");
    assert!(c.try_retry().is_none());
    assert_eq!(c.stats().upstream_rq_retry_overflow.get(), 1);
    assert_eq!(c.stats().circuit_breakers_rq_retry_open.get(), 1);
    drop(retry);
    assert!(c.try_retry().is_some());
}
