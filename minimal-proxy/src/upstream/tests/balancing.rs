//! Load balancing: weights, least request, random, consistent hashing, EDS health, panic and
//! locality weights, over hosts that are only picked.

use std::collections::BTreeMap;

use super::*;
use crate::{
    config::{EndpointHealth, LbPolicy, LocalityEndpoints},
    upstream::xxh64,
};

fn weighted(policy: LbPolicy, weights: &[(u16, u32)]) -> Arc<Cluster> {
    let endpoints = weights
        .iter()
        .map(|(p, w)| endpoint(addr(*p), *w))
        .collect();
    cluster(config(policy, assignment(endpoints)))
}

#[test]
fn round_robin_follows_weights_exactly_over_a_cycle() {
    let c = weighted(LbPolicy::RoundRobin, &[(1, 1), (2, 3)]);
    let counts = picks(&c, &LbContext::default(), 400);
    assert_eq!(counts, BTreeMap::from([(1, 100), (2, 300)]));

    let c = weighted(LbPolicy::RoundRobin, &[(1, 1), (2, 1), (3, 1)]);
    let counts = picks(&c, &LbContext::default(), 300);
    assert_eq!(counts, BTreeMap::from([(1, 100), (2, 100), (3, 100)]));
}

#[test]
fn random_ignores_weights_like_envoy() {
    let c = weighted(LbPolicy::Random, &[(1, 1), (2, 9)]);
    let counts = picks(&c, &LbContext::default(), 4000);
    assert!((1700..2300).contains(&counts[&1]), "{counts:?}");
}

#[tokio::test]
async fn least_request_prefers_the_idle_host() {
    let hold = Arc::new(Semaphore::new(0));
    let busy = Upstream::holding("busy", hold.clone()).await;
    let idle = Upstream::start("idle").await;
    let c = cluster(config(
        LbPolicy::LeastRequest { choice_count: 2 },
        assignment(vec![endpoint(busy.address, 1), endpoint(idle.address, 1)]),
    ));
    let busy_host = host_at(&c, busy.address);
    let in_flight = {
        let (c, h) = (c.clone(), busy_host.clone());
        tokio::spawn(async move { send(&c, &h).await })
    };
    eventually(Duration::from_secs(5), || busy.requests() == 1).await;

    let counts = picks(&c, &LbContext::default(), 400);
    // Two random choices: the busy host wins only when drawn twice (1 in 4).
    assert!(counts[&idle.address.port()] > 250, "{counts:?}");

    hold.add_permits(1);
    assert_eq!(in_flight.await.unwrap().unwrap().0, 200);
}

/// Which port each of 1000 hashes lands on.
fn hash_map(c: &Cluster) -> Vec<u16> {
    (0..1000u32)
        .map(|i| {
            let ctx = LbContext {
                hash: Some(xxh64(format!("user-{i}").as_bytes(), 0)),
                ..LbContext::default()
            };
            c.select(&ctx).unwrap().address.port()
        })
        .collect()
}

fn consistent_hashing_is_stable(policy: LbPolicy, max_moved_others: usize) {
    let ports = [1, 2, 3, 4];
    let c = weighted(policy.clone(), &ports.map(|p| (p, 1)));
    let before = hash_map(&c);
    assert_eq!(before, hash_map(&c), "same hash, same host");
    for p in ports {
        let share = before.iter().filter(|x| **x == p).count();
        assert!((150..350).contains(&share), "port {p} got {share} of 1000");
    }

    c.set_assignment(&assignment(
        ports[..3].iter().map(|p| endpoint(addr(*p), 1)).collect(),
    ));
    let after = hash_map(&c);
    let moved_others = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| **b != 4 && b != a)
        .count();
    assert!(
        moved_others <= max_moved_others,
        "{moved_others} hashes moved off hosts that stayed"
    );
    assert!(after.iter().all(|p| *p != 4));
}

#[test]
fn ring_hash_moves_mostly_the_removed_hosts_share() {
    let policy = LbPolicy::RingHash {
        min_ring_size: 1024,
        max_ring_size: 8 * 1024 * 1024,
    };
    // As in Envoy, each remaining host gets more ring points when one leaves (the ring keeps
    // at least `min_ring_size` points): keys move onto those new points, up to roughly
    // (342 - 256) / 342 of each remaining host's share here.
    consistent_hashing_is_stable(policy, 150);
}

#[test]
fn maglev_moves_little_beyond_the_removed_hosts_share() {
    // Maglev trades perfect stability for balance: a few per cent may move.
    consistent_hashing_is_stable(LbPolicy::Maglev { table_size: 65537 }, 30);
}

fn with_health(health: &[(u16, EndpointHealth)]) -> Arc<Cluster> {
    let endpoints = health
        .iter()
        .map(|(p, h)| Endpoint {
            health: *h,
            ..endpoint(addr(*p), 1)
        })
        .collect();
    cluster(config(LbPolicy::RoundRobin, assignment(endpoints)))
}

