//! The web console at `/ui` in headless Chromium, against the real server (and, where the
//! scenario needs one, a real Envoy): a proxy seen going from SYNCED to NACKED with Envoy's own
//! words and back, on the proxies page and on the rejected route's page, without reloading;
//! the admin token asked for once per session and never put in a URL; the main navigation
//! worked from the keyboard.
//!
//! One browser for the whole binary ([`Browser::shared`]); each test has its own window. Every
//! wait is a condition with a deadline, checked in the page.

use std::time::Duration;

use integration::{
    browser::{Browser, Key, Page},
    mesh::{Backend, DataPlane, Stage, Variant},
    server::Server,
    upstream::Upstream,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A JavaScript string literal.
fn js(s: &str) -> String {
    Value::from(s).to_string()
}

/// The state shown for each type in `node`'s row of the proxies table, e.g.
/// `{"CDS": "SYNCED", …}` (null while the row is missing).
fn row_states(node: &str) -> String {
    format!(
        "(() => {{
           const row = [...document.querySelectorAll('#proxy-table tbody tr')]
             .find((r) => r.cells[0].textContent === {node});
           if (!row) return null;
           return Object.fromEntries([...row.querySelectorAll('[data-type]')]
             .map((e) => [e.dataset.type, e.textContent]));
         }})()",
        node = js(node)
    )
}

/// True when every main type in `node`'s row shows `state` (and `RDS` shows `rds`).
fn row_is(node: &str, state: &str, rds: &str) -> String {
    format!(
        "((s) => s && ['CDS', 'EDS', 'LDS'].every((t) => s[t] === {state}) && s.RDS === {rds})({})",
        row_states(node),
        state = js(state),
        rds = js(rds)
    )
}

/// The text of the element with this id ('' while it is missing).
fn text_of(id: &str) -> String {
    format!("(document.getElementById({})?.textContent ?? '')", js(id))
}

/// Clicks the link whose text is `text` (waiting for it first), as a reader would.
async fn follow(page: &Page, text: &str) {
    let find = format!(
        "[...document.querySelectorAll('a')].find((a) => a.textContent === {})",
        js(text)
    );
    page.wait_for(&format!("a link '{text}'"), &find, WAIT)
        .await;
    page.eval(&format!("{find}.click()")).await;
}

/// The route `extra`: `/extra` on its own host, to `svc-a`; `broken`: a regex whose RE2
/// program is over Envoy's limit (about 300 instructions; Envoy allows 100), which the server
/// accepts and Envoy rejects.
fn extra(broken: bool) -> Value {
    let path = if broken {
        json!({ "regex": "/[a-z]{300}" })
    } else {
        json!({ "prefix": "/extra" })
    };
    json!({ "hosts": ["extra.example.com"],
            "rules": [{ "match": { "path": path }, "destinations": [{ "service": "svc-a" }] }] })
}

