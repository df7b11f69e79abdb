//! What the HTTP, listener and TCP tests share: real upstream servers on 127.0.0.1, static
//! clusters over them, configs built in a line, a listener manager serving them, and a client
//! that keeps its connection (HTTP/1.1 or h2c).

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{
    config::{
        CircuitBreakers, ClusterConfig, ClusterTarget, Codec, Discovery, Endpoint, EndpointAddress,
        EndpointHealth, Forward, HttpConnectionManager, LbPolicy, ListenerConfig, ListenerFilter,
        LoadAssignment, LocalityEndpoints, PathMatch, Route, RouteAction, RouteConfig, RouteMatch,
        RouteSource, UpstreamProtocol, VirtualHost,
    },
    listener::Manager,
    runtime::{Runtime, Snapshot},
    upstream::Cluster,
};

/// A task aborted when dropped, so a failing test leaves nothing running.
#[derive(Debug)]
pub struct Task(pub JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A real upstream HTTP server (HTTP/1.1 and h2c) answering with `handler`.
#[derive(Debug)]
pub struct Upstream {
    pub address: SocketAddr,
    /// Requests received.
    pub requests: Arc<AtomicU64>,
    _task: Task,
}

/// An upstream handler's answer.
pub type Reply = Response<BoxBody<Bytes, Infallible>>;

impl Upstream {
    pub async fn start<F, Fut>(handler: F) -> Upstream
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        counted.fetch_add(1, Ordering::Relaxed);
                        let reply = handler(request);
                        async move { Ok::<_, Infallible>(reply.await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            address,
            requests,
            _task: Task(task),
        }
    }

    /// Answers with what it received: `method path`, then `name: value` lines.
    pub async fn echo() -> Upstream {
        Upstream::start(|request: Request<Incoming>| async move { echo(request).await }).await
    }
}

/// The echo handler: `METHOD /path?query` then each header as `name: value`, then the body.
pub async fn echo(request: Request<Incoming>) -> Reply {
    let (parts, body) = request.into_parts();
    let mut text = format!("{} {}\n", parts.method, parts.uri);
    for (name, value) in &parts.headers {
        text.push_str(&format!("{}: {}\n", name, value.to_str().unwrap_or("?")));
    }
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    text.push_str(&String::from_utf8_lossy(&body));
    let mut response = reply(200, text);
    response
        .headers_mut()
        .insert("x-upstream", http::HeaderValue::from_static("echo"));
    response
}

/// A response with a body.
pub fn reply(status: u16, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .body(BoxBody::new(Full::new(body.into())))
        .unwrap()
}

/// A static cluster over `hosts`, Envoy's defaults otherwise.
pub fn cluster(name: &str, hosts: &[SocketAddr], protocol: UpstreamProtocol) -> Arc<Cluster> {
    let endpoints = hosts
        .iter()
        .map(|a| Endpoint {
            address: EndpointAddress::Socket(*a),
            weight: 1,
            health: EndpointHealth::Healthy,
            labels: BTreeMap::new(),
        })
        .collect();
    let config = ClusterConfig {
        name: name.into(),
        discovery: Discovery::Static(LoadAssignment {
            cluster_name: name.into(),
            localities: vec![LocalityEndpoints {
                endpoints,
                ..Default::default()
            }],
        }),
        connect_timeout: Duration::from_secs(1),
        lb_policy: LbPolicy::RoundRobin,
        protocol,
        circuit_breakers: CircuitBreakers::default(),
        outlier_detection: None,
        health_checks: Vec::new(),
        subsets: None,
        locality_weighted: false,
        tls: None,
    };
    Cluster::new(Arc::new(config), Arc::new(Default::default()))
}

/// A runtime whose snapshot holds `clusters` and the RDS `routes`.
pub fn runtime(clusters: Vec<Arc<Cluster>>, routes: Vec<RouteConfig>) -> Runtime {
    let runtime = Runtime::new();
    publish(&runtime, clusters, routes);
    runtime
}

pub fn publish(runtime: &Runtime, clusters: Vec<Arc<Cluster>>, routes: Vec<RouteConfig>) {
    runtime.publish(Snapshot {
        routes: routes
            .into_iter()
            .map(|r| (r.name.clone(), Arc::new(r)))
            .collect(),
        clusters: clusters
            .into_iter()
            .map(|c| (c.name().to_string(), c))
            .collect(),
    });
}

/// A route on a path prefix.
pub fn route(prefix: &str, action: RouteAction) -> Route {
    Route {
        stat_prefix: String::new(),
        name: String::new(),
        matcher: RouteMatch {
            path: PathMatch::Prefix(prefix.into()),
            headers: Vec::new(),
            case_sensitive: true,
        },
        action,
        request_headers: Default::default(),
        response_headers: Default::default(),
    }
}

/// Forwarding to one cluster, Envoy's defaults otherwise.
pub fn forward(cluster: &str) -> Forward {
    Forward {
        target: ClusterTarget::Cluster(cluster.into()),
        prefix_rewrite: None,
        timeout: Some(Duration::from_secs(15)),
        retry: None,
        hash_policy: Vec::new(),
    }
}

pub fn direct(status: u16, body: &str) -> RouteAction {
    RouteAction::Direct {
        status,
        body: Some(body.to_string()),
    }
}

/// A route configuration of one `*` virtual host.
pub fn routes(name: &str, routes: Vec<Route>) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes,
        }],
    }
}

