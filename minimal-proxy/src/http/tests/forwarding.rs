//! Routing and forwarding: what the upstream receives and what the client gets back.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::Full;

use super::support::*;
use crate::config::{
    ClusterTarget, HeaderMutation, RouteAction, RouteSource, UpstreamProtocol, WeightedCluster,
};

fn add(name: &'static str, value: &'static str) -> HeaderMutation {
    HeaderMutation {
        add: vec![(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
            false,
        )],
        remove: Vec::new(),
    }
}

#[tokio::test]
async fn a_forwarded_request_carries_envoys_headers_and_the_routes_changes() {
    let upstream = Upstream::echo().await;
    let web = cluster("web", &[upstream.address], UpstreamProtocol::Http1);
    let mut fwd = forward("web");
    fwd.prefix_rewrite = Some("/v1/".into());
    let mut api = route("/api/", RouteAction::Forward(fwd));
    api.request_headers = add("x-route", "api");
    api.response_headers = add("x-served-by", "minimal");
    let runtime = runtime(vec![web.clone()], vec![]);
    let (_manager, address) = serve(&runtime, inline_listener("l", routes("r", vec![api]))).await;

    let request = Request::get("/api/items?q=1")
        .header("connection", "x-secret")
        .header("x-secret", "1")
        .header("x-client", "c")
        .body(Full::default())
        .unwrap();
    let got = Client::h1(address).await.send(request).await.unwrap();

    assert_eq!(got.status, 200, "{got:?}");
    let seen = got.body;
    assert!(seen.starts_with("GET /v1/items?q=1\n"), "{seen}");
    for line in [
        "host: web.test",
        "x-client: c",
        "x-forwarded-proto: http",
        "x-envoy-original-path: /api/items?q=1",
        "x-envoy-expected-rq-timeout-ms: 15000",
        "x-route: api",
    ] {
        assert!(
            seen.lines().any(|l| l == line),
            "missing {line:?} in\n{seen}"
        );
    }
    assert!(
        !seen.contains("x-secret"),
        "hop-by-hop header forwarded:\n{seen}"
    );
    let request_id = seen
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("an x-request-id");
    assert_eq!(request_id.len(), 36);
    assert_eq!(got.headers["server"], "envoy");
    assert_eq!(got.headers["x-served-by"], "minimal");
    assert_eq!(got.headers["x-upstream"], "echo");
    let service_time: u64 = got.headers["x-envoy-upstream-service-time"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(service_time < 5_000);
    let stats = runtime.stats.http("ingress");
    assert_eq!(stats.downstream_rq_total.get(), 1);
    assert_eq!(stats.downstream_rq_xx[2].get(), 1);
    assert_eq!(web.stats().upstream_rq_total.get(), 1);
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_kept() {
    let upstream = Upstream::echo().await;
    let web = cluster("web", &[upstream.address], UpstreamProtocol::Http1);
    let runtime = runtime(vec![web], vec![]);
    let r = routes("r", vec![route("/", RouteAction::Forward(forward("web")))]);
    let (_manager, address) = serve(&runtime, inline_listener("l", r)).await;
    let request = Request::get("/")
        .header("x-request-id", "mine")
        .header("x-forwarded-proto", "https")
        .body(Full::default())
        .unwrap();
    let got = Client::h1(address).await.send(request).await.unwrap();
    assert!(
        got.body.lines().any(|l| l == "x-request-id: mine"),
        "{}",
        got.body
    );
    assert!(got.body.lines().any(|l| l == "x-forwarded-proto: https"));
}

#[tokio::test]
async fn request_bodies_stream_through() {
    let upstream = Upstream::echo().await;
    let web = cluster("web", &[upstream.address], UpstreamProtocol::Http1);
    let runtime = runtime(vec![web], vec![]);
    let r = routes("r", vec![route("/", RouteAction::Forward(forward("web")))]);
    let (_manager, address) = serve(&runtime, inline_listener("l", r)).await;
    let body = "x".repeat(200_000);
    let request = Request::post("/upload")
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    let got = Client::h1(address).await.send(request).await.unwrap();
    assert_eq!(got.status, 200);
    assert!(got.body.ends_with(&body));
}

#[tokio::test]
async fn weighted_clusters_share_traffic_by_weight_with_their_own_headers() {
    let a = Upstream::start(|_| async { reply(200, "a") }).await;
    let b = Upstream::start(|_| async { reply(200, "b") }).await;
    let never = Upstream::start(|_| async { reply(200, "never") }).await;
    let clusters = vec![
        cluster("a", &[a.address], UpstreamProtocol::Http1),
        cluster("b", &[b.address], UpstreamProtocol::Http1),
        cluster("never", &[never.address], UpstreamProtocol::Http1),
    ];
    let weighted = |name: &str, weight, header: &'static str| WeightedCluster {
        name: name.into(),
        weight,
        metadata_match: Default::default(),
        request_headers: Default::default(),
        response_headers: add("x-weighted", header),
    };
    let mut fwd = forward("unused");
    fwd.target = ClusterTarget::Weighted(vec![
        weighted("a", 50, "a"),
        weighted("never", 0, "never"),
        weighted("b", 50, "b"),
    ]);
    let runtime = runtime(clusters, vec![]);
    let r = routes("r", vec![route("/", RouteAction::Forward(fwd))]);
    let (_manager, address) = serve(&runtime, inline_listener("l", r)).await;
    let mut client = Client::h1(address).await;
    let (mut seen_a, mut seen_b) = (0, 0);
    for _ in 0..200 {
        let got = client.get("/").await;
        assert_eq!(got.headers["x-weighted"], got.body.as_str());
        match got.body.as_str() {
            "a" => seen_a += 1,
            "b" => seen_b += 1,
            other => panic!("weight 0 cluster picked: {other}"),
        }
    }
    // Each side has probability 1/2 per request: both are seen (all-one-side is 2^-199).
    assert!(seen_a > 0 && seen_b > 0, "a {seen_a}, b {seen_b}");
}

#[tokio::test]
async fn rds_routes_come_from_the_snapshot_of_each_request() {
    let one = Upstream::start(|_| async { reply(200, "one") }).await;
    let two = Upstream::start(|_| async { reply(200, "two") }).await;
    let runtime = runtime(vec![], vec![]);
    let listener = http_listener(
        "l",
        "127.0.0.1:0".parse().unwrap(),
        hcm(RouteSource::Rds("rds".into())),
    );
    let (_manager, address) = serve(&runtime, listener).await;
    let mut client = Client::h1(address).await;
    // No route configuration yet: every request is a 404, as in Envoy.
    assert_eq!(client.get("/").await.status, 404);

    let c1 = cluster("c1", &[one.address], UpstreamProtocol::Http1);
    let c2 = cluster("c2", &[two.address], UpstreamProtocol::Http1);
    let to = |c: &str| routes("rds", vec![route("/", RouteAction::Forward(forward(c)))]);
    publish(&runtime, vec![c1.clone(), c2.clone()], vec![to("c1")]);
    assert_eq!(client.get("/").await.body, "one");
    publish(&runtime, vec![c1, c2], vec![to("c2")]);
    assert_eq!(client.get("/").await.body, "two");
}

#[tokio::test]
async fn direct_responses_and_no_route_answer_like_envoy() {
    let mut created = route(
        "/created",
        RouteAction::Direct {
            status: 201,
            body: None,
        },
    );
    created.response_headers = add("x-direct", "yes");
    let r = routes("r", vec![route("/direct", direct(200, "hello")), created]);
    let runtime = runtime(vec![], vec![]);
    let (_manager, address) = serve(&runtime, inline_listener("l", r)).await;
    let mut client = Client::h1(address).await;

    let got = client.get("/direct").await;
    assert_eq!((got.status.as_u16(), got.body.as_str()), (200, "hello"));
    assert_eq!(got.headers["content-type"], "text/plain");
    assert_eq!(got.headers["content-length"], "5");
    assert_eq!(got.headers["server"], "envoy");

    let got = client.get("/created?x=1").await;
    assert_eq!(got.status, 201);
    assert_eq!(got.headers["location"], "http://web.test/created?x=1");
    assert_eq!(got.headers["x-direct"], "yes");

    let got = client.get("/nothing").await;
    assert_eq!((got.status.as_u16(), got.body.as_str()), (404, ""));
    assert_eq!(got.headers["content-length"], "0");
    assert!(got.headers.get("content-type").is_none());
    let stats = runtime.stats.http("ingress");
    assert_eq!(stats.no_route.get(), 1);
    assert_eq!(stats.rq_direct_response.get(), 2);
    assert_eq!(stats.downstream_rq_xx[4].get(), 1);
    assert_eq!(stats.downstream_cx_http1_total.get(), 1);
    eventually(Duration::from_secs(5), || {
        stats.downstream_rq_active.get() == 0
    })
    .await;
}

#[tokio::test]
async fn an_upgrade_request_is_refused_as_envoy_refuses_it_without_upgrade_configs() {
    let upstream = Upstream::echo().await;
    let web = cluster("web", &[upstream.address], UpstreamProtocol::Http1);
    let runtime = runtime(vec![web], vec![]);
    let r = routes(
        "r",
        vec![route("/ws", RouteAction::Forward(forward("web")))],
    );
    let (_manager, address) = serve(&runtime, inline_listener("l", r)).await;
    let upgrade = |path: &str, protocol: &'static str| {
        Request::get(path)
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", protocol)
            .body(Full::default())
            .unwrap()
    };
    let got = Client::h1(address)
        .await
        .send(upgrade("/ws", "websocket"))
        .await
        .unwrap();
    assert_eq!((got.status.as_u16(), got.body.as_str()), (403, ""));
    assert_eq!(got.headers["connection"], "close");
    // Without a route it is a 404; h2c upgrades are ignored and served.
    let got = Client::h1(address)
        .await
        .send(upgrade("/none", "websocket"))
        .await
        .unwrap();
    assert_eq!(got.status, 404);
    let got = Client::h1(address)
        .await
        .send(upgrade("/ws", "h2c"))
        .await
        .unwrap();
    assert_eq!(got.status, 200);
    assert!(!got.body.contains("upgrade"), "{}", got.body);
}
