//! Mesh security end to end across real network boundaries: each service on its own host (a
//! network namespace on a private bridge, see `integration::netns`) with its application
//! beside its sidecar, the real xds-server with the built-in CA in the root namespace (its xDS
//! port over TLS, proxies authenticated by tokens), every call crossing the bridge.
//!
//! - Strict mTLS between hosts: a call succeeds and the application sees the caller's SPIFFE
//!   ID; on the wire, a capture on the server's interface shows only TLS records for the call
//!   (and a refused plaintext request in the clear), and `openssl s_client` from a third host
//!   gets a certificate that verifies against the mesh's trust bundle, names
//!   `spiffe://mesh.local/service/web`, and is asked for a client certificate; a plaintext
//!   client is refused; a deny permission answers 403 to its pair while another caller still
//!   gets 200; a shadow deny lets the call through and counts it.
//! - Certificate rotation (short TTL) under a steady stream of connections, each a new mTLS
//!   handshake: both sides' certificates renew, no request is lost.
//! - A mesh denying by default: only the pair an allow permission names gets through.
//! - TCP over mTLS: a deny for a pair closes its connections; another caller still gets
//!   through.
//! - Authenticated xDS (`--xds-auth required`): no token or a forged one is refused, a token
//!   cannot be used by another service's node, a sidecar asking for another service's
//!   certificate gets nothing for it, and revoking a token ends the live stream.
//!
//! The data plane is a parameter for each side (client, server): every scenario runs on
//! Envoy and on minimal-proxy, the HTTP and rotation ones on the mixed pairs too. Skips (loudly) without root and `ip`, or without Envoy; fails under
//! `CI=true` instead.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use integration::{
    net::{POLL, free_port},
    netns::{Host, Network},
    proxy::{DataPlane, Proxy},
    server::Server,
};
use serde_json::{Value, json};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(30);
/// Ports inside every host (each namespace has its own port space).
const INBOUND: u16 = 15006;
const OUTBOUND: u16 = 15001;
const PROXY_ADMIN: u16 = 9901;
const BUNDLE: &str = "mesh-trust-bundle";
const SECRET_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

fn spiffe(service: &str) -> String {
    format!("spiffe://mesh.local/service/{service}")
}

/// The data plane on each side of a call.
#[derive(Debug, Clone, Copy)]
struct Pair {
    client: DataPlane,
    server: DataPlane,
}

/// The test network and the control plane in the root namespace, reachable from every host
/// at the network's gateway address.
struct Mesh {
    server: Server,
    http: reqwest::Client,
    dir: TempDir,
    // Last: the network goes after the server that listens on it.
    net: Network,
}

/// A service's host: its namespace with its application (an echo upstream `<name>-app` on the
/// host's 127.0.0.1, behind the sidecar's inbound on [`INBOUND`]).
struct Node {
    service: String,
    host: Host,
}

impl Mesh {
    /// Starts the server with the built-in CA, TLS on its xDS port (the streams cross the
    /// bridge as between real hosts) and `extra` flags; or `None` (after saying why) when a
    /// data plane in `planes` or network namespaces are unavailable.
    fn start(extra: &[&str], planes: &[DataPlane]) -> Option<Mesh> {
        if planes.iter().any(|p| p.binary().is_none()) {
            return None;
        }
        let net = Network::create()?;
        let dir = tempfile::tempdir().unwrap();
        let xds = SocketAddr::from((net.gateway(), free_port())).to_string();
        // The address the sidecars reach the xDS port by, for the serving certificate's SAN.
        let xds_san = net.gateway().to_string();
        let db = dir.path().join("mesh.db").display().to_string();
        let mut args = vec!["--xds-addr", &xds, "--sqlite-file", &db];
        args.extend_from_slice(&["--poll-interval", "100ms"]);
        args.extend_from_slice(&["--ca", "builtin", "--xds-tls", "builtin"]);
        args.extend_from_slice(&["--xds-tls-san", &xds_san]);
        args.extend_from_slice(extra);
        let server = Server::start(&args, &[]);
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Some(Mesh {
            server,
            http,
            dir,
            net,
        })
    }

