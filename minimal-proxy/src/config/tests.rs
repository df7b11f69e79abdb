//! Conversion tests: each supported field converted with Envoy's defaults, each refused field
//! named by its exact path, and everything xds-server emits today accepted.

mod cluster;
mod cluster_lb;
mod cluster_limits;
mod cluster_options;
mod endpoint;
mod grpc_log;
mod listener;
mod listener_parts;
mod listener_refusals;
mod rbac;
mod rbac_refusals;
mod route;
mod route_action;
mod route_response;
mod route_retry;
mod tls;
mod tls_refusals;
mod xds_server;
mod xds_server_http;

use std::fmt::Debug;

use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration as ProtoDuration, UInt32Value};
use prost::{Message, Name};

use super::Rejection;

fn secs(seconds: i64) -> Option<ProtoDuration> {
    Some(ProtoDuration { seconds, nanos: 0 })
}

fn millis(ms: i32) -> Option<ProtoDuration> {
    Some(ProtoDuration {
        seconds: 0,
        nanos: ms * 1_000_000,
    })
}

fn u32v(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

fn boolv(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

/// Asserts a refusal of `resource` at exactly `field`, whose reason contains `reason`.
#[track_caller]
fn refused<T: Debug>(result: Result<T, Rejection>, resource: &str, field: &str, reason: &str) {
    let rejection = match result {
        Ok(v) => panic!("expected a refusal of {field}, got {v:?}"),
        Err(r) => r,
    };
    assert_eq!(rejection.resource, resource, "{rejection}");
    assert_eq!(rejection.field, field, "{rejection}");
    assert!(
        rejection.reason.contains(reason),
        "reason '{}' should contain '{reason}'",
        rejection.reason
    );
}