pub fn hcm(routes: RouteSource) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: "ingress".into(),
        codec: Codec::Auto,
        routes,
        access_log: Vec::new(),
        grpc_access_log: Vec::new(),
        stream_idle_timeout: Some(Duration::from_secs(300)),
        forward_client_cert: Default::default(),
        rbac: Vec::new(),
    }
}

pub fn http_listener(
    name: &str,
    address: SocketAddr,
    hcm: HttpConnectionManager,
) -> ListenerConfig {
    ListenerConfig::single(name, address, ListenerFilter::Http(hcm))
}

/// An inline-routed HTTP listener on an ephemeral port.
pub fn inline_listener(name: &str, routes: RouteConfig) -> ListenerConfig {
    http_listener(
        name,
        "127.0.0.1:0".parse().unwrap(),
        hcm(RouteSource::Inline(Arc::new(routes))),
    )
}

/// A manager running `listener`; returns it with the listener's address.
pub async fn serve(runtime: &Runtime, listener: ListenerConfig) -> (Manager, SocketAddr) {
    let manager = Manager::new(runtime.clone(), Duration::from_secs(5));
    let name = listener.name.clone();
    let rejections = manager.apply(vec![listener]).await;
    assert!(rejections.is_empty(), "{rejections:?}");
    let address = manager.local_addr(&name).await.unwrap();
    (manager, address)
}

/// A downstream response, its body read out.
#[derive(Debug)]
pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    pub trailers: Option<HeaderMap>,
}

/// A client on one connection (HTTP/1.1, or h2c with prior knowledge).
pub enum Client {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Client {
    pub async fn h1(address: SocketAddr) -> Client {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Client::H1(send)
    }

    pub async fn h2(address: SocketAddr) -> Client {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        Client::H2(send)
    }

    /// Sends a request (an origin-form URI gets `Host: web.test` on HTTP/1.1 and
    /// `http://web.test` on HTTP/2) and reads the whole response.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Got, hyper::Error> {
        let response = match self {
            Client::H1(send) => {
                let mut request = request;
                if !request.headers().contains_key(http::header::HOST) {
                    request
                        .headers_mut()
                        .insert(http::header::HOST, "web.test".parse().unwrap());
                }
                send.ready().await?;
                send.send_request(request).await?
            }
            Client::H2(send) => {
                let mut request = request;
                if request.uri().authority().is_none() {
                    let uri = format!("http://web.test{}", request.uri());
                    *request.uri_mut() = uri.parse().unwrap();
                }
                send.ready().await?;
                send.send_request(request).await?
            }
        };
        let (parts, body) = response.into_parts();
        let collected = body.collect().await?;
        let trailers = collected.trailers().cloned();
        Ok(Got {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
            trailers,
        })
    }

    pub async fn get(&mut self, path: &str) -> Got {
        self.send(Request::get(path).body(Full::default()).unwrap())
            .await
            .unwrap()
    }
}

/// One GET on a fresh HTTP/1.1 connection.
pub async fn get(address: SocketAddr, path: &str) -> Got {
    Client::h1(address).await.get(path).await
}

/// Waits until `condition` holds, checking every 10 ms, for at most `within`.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