#[test]
fn only_healthy_hosts_get_traffic_when_enough_are_healthy() {
    use EndpointHealth::*;
    let c = with_health(&[(1, Healthy), (2, Healthy), (3, Unhealthy), (4, Draining)]);
    let counts = picks(&c, &LbContext::default(), 100);
    assert_eq!(counts, BTreeMap::from([(1, 50), (2, 50)]));
    assert_eq!(c.stats().membership_healthy.get(), 2);
    assert_eq!(c.stats().membership_excluded.get(), 1);
    assert_eq!(c.stats().lb_healthy_panic.get(), 0);
}

#[test]
fn degraded_hosts_take_what_healthy_ones_cannot() {
    use EndpointHealth::*;
    // Nothing healthy: all to the degraded host.
    let c = with_health(&[(1, Degraded), (2, Unhealthy)]);
    assert_eq!(
        picks(&c, &LbContext::default(), 50),
        BTreeMap::from([(1, 50)])
    );
    // One of two healthy: 140 % × 1/2 = 70 % to it, 30 % to the degraded one.
    let c = with_health(&[(1, Healthy), (2, Degraded)]);
    let counts = picks(&c, &LbContext::default(), 2000);
    assert!((1250..1550).contains(&counts[&1]), "{counts:?}");
}

#[test]
fn too_few_healthy_hosts_put_the_cluster_in_panic() {
    use EndpointHealth::*;
    let c = with_health(&[(1, Healthy), (2, Unhealthy), (3, Unhealthy)]);
    let counts = picks(&c, &LbContext::default(), 300);
    assert_eq!(counts, BTreeMap::from([(1, 100), (2, 100), (3, 100)]));
    assert_eq!(c.stats().lb_healthy_panic.get(), 300);

    let c = cluster(config(LbPolicy::RoundRobin, assignment(vec![])));
    assert!(matches!(
        c.select(&LbContext::default()),
        Err(crate::upstream::Error::NoHealthyUpstream)
    ));
    assert_eq!(c.stats().upstream_cx_none_healthy.get(), 1);
}

#[test]
fn locality_weights_split_traffic_between_localities_when_the_cluster_asks() {
    let locality = |zone: &str, weight, ports: &[u16]| LocalityEndpoints {
        zone: zone.into(),
        weight: Some(weight),
        endpoints: ports.iter().map(|p| endpoint(addr(*p), 1)).collect(),
    };
    let assignment = LoadAssignment {
        cluster_name: "web".into(),
        localities: vec![locality("a", 1, &[1]), locality("b", 3, &[2, 3])],
    };
    let mut weighted = config(LbPolicy::RoundRobin, assignment.clone());
    weighted.locality_weighted = true;
    let counts = picks(&cluster(weighted), &LbContext::default(), 800);
    assert_eq!(counts, BTreeMap::from([(1, 200), (2, 300), (3, 300)]));
    // Without locality-weighted balancing Envoy ignores locality weights: hosts weigh alone.
    let plain = cluster(config(LbPolicy::RoundRobin, assignment));
    let counts = picks(&plain, &LbContext::default(), 900);
    assert_eq!(counts, BTreeMap::from([(1, 300), (2, 300), (3, 300)]));
}

/// With locality-weighted balancing, a locality without a weight takes no load (Envoy's
/// `LocalityLbEndpoints.load_balancing_weight`), unless no locality has one.
#[test]
fn a_locality_without_a_weight_takes_no_load() {
    let locality = |zone: &str, weight, port| LocalityEndpoints {
        zone: zone.into(),
        weight,
        endpoints: vec![endpoint(addr(port), 1)],
    };
    let assignment = |a, b| LoadAssignment {
        cluster_name: "web".into(),
        localities: vec![locality("a", a, 1), locality("b", b, 2)],
    };
    let weighted = |assignment| {
        let mut config = config(LbPolicy::RoundRobin, assignment);
        config.locality_weighted = true;
        cluster(config)
    };
    let counts = picks(
        &weighted(assignment(Some(2), None)),
        &LbContext::default(),
        100,
    );
    assert_eq!(counts, BTreeMap::from([(1, 100)]));
    let counts = picks(
        &weighted(assignment(None, None)),
        &LbContext::default(),
        100,
    );
    assert_eq!(counts, BTreeMap::from([(1, 50), (2, 50)]));
}

#[test]
fn a_previous_host_gets_one_more_draw() {
    let c = weighted(LbPolicy::Random, &[(1, 1), (2, 1)]);
    let ctx = LbContext {
        previous: vec![addr(1)],
        ..LbContext::default()
    };
    // Drawn twice in a row 1 time in 4, instead of 1 in 2.
    let counts = picks(&c, &ctx, 800);
    assert!(counts[&1] < 280, "{counts:?}");
}

#[test]
fn hosts_that_stay_keep_their_state_across_assignments() {
    let c = weighted(LbPolicy::RoundRobin, &[(1, 1)]);
    let host = c.select(&LbContext::default()).unwrap();
    host.state.stats.rq_total.add(7);
    c.set_assignment(&assignment(vec![
        endpoint(addr(1), 5),
        endpoint(addr(2), 1),
    ]));
    let statuses = c.host_statuses();
    assert_eq!(statuses.len(), 2);
    let kept = statuses.iter().find(|s| s.address == addr(1)).unwrap();
    assert_eq!((kept.rq_total, kept.weight), (7, 5));
    assert_eq!(c.stats().membership_change.get(), 2);
}
