//! RBAC on the request path, through a real listener manager in front of real upstreams on
//! 127.0.0.1 (plaintext: peers without certificates): a denied request gets Envoy's 403 and
//! never reaches the upstream, gRPC gets PERMISSION_DENIED, a shadow rule only counts, and a
//! denied TCP connection (its listener converted from Envoy's protos) is closed before anything
//! is sent upstream.

use std::{collections::HashMap, sync::Arc, time::Duration};

use envoy_types::pb::{
    envoy::{
        config::{
            core::v3::{Address, SocketAddress, address, socket_address::PortSpecifier},
            listener::v3::{Filter, FilterChain, Listener, filter},
            rbac::v3::{
                Permission, Policy, Principal, Rbac as Rules, permission,
                principal::{Authenticated, Identifier},
                rbac::Action,
            },
        },
        extensions::filters::network::{
            rbac::v3::Rbac as NetRbac,
            tcp_proxy::v3::{TcpProxy as EnvoyTcpProxy, tcp_proxy::ClusterSpecifier},
        },
    },
    google::protobuf::Any,
};
use http::{Method, Request};
use http_body_util::Full;
use prost::{Message, Name};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{
    config::{
        HeaderMatch, HeaderMatchKind, RbacAction, RbacFilter, RbacMatcher, RbacPolicy, RbacRules,
        RouteAction, RouteSource, UpstreamProtocol, listener_from_proto,
    },
    http::tests::support::{
        Client, Task, Upstream, cluster, eventually, forward, hcm, http_listener, route, routes,
        runtime, serve,
    },
};

fn deny(name: &str, principal: RbacMatcher) -> RbacRules {
    RbacRules {
        action: RbacAction::Deny,
        policies: vec![RbacPolicy {
            name: name.into(),
            permissions: vec![RbacMatcher::Any],
            principals: vec![principal],
        }],
    }
}

/// DELETEs under /admin (no peer named: plaintext callers match it too).
fn no_admin_deletes() -> RbacMatcher {
    RbacMatcher::And(vec![
        RbacMatcher::UrlPath(HeaderMatchKind::Prefix("/admin".into())),
        RbacMatcher::Header(HeaderMatch {
            name: ":method".into(),
            kind: HeaderMatchKind::Exact("DELETE".into()),
            invert: false,
        }),
    ])
}

fn typed<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

fn stat(runtime: &crate::runtime::Runtime, name: &str) -> Option<u64> {
    let json = runtime.stats.render_json();
    json["stats"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["value"].as_u64())
}

