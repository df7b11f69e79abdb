//! Active health checks and outlier detection against real upstreams.

use super::*;
use crate::{
    config::{HealthCheck, HealthCheckKind, OutlierDetection},
    upstream::Error,
};

fn http_check(interval_ms: u64) -> HealthCheck {
    HealthCheck {
        timeout: Duration::from_secs(1),
        interval: Duration::from_millis(interval_ms),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        no_traffic_interval: Duration::from_secs(60),
        kind: HealthCheckKind::Http {
            path: "/healthz".into(),
            host: String::new(),
            http2: false,
        },
    }
}

/// A cluster whose stats say it has carried traffic, so checks run every `interval` rather
/// than Envoy's 60 s no-traffic interval.
fn busy_cluster(config: ClusterConfig) -> Arc<Cluster> {
    let stats = Arc::new(ClusterStats::default());
    stats.upstream_cx_total.inc();
    Cluster::new(Arc::new(config), stats)
}

fn failed_hc(c: &Cluster, address: SocketAddr) -> bool {
    c.host_statuses()
        .iter()
        .any(|s| s.address == address && s.failed_active_health_check)
}

#[tokio::test]
async fn active_checks_take_a_host_out_and_back() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let mut config = config(
        LbPolicy::RoundRobin,
        assignment(vec![endpoint(a.address, 1), endpoint(b.address, 1)]),
    );
    config.health_checks = vec![http_check(30)];
    let c = busy_cluster(config);
    tokio::time::timeout(Duration::from_secs(5), c.ready())
        .await
        .unwrap();
    assert!(!failed_hc(&c, a.address) && !failed_hc(&c, b.address));
    assert_eq!(
        *b.last_authority.lock().unwrap(),
        "web",
        "Host is the cluster's name"
    );

    // A non-200 answer fails the host at once.
    b.set_status(503);
    eventually(Duration::from_secs(5), || failed_hc(&c, b.address)).await;
    let counts = picks(&c, &LbContext::default(), 10);
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        vec![a.address.port()]
    );
    assert_eq!(c.host_statuses()[1].health_flags(), "/failed_active_hc");

    // Two passes in a row bring it back.
    b.set_status(200);
    eventually(Duration::from_secs(5), || !failed_hc(&c, b.address)).await;
    assert_eq!(picks(&c, &LbContext::default(), 10).len(), 2);
    let stats = c.stats();
    assert!(stats.health_check_failure.get() >= 1);
    assert!(stats.health_check_success.get() >= 4);
    assert_eq!(stats.health_check_healthy.get(), 2);
}

#[tokio::test]
async fn network_failures_fail_a_host_only_after_the_threshold() {
    let a = Upstream::start("a").await;
    let mut config = config(
        LbPolicy::RoundRobin,
        assignment(vec![endpoint(a.address, 1)]),
    );
    let mut check = http_check(30);
    check.unhealthy_threshold = 3;
    config.health_checks = vec![check];
    let c = busy_cluster(config);
    tokio::time::timeout(Duration::from_secs(5), c.ready())
        .await
        .unwrap();
    let attempts = c.stats().health_check_attempt.get();
    drop(a); // Nothing listens any more: connections are refused.
    let failures = || c.stats().health_check_network_failure.get();
    eventually(Duration::from_secs(5), || failures() >= 1).await;
    // The flag is set after the failure is counted: read it first.
    let failed = failed_hc(&c, c.host_statuses()[0].address);
    if failures() < 3 {
        assert!(!failed, "fewer than 3 network failures are tolerated");
    }
    eventually(Duration::from_secs(5), || {
        failed_hc(&c, c.host_statuses()[0].address)
    })
    .await;
    assert!(c.stats().health_check_attempt.get() > attempts);
}

#[tokio::test]
async fn a_new_host_waits_for_its_first_check() {
    let a = Upstream::start("a").await;
    let mut config = config(LbPolicy::RoundRobin, assignment(vec![]));
    config.discovery = Discovery::Eds {
        service_name: "web".into(),
    };
    config.health_checks = vec![HealthCheck {
        kind: HealthCheckKind::Tcp,
        ..http_check(30)
    }];
    let c = busy_cluster(config);
    let ready = tokio::time::timeout(Duration::from_millis(50), c.ready()).await;
    assert!(ready.is_err(), "not ready before an assignment");
    c.set_assignment(&assignment(vec![endpoint(a.address, 1)]));
    tokio::time::timeout(Duration::from_secs(5), c.ready())
        .await
        .unwrap();
    assert!(!failed_hc(&c, a.address));
}