#[tokio::test]
async fn the_console_follows_a_proxy_from_synced_to_nacked_and_back() {
    let Some(browser) = Browser::shared() else {
        return;
    };
    let Some(mut stage) = Stage::new(DataPlane::Envoy, Variant::Sotw, Backend::Sqlite).await else {
        return;
    };
    let a = Upstream::start("a");
    stage.serve("svc-a", &a).await;
    stage.cp.put("/api/v1/routes/extra", extra(false)).await;
    stage.listener(&["main", "extra"]).await;
    let node = stage.node_id.clone();

    let page = browser.open(&stage.cp.url("/ui/#/proxies")).await;
    page.wait_for(
        "the proxy SYNCED on every type",
        &row_is(&node, "SYNCED", "SYNCED"),
        WAIT,
    )
    .await;
    // Set once; still there at the end only if the page was never loaded again.
    page.eval("window.sameDocument = 'never reloaded'").await;

    // Broken: Envoy rejects the route configuration; the page shows it on its own.
    stage.cp.put("/api/v1/routes/extra", extra(true)).await;
    page.wait_for(
        "RDS NACKED in the proxy's row",
        &row_is(&node, "SYNCED", "NACKED"),
        WAIT,
    )
    .await;
    let rejections = page
        .wait_for(
            "Envoy's message under Rejections",
            &format!(
                "((t) => t.includes({node}) && t.includes('RE2 program size') && t)({})",
                text_of("rejections"),
                node = js(&node)
            ),
            WAIT,
        )
        .await;
    assert!(
        rejections.as_str().unwrap_or_default().contains("NACKED"),
        "{rejections}"
    );
    page.wait_for(
        "the change announced to screen readers",
        &format!("{}.includes('RDS is now NACKED')", text_of("announce")),
        WAIT,
    )
    .await;

    // The proxy's own page: the state per type, the message, and the config it is sent.
    follow(&page, &node).await;
    page.wait_for(
        "RDS NACKED with Envoy's message on the proxy's page",
        "[...document.querySelectorAll('tbody tr')].some((r) => r.cells[0].textContent === 'RDS' \
           && r.cells[1].textContent === 'NACKED' && r.cells[5].textContent.includes('RE2 program size'))",
        WAIT,
    )
    .await;
    page.wait_for(
        "the config sent to it, one block per resource",
        "[...document.querySelectorAll('details summary')].some((s) => s.textContent.startsWith('svc-a'))",
        WAIT,
    )
    .await;

    // The route's own page, reached through links: the rejection, in Envoy's words, on it.
    follow(&page, "Routes").await;
    follow(&page, "extra").await;
    let status = page
        .wait_for(
            "the rejection on the route's page",
            &format!(
                "((t) => t.includes({node}) && t.includes('RE2 program size') && t)({})",
                text_of("status-rejections"),
                node = js(&node)
            ),
            WAIT,
        )
        .await;
    assert!(
        status.as_str().unwrap_or_default().contains("RDS"),
        "{status}"
    );
    page.wait_for(
        "nobody running extra's current version",
        &format!(
            "{}.includes('1 proxy fetch') && {0}.includes('0 accepted')",
            text_of("status-counts")
        ),
        WAIT,
    )
    .await;

    // Fixed: the rejection goes from the route's page, then the proxy is SYNCED again.
    stage.cp.put("/api/v1/routes/extra", extra(false)).await;
    page.wait_for(
        "the rejection gone from the route's page",
        &format!(
            "{}.includes('No proxy rejects it') && {}.includes('1 accepted')",
            text_of("status-rejections"),
            text_of("status-counts")
        ),
        WAIT,
    )
    .await;
    follow(&page, "Proxies").await;
    page.wait_for(
        "the proxy SYNCED again",
        &row_is(&node, "SYNCED", "SYNCED"),
        WAIT,
    )
    .await;
    page.wait_for(
        "no rejections listed",
        &format!(
            "{}.includes('No proxy rejects anything')",
            text_of("rejections")
        ),
        WAIT,
    )
    .await;

    assert_eq!(
        page.eval("window.sameDocument").await,
        "never reloaded",
        "every change arrived without a reload"
    );
    assert_eq!(page.errors(), Vec::<String>::new(), "JavaScript errors");
}

/// A server of its own (no proxy needed) with `args` beside its SQLite file.
fn server_in(dir: &tempfile::TempDir, args: &[&str]) -> Server {
    let db = dir.path().join("mesh.db").display().to_string();
    let mut all = vec!["--sqlite-file", db.as_str()];
    all.extend(args);
    Server::start(&all, &[])
}

#[tokio::test]
async fn the_console_asks_for_the_admin_token_once_per_session() {
    let Some(browser) = Browser::shared() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-console-token\n").unwrap();
    let server = server_in(&dir, &["--admin-token-file", token_file.to_str().unwrap()]);

    // The page and its scripts load without a token; the API asks for one.
    let page = browser.open(&server.url("/ui/")).await;
    page.wait_for(
        "the token prompt, focused",
        "document.activeElement?.id === 'token'",
        WAIT,
    )
    .await;

    // A wrong token: refused, and asked again.
    page.type_text("not-the-token").await;
    page.press(Key::Enter).await;
    page.wait_for(
        "the refusal",
        &format!(
            "{}.includes('refused') && document.activeElement?.id === 'token'",
            text_of("token-refused")
        ),
        WAIT,
    )
    .await;

    // The right one: the proxies page, in this tab's session only, never in the address.
    page.type_text("s3cret-console-token").await;
    page.press(Key::Enter).await;
    page.wait_for(
        "the proxies page",
        "document.body.innerText.includes('No proxy is connected')",
        WAIT,
    )
    .await;
    assert_eq!(
        page.eval("sessionStorage.getItem('xds-console.admin-token')")
            .await,
        "s3cret-console-token"
    );
    assert_eq!(
        page.eval("localStorage.length").await,
        0,
        "nothing kept past the session"
    );
    let href = page.eval("location.href").await;
    assert!(!href.as_str().unwrap().contains("s3cret"), "{href}");

    // Loaded again in the same tab: not asked again.
    page.reload().await;
    page.wait_for(
        "the proxies page after a reload",
        "document.body.innerText.includes('No proxy is connected') && !document.getElementById('token')",
        WAIT,
    )
    .await;
    assert_eq!(page.errors(), Vec::<String>::new(), "JavaScript errors");
}

