//! `route_configuration_from_proto`: direct responses and header changes.

#![allow(deprecated)] // Tests set deprecated fields that Envoy still honours or that must be refused.

use super::route_action::{AT, RC, cluster};

use envoy_types::pb::envoy::config::{
    core::v3::{
        DataSource, HeaderValue, HeaderValueOption, data_source::Specifier,
        header_value_option::HeaderAppendAction,
    },
    route::v3::{DirectResponseAction, RouteAction as EnvoyAction, route::Action},
};

use super::{
    boolv, refused,
    route::{convert, prefix, route},
};
use crate::config::{HeaderMutation, RouteAction, RouteConfig};

fn direct(d: DirectResponseAction) -> Result<RouteConfig, crate::config::Rejection> {
    convert(vec![route(prefix("/"), Some(Action::DirectResponse(d)))])
}

fn inline(body: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineString(body.into())),
        ..Default::default()
    })
}

#[test]
fn direct_responses() {
    let rc = direct(DirectResponseAction {
        status: 418,
        body: inline("teapot"),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        rc.virtual_hosts[0].routes[0].action,
        RouteAction::Direct {
            status: 418,
            body: Some("teapot".into())
        }
    );
    let rc = direct(DirectResponseAction {
        status: 204,
        body: inline(""),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        rc.virtual_hosts[0].routes[0].action,
        RouteAction::Direct {
            status: 204,
            body: None
        }
    );

    refused(
        direct(DirectResponseAction {
            status: 100,
            ..Default::default()
        }),
        RC,
        &format!("{AT}.direct_response.status"),
        "200..=599",
    );
    refused(
        direct(DirectResponseAction {
            status: 200,
            body: inline(&"x".repeat(4097)),
            ..Default::default()
        }),
        RC,
        &format!("{AT}.direct_response.body"),
        "response body size is 4097 bytes; maximum is 4096",
    );
    let file = Some(DataSource {
        specifier: Some(Specifier::Filename("/etc/x".into())),
        ..Default::default()
    });
    refused(
        direct(DirectResponseAction {
            status: 200,
            body: file,
            ..Default::default()
        }),
        RC,
        &format!("{AT}.direct_response.body.filename"),
        "not supported",
    );
}

fn add(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

fn with_headers(
    f: impl FnOnce(&mut envoy_types::pb::envoy::config::route::v3::Route),
) -> Result<RouteConfig, crate::config::Rejection> {
    let mut r = route(
        prefix("/"),
        Some(Action::Route(EnvoyAction {
            cluster_specifier: cluster("web"),
            ..Default::default()
        })),
    );
    f(&mut r);
    convert(vec![r])
}

#[test]
fn header_changes() {
    let rc = with_headers(|r| {
        r.request_headers_to_add = vec![
            add("X-From", "mesh", HeaderAppendAction::OverwriteIfExistsOrAdd),
            add("x-tag", "a", HeaderAppendAction::AppendIfExistsOrAdd),
            HeaderValueOption {
                append: boolv(false),
                ..add("x-old", "50%%", HeaderAppendAction::AppendIfExistsOrAdd)
            },
            add("x-empty", "", HeaderAppendAction::AppendIfExistsOrAdd),
        ];
        r.request_headers_to_remove = vec!["X-Debug".into()];
        r.response_headers_to_add = vec![add(
            "x-served-by",
            "mesh",
            HeaderAppendAction::OverwriteIfExistsOrAdd,
        )];
        r.response_headers_to_remove = vec!["server".into()];
    })
    .unwrap();
    let r = &rc.virtual_hosts[0].routes[0];
    let entry = |k: &'static str, v: &'static str, append| {
        (
            http::HeaderName::from_static(k),
            http::HeaderValue::from_static(v),
            append,
        )
    };
    assert_eq!(
        r.request_headers,
        HeaderMutation {
            // The empty value is not added, as in Envoy.
            add: vec![
                entry("x-from", "mesh", false),
                entry("x-tag", "a", true),
                entry("x-old", "50%", false)
            ],
            remove: vec![http::HeaderName::from_static("x-debug")],
        }
    );
    assert_eq!(
        r.response_headers,
        HeaderMutation {
            add: vec![entry("x-served-by", "mesh", false)],
            remove: vec![http::HeaderName::from_static("server")],
        }
    );
}

#[test]
fn header_change_refusals_name_the_field() {
    let req = |o: HeaderValueOption| with_headers(|r| r.request_headers_to_add = vec![o]);
    let at = format!("{AT}.request_headers_to_add[0]");
    let a = HeaderAppendAction::AppendIfExistsOrAdd;
    refused(
        req(add("x", "%REQ(x-a)%", a)),
        RC,
        &format!("{at}.header.value"),
        "formatters",
    );
    refused(
        req(add(":path", "/", a)),
        RC,
        &format!("{at}.header.key"),
        "cannot be changed",
    );
    refused(
        req(add("host", "a", a)),
        RC,
        &format!("{at}.header.key"),
        "cannot be changed",
    );
    refused(
        req(add("x", "1", HeaderAppendAction::AddIfAbsent)),
        RC,
        &format!("{at}.append_action"),
        "'ADD_IF_ABSENT'",
    );
    refused(
        req(HeaderValueOption {
            keep_empty_value: true,
            ..add("x", "1", a)
        }),
        RC,
        &format!("{at}.keep_empty_value"),
        "not supported",
    );
    refused(
        req(HeaderValueOption {
            append: boolv(true),
            ..add("x", "1", HeaderAppendAction::OverwriteIfExistsOrAdd)
        }),
        RC,
        &format!("{at}.append"),
        "together with append_action",
    );
    refused(
        with_headers(|r| r.response_headers_to_remove = vec![":status".into()]),
        RC,
        &format!("{AT}.response_headers_to_remove[0]"),
        "cannot be changed",
    );
}