fn outlier_cluster(hosts: &[SocketAddr], max_ejection_percent: u32) -> Arc<Cluster> {
    let mut config = config(
        LbPolicy::RoundRobin,
        assignment(hosts.iter().map(|a| endpoint(*a, 1)).collect()),
    );
    config.outlier_detection = Some(OutlierDetection {
        consecutive_5xx: 3,
        interval: Duration::from_millis(20),
        base_ejection_time: Duration::from_millis(200),
        max_ejection_percent,
    });
    cluster(config)
}

fn ejected(c: &Cluster, address: SocketAddr) -> bool {
    c.host_statuses()
        .iter()
        .any(|s| s.address == address && s.outlier_ejected)
}

#[tokio::test]
async fn consecutive_5xx_eject_a_host_until_its_time_is_served() {
    let (good, bad) = (Upstream::start("good").await, Upstream::start("bad").await);
    bad.set_status(503);
    let c = outlier_cluster(&[good.address, bad.address], 100);
    let host = host_at(&c, bad.address);
    for _ in 0..2 {
        assert_eq!(send(&c, &host).await.unwrap().0, 503);
    }
    assert!(!ejected(&c, bad.address), "two 5xx are not enough");
    send(&c, &host).await.unwrap();
    assert!(ejected(&c, bad.address));
    assert_eq!(c.stats().outlier_detection_ejections_active.get(), 1);
    assert_eq!(
        c.stats().outlier_detection_ejections_enforced_total.get(),
        1
    );
    let counts = picks(&c, &LbContext::default(), 10);
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        vec![good.address.port()]
    );

    eventually(Duration::from_secs(5), || !ejected(&c, bad.address)).await;
    assert_eq!(c.stats().outlier_detection_ejections_active.get(), 0);
    assert_eq!(picks(&c, &LbContext::default(), 10).len(), 2);
}

#[tokio::test]
async fn connect_failures_count_as_5xx_and_the_percentage_caps_ejections() {
    let good = Upstream::start("good").await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    // Envoy's default 10 % of two hosts allows no ejection at all.
    let capped = outlier_cluster(&[good.address, closed], 10);
    let host = host_at(&capped, closed);
    for _ in 0..3 {
        assert!(matches!(
            send(&capped, &host).await,
            Err(Error::ConnectFailure(_))
        ));
    }
    assert!(!ejected(&capped, closed));
    assert_eq!(capped.stats().outlier_detection_ejections_overflow.get(), 1);
    assert_eq!(
        capped
            .stats()
            .outlier_detection_ejections_detected_consecutive_5xx
            .get(),
        1
    );

    let open = outlier_cluster(&[good.address, closed], 50);
    let host = host_at(&open, closed);
    for _ in 0..3 {
        let _ = send(&open, &host).await;
    }
    assert!(ejected(&open, closed));
    assert_eq!(
        open.host_statuses()[1].health_flags(),
        "/failed_outlier_check"
    );
}

#[tokio::test]
async fn a_removed_host_stays_while_it_passes_checks() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let mut config = config(
        LbPolicy::RoundRobin,
        assignment(vec![endpoint(a.address, 1), endpoint(b.address, 1)]),
    );
    config.health_checks = vec![http_check(30)];
    let c = busy_cluster(config);
    tokio::time::timeout(Duration::from_secs(5), c.ready())
        .await
        .unwrap();

    c.set_assignment(&assignment(vec![endpoint(a.address, 1)]));
    let statuses = c.host_statuses();
    assert_eq!(statuses.len(), 2, "b passes its checks: kept");
    assert_eq!(statuses[1].health_flags(), "/pending_dynamic_removal");
    assert_eq!(picks(&c, &LbContext::default(), 10).len(), 2);

    b.set_status(503);
    eventually(Duration::from_secs(5), || c.host_statuses().len() == 1).await;
    assert_eq!(c.host_statuses()[0].address, a.address);
}

#[tokio::test]
async fn dropping_the_cluster_stops_its_checks() {
    let a = Upstream::start("a").await;
    let mut config = config(
        LbPolicy::RoundRobin,
        assignment(vec![endpoint(a.address, 1)]),
    );
    config.health_checks = vec![http_check(20)];
    let c = busy_cluster(config);
    eventually(Duration::from_secs(5), || a.requests() >= 3).await;
    let weak = Arc::downgrade(&c);
    drop(c);
    assert!(weak.upgrade().is_none());
    let after_drop = a.requests();
    // Ten intervals: a running session would have checked again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        a.requests() <= after_drop + 1,
        "checks went on after the drop"
    );
}
