//! The aggregator as a state machine: reports in (per proxy, per second), figures out.

use serde_json::json;

use super::{
    aggregator::{Aggregator, Reading, Report},
    histogram::BOUNDS,
    index::{Index, Subject},
    view::Window,
};
use crate::model::Mesh;

/// Services `web` and `api`; route `main` sends to `web`, route `split` to both.
fn mesh() -> Mesh {
    let service = || serde_json::from_value(json!({ "protocol": "http" })).unwrap();
    let route = |to: &[&str]| {
        let destinations: Vec<_> = to.iter().map(|s| json!({ "service": s })).collect();
        serde_json::from_value(
            json!({ "hosts": ["*"], "rules": [{ "destinations": destinations }] }),
        )
        .unwrap()
    };
    Mesh {
        revision: 1,
        services: [("web".into(), service()), ("api".into(), service())].into(),
        routes: [
            ("main".into(), route(&["web"])),
            ("split".into(), route(&["web", "api"])),
        ]
        .into(),
        ..Mesh::default()
    }
}

/// One flush's stats: `(name, counter value, or histogram buckets)`.
type Flush = Vec<(String, Option<f64>, Vec<(f64, u64)>)>;

/// Envoy's cumulative buckets for `n` samples each at most `bound` ms.
fn latency(bound: f64, n: u64) -> Vec<(f64, u64)> {
    BOUNDS
        .iter()
        .map(|b| (*b, if *b >= bound { n } else { 0 }))
        .collect()
}

/// One flush: `requests` completed on `prefix` (`cluster.web`, `vhost.main.route.main`),
/// `errors` of them 5xx, all within `bound` ms.
fn flush(prefix: &str, requests: u64, errors: u64, bound: f64) -> Flush {
    vec![
        (
            format!("{prefix}.upstream_rq_completed"),
            Some(requests as f64),
            vec![],
        ),
        (
            format!("{prefix}.upstream_rq_5xx"),
            Some(errors as f64),
            vec![],
        ),
        (
            format!("{prefix}.upstream_rq_200"),
            Some((requests - errors) as f64),
            vec![],
        ),
        (
            format!("{prefix}.upstream_rq_time"),
            None,
            latency(bound, requests),
        ),
    ]
}

fn readings(flushes: &[Flush]) -> Vec<Reading<'_>> {
    flushes
        .iter()
        .flatten()
        .map(|(name, counter, buckets)| match counter {
            Some(value) => Reading::Counter {
                name,
                value: *value,
            },
            None => Reading::Histogram {
                name,
                buckets: buckets.clone(),
                total: buckets.last().map_or(0, |b| b.1),
            },
        })
        .collect()
}

fn send(agg: &mut Aggregator, index: &Index, node: &str, now: u64, flushes: &[Flush]) {
    let report = Report::read(index, readings(flushes));
    agg.record(node, &report, index, now);
}

#[test]
fn a_report_keeps_only_the_consumed_names_of_known_subjects() {
    let index = Index::new(&mesh());
    let mut flushes = vec![
        flush("cluster.web", 4, 1, 5.0),
        flush("cluster.gone", 9, 9, 5.0),
    ];
    flushes.push(vec![
        ("cluster.web.upstream_cx_total".into(), Some(3.0), vec![]),
        (
            "cluster.api.upstream_rq_completed".into(),
            Some(-1.0),
            vec![],
        ),
        ("cluster.api.upstream_rq_5xx".into(), Some(0.5), vec![]),
        (
            "cluster.api.upstream_rq_time".into(),
            None,
            vec![(5.0, 2), (1.0, 3)],
        ),
    ]);
    let report = Report::read(&index, readings(&flushes));
    assert_eq!(report.samples.len(), 1, "{report:?}");
    let web = &report.samples[&Subject::Service("web".into())];
    assert_eq!((web.requests, web.errors, web.latency.total()), (4, 1, 4));
    assert_eq!(report.malformed, 3, "negative, fractional, falling buckets");
    // cluster.gone.* (4), web's upstream_rq_200, upstream_cx_total.
    assert_eq!(report.ignored, 6);
}

#[test]
fn figures_per_service_route_and_proxy() {
    let index = Index::new(&mesh());
    let mut agg = Aggregator::default();
    for node in ["edge-1", "edge-2"] {
        assert!(agg.open(node, 0, 10));
    }
    for now in 0..10 {
        send(
            &mut agg,
            &index,
            "edge-1",
            now,
            &[
                flush("cluster.web", 10, 1, 5.0),
                flush("vhost.main.route.main", 10, 1, 5.0),
            ],
        );
        send(
            &mut agg,
            &index,
            "edge-2",
            now,
            &[
                flush("cluster.web", 10, 0, 50.0),
                flush("vhost.split.route.split", 12, 0, 50.0),
            ],
        );
    }
    let web = agg.service(&index, "web", Window::TenSeconds, 9).unwrap();
    assert_eq!(web.service, "web");
    assert_eq!((web.window, web.window_seconds), ("10s", 10));
    assert_eq!(web.figures.requests, 200);
    assert_eq!(web.figures.requests_per_second, 20.0);
    assert_eq!(web.figures.success_rate, Some(0.95));
    // Half the samples ≤ 5 ms, half in (25, 50]: p50 at 5, p99 near 50.
    assert_eq!(web.figures.latency_ms.p50, Some(5.0));
    assert_eq!(web.figures.latency_ms.p99, Some(49.5));
    let routes: Vec<_> = web
        .routes
        .iter()
        .map(|r| (r.route.as_str(), r.figures.requests))
        .collect();
    assert_eq!(routes, [("main", 100), ("split", 120)]);
    let proxies: Vec<_> = web
        .proxies
        .iter()
        .map(|p| {
            (
                p.node_id.as_str(),
                p.figures.requests,
                p.figures.success_rate,
            )
        })
        .collect();
    assert_eq!(
        proxies,
        [("edge-1", 100, Some(0.9)), ("edge-2", 100, Some(1.0))]
    );

    // The api service: the split route lists, nobody called it.
    let api = agg.service(&index, "api", Window::Minute, 9).unwrap();
    assert_eq!(api.figures.requests, 0);
    assert_eq!(api.figures.success_rate, None);
    assert_eq!(api.figures.latency_ms.p50, None);
    assert!(api.proxies.is_empty());
    assert_eq!(api.routes[0].route, "split");
    assert!(agg.service(&index, "nope", Window::Minute, 9).is_none());
}

