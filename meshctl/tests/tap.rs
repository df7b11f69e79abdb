//! `meshctl tap` against the real server and a real minimal-proxy in front of a real
//! upstream: the requests a filter matches, as JSON lines and as one-line summaries, exiting
//! after `--count`; a bad filter is the server's 400, exit 1.

mod support;

use std::{
    io::Read,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use integration::{
    net::{POLL, free_port, send},
    proxy::{DataPlane, Proxy, access_logs},
    upstream::Upstream,
};
use serde_json::Value;
use support::{Env, WAIT};

const NODE: &str = "edge-1";

#[tokio::test]
async fn tap_prints_the_matching_requests_of_a_real_proxy() {
    let env = Env::start();
    let a = Upstream::start("a");
    let port = free_port();
    let mesh = format!(
        "kind: service\nname: web\nprotocol: http\n---\n\
         kind: endpoints\nname: web\nendpoints: [{{ address: 127.0.0.1, port: {} }}]\n---\n\
         kind: route\nname: web\nhosts: ['*']\n\
         rules: [{{ match: {{ path: {{ prefix: / }} }}, destinations: [{{ service: web }}] }}]\n---\n\
         kind: listener\nname: ingress\naddress: 127.0.0.1\nport: {port}\nprotocol: http\n\
         routes: [web]\n",
        a.port()
    );
    env.meshctl(&["apply", "-f", &env.file("mesh.yaml", &mesh)])
        .ok();
    let admin_port = free_port().to_string();
    let run = env.meshctl(&["bootstrap", NODE, "--admin-port", &admin_port]);
    let proxy = Proxy::start(DataPlane::Minimal, &run.ok().stdout);
    proxy.wait_ready(WAIT).await;

    // A bad filter: the server's 400, named, exit 1; nothing opened.
    let run = env.meshctl(&["tap", "--status", "6xx"]);
    assert!(
        run.code(1)
            .stderr
            .contains("400 invalid_query (field status)"),
        "{run}"
    );

    // JSON lines: the two /api requests, then meshctl exits by itself.
    let json = Background::start(
        &env,
        &["tap", "--path-prefix", "/api", "--count", "2", "-o", "json"],
    );
    // Each tap is open once the proxy runs its access log: first filtered on /api, then
    // (the second tap wanting every request of the node) unfiltered.
    wait_for_access_log(&proxy, "filtered on /api", |log| {
        log.contains("header_filter")
    })
    .await;
    let summary = Background::start(&env, &["tap", "--node-id", NODE, "--count", "1"]);
    wait_for_access_log(&proxy, "unfiltered", |log| !log.contains("header_filter")).await;
    let client = || {
        reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    for path in ["/web/1", "/api/2", "/api/3"] {
        let reply = send(&client(), port, path, &[]).await.unwrap();
        assert!(reply.from("a"), "{path}: {reply:?}");
    }

    let (stdout, stderr) = json.finish();
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let paths: Vec<&str> = events.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/api/2", "/api/3"], "{stdout}");
    assert_eq!(events[0]["node_id"], NODE);
    assert_eq!(events[0]["status"], 200);
    assert_eq!(events[0]["service"], "web");
    assert_eq!(events[0]["route"], "web");
    assert!(stderr.contains("path_prefix=/api"), "{stderr}");

    let (stdout, _) = summary.finish();
    let want = format!("{NODE} GET 127.0.0.1:{port}/web/1 200 ");
    assert!(stdout.contains(&want), "{stdout:?} has no {want:?}");
    assert!(
        stdout.trim_end().ends_with("route=web service=web"),
        "{stdout:?}"
    );
    drop(proxy);
}

/// Until the proxy's own config dump has the tap's access log, and it is `what`.
async fn wait_for_access_log(proxy: &Proxy, what: &str, accept: impl Fn(&str) -> bool) {
    let what = format!("the tap's access log {what}");
    proxy
        .wait_for(&what, WAIT, |dump| {
            let text = Value::Array(access_logs(dump)).to_string();
            text.contains("envoy.access_loggers.http_grpc") && accept(&text)
        })
        .await;
}

/// meshctl running in the background (it ends by itself after `--count`).
struct Background {
    child: Child,
}

impl Background {
    fn start(env: &Env, args: &[&str]) -> Background {
        let mut all = vec!["--server", env.server.admin_url.as_str()];
        all.extend_from_slice(args);
        let child = support::command(&all, &[], env.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run meshctl");
        Background { child }
    }

    /// Waits (at most [`WAIT`]) for it to exit 0; its stdout and stderr.
    fn finish(mut self) -> (String, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "meshctl tap did not exit within {WAIT:?}: {}",
                    self.output().1
                );
            }
            std::thread::sleep(POLL);
        };
        let (stdout, stderr) = self.output();
        assert!(status.success(), "{status}\n{stdout}\n{stderr}");
        (stdout, stderr)
    }

    fn output(&mut self) -> (String, String) {
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut stdout);
        }
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut stderr);
        }
        (stdout, stderr)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
