//! Driving the admin API in-process: one request in, status, headers and JSON out.

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub type Response = (StatusCode, HeaderMap, Value);

/// Sends one request; the body is parsed as JSON when there is one (`Null` otherwise).
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Response {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Body::from(body.unwrap_or_default().to_string()))
        .unwrap();
    let (parts, body) = app.clone().oneshot(req).await.unwrap().into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {uri}: response is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (parts.status, parts.headers, json)
}

/// Asserts the one error shape, `{"error": {"code", "message", "field"?, "referrers"?}}`,
/// with this status and code; returns the `error` object.
#[track_caller]
pub fn assert_error(resp: &Response, status: StatusCode, code: &str) -> Value {
    let (got, headers, body) = resp;
    assert_eq!(*got, status, "body: {body}");
    let content_type = headers.get(header::CONTENT_TYPE);
    assert_eq!(content_type.unwrap().to_str().unwrap(), "application/json");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    let err = &body["error"];
    assert_eq!(err["code"], code, "{body}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{body}");
    for key in err.as_object().unwrap().keys() {
        let known = ["code", "message", "field", "referrers"].contains(&key.as_str());
        assert!(known, "unexpected key '{key}' in {body}");
    }
    err.clone()
}
