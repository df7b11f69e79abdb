//! What xds-server sends for HTTP and TCP listeners and route configurations converts (see `xds_server.rs`).

use super::xds_server::{labels, sources};
use std::time::Duration;

use envoy_types::pb::envoy::{
    config::{
        core::v3::{HeaderValue, HeaderValueOption, header_value_option::HeaderAppendAction},
        listener::v3::Listener,
        route::v3::{
            HeaderMatcher, RetryPolicy, Route as EnvoyRoute, RouteAction, RouteConfiguration,
            RouteMatch, VirtualHost, WeightedCluster, header_matcher::HeaderMatchSpecifier,
            retry_policy::RetryBackOff, route::Action, route_action::ClusterSpecifier,
            route_match::PathSpecifier, weighted_cluster::ClusterWeight,
        },
    },
    extensions::filters::network::{
        http_connection_manager::v3::{
            HttpConnectionManager, Rds,
            http_connection_manager::{CodecType, RouteSpecifier},
        },
        tcp_proxy::v3::{TcpProxy, tcp_proxy::ClusterSpecifier as TcpCluster},
    },
    r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher::MatchPattern},
};

use super::{
    any,
    listener::{listener_with, router, socket},
    millis, secs, u32v,
};
use crate::config::{
    ListenerFilter, RouteAction as ProxyAction, RouteSource, listener_from_proto,
    route_configuration_from_proto,
};

#[test]
fn http_and_tcp_listeners_convert() {
    for source in sources() {
        let hcm = HttpConnectionManager {
            stat_prefix: "ingress".into(),
            codec_type: CodecType::Auto as i32,
            route_specifier: Some(RouteSpecifier::Rds(Rds {
                config_source: Some(source),
                route_config_name: "ingress".into(),
            })),
            http_filters: vec![router()],
            ..HttpConnectionManager::default()
        };
        let mut l = listener_with(any(&hcm));
        l.filter_chains[0].filters[0].name = "envoy.filters.network.http_connection_manager".into();
        let l = listener_from_proto(&l).unwrap();
        let ListenerFilter::Http(h) = l.chains[0].filter.clone() else {
            panic!("{:?}", l.chains)
        };
        assert_eq!(h.routes, RouteSource::Rds("ingress".into()));
    }
    let tcp = TcpProxy {
        stat_prefix: "grpc-in".into(),
        cluster_specifier: Some(TcpCluster::Cluster("greeter".into())),
        ..TcpProxy::default()
    };
    let l = Listener {
        name: "grpc-in".into(),
        address: socket("127.0.0.1", 15051),
        ..listener_with(any(&tcp))
    };
    let l = listener_from_proto(&l).unwrap();
    assert_eq!(l.address, "127.0.0.1:15051".parse().unwrap());
    let ListenerFilter::Tcp(t) = l.chains[0].filter.clone() else {
        panic!("{:?}", l.chains)
    };
    assert_eq!(t.cluster, "greeter");
    let v6 = Listener {
        address: socket("::", 8080),
        ..listener_with(any(&tcp))
    };
    assert_eq!(
        listener_from_proto(&v6).unwrap().address,
        "[::]:8080".parse().unwrap()
    );
}

fn string_header(name: &str, pattern: MatchPattern) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(pattern),
            ..StringMatcher::default()
        })),
        ..HeaderMatcher::default()
    }
}

fn set(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..HeaderValue::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.into(),
        engine_type: None,
    }
}

/// translate's `route_configuration` for the full example.
fn full_example_routes() -> RouteConfiguration {
    let weighted = |version: &str, weight| ClusterWeight {
        name: "web".into(),
        weight: u32v(weight),
        metadata_match: labels(&[("version", version)]),
        ..ClusterWeight::default()
    };
    let api = EnvoyRoute {
        r#match: Some(RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix("/api/".into())),
            headers: vec![
                string_header("x-canary", MatchPattern::Exact("1".into())),
                string_header("x-trace", MatchPattern::SafeRegex(regex("[0-9a-f]+"))),
                HeaderMatcher {
                    name: "x-debug".into(),
                    header_match_specifier: Some(HeaderMatchSpecifier::PresentMatch(true)),
                    ..HeaderMatcher::default()
                },
                string_header(":method", MatchPattern::Exact("GET".into())),
            ],
            ..RouteMatch::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
                clusters: vec![weighted("v1", 80), weighted("v2", 20)],
                ..WeightedCluster::default()
            })),
            timeout: secs(5),
            retry_policy: Some(RetryPolicy {
                retry_on: "5xx,gateway-error,connect-failure,reset".into(),
                num_retries: u32v(2),
                per_try_timeout: secs(1),
                retry_back_off: Some(RetryBackOff {
                    base_interval: millis(25),
                    max_interval: millis(250),
                }),
                ..RetryPolicy::default()
            }),
            prefix_rewrite: "/".into(),
            ..RouteAction::default()
        })),
        request_headers_to_add: vec![set("x-from", "mesh")],
        request_headers_to_remove: vec!["x-debug".into()],
        response_headers_to_add: vec![set("x-served-by", "mesh")],
        response_headers_to_remove: vec!["server".into()],
        ..EnvoyRoute::default()
    };
    let to_web = |path: PathSpecifier, retry: Option<RetryPolicy>| EnvoyRoute {
        r#match: Some(RouteMatch {
            path_specifier: Some(path),
            ..RouteMatch::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(ClusterSpecifier::Cluster("web".into())),
            retry_policy: retry,
            ..RouteAction::default()
        })),
        ..EnvoyRoute::default()
    };
    let default_retry = RetryPolicy {
        retry_on: "5xx,connect-failure,reset".into(),
        num_retries: u32v(1),
        ..RetryPolicy::default()
    };
    RouteConfiguration {
        name: "ingress".into(),
        virtual_hosts: vec![VirtualHost {
            name: "web".into(),
            domains: vec!["web.example.com".into(), "*".into()],
            routes: vec![
                api,
                to_web(
                    PathSpecifier::SafeRegex(regex("/v[0-9]+/.*")),
                    Some(default_retry),
                ),
                to_web(PathSpecifier::Path("/exact".into()), None),
                to_web(PathSpecifier::Prefix("/".into()), None),
            ],
            ..VirtualHost::default()
        }],
        ..RouteConfiguration::default()
    }
}

#[test]
fn route_configurations_convert() {
    let rc = route_configuration_from_proto(&full_example_routes()).unwrap();
    let routes = &rc.virtual_hosts[0].routes;
    assert_eq!(routes.len(), 4);
    let ProxyAction::Forward(api) = &routes[0].action else {
        panic!("{:?}", routes[0].action)
    };
    assert_eq!(api.retry.as_ref().unwrap().num_retries, 2);
    assert_eq!(routes[0].request_headers.add.len(), 1);
    let ProxyAction::Forward(fallback) = &routes[3].action else {
        panic!()
    };
    assert_eq!(fallback.timeout, Some(Duration::from_secs(15)));
}
