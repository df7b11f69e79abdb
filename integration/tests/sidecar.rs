//! Sidecars with real Envoy and real minimal-proxy (each scenario on both): a service's sidecar (a proxy whose node cluster names the
//! service) gets the inbound listener and forwards to the application beside it. With mTLS
//! off it takes plaintext, and a deny permission cannot match a plaintext caller (it has no
//! certificate to name it). With the built-in CA and strict mTLS, two sidecars call each
//! other over mTLS: the application sees the caller's SPIFFE ID, a plaintext client is
//! refused (and accepted once the service is permissive, which still takes mTLS on the same
//! port), and a deny permission for the pair answers 403 while shadow mode only counts.

use std::time::{Duration, Instant};

use integration::{
    net::free_port,
    proxy::DataPlane,
    sidecars::{WAIT, available, control_plane, ok_from, wait_get},
    upstream::Upstream,
};
use serde_json::{Value, json};

/// One test per data plane for each scenario `async fn name(DataPlane)`.
macro_rules! on_both_planes {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn envoy() {
                super::$scenario(integration::proxy::DataPlane::Envoy).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn minimal_proxy() {
                super::$scenario(integration::proxy::DataPlane::Minimal).await;
            }
        }
    )*};
}

on_both_planes!(
    a_sidecar_with_mtls_off_forwards_plaintext_to_its_application,
    strict_sidecars_call_each_other_over_mtls_and_permissions_decide,
);

async fn a_sidecar_with_mtls_off_forwards_plaintext_to_its_application(plane: DataPlane) {
    if !available(&[plane]) {
        return;
    }
    let cp = control_plane(&[]).await;
    let app = Upstream::start("web-app");
    let inbound = free_port();
    cp.put(
        "/api/v1/services/web",
        json!({ "protocol": "http", "inbound": { "address": "127.0.0.1", "port": inbound,
                                                 "app_port": app.port() } }),
    )
    .await;
    cp.put("/api/v1/services/api", json!({ "protocol": "http" }))
        .await;
    let _web = cp.sidecar(plane, "web", "").await;
    let url = format!("http://127.0.0.1:{inbound}/hello");
    wait_get(
        &url,
        "plaintext through the inbound listener",
        ok_from("web-app"),
    )
    .await
    .unwrap();
    let hits = app.hits();
    // A deny names callers by certificate: a plaintext caller has none, so it passes.
    cp.permit(
        "deny-all",
        json!({ "from": ["*"], "to": "web", "action": "deny" }),
    )
    .await;
    cp.permit(
        "deny-api",
        json!({ "from": ["api"], "to": "web", "action": "deny" }),
    )
    .await;
    let dump_has_rbac = || async {
        let dump = _web.config_dump().await.unwrap_or_default().to_string();
        dump.contains("rbac|deny|deny-api") && dump.contains("rbac|deny|deny-all")
    };
    let deadline = Instant::now() + WAIT;
    while !dump_has_rbac().await {
        assert!(Instant::now() < deadline, "the RBAC filters never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_get(&url, "plaintext past the deny", ok_from("web-app"))
        .await
        .unwrap();
    assert!(app.hits() > hits);
}

async fn strict_sidecars_call_each_other_over_mtls_and_permissions_decide(plane: DataPlane) {
    if !available(&[plane]) {
        return;
    }
    let cp = control_plane(&["--ca", "builtin"]).await;
    let web_app = Upstream::start("web-app");
    let (web_in, outbound) = (free_port(), free_port());
    let api_app = Upstream::start("api-app");
    cp.api_calls_web("strict", web_in, &web_app, api_app.port(), outbound)
        .await;
    let web = cp.sidecar(plane, "web", "").await;
    let _api = cp.sidecar(plane, "api", "").await;
    let via_api = format!("http://127.0.0.1:{outbound}/call");
    let (_, _, body) = wait_get(&via_api, "api → web over mTLS", ok_from("web-app"))
        .await
        .unwrap();
    let echo: Value = serde_json::from_str(&body).unwrap();
    let xfcc = echo["headers"]["x-forwarded-client-cert"].to_string();
    assert!(
        xfcc.contains("URI=spiffe://mesh.local/service/api"),
        "the application sees the caller's identity: {echo}"
    );
    // Plaintext straight to the strict inbound port is refused.
    let plain = format!("http://127.0.0.1:{web_in}/plain");
    let answer = wait_get(&plain, "plaintext to strict", |a| a.is_err()).await;
    assert!(answer.is_err());

    // Permissive: the same port takes mTLS (from api's sidecar) and plaintext.
    cp.web("http", "permissive", web_in, &web_app).await;
    wait_get(&plain, "plaintext to permissive", ok_from("web-app"))
        .await
        .unwrap();
    let (_, _, body) = wait_get(&via_api, "mTLS to permissive", ok_from("web-app"))
        .await
        .unwrap();
    assert!(
        body.contains("URI=spiffe://mesh.local/service/api"),
        "{body}"
    );

    // A shadow deny only counts.
    cp.permit(
        "try-deny-api",
        json!({ "from": ["api"], "to": "web", "action": "deny", "shadow": true }),
    )
    .await;
    let stat = "http.inbound|web.rbac.try-deny-api.shadow_denied";
    let deadline = Instant::now() + WAIT;
    loop {
        wait_get(&via_api, "shadow lets it through", ok_from("web-app"))
            .await
            .unwrap();
        if web.stat(stat).await.unwrap_or(0) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stat} never counted:\n{}",
            web.stats_matching(&["rbac"]).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Enforced: the pair gets 403 from web's sidecar.
    cp.permit(
        "try-deny-api",
        json!({ "from": ["api"], "to": "web", "action": "deny" }),
    )
    .await;
    wait_get(&via_api, "denied pair", |a| matches!(a, Ok((403, _, _))))
        .await
        .unwrap();
}
