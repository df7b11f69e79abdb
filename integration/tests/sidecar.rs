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
    proxy::{DataPlane, Proxy},
    server::Server,
    upstream::Upstream,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The server (with `args`), its admin URL and an HTTP client.
struct Cp {
    _server: Server,
    admin: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Cp {
    fn start(extra: &[&str]) -> Cp {
        let dir = tempfile::tempdir().unwrap();
        let xds = format!("127.0.0.1:{}", free_port());
        let db = dir.path().join("mesh.db").display().to_string();
        let mut args = vec!["--xds-addr", &xds, "--sqlite-file", &db];
        args.extend_from_slice(&["--poll-interval", "100ms"]);
        args.extend_from_slice(extra);
        let mut server = Server::start(&args, &[]);
        // The first address logged may be the xDS one; find the admin API's.
        let deadline = Instant::now() + WAIT;
        let admin = loop {
            let found = server.logs().iter().find_map(|line| {
                let v: Value = serde_json::from_str(line).ok()?;
                let addr = v["fields"]["addr"].as_str()?;
                (addr != xds).then(|| format!("http://{addr}"))
            });
            match found {
                Some(a) => break a,
                None if Instant::now() > deadline => panic!("no admin address logged"),
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        Cp {
            _server: server,
            admin,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn put(&self, path: &str, body: Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.admin))
            .json(&body)
            .send();
        let r = r.await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "PUT {path}: {status} {text}");
    }

    /// A data plane whose node cluster is `cluster` (so the sidecar of that service).
    async fn sidecar(&self, plane: DataPlane, cluster: &str) -> Proxy {
        let path = format!(
            "{}/api/v1/bootstrap?node_id={cluster}-1&cluster={cluster}&admin_port={}",
            self.admin,
            free_port()
        );
        let bootstrap = self
            .http
            .get(path)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        Proxy::start(plane, &bootstrap)
    }
}

/// Whether `plane` is there (Envoy may not be: the skip is announced).
fn available(plane: DataPlane) -> bool {
    plane.binary().is_some()
}

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

/// Sends GET `url` until `accept` takes the answer (status, `x-upstream`, body) or the wait
/// ends; returns the last answer (`Err` when the request itself failed).
async fn wait_get(
    url: &str,
    what: &str,
    accept: impl Fn(&Result<(u16, String, String), String>) -> bool,
) -> Result<(u16, String, String), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = match client.get(url).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let upstream = r
                    .headers()
                    .get("x-upstream")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                Ok((status, upstream, r.text().await.unwrap_or_default()))
            }
            Err(e) => Err(e.to_string()),
        };
        if accept(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what}: last answer {answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ok_from(upstream: &str) -> impl Fn(&Result<(u16, String, String), String>) -> bool + '_ {
    move |a| matches!(a, Ok((200, from, _)) if from == upstream)
}

async fn a_sidecar_with_mtls_off_forwards_plaintext_to_its_application(plane: DataPlane) {
    if !available(plane) {
        return;
    }
    let cp = Cp::start(&[]);
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
    let _web = cp.sidecar(plane, "web").await;
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
    cp.put(
        "/api/v1/traffic-permissions/deny-all",
        json!({ "from": ["*"], "to": "web", "action": "deny" }),
    )
    .await;
    cp.put(
        "/api/v1/traffic-permissions/deny-api",
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
    if !available(plane) {
        return;
    }
    let cp = Cp::start(&["--ca", "builtin"]);
    let web_app = Upstream::start("web-app");
    let (web_in, outbound) = (free_port(), free_port());
    cp.put(
        "/api/v1/services/web",
        json!({ "protocol": "http", "mtls": "strict", "connect_timeout": "1s",
                "inbound": { "address": "127.0.0.1", "port": web_in,
                             "app_port": web_app.port() } }),
    )
    .await;
    cp.put(
        "/api/v1/services/web/endpoints",
        json!({ "endpoints": [ { "address": "127.0.0.1", "port": web_in } ] }),
    )
    .await;
    let api_app = Upstream::start("api-app");
    cp.put(
        "/api/v1/services/api",
        json!({ "protocol": "http", "mtls": "strict",
                "inbound": { "address": "127.0.0.1", "port": free_port(),
                             "app_port": api_app.port() } }),
    )
    .await;
    cp.put(
        "/api/v1/routes/to-web",
        json!({ "hosts": ["*"], "rules": [ { "destinations": [ { "service": "web" } ] } ] }),
    )
    .await;
    cp.put(
        "/api/v1/listeners/api-outbound",
        json!({ "address": "127.0.0.1", "port": outbound, "protocol": "http",
                "routes": ["to-web"], "selector": { "node_cluster": "api" } }),
    )
    .await;
    let web = cp.sidecar(plane, "web").await;
    let _api = cp.sidecar(plane, "api").await;
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
    cp.put(
        "/api/v1/services/web",
        json!({ "protocol": "http", "mtls": "permissive", "connect_timeout": "1s",
                "inbound": { "address": "127.0.0.1", "port": web_in,
                             "app_port": web_app.port() } }),
    )
    .await;
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
    cp.put(
        "/api/v1/traffic-permissions/try-deny-api",
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
    cp.put(
        "/api/v1/traffic-permissions/try-deny-api",
        json!({ "from": ["api"], "to": "web", "action": "deny" }),
    )
    .await;
    wait_get(&via_api, "denied pair", |a| matches!(a, Ok((403, _, _))))
        .await
        .unwrap();
}
