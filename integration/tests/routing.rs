//! Routing, on both data planes (Envoy and minimal-proxy) configured by the real xds-server
//! over ADS (SotW and Delta): a request reaches its route's upstream and every type is SYNCED;
//! an 80/20 subset split holds over 1000 requests; every kind of match, prefix rewrites and
//! header changes behave. (What the proxy adds and answers by itself: `proxy_headers.rs`.)

use std::time::Duration;

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Reply, Stage, Variant},
    upstream::Upstream,
};
use serde_json::json;
use xds_core::TypeUrl;

const WAIT: Duration = Duration::from_secs(30);

type Headers<'a> = &'a [(&'a str, &'a str)];

conformance!(
    request_reaches_its_upstream,
    weighted_split_holds,
    header_match_and_prefix_rewrite,
    every_match_kind
);

/// (a) A service, its endpoint, a route and a listener, created before the proxy starts: the
/// first request reaches the upstream, and the proxy status shows every type SYNCED.
async fn request_reaches_its_upstream(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.service("svc-a", &[(&a, json!({}))]).await;
    stage.route_to("main", "svc-a").await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;

    stage
        .proxy()
        .listener_port_ready(stage.listener_port, WAIT)
        .await;
    let first = stage
        .wait_reply("a reply from a", "/first", &[], WAIT, |r| r.from("a"))
        .await;
    assert_eq!(first.path.as_deref(), Some("/first"));
    for i in 0..10 {
        let reply = stage.send(&format!("/again/{i}"), &[]).await.unwrap();
        assert!(reply.from("a"), "request {i}: {reply:?}");
    }
    assert!(a.hits() >= 11, "the upstream counted {} requests", a.hits());

    let status = stage.wait_synced(WAIT).await;
    assert_eq!(status["node_id"], stage.node_id.as_str());
    assert_eq!(status["cluster"], "mesh-test");
    assert_eq!(
        status["variant"],
        variant.as_str(),
        "the bootstrap's delta flag picks the variant"
    );
    for t in TypeUrl::ADS_ORDER {
        let t = t.as_str();
        let ty = &status["types"][t];
        assert_eq!(
            ty["version_sent"], ty["version_acked"],
            "{t}: what was sent is what was acked: {status:#}"
        );
        assert!(
            ty.get("error_detail").is_none_or(|e| e.is_null()),
            "{t}: {ty}"
        );
    }
}

/// (b) An 80/20 split between two subsets of one service (labels version=v1/v2): over 1000
/// requests v1's share lies in 0.75..0.85 (more than 3.5 standard deviations either side).
async fn weighted_split_holds(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let v1 = Upstream::start("v1");
    let v2 = Upstream::start("v2");
    stage
        .service(
            "web",
            &[
                (&v1, json!({ "version": "v1" })),
                (&v2, json!({ "version": "v2" })),
            ],
        )
        .await;
    stage
        .route(
            "web",
            json!([{ "match": { "path": { "prefix": "/" } },
                     "destinations": [
                         { "service": "web", "weight": 80, "subset": { "version": "v1" } },
                         { "service": "web", "weight": 20, "subset": { "version": "v2" } }],
                     "timeout": "5s" }]),
        )
        .await;
    stage.listener(&["web"]).await;
    stage.start_proxy().await;
    stage
        .wait_reply("a reply from v1 or v2", "/", &[], WAIT, |r| {
            r.from("v1") || r.from("v2")
        })
        .await;

    let (before1, before2) = (v1.hits(), v2.hits());
    let (mut to_v1, mut to_v2) = (0u32, 0u32);
    for i in 0..1000 {
        let reply = stage.send("/split", &[]).await.unwrap();
        match reply.upstream.as_deref() {
            Some("v1") if reply.status == 200 => to_v1 += 1,
            Some("v2") if reply.status == 200 => to_v2 += 1,
            _ => panic!("request {i} failed: {reply:?}"),
        }
    }
    let share = f64::from(to_v1) / 1000.0;
    assert!(
        (0.75..0.85).contains(&share),
        "v1 got {to_v1} and v2 {to_v2} of 1000 requests; expected about 800/200"
    );
    assert_eq!(
        v1.hits() - before1,
        u64::from(to_v1),
        "v1 saw each of its requests"
    );
    assert_eq!(
        v2.hits() - before2,
        u64::from(to_v2),
        "v2 saw each of its requests"
    );
}