#[tokio::test]
async fn the_main_navigation_works_from_the_keyboard() {
    let Some(browser) = Browser::shared() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = server_in(&dir, &[]);
    let http = integration::net::local_client();
    let put = |path: &str, body: Value| {
        let request = http.put(server.url(path)).json(&body).send();
        async move {
            let r = request.await.expect("PUT");
            assert!(
                r.status().is_success(),
                "{}",
                r.text().await.unwrap_or_default()
            );
        }
    };
    put(
        "/api/v1/services/svc-a",
        json!({ "protocol": "http", "connect_timeout": "1s" }),
    )
    .await;
    put(
        "/api/v1/routes/main",
        json!({ "hosts": ["*"], "rules": [{ "match": { "path": { "prefix": "/" } },
                                            "destinations": [{ "service": "svc-a" }] }] }),
    )
    .await;

    let page = browser.open(&server.url("/ui/")).await;
    page.wait_for(
        "the proxies page",
        "document.body.innerText.includes('No proxy is connected')",
        WAIT,
    )
    .await;

    // The first Tab reaches the skip link, then the navigation, each with a visible focus ring.
    page.press(Key::Tab).await;
    assert_eq!(page.eval("document.activeElement.id").await, "skip");
    let mut reached = false;
    for _ in 0..10 {
        page.press(Key::Tab).await;
        if page.eval("document.activeElement.textContent").await == "Routes" {
            reached = true;
            break;
        }
    }
    assert!(
        reached,
        "Tab never reached the Routes link: {}",
        page.describe().await
    );
    let ring = page
        .eval("getComputedStyle(document.activeElement).outlineStyle")
        .await;
    assert_ne!(ring, "none", "the focused link shows a focus ring");

    // Enter follows it: the routes page, its heading focused, the link marked current.
    page.press(Key::Enter).await;
    page.wait_for(
        "the routes page with its heading focused",
        "location.hash === '#/routes' && document.activeElement?.tagName === 'H1' \
         && document.activeElement.textContent === 'Routes'",
        WAIT,
    )
    .await;
    assert_eq!(
        page.eval("document.querySelector('nav a[aria-current=page]').textContent")
            .await,
        "Routes"
    );

    // From the heading, Tab reaches the route's link and Enter opens its page.
    page.wait_for(
        "the route listed",
        "document.querySelector('a[href=\"#/routes/main\"]')",
        WAIT,
    )
    .await;
    page.press(Key::Tab).await;
    assert_eq!(
        page.eval("document.activeElement.getAttribute('href')")
            .await,
        "#/routes/main"
    );
    page.press(Key::Enter).await;
    page.wait_for(
        "the route's page, heading focused, with its status",
        &format!(
            "document.activeElement?.textContent === 'Route main' && {}.includes('No proxy rejects it')",
            text_of("status-rejections")
        ),
        WAIT,
    )
    .await;
    assert_eq!(page.errors(), Vec::<String>::new(), "JavaScript errors");
}

