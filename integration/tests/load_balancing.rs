//! How a service's endpoints share traffic, on both data planes (ADS SotW and Delta): endpoint
//! weights hold over 400 requests; endpoints marked unhealthy or draining by the control plane
//! get none; every load balancing policy reaches every endpoint.

use std::{collections::BTreeMap, time::Duration};

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Reply, Stage, Variant},
    upstream::Upstream,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

conformance!(
    endpoint_weights_and_health_hold,
    every_lb_policy_reaches_every_endpoint
);

/// Sends `count` requests; how many each upstream answered (all must be 200s).
async fn tally(stage: &Stage, count: usize, what: &str) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for i in 0..count {
        let reply = stage
            .send(&format!("/{what}/{i}"), &[])
            .await
            .unwrap_or_else(|e| stage.proxy().fail(&format!("{what}: request {i}: {e}")));
        assert_eq!(reply.status, 200, "{what}: request {i}: {reply:?}");
        *seen.entry(reply.upstream.unwrap_or_default()).or_default() += 1;
    }
    seen
}

/// `web`'s endpoints, as the REST body: `(upstream, weight, health)`.
fn endpoints(list: &[(&Upstream, u32, &str)]) -> Value {
    let list: Vec<Value> = list
        .iter()
        .map(|(u, weight, health)| {
            json!({ "address": "127.0.0.1", "port": u.port(), "weight": weight, "health": health })
        })
        .collect();
    json!({ "endpoints": list })
}

/// a (weight 3) and b (weight 1) share 400 requests about 300/100; c, marked unhealthy, and d,
/// marked draining, get none. Then a is marked unhealthy and c healthy: only b and c answer.
/// (Healthy endpoints stay at half or more throughout: below that, the panic threshold would
/// spread traffic over all of them, on both data planes.)
async fn endpoint_weights_and_health_hold(plane: DataPlane, variant: Variant, backend: Backend) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let ups: Vec<Upstream> = ["a", "b", "c", "d"].map(Upstream::start).into();
    let [a, b, c, d] = [&ups[0], &ups[1], &ups[2], &ups[3]];
    stage.service("web", &[]).await;
    let path = "/api/v1/services/web/endpoints";
    stage
        .cp
        .put(
            path,
            endpoints(&[
                (a, 3, "healthy"),
                (b, 1, "healthy"),
                (c, 1, "unhealthy"),
                (d, 1, "draining"),
            ]),
        )
        .await;
    stage.route_to("main", "web").await;
    stage.listener(&["main"]).await;
    stage.start_proxy().await;
    stage
        .wait_reply("a reply from b", "/", &[], WAIT, |r| r.from("b"))
        .await;

    let seen = tally(&stage, 400, "weighted").await;
    let to_a = seen.get("a").copied().unwrap_or(0);
    assert!(
        (270..=330).contains(&to_a) && seen.keys().all(|k| k == "a" || k == "b"),
        "a (weight 3) and b (weight 1) share 400 requests about 300/100, c and d none: {seen:?}"
    );
    assert_eq!(
        (c.hits(), d.hits()),
        (0, 0),
        "unhealthy and draining get nothing"
    );

    stage
        .cp
        .put(
            path,
            endpoints(&[
                (a, 3, "unhealthy"),
                (b, 1, "healthy"),
                (c, 1, "healthy"),
                (d, 1, "draining"),
            ]),
        )
        .await;
    stage
        .wait_reply("a reply from c", "/", &[], WAIT, |r| r.from("c"))
        .await;
    let (a_now, d_now) = (a.hits(), d.hits());
    let seen = tally(&stage, 100, "b-and-c").await;
    assert!(
        seen.keys().all(|k| k == "b" || k == "c"),
        "only b and c answer: {seen:?}"
    );
    assert_eq!(
        (a.hits(), d.hits()),
        (a_now, d_now),
        "unhealthy a and draining d get nothing"
    );
}

/// Under every `lb_policy` the model offers, 60 requests over a, b and c reach all three. (The
/// route to each policy's service marks its requests with `x-policy`, so only requests that
/// went through that service count.)
async fn every_lb_policy_reaches_every_endpoint(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let ups: Vec<Upstream> = ["a", "b", "c"].map(Upstream::start).into();
    let endpoints: Vec<(&Upstream, Value)> = ups.iter().map(|u| (u, json!({}))).collect();
    let policies = [
        "round_robin",
        "least_request",
        "random",
        "ring_hash",
        "maglev",
    ];
    for (i, policy) in policies.iter().enumerate() {
        let name = format!("web-{}", policy.replace('_', "-"));
        let spec = json!({ "protocol": "http", "connect_timeout": "1s", "lb_policy": policy });
        stage.service_with(&name, spec, &endpoints).await;
        let rules = json!([{ "match": { "path": { "prefix": "/" } },
                             "destinations": [{ "service": name }],
                             "request_headers": { "set": { "x-policy": policy } } }]);
        stage.route("main", rules).await;
        if i == 0 {
            stage.listener(&["main"]).await;
            stage.start_proxy().await;
        }
        let marked = |r: &Reply| r.status == 200 && r.headers["x-policy"] == *policy;
        let what = format!("a request through {name}");
        stage.wait_reply(&what, "/", &[], WAIT, marked).await;
        let mut seen = BTreeMap::<String, u32>::new();
        for n in 0..60 {
            let reply = stage.send(&format!("/{policy}/{n}"), &[]).await;
            let reply = reply.unwrap_or_else(|e| stage.proxy().fail(&format!("{policy}: {e}")));
            assert!(marked(&reply), "{policy}: request {n}: {reply:?}");
            *seen.entry(reply.upstream.unwrap_or_default()).or_default() += 1;
        }
        assert_eq!(seen.len(), 3, "{policy}: a, b and c all answer: {seen:?}");
        let total = stage
            .proxy()
            .stat(&format!("cluster.{name}.upstream_rq_total"))
            .await;
        assert!(
            total.is_some_and(|n| n >= 60),
            "{policy}: cluster.{name}.upstream_rq_total counts its requests: {total:?}"
        );
    }
}