/// (g) `x-canary: 1` goes to b, everything else to a; `/api/` is rewritten to `/` on its
/// way to a; request headers are set and removed as configured.
async fn header_match_and_prefix_rewrite(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    stage.service("svc-a", &[(&a, json!({}))]).await;
    stage.service("svc-b", &[(&b, json!({}))]).await;
    stage
        .route(
            "main",
            json!([
                { "match": { "path": { "prefix": "/" },
                             "headers": [{ "name": "x-canary", "exact": "1" }] },
                  "destinations": [{ "service": "svc-b" }] },
                { "match": { "path": { "prefix": "/api/" } },
                  "destinations": [{ "service": "svc-a" }],
                  "rewrite": { "prefix": "/" },
                  "request_headers": { "set": { "x-from": "mesh" }, "remove": ["x-debug"] },
                  "response_headers": { "set": { "x-served-by": "mesh" },
                                        "remove": ["x-upstream"] } },
                { "match": { "path": { "prefix": "/" } },
                  "destinations": [{ "service": "svc-a" }] }
            ]),
        )
        .await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
    stage
        .wait_reply("a reply from a", "/", &[], WAIT, |r| r.from("a"))
        .await;

    let canary = [("x-canary", "1")];
    let not_canary = [("x-canary", "0")];
    let cases: [(&str, Headers, &str, &str); 6] = [
        ("/page", &canary, "b", "/page"),
        ("/api/users", &canary, "b", "/api/users"),
        ("/page", &[], "a", "/page"),
        ("/page", &not_canary, "a", "/page"),
        ("/api/users", &[], "a", "/users"),
        ("/api/v1/items/7", &not_canary, "a", "/v1/items/7"),
    ];
    for (path, headers, upstream, seen_path) in cases {
        let reply = stage.send(path, headers).await.unwrap();
        assert!(
            reply.from(upstream),
            "GET {path} with {headers:?} should reach {upstream}: {reply:?}"
        );
        assert_eq!(
            reply.path.as_deref(),
            Some(seen_path),
            "GET {path} with {headers:?}: the path {upstream} saw"
        );
    }

    let reply = stage.send("/api/users", &[]).await.unwrap();
    assert_eq!(
        reply.headers["x-envoy-original-path"], "/api/users",
        "a rewritten path travels on in x-envoy-original-path: {}",
        reply.headers
    );
    let reply = stage
        .send("/api/x", &[("x-debug", "yes"), ("x-keep", "yes")])
        .await
        .unwrap();
    assert!(reply.from("a"), "{reply:?}");
    assert_eq!(reply.headers["x-from"], "mesh", "set: {}", reply.headers);
    assert!(
        reply.headers.get("x-debug").is_none(),
        "removed: {}",
        reply.headers
    );
    assert_eq!(
        reply.headers["x-keep"], "yes",
        "others pass: {}",
        reply.headers
    );
    let reply = stage.send("/other", &[("x-debug", "yes")]).await.unwrap();
    assert!(reply.from("a"), "{reply:?}");
    assert_eq!(
        reply.headers["x-debug"], "yes",
        "header changes belong to their rule only: {}",
        reply.headers
    );
    assert!(reply.headers.get("x-from").is_none(), "{}", reply.headers);
    let served_by = |r: &Reply| {
        let h = &r.response_headers;
        (h.get("x-served-by").cloned(), h.get("x-upstream").cloned())
    };
    assert_eq!(
        served_by(&reply),
        (None, Some("a".parse().unwrap())),
        "response headers untouched outside /api/: {reply:?}"
    );
    let reply = stage.send("/api/y", &[]).await.unwrap();
    assert_eq!(
        served_by(&reply),
        (Some("mesh".parse().unwrap()), None),
        "response header set and removed under /api/: {reply:?}"
    );
}

/// Every kind of match, first match wins: an exact path, a regex over the whole path, a
/// method, a header's presence and a header regex; anything else falls through to a.
async fn every_match_kind(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let names = ["exact", "regex", "method", "present", "header-regex", "a"];
    let ups: Vec<Upstream> = names.iter().map(|n| Upstream::start(n)).collect();
    for u in &ups {
        stage
            .service(&format!("svc-{}", u.name()), &[(u, json!({}))])
            .await;
    }
    let to = |name: &str| json!([{ "service": format!("svc-{name}") }]);
    stage
        .route(
            "main",
            json!([
                { "match": { "path": { "exact": "/exact" } }, "destinations": to("exact") },
                { "match": { "path": { "regex": "/v[0-9]+/items" } }, "destinations": to("regex") },
                { "match": { "path": { "prefix": "/" }, "method": "DELETE" },
                  "destinations": to("method") },
                { "match": { "path": { "prefix": "/" },
                             "headers": [{ "name": "x-flag", "present": true }] },
                  "destinations": to("present") },
                { "match": { "path": { "prefix": "/" },
                             "headers": [{ "name": "x-version", "regex": "v[12]" }] },
                  "destinations": to("header-regex") },
                { "match": { "path": { "prefix": "/" } }, "destinations": to("a") }
            ]),
        )
        .await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
    stage
        .wait_reply("a reply from a", "/", &[], WAIT, |r| r.from("a"))
        .await;

    let cases: [(&str, Headers, &str); 10] = [
        ("/exact", &[], "exact"),
        ("/exact/more", &[], "a"),
        ("/v2/items", &[], "regex"),
        ("/v2/items/7", &[], "a"),
        ("/x/v2/items", &[], "a"),
        ("/anything", &[("x-flag", "")], "present"),
        ("/anything", &[("x-version", "v2")], "header-regex"),
        ("/anything", &[("x-version", "v3")], "a"),
        ("/anything", &[("x-version", "v22")], "a"),
        ("/exact", &[("x-flag", "1")], "exact"),
    ];
    for (path, headers, upstream) in cases {
        let reply = stage.send(path, headers).await.unwrap();
        assert!(
            reply.from(upstream),
            "GET {path} with {headers:?} should reach {upstream}: {reply:?}"
        );
    }
    let client = integration::net::local_client();
    let url = format!("http://127.0.0.1:{}/anything", stage.listener_port);
    let deleted = client.delete(&url).send().await.expect("DELETE");
    assert_eq!(
        deleted.headers().get("x-upstream").map(|v| v.as_bytes()),
        Some(&b"method"[..]),
        "DELETE matches the method rule"
    );
}