    async fn put(&self, path: &str, body: Value) {
        let r = self.http.put(self.server.url(path)).json(&body);
        let r = r.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "PUT {path}: {status} {text}");
    }

    /// Status and JSON body (`Null` when not JSON).
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.server.url(path)).send();
        let r = r.await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A host for `service` with its application, and the service declared with an inbound
    /// (every address on the host, [`INBOUND`]) and `mtls`, reached at the host's address.
    async fn service(&self, service: &str, protocol: &str, mtls: &str) -> Node {
        let host = self.net.host(service);
        let app_port = host.upstream(&format!("{service}-app"));
        self.put(
            &format!("/api/v1/services/{service}"),
            json!({ "protocol": protocol, "mtls": mtls, "connect_timeout": "1s",
                    "inbound": { "address": "0.0.0.0", "port": INBOUND, "app_port": app_port } }),
        )
        .await;
        self.put(
            &format!("/api/v1/services/{service}/endpoints"),
            json!({ "endpoints": [ { "address": host.addr().to_string(), "port": INBOUND } ] }),
        )
        .await;
        Node {
            service: service.to_string(),
            host,
        }
    }

    /// An outbound listener on `caller`'s host, [`OUTBOUND`] on every address, to service `to`
    /// (HTTP through a route, or TCP).
    async fn outbound(&self, caller: &Node, to: &str, protocol: &str) {
        let name = format!("{}-to-{to}", caller.service);
        let mut listener = json!({ "address": "0.0.0.0", "port": OUTBOUND, "protocol": protocol,
                                   "selector": { "node_cluster": caller.service } });
        if protocol == "tcp" {
            listener["service"] = json!(to);
        } else {
            self.put(
                &format!("/api/v1/routes/to-{to}"),
                json!({ "hosts": ["*"], "rules": [ { "destinations": [ { "service": to } ] } ] }),
            )
            .await;
            listener["routes"] = json!([format!("to-{to}")]);
        }
        self.put(&format!("/api/v1/listeners/{name}"), listener)
            .await;
    }

    /// The bootstrap of `node`'s sidecar (node id `<service>-1`), with a new proxy token when
    /// `token`; and the token's id.
    async fn bootstrap(&self, node: &Node, token: bool) -> (Value, Option<String>) {
        let mut path = format!(
            "/api/v1/bootstrap?node_id={0}-1&cluster={0}&admin_port={PROXY_ADMIN}",
            node.service
        );
        if token {
            path.push_str("&token=issue");
        }
        let r = self.http.get(self.server.url(&path)).send();
        let r = r.await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        let id = r
            .headers()
            .get("x-proxy-token-id")
            .map(|v| v.to_str().unwrap().to_string());
        (serde_json::from_str(&r.text().await.unwrap()).unwrap(), id)
    }

    /// `plane` started on `node`'s host with `bootstrap`, its admin API on the host's address
    /// (where the test reaches it).
    fn sidecar(&self, node: &Node, plane: DataPlane, bootstrap: &Value) -> Proxy {
        let mut bootstrap = bootstrap.clone();
        bootstrap["admin"]["address"]["socket_address"]["address"] =
            json!(node.host.addr().to_string());
        Proxy::start_in(plane, &bootstrap.to_string(), &node.host.prefix())
    }

    /// [`Mesh::sidecar`] with its own token, once it has its configuration (`/ready`).
    async fn ready_sidecar(&self, node: &Node, plane: DataPlane) -> Proxy {
        let proxy = self.sidecar(node, plane, &self.bootstrap(node, true).await.0);
        proxy.wait_ready(WAIT).await;
        proxy
    }

    /// Whether node `node_id` has a live xDS stream.
    async fn connected(&self, node_id: &str) -> bool {
        self.get(&format!("/api/v1/proxies/{node_id}")).await.0 == 200
    }

    /// Polls the server's log until a line contains every one of `parts` (about `proxy`).
    async fn wait_logged(&mut self, proxy: &Proxy, parts: &[&str]) {
        let deadline = Instant::now() + WAIT;
        while !self
            .server
            .logs()
            .iter()
            .any(|l| parts.iter().all(|p| l.contains(p)))
        {
            if Instant::now() > deadline {
                let logs = self.server.logs();
                let tail = logs[logs.len().saturating_sub(20)..].join("\n");
                proxy.fail(&format!(
                    "the server never logged {parts:?}; its last lines:\n{tail}\n"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The trust bundle the server sends `node_id` (from its proxy-config view), written to a
    /// file for `openssl -CAfile`.
    async fn bundle_file(&self, node_id: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let pem = loop {
            let (_, config) = self.get(&format!("/api/v1/proxies/{node_id}/config")).await;
            let pem = config[SECRET_TYPE][BUNDLE]["resource"]["validation_context"]["trusted_ca"]
                ["inline_string"]
                .as_str()
                .map(str::to_string);
            match pem {
                Some(pem) => break pem,
                None if Instant::now() > deadline => panic!("{node_id} has no bundle: {config}"),
                None => tokio::time::sleep(POLL).await,
            }
        };
        let path = self.dir.path().join("bundle.pem");
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    }

    /// The names of the secrets the server sends `node_id`.
    async fn secret_names(&self, node_id: &str) -> Vec<String> {
        let (_, config) = self.get(&format!("/api/v1/proxies/{node_id}/config")).await;
        config[SECRET_TYPE]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// One GET: status and the echo's JSON (`Null` when the proxy answered itself), or why no
/// HTTP answer came.
async fn call(client: &reqwest::Client, url: &str) -> Result<(u16, Value), String> {
    let r = client.get(url).send().await.map_err(|e| format!("{e:?}"))?;
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

/// A client for calls into the hosts: bounded, no proxy from the environment; a new
/// connection per request when `fresh`.
fn client(fresh: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5));
    if fresh {
        builder = builder.pool_max_idle_per_host(0);
    }
    builder.build().unwrap()
}

/// Calls `url` (a new connection each time: a TCP listener decides per connection) until
/// `accept` takes the answer or [`WAIT`] ends; the accepted answer.
async fn wait_call(
    url: &str,
    what: &str,
    accept: impl Fn(&Result<(u16, Value), String>) -> bool,
) -> Result<(u16, Value), String> {
    let client = client(true);
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = call(&client, url).await;
        if accept(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what}: last answer {answer:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// A 200 from the application `<service>-app`.
fn from_app(service: &str) -> impl Fn(&Result<(u16, Value), String>) -> bool {
    let app = format!("{service}-app");
    move |a| matches!(a, Ok((200, echo)) if echo["upstream"] == app.as_str())
}

/// What a TLS client on `from` sees at `to`.
struct TlsPeer {
    /// The chain verified against the bundle.
    verified: bool,
    /// The server sent a CertificateRequest (it wants a client certificate).
    asked_for_client_cert: bool,
    serial: String,
    /// `openssl x509 -ext subjectAltName` of the peer certificate.
    san: String,
    output: String,
}

/// `openssl s_client` inside `from` to `to`, verifying against `bundle`.
fn tls_peer(from: &Host, to: SocketAddr, bundle: &str) -> TlsPeer {
    let connect = to.to_string();
    let args = [
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        bundle,
        "-verify_return_error",
    ];
    let output = match from.run("openssl", &args, b"", Duration::from_secs(10)) {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => e,
    };
    let x509 = |args: &[&str]| -> String {
        from.run("openssl", args, output.as_bytes(), Duration::from_secs(10))
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    TlsPeer {
        verified: output.contains("Verify return code: 0 (ok)"),
        asked_for_client_cert: output.contains("client certificate CA names"),
        serial: x509(&["x509", "-noout", "-serial"]),
        san: x509(&["x509", "-noout", "-ext", "subjectAltName"]),
        output,
    }
}

/// Polls [`tls_peer`] until the chain verifies and a certificate came.
async fn wait_tls(from: &Host, to: SocketAddr, bundle: &str) -> TlsPeer {
    let deadline = Instant::now() + WAIT;
    loop {
        let peer = tokio::task::block_in_place(|| tls_peer(from, to, bundle));
        if peer.verified && !peer.serial.is_empty() {
            return peer;
        }
        assert!(
            Instant::now() < deadline,
            "no verified TLS handshake from {} to {to}:\n{}",
            from.name(),
            peer.output
        );
        tokio::time::sleep(POLL).await;
    }
}

fn at(node: &Node, port: u16) -> SocketAddr {
    SocketAddr::from((node.host.addr(), port))
}

fn url(addr: Ipv4Addr, port: u16, path: &str) -> String {
    format!("http://{addr}:{port}{path}")
}

/// Strict mTLS between three hosts (web serves; api and ops call it), on the wire and with
/// permissions; a fourth host probes.
async fn strict_mtls_across_hosts(pair: Pair) {
    let Some(mesh) = Mesh::start(&[], &[pair.client, pair.server]) else {
        return;
    };
    let web = mesh.service("web", "http", "strict").await;
    let api = mesh.service("api", "http", "strict").await;
    let ops = mesh.service("ops", "http", "strict").await;
    let probe = mesh.net.host("probe");
    mesh.outbound(&api, "web", "http").await;
    mesh.outbound(&ops, "web", "http").await;
    let web_proxy = mesh.ready_sidecar(&web, pair.server).await;
    let _api_proxy = mesh.ready_sidecar(&api, pair.client).await;
    let _ops_proxy = mesh.ready_sidecar(&ops, pair.client).await;

    // From the test (outside every host) through api's sidecar to web's application.
    let via_api = url(api.host.addr(), OUTBOUND, "/call");
    let (_, echo) = wait_call(&via_api, "api → web over mTLS", from_app("web"))
        .await
        .unwrap();
    let xfcc = echo["headers"]["x-forwarded-client-cert"].to_string();
    assert!(
        xfcc.contains(&format!("URI={}", spiffe("api"))),
        "web's application sees the caller's SPIFFE ID: {echo}"
    );
    // From api's own host, as its application would call: 127.0.0.1 beside the sidecar.
    let inside = format!("http://127.0.0.1:{OUTBOUND}/inside");
    let curl = |host: &Host, args: &[&str]| {
        tokio::task::block_in_place(|| host.run("curl", args, b"", WAIT).unwrap())
    };
    let out = curl(&api.host, &["-s", "-m", "5", &inside]);
    let echo: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        echo["upstream"], "web-app",
        "curl inside api's host: {out:?}"
    );

    // The wire: TLS on web's inbound, its SPIFFE certificate, and a demand for a client one.
    let bundle = mesh.bundle_file("web-1").await;
    let peer = wait_tls(&probe, at(&web, INBOUND), &bundle).await;
    assert!(
        peer.san.contains(&format!("URI:{}", spiffe("web"))),
        "the inbound's certificate names web: {}",
        peer.san
    );
    assert!(
        peer.asked_for_client_cert,
        "a strict inbound asks for a client certificate:\n{}",
        peer.output
    );

    // Between the hosts: what web's eth0 carries on the inbound port is TLS records, never the
    // request; a plaintext client's request shows in the same capture (it is refused).
    if let Some(capture) = web.host.capture("eth0", INBOUND) {
        let secret_path = "/over-mtls-7f3a";
        let (_, echo) = wait_call(
            &url(api.host.addr(), OUTBOUND, secret_path),
            "a call while capturing",
            from_app("web"),
        )
        .await
        .unwrap();
        assert_eq!(echo["path"], secret_path);
        let plain_path = "/in-the-clear-7f3a";
        let refused = call(&client(true), &url(web.host.addr(), INBOUND, plain_path)).await;
        assert!(refused.is_err(), "plaintext to strict: {refused:?}");
        let segments = capture.finish();
        let wire: Vec<u8> = segments.iter().flat_map(|s| s.payload.clone()).collect();
        let seen = |needle: &[u8]| wire.windows(needle.len()).any(|w| w == needle);
        assert!(
            seen(plain_path.as_bytes()),
            "the capture sees plaintext when there is some ({} segments)",
            segments.len()
        );
        assert!(
            !seen(secret_path.as_bytes()) && !seen(b"x-forwarded-client-cert"),
            "the call between the sidecars crossed the wire in the clear"
        );
        // TLS 1.2+ application data records (type 23, version 3.3) carried the call.
        assert!(
            seen(&[0x17, 0x03, 0x03]),
            "no TLS application data on the wire"
        );
    }

    // Plaintext to the strict inbound gets no HTTP answer, from the test or from a host.
    let plain = url(web.host.addr(), INBOUND, "/plain");
    let answer = call(&client(true), &plain).await;
    assert!(answer.is_err(), "plaintext to strict: {answer:?}");
    let out = curl(
        &probe,
        &[
            "-s",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &plain,
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000", "{out:?}");

    // Deny ops → web: ops gets 403 from web's sidecar, api still gets through.
    mesh.put(
        "/api/v1/traffic-permissions/deny-ops",
        json!({ "from": ["ops"], "to": "web", "action": "deny" }),
    )
    .await;
    let via_ops = url(ops.host.addr(), OUTBOUND, "/call");
    let (_, _) = wait_call(&via_ops, "the denied pair", |a| matches!(a, Ok((403, _))))
        .await
        .unwrap();
    wait_call(&via_api, "the allowed pair", from_app("web"))
        .await
        .unwrap();

    // A shadow deny for api only counts.
    mesh.put(
        "/api/v1/traffic-permissions/watch-api",
        json!({ "from": ["api"], "to": "web", "action": "deny", "shadow": true }),
    )
    .await;
    let stat = "http.inbound|web.rbac.watch-api.shadow_denied";
    let deadline = Instant::now() + WAIT;
    loop {
        wait_call(&via_api, "shadow lets the call through", from_app("web"))
            .await
            .unwrap();
        if web_proxy.stat(stat).await.unwrap_or(0) > 0 {
            break;
        }
        if Instant::now() > deadline {
            let rbac = web_proxy.stats_matching(&["rbac"]).await;
            web_proxy.fail(&format!("{stat} never counted; rbac stats:\n{rbac}"));
        }
        tokio::time::sleep(POLL).await;
    }
    // Still denied for ops, which the shadow rule does not name.
    let answer = call(&client(false), &via_ops).await;
    assert!(matches!(answer, Ok((403, _))), "{answer:?}");
}

/// With a 6 s certificate TTL (renewed every 3 s), a steady stream of TCP connections from api
/// to web, each a new mTLS handshake, loses none while web's served certificate changes twice
/// and the first certificates expire.
async fn rotation_loses_no_request(pair: Pair) {
    const TTL: Duration = Duration::from_secs(6);
    let flags = ["--workload-cert-ttl", "6s"];
    let Some(mesh) = Mesh::start(&flags, &[pair.client, pair.server]) else {
        return;
    };
    let web = mesh.service("web", "tcp", "strict").await;
    let api = mesh.service("api", "tcp", "strict").await;
    let probe = mesh.net.host("probe");
    mesh.outbound(&api, "web", "tcp").await;
    let web_proxy = mesh.ready_sidecar(&web, pair.server).await;
    let api_proxy = mesh.ready_sidecar(&api, pair.client).await;
    let via_api = url(api.host.addr(), OUTBOUND, "/stream");
    wait_call(&via_api, "api → web over mTLS (TCP)", from_app("web"))
        .await
        .unwrap();
    let bundle = mesh.bundle_file("web-1").await;
    let first = wait_tls(&probe, at(&web, INBOUND), &bundle).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url = via_api.clone();
        tokio::spawn(async move {
            // A new connection per request: each one a new handshake between the sidecars.
            let client = client(true);
            let started = Instant::now();
            let mut failures = Vec::new();
            for _ in 0..5_000 {
                if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                match call(&client, &url).await {
                    Ok((200, echo)) if echo["upstream"] == "web-app" => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        failures.push(format!("{other:?}"));
                    }
                }
            }
            failures
        })
    };
    let started = Instant::now();
    let mut seen = vec![first.serial];
    // Until web served three certificates and the first ones of both sides (issued before
    // `started`) have expired: the handshakes after that can only succeed on renewed ones.
    while seen.len() < 3 || started.elapsed() < TTL + Duration::from_secs(1) {
        assert!(
            started.elapsed() < WAIT,
            "web's certificate did not rotate twice in {WAIT:?}: {seen:?}"
        );
        let peer = tokio::task::block_in_place(|| tls_peer(&probe, at(&web, INBOUND), &bundle));
        if peer.verified && !peer.serial.is_empty() && !seen.contains(&peer.serial) {
            assert!(peer.san.contains(&spiffe("web")), "{}", peer.san);
            seen.push(peer.serial);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let failures = load.await.unwrap();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(web_proxy.is_running() && api_proxy.is_running());
    assert!(ok >= 20, "the stream ran ({ok} requests)");
    eprintln!(
        "rotation ({pair:?}): {ok} requests, {} certificates served by web in {:?}",
        seen.len(),
        started.elapsed()
    );
    assert_eq!(
        failed,
        0,
        "no request lost across {} certificates ({ok} succeeded); first failures: {:?}",
        seen.len(),
        &failures[..failures.len().min(5)]
    );
}

/// A mesh that denies by default (`--permissions-default deny`): nobody reaches web until an
/// allow permission names api; then api gets 200 and ops, not named, still 403.
async fn default_deny_lets_only_allowed_pairs_through(pair: Pair) {
    let flags = ["--permissions-default", "deny"];
    let Some(mesh) = Mesh::start(&flags, &[pair.client, pair.server]) else {
        return;
    };
    let web = mesh.service("web", "http", "strict").await;
    let api = mesh.service("api", "http", "strict").await;
    let ops = mesh.service("ops", "http", "strict").await;
    mesh.outbound(&api, "web", "http").await;
    mesh.outbound(&ops, "web", "http").await;
    let _web_proxy = mesh.ready_sidecar(&web, pair.server).await;
    let _api_proxy = mesh.ready_sidecar(&api, pair.client).await;
    let _ops_proxy = mesh.ready_sidecar(&ops, pair.client).await;
    let via_api = url(api.host.addr(), OUTBOUND, "/call");
    let via_ops = url(ops.host.addr(), OUTBOUND, "/call");
    let denied = |a: &Result<(u16, Value), String>| matches!(a, Ok((403, _)));
    wait_call(&via_api, "api before any allow", denied)
        .await
        .unwrap();
    mesh.put(
        "/api/v1/traffic-permissions/api-to-web",
        json!({ "from": ["api"], "to": "web", "action": "allow" }),
    )
    .await;
    wait_call(&via_api, "the allowed pair", from_app("web"))
        .await
        .unwrap();
    let answer = call(&client(true), &via_ops).await;
    assert!(denied(&answer), "ops is not allowed: {answer:?}");
}

/// TCP between hosts over mTLS: a deny for the pair makes web's sidecar close api's
/// connections (no answer at all) while ops, also calling web, still gets through.
async fn tcp_deny_closes_the_connection(pair: Pair) {
    let Some(mesh) = Mesh::start(&[], &[pair.client, pair.server]) else {
        return;
    };
    let web = mesh.service("web", "tcp", "strict").await;
    let api = mesh.service("api", "tcp", "strict").await;
    let ops = mesh.service("ops", "tcp", "strict").await;
    mesh.outbound(&api, "web", "tcp").await;
    mesh.outbound(&ops, "web", "tcp").await;
    let _web_proxy = mesh.ready_sidecar(&web, pair.server).await;
    let _api_proxy = mesh.ready_sidecar(&api, pair.client).await;
    let _ops_proxy = mesh.ready_sidecar(&ops, pair.client).await;
    let via_api = url(api.host.addr(), OUTBOUND, "/tcp");
    let via_ops = url(ops.host.addr(), OUTBOUND, "/tcp");
    wait_call(&via_api, "api → web over mTLS (TCP)", from_app("web"))
        .await
        .unwrap();
    mesh.put(
        "/api/v1/traffic-permissions/deny-api",
        json!({ "from": ["api"], "to": "web", "action": "deny" }),
    )
    .await;
    let closed = wait_call(&via_api, "the denied TCP pair", |a| a.is_err()).await;
    assert!(closed.is_err());
    wait_call(&via_ops, "ops, not denied", from_app("web"))
        .await
        .unwrap();
}

/// `--xds-auth required` across hosts: the sidecars get their certificates only with their
/// own tokens, and lose their stream when the token is revoked.
async fn xds_auth_across_hosts(plane: DataPlane) {
    let flags = ["--xds-auth", "required"];
    let Some(mut mesh) = Mesh::start(&flags, &[plane]) else {
        return;
    };
    let web = mesh.service("web", "http", "strict").await;
    let api = mesh.service("api", "http", "strict").await;
    mesh.outbound(&api, "web", "http").await;

    // No token, then a forged one: refused, never connected.
    let (bare, _) = mesh.bootstrap(&web, false).await;
    let stranger = mesh.sidecar(&web, plane, &bare);
    mesh.wait_logged(&stranger, &["xDS stream refused: no proxy token"])
        .await;
    assert!(!mesh.connected("web-1").await);
    drop(stranger);
    let (mut forged, _) = mesh.bootstrap(&web, true).await;
    let forged_text = forged.to_string();
    let secret = forged_text
        .split("Bearer ")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a token in the bootstrap")
        .to_string();
    forged =
        serde_json::from_str(&forged_text.replace(&secret, &format!("xdst_{}", "0".repeat(64))))
            .unwrap();
    let forger = mesh.sidecar(&web, plane, &forged);
    mesh.wait_logged(
        &forger,
        &["xDS stream refused: unknown or revoked proxy token"],
    )
    .await;
    assert!(!mesh.connected("web-1").await);
    drop(forger);

    // api's token presented by a node claiming to be web's sidecar: PERMISSION_DENIED.
    let (mut impostor, api_token) = mesh.bootstrap(&api, true).await;
    let api_token = api_token.expect("token=issue names its token");
    impostor["node"]["id"] = json!("web-1");
    impostor["node"]["cluster"] = json!("web");
    let impostor = mesh.sidecar(&web, plane, &impostor);
    mesh.wait_logged(
        &impostor,
        &["the proxy token belongs to another node", &api_token],
    )
    .await;
    assert!(!mesh.connected("web-1").await);
    drop(impostor);

    // With their own tokens both connect, get their certificates and talk over mTLS.
    let (with_token, _) = mesh.bootstrap(&web, true).await;
    let _web_proxy = mesh.sidecar(&web, plane, &with_token);
    let (api_bootstrap, api_id) = mesh.bootstrap(&api, true).await;
    let api_proxy = mesh.sidecar(&api, plane, &api_bootstrap);
    let via_api = url(api.host.addr(), OUTBOUND, "/call");
    wait_call(&via_api, "api → web with tokens", from_app("web"))
        .await
        .unwrap();

    // api's sidecar asks for web's certificate (a listener naming it): it gets nothing for it.
    mesh.put(
        "/api/v1/envoy-resources/steal-web",
        json!({ "type_url": "type.googleapis.com/envoy.config.listener.v3.Listener",
                "selector": { "node_id": "api-1" },
                "resource": stealing_listener(&spiffe("web")) }),
    )
    .await;
    mesh.wait_logged(
        &api_proxy,
        &["another service's certificate", &spiffe("web")],
    )
    .await;
    let names = mesh.secret_names("api-1").await;
    assert_eq!(names, [BUNDLE.to_string(), spiffe("api")], "api-1 holds");

    // Revoked: the live stream ends, the proxy stays out (and keeps running).
    let id = api_id.expect("token=issue names its token");
    let r = mesh
        .http
        .delete(mesh.server.url(&format!("/api/v1/proxy-tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let deadline = Instant::now() + WAIT;
    while mesh.connected("api-1").await {
        assert!(Instant::now() < deadline, "api-1 kept its stream");
        tokio::time::sleep(POLL).await;
    }
    mesh.wait_logged(&api_proxy, &["unknown or revoked proxy token"])
        .await;
    assert!(api_proxy.is_running());
    let logged_secret = mesh.server.logs().iter().any(|l| l.contains("xdst_"));
    assert!(!logged_secret, "a token secret reached the server log");
}

/// A TLS listener on 127.0.0.1 whose certificate is the secret `cert`, fetched over ADS.
fn stealing_listener(cert: &str) -> Value {
    let sds = json!({ "ads": {}, "resource_api_version": "V3" });
    json!({
        "name": "steal-web",
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": 15099 } },
        "filter_chains": [{
            "transport_socket": { "name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "common_tls_context": {
                    "tls_certificate_sds_secret_configs": [{ "name": cert, "sds_config": sds }]
                } } },
            "filters": [{ "name": "envoy.filters.network.tcp_proxy", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": "steal", "cluster": "xds_cluster" } }]
        }]
    })
}

const ENVOY: DataPlane = DataPlane::Envoy;
const MINIMAL: DataPlane = DataPlane::Minimal;

fn pair(client: DataPlane, server: DataPlane) -> Pair {
    Pair { client, server }
}

/// One test per name, each running its scenario.
macro_rules! scenarios {
    ($($name:ident => $run:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $run.await;
        }
    )*};
}

scenarios! {
    strict_mtls_across_hosts_envoy_to_envoy => strict_mtls_across_hosts(pair(ENVOY, ENVOY));
    strict_mtls_across_hosts_envoy_to_minimal_proxy =>
        strict_mtls_across_hosts(pair(ENVOY, MINIMAL));
    strict_mtls_across_hosts_minimal_proxy_to_envoy =>
        strict_mtls_across_hosts(pair(MINIMAL, ENVOY));
    strict_mtls_across_hosts_minimal_proxy_to_minimal_proxy =>
        strict_mtls_across_hosts(pair(MINIMAL, MINIMAL));
    default_deny_lets_only_allowed_pairs_through_envoy_to_envoy =>
        default_deny_lets_only_allowed_pairs_through(pair(ENVOY, ENVOY));
    default_deny_lets_only_allowed_pairs_through_minimal_proxy_to_minimal_proxy =>
        default_deny_lets_only_allowed_pairs_through(pair(MINIMAL, MINIMAL));
    tcp_deny_closes_the_connection_envoy_to_envoy =>
        tcp_deny_closes_the_connection(pair(ENVOY, ENVOY));
    tcp_deny_closes_the_connection_minimal_proxy_to_minimal_proxy =>
        tcp_deny_closes_the_connection(pair(MINIMAL, MINIMAL));
    rotation_loses_no_request_envoy_to_envoy => rotation_loses_no_request(pair(ENVOY, ENVOY));
    rotation_loses_no_request_envoy_to_minimal_proxy =>
        rotation_loses_no_request(pair(ENVOY, MINIMAL));
    rotation_loses_no_request_minimal_proxy_to_envoy =>
        rotation_loses_no_request(pair(MINIMAL, ENVOY));
    rotation_loses_no_request_minimal_proxy_to_minimal_proxy =>
        rotation_loses_no_request(pair(MINIMAL, MINIMAL));
    xds_auth_across_hosts_envoy => xds_auth_across_hosts(ENVOY);
    xds_auth_across_hosts_minimal_proxy => xds_auth_across_hosts(MINIMAL);
}
