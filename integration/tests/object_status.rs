//! NACKs on the objects that caused them (both data planes, SotW and Delta, over ADS and over
//! separate per-type streams): a route the server accepts and the proxy rejects shows the
//! rejection, in the proxy's words, in its own `GET /api/v1/routes/{name}` status, with nobody
//! counted as running its current version, while the route beside it in the same route
//! configuration, and the listener, stay clean (last-known-good serves their parts
//! unchanged). Fixing the route clears the rejection and every proxy that received the fix
//! acknowledges it.
//!
//! What each data plane rejects differs (the route stays the same object): Envoy caps a regex's
//! compiled RE2 program at 100 instructions, which the server (checking regexes with Rust's
//! `regex`) and minimal-proxy (compiling them with it) do not; minimal-proxy refuses a cookie
//! hash policy with a `ttl` (cookie generation), which Envoy accepts.

use std::time::Duration;

use integration::{
    conformance,
    mesh::{Backend, DataPlane, Stage, Variant},
    upstream::Upstream,
};
use serde_json::{Value, json};
use xds_core::type_url;

const WAIT: Duration = Duration::from_secs(30);

conformance!(a_rejected_route_shows_the_rejection_on_itself);

/// The same over separate CDS, EDS, LDS and RDS streams: one node, four streams.
mod over_separate_streams {
    use integration::conformance_case;

    conformance_case!(
        a_rejected_route_shows_the_rejection_on_itself,
        envoy_sotw,
        Envoy,
        SotwSeparate,
        Sqlite
    );
    conformance_case!(
        a_rejected_route_shows_the_rejection_on_itself,
        envoy_delta,
        Envoy,
        DeltaSeparate,
        Sqlite
    );
    conformance_case!(
        a_rejected_route_shows_the_rejection_on_itself,
        minimal_sotw,
        Minimal,
        SotwSeparate,
        Sqlite
    );
    conformance_case!(
        a_rejected_route_shows_the_rejection_on_itself,
        minimal_delta,
        Minimal,
        DeltaSeparate,
        Sqlite
    );
}

/// The route `extra`: `/extra` on its own host, to `svc-a`; `broken` makes it one `plane`
/// rejects.
fn extra(plane: DataPlane, broken: bool) -> Value {
    let mut rule = json!({ "match": { "path": { "prefix": "/extra" } },
                           "destinations": [{ "service": "svc-a" }] });
    if broken {
        match plane {
            // Compiles to about 300 RE2 instructions.
            DataPlane::Envoy => rule["match"]["path"] = json!({ "regex": "/[a-z]{300}" }),
            DataPlane::Minimal => {
                rule["hash_policy"] = json!([{ "cookie": "session", "ttl": "1h" }]);
            }
        }
    }
    json!({ "hosts": ["extra.example.com"], "rules": [rule] })
}

/// `(proxies, received, accepted, rejections)` of a status block.
fn counts(status: &Value) -> (u64, u64, u64, usize) {
    let n = |k: &str| status[k].as_u64().unwrap_or(u64::MAX);
    let rejected = status["rejected"].as_array().map_or(usize::MAX, Vec::len);
    (n("proxies"), n("received"), n("accepted"), rejected)
}

async fn a_rejected_route_shows_the_rejection_on_itself(
    plane: DataPlane,
    variant: Variant,
    backend: Backend,
) {
    let Some(mut stage) = Stage::new(plane, variant, backend).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.serve("svc-a", &a).await;
    let (route, main) = ("/api/v1/routes/extra", "/api/v1/routes/main");

    // A second route on the listener: the proxy runs it.
    stage.cp.put(route, extra(plane, false)).await;
    stage.listener(&["main", "extra"]).await;
    let running = |s: &Value| counts(s) == (1, 1, 1, 0);
    stage
        .wait_status(route, "extra received and accepted", WAIT, running)
        .await;

    // Broken: the proxy rejects the listener's route configuration; its group keeps the one
    // it accepted. The rejection is on `extra`, in the proxy's words, and nobody runs extra's
    // current version.
    stage.cp.put(route, extra(plane, true)).await;
    let status = stage
        .wait_status(route, "the rejection", WAIT, |s| {
            s["rejected"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await;
    let rejection = &status["rejected"][0];
    assert_eq!(rejection["node_id"], stage.node_id.as_str(), "{status:#}");
    assert_eq!(rejection["type_url"], type_url::ROUTE, "{status:#}");
    assert_eq!(
        rejection["resource"], "ingress",
        "the listener's route configuration: {status:#}"
    );
    let message = rejection["message"].as_str().unwrap_or_default();
    let because = match plane {
        DataPlane::Envoy => "RE2 program size",
        DataPlane::Minimal => "cookie generation (ttl)",
    };
    assert!(
        message.contains(because),
        "{}: the proxy's own words, saying '{because}': {status:#}",
        plane.as_str()
    );
    let held = stage
        .wait_status(route, "nobody running extra's current version", WAIT, |s| {
            counts(s) == (1, 0, 0, 1)
        })
        .await;
    assert_eq!(held["rejected"][0], *rejection, "one rejection, unchanged");
    // `main` and the listener made the same route configuration, unchanged: the proxy runs
    // their current version and nothing is rejected of it.
    stage
        .wait_status(main, "main running, not rejected", WAIT, running)
        .await;
    stage
        .wait_status(
            "/api/v1/listeners/ingress",
            "the listener clean",
            WAIT,
            running,
        )
        .await;
    stage.all_from("a", 10, "while-extra-is-rejected").await;

    // Fixed: the rejection is gone, and the proxy receives and acknowledges the fix.
    stage.cp.put(route, extra(plane, false)).await;
    stage
        .wait_status(route, "the fix received and accepted", WAIT, running)
        .await;
    stage.all_from("a", 10, "after-the-fix").await;
    stage
        .wait_status(main, "main still running", WAIT, running)
        .await;
}