#[test]
fn windows_and_rates_cover_what_was_reported() {
    let index = Index::new(&mesh());
    let mut agg = Aggregator::default();
    assert!(agg.open("edge", 100, 10));
    // 30 s of 6 requests each second, then silence.
    for now in 100..105 {
        send(
            &mut agg,
            &index,
            "edge",
            now,
            &[flush("cluster.web", 6, 0, 1.0)],
        );
    }
    // After 5 s only 5 s are covered: the rate is not diluted by the window.
    let early = agg
        .service(&index, "web", Window::Minute, 104)
        .unwrap()
        .figures;
    assert_eq!((early.requests, early.requests_per_second), (30, 6.0));
    for now in 105..130 {
        send(
            &mut agg,
            &index,
            "edge",
            now,
            &[flush("cluster.web", 6, 0, 1.0)],
        );
    }
    let at = |now, window| agg.service(&index, "web", window, now).unwrap().figures;
    assert_eq!(at(129, Window::TenSeconds).requests_per_second, 6.0);
    assert_eq!(at(129, Window::Minute).requests, 180);
    assert_eq!(at(129, Window::Minute).requests_per_second, 6.0);
    // 10 s later the 10 s window is empty; the minute still holds all of it, over the 40 s
    // the proxy has reported for, then over the whole minute.
    assert_eq!(at(139, Window::TenSeconds).requests, 0);
    assert_eq!(at(139, Window::Minute).requests, 180);
    assert_eq!(at(139, Window::Minute).requests_per_second, 4.5);
    assert_eq!(at(159, Window::Minute).requests_per_second, 3.0);
    assert_eq!(at(189, Window::Minute).requests, 0);
}

#[test]
fn proxies_are_forgotten_a_minute_after_their_streams_end() {
    let index = Index::new(&mesh());
    let mut agg = Aggregator::default();
    assert!(agg.open("gone", 0, 10));
    assert!(agg.open("staying", 0, 10));
    send(
        &mut agg,
        &index,
        "gone",
        1,
        &[flush("cluster.web", 1, 0, 1.0)],
    );
    send(
        &mut agg,
        &index,
        "staying",
        1,
        &[flush("cluster.web", 1, 0, 1.0)],
    );
    agg.close("gone", 2);
    agg.expire(&index, 61);
    assert_eq!(agg.proxies(), 2, "within the minute, still there");
    agg.expire(&index, 62);
    assert_eq!(agg.proxies(), 1);
    // A connected proxy stays, silent or not.
    agg.expire(&index, 1000);
    assert_eq!(agg.proxies(), 1);
}

#[test]
fn memory_follows_the_mesh_not_the_names_sent() {
    let index = Index::new(&mesh());
    let mut agg = Aggregator::default();
    assert!(agg.open("edge", 0, 10));
    let junk: Vec<_> = (0..10_000)
        .map(|i| flush(&format!("cluster.made-up-{i}"), 1, 0, 1.0))
        .collect();
    send(&mut agg, &index, "edge", 0, &junk);
    assert_eq!(
        format!("{agg:?}").matches("Service").count(),
        0,
        "nothing kept"
    );
    send(
        &mut agg,
        &index,
        "edge",
        0,
        &[flush("cluster.web", 1, 0, 1.0)],
    );
    assert_eq!(
        agg.service(&index, "web", Window::Minute, 0)
            .unwrap()
            .figures
            .requests,
        1
    );

    // The route goes from the mesh: its figures go at the next expiry.
    let mut smaller = mesh();
    smaller.revision = 2;
    smaller.services.remove("web");
    let index = Index::new(&smaller);
    agg.expire(&index, 1);
    assert!(agg.service(&index, "web", Window::Minute, 1).is_none());
    assert_eq!(format!("{agg:?}").matches("Service(\"web\")").count(), 0);
}

#[test]
fn invented_node_ids_cannot_grow_the_state_past_the_cap() {
    let index = Index::new(&mesh());
    let mut agg = Aggregator::default();
    assert!(agg.open("a", 0, 2));
    assert!(agg.open("b", 0, 2));
    assert!(!agg.open("c", 0, 2), "a third proxy is refused");
    assert!(agg.open("a", 0, 2), "a known proxy may open another stream");
    agg.close("b", 1);
    agg.expire(&index, 61);
    assert!(agg.open("c", 61, 2), "b was forgotten, c fits");
}