#[tokio::test]
async fn the_service_page_shows_golden_metrics_under_real_traffic() {
    let Some(browser) = Browser::shared() else {
        return;
    };
    let Some(mut stage) = Stage::new(DataPlane::Envoy, Variant::Sotw, Backend::Sqlite).await else {
        return;
    };
    let (status, body) = stage.cp.get("/api/v1/services/none/stats").await;
    if status == 404
        && body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no such API path")
    {
        integration::announce_skip(
            "golden metrics",
            "this server has no /api/v1/services/{name}/stats",
        );
        return;
    }
    let a = Upstream::start("a");
    stage.serve("svc-a", &a).await;
    let page = browser.open(&stage.cp.url("/ui/#/services/svc-a")).await;
    page.wait_for(
        "the service page",
        &format!(
            "{}.includes('127.0.0.1:{}')",
            "document.body.innerText",
            a.port()
        ),
        WAIT,
    )
    .await;

    // Real traffic through Envoy, bounded in count and time, while the page is watched.
    let port = stage.listener_port;
    let traffic = tokio::spawn(async move {
        let client = integration::net::local_client();
        for _ in 0..2000 {
            let _ = client
                .get(format!("http://127.0.0.1:{port}/golden"))
                .send()
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let tile = |metric: &str| {
        format!(
            "(document.querySelector('[data-window=\"1m\"] [data-metric={}] .value')?.textContent ?? '')",
            js(metric)
        )
    };
    let shown = page
        .wait_for(
            "a non-zero request rate and a 100 % success rate over the last minute",
            &format!(
                "((rps, ok) => /^[0-9.]+\\/s$/.test(rps) && parseFloat(rps) > 0 && ok === '100 %' && [rps, ok])({}, {})",
                tile("rps"),
                tile("success")
            ),
            Duration::from_secs(60),
        )
        .await;
    traffic.abort();
    assert!(a.hits() > 0, "the upstream answered the traffic");
    // The proxy that called it is listed with its own figures.
    page.wait_for(
        "the calling proxy listed",
        &format!(
            "document.getElementById('golden-metrics').textContent.includes({})",
            js(&stage.node_id)
        ),
        WAIT,
    )
    .await;
    eprintln!("the service page showed {shown}");
    assert_eq!(page.errors(), Vec::<String>::new(), "JavaScript errors");
}

#[tokio::test]
async fn the_tap_page_streams_requests_as_they_happen() {
    let Some(browser) = Browser::shared() else {
        return;
    };
    let Some(mut stage) = Stage::new(DataPlane::Envoy, Variant::Sotw, Backend::Sqlite).await else {
        return;
    };
    // A tap endpoint refuses a bad filter (400); a server without one answers 404.
    let (status, _) = stage.cp.get("/api/v1/tap?status=bogus").await;
    if status == 404 {
        integration::announce_skip("the live tap", "this server has no /api/v1/tap");
        return;
    }
    let a = Upstream::start("a");
    stage.serve("svc-a", &a).await;
    let page = browser.open(&stage.cp.url("/ui/#/tap")).await;

    // The filters are typed and the tap started from the keyboard.
    page.wait_for(
        "the tap form",
        "document.getElementById('tap-service')",
        WAIT,
    )
    .await;
    page.eval("document.getElementById('tap-service').focus()")
        .await;
    page.type_text("svc-a").await;
    page.press(Key::Enter).await;
    page.wait_for(
        "the tap open",
        &format!("{}.startsWith('Tapping')", text_of("tap-state")),
        WAIT,
    )
    .await;

    // Requests through Envoy until one shows (the access log switches on with the next push).
    let port = stage.listener_port;
    let traffic = tokio::spawn(async move {
        let client = integration::net::local_client();
        for i in 0..1000 {
            let url = format!("http://127.0.0.1:{port}/tapped/{i}");
            let _ = client.get(url).send().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let row = page
        .wait_for(
            "a tapped request in the table",
            "[...document.querySelectorAll('#tap-rows tbody tr')]
               .map((r) => [...r.cells].map((c) => c.textContent))
               .find((c) => c[4].startsWith('/tapped/') && c[5] === '200')",
            WAIT,
        )
        .await;
    traffic.abort();
    assert_eq!(row[1], stage.node_id.as_str(), "the proxy: {row}");
    assert_eq!(row[2], "GET", "{row}");
    assert_eq!(
        row[7],
        format!("127.0.0.1:{}", a.port()),
        "the upstream: {row}"
    );

    // Stop closes the stream.
    page.eval("document.getElementById('tap-stop').click()")
        .await;
    page.wait_for(
        "the tap stopped",
        &format!("{}.startsWith('Stopped')", text_of("tap-state")),
        WAIT,
    )
    .await;
    assert_eq!(page.errors(), Vec::<String>::new(), "JavaScript errors");
}

#[tokio::test]
async fn a_hidden_page_stops_polling_and_catches_up_when_shown() {
    let Some(browser) = Browser::shared() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = server_in(&dir, &[]);
    let page = browser.open(&server.url("/ui/#/services")).await;
    page.wait_for(
        "the services page",
        "document.body.innerText.includes('No services yet')",
        WAIT,
    )
    .await;
    let api_requests = "performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/')).length";

    page.set_minimized(true).await;
    page.wait_for(
        "polling paused",
        &format!(
            "document.hidden && {}.startsWith('Paused')",
            text_of("conn")
        ),
        WAIT,
    )
    .await;
    let before = page.eval(api_requests).await;
    // A change while hidden, then an observation window of three poll intervals (1.5 s
    // each): a negative can only be seen over time.
    let http = integration::net::local_client();
    let created = http
        .put(server.url("/api/v1/services/svc-hidden"))
        .json(&json!({ "protocol": "http" }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(
        page.eval(api_requests).await,
        before,
        "no request while hidden"
    );
    assert!(
        !page
            .eval("document.body.innerText")
            .await
            .as_str()
            .unwrap()
            .contains("svc-hidden")
    );

    // Shown again: it polls at once and shows the change.
    page.set_minimized(false).await;
    page.wait_for(
        "the change shown after the page is visible again",
        &format!("!document.hidden && {}.startsWith('Live') && document.body.innerText.includes('svc-hidden')", text_of("conn")),
        WAIT,
    )
    .await;
    assert_eq!(page.errors(), Vec::<String>::new(), "JavaScript errors");
}