#[tokio::test]
async fn a_denied_request_gets_403_and_never_reaches_the_upstream() {
    let upstream = Upstream::echo().await;
    let web = cluster("web", &[upstream.address], UpstreamProtocol::Http1);
    let runtime = runtime(vec![web], vec![]);
    let mut h = hcm(RouteSource::Inline(Arc::new(routes(
        "r",
        vec![route("/", RouteAction::Forward(forward("web")))],
    ))));
    h.rbac = vec![
        RbacFilter {
            rules: Some(deny("no-admin-deletes", no_admin_deletes())),
            shadow_rules: None,
            rules_stat_prefix: "no-admin-deletes".into(),
            shadow_rules_stat_prefix: String::new(),
        },
        RbacFilter {
            rules: None,
            shadow_rules: Some(deny(
                "try-no-posts",
                RbacMatcher::Header(HeaderMatch {
                    name: ":method".into(),
                    kind: HeaderMatchKind::Exact("POST".into()),
                    invert: false,
                }),
            )),
            rules_stat_prefix: String::new(),
            shadow_rules_stat_prefix: "try-no-posts".into(),
        },
    ];
    let listener = http_listener("l", "127.0.0.1:0".parse().unwrap(), h);
    let (_manager, address) = serve(&runtime, listener).await;
    let send = |method: Method, path: &'static str, grpc: bool| async move {
        let mut request = Request::builder().method(method).uri(path);
        if grpc {
            request = request.header("content-type", "application/grpc");
        }
        let request = request.body(Full::default()).unwrap();
        Client::h1(address).await.send(request).await.unwrap()
    };

    let denied = send(Method::DELETE, "/admin/users?id=1", false).await;
    assert_eq!(denied.status, 403, "{denied:?}");
    assert_eq!(denied.body, "RBAC: access denied");
    assert_eq!(denied.headers["content-type"], "text/plain");
    assert_eq!(
        upstream.requests.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // gRPC callers get PERMISSION_DENIED in gRPC's terms, as from Envoy.
    let grpc = send(Method::DELETE, "/admin/Svc/Call", true).await;
    assert_eq!(grpc.status, 200);
    assert_eq!(grpc.headers["grpc-status"], "7");
    assert_eq!(grpc.headers["grpc-message"], "RBAC: access denied");
    // Other methods and paths pass; the shadow deny of POSTs only counts.
    let post = send(Method::POST, "/admin/users", false).await;
    assert_eq!(post.status, 200, "{post:?}");
    assert!(
        post.body.starts_with("POST /admin/users\n"),
        "{}",
        post.body
    );
    let delete = send(Method::DELETE, "/public", false).await;
    assert_eq!(delete.status, 200, "{delete:?}");
    assert_eq!(
        upstream.requests.load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    for (name, value) in [
        ("http.ingress.rbac.no-admin-deletes.denied", 2),
        ("http.ingress.rbac.no-admin-deletes.allowed", 2),
        ("http.ingress.rbac.try-no-posts.shadow_denied", 1),
        ("http.ingress.rbac.try-no-posts.shadow_allowed", 1),
        ("http.ingress.downstream_rq_4xx", 1),
    ] {
        assert_eq!(stat(&runtime, name), Some(value), "{name}");
    }
}

#[tokio::test]
async fn a_denied_connection_is_closed_before_connecting_upstream() {
    // An upstream that counts the connections it accepts.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_address = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = accepted.clone();
    let _upstream = Task(tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    }));
    let echo = cluster("echo", &[upstream_address], UpstreamProtocol::Http1);
    let runtime = runtime(vec![echo], vec![]);
    // xds-server's default deny for a TCP service (converted from Envoy's protos): only mTLS
    // peers get in.
    let default_deny = NetRbac {
        rules: Some(Rules {
            action: Action::Allow as i32,
            policies: HashMap::from([(
                "allow".to_string(),
                Policy {
                    permissions: vec![Permission {
                        rule: Some(permission::Rule::Any(true)),
                    }],
                    principals: vec![Principal {
                        identifier: Some(Identifier::Authenticated(Authenticated::default())),
                    }],
                    ..Policy::default()
                },
            )]),
            ..Rules::default()
        }),
        stat_prefix: "inbound|db.default-deny.".into(),
        ..NetRbac::default()
    };
    let listener = |rbac: Option<&NetRbac>| {
        let tcp = EnvoyTcpProxy {
            stat_prefix: "inbound|db".into(),
            cluster_specifier: Some(ClusterSpecifier::Cluster("echo".into())),
            ..EnvoyTcpProxy::default()
        };
        let filter = |any| Filter {
            name: "f".into(),
            config_type: Some(filter::ConfigType::TypedConfig(any)),
        };
        let filters = rbac
            .map(|r| filter(typed(r)))
            .into_iter()
            .chain([filter(typed(&tcp))])
            .collect();
        let listener = Listener {
            name: "db".into(),
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: "127.0.0.1".into(),
                    port_specifier: Some(PortSpecifier::PortValue(0)),
                    ..SocketAddress::default()
                })),
            }),
            filter_chains: vec![FilterChain {
                filters,
                ..FilterChain::default()
            }],
            ..Listener::default()
        };
        listener_from_proto(&listener).unwrap()
    };
    let (_manager, address) = serve(&runtime, listener(Some(&default_deny))).await;
    let mut client = TcpStream::connect(address).await.unwrap();
    let _ = client.write_all(b"hello").await;
    let mut back = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut back)).await;
    assert!(read.is_ok(), "the proxy closes a denied connection");
    assert!(back.is_empty(), "{back:?}");
    assert_eq!(
        stat(&runtime, "inbound|db.default-deny.rbac.denied"),
        Some(1)
    );
    assert_eq!(
        stat(&runtime, "inbound|db.default-deny.rbac.allowed"),
        Some(0)
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 0);

    // Without the filter the same connection goes through.
    let (_manager, address) = serve(&runtime, listener(None)).await;
    let mut client = TcpStream::connect(address).await.unwrap();
    client.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 5];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hello");
    eventually(Duration::from_secs(5), || {
        accepted.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
}
