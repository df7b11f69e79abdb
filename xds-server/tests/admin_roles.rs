//! Admin API roles, in process: every method with no token, a wrong token, a reader token and
//! the admin token; 401 for the first two, 403 `forbidden` for a reader's writes.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::http::{assert_error, call};
use xds_server::api::{AppState, router};

const HTTP: &str = r#"{"protocol": "http"}"#;

async fn app() -> (axum::Router, tempfile::TempDir) {
    let (store, dir) = common::sqlite().await;
    let mut state = AppState::new(store);
    state.admin_token = Some(Arc::from("adm1n"));
    state.reader_tokens = Arc::from([Arc::from("r3ad"), Arc::from("r3ad-two")]);
    (router(state), dir)
}

#[tokio::test]
async fn every_role_against_every_method() {
    let (app, _dir) = app().await;
    let admin = [("authorization", "Bearer adm1n")];
    let reader = [("authorization", "Bearer r3ad")];
    let reader2 = [("authorization", "bearer r3ad-two")];
    let wrong = [("authorization", "Bearer r3ad-tw")];
    let svc = "/api/v1/services/web";

    // Reads: any valid token.
    for auth in [&reader, &reader2, &admin] {
        let (status, _, body) = call(&app, "GET", "/api/v1/services", None, auth).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let resp = call(&app, "HEAD", "/api/v1/services", None, auth).await;
        assert_eq!(resp.0, StatusCode::OK);
        let resp = call(&app, "GET", "/api/openapi.json", None, auth).await;
        assert_eq!(resp.0, StatusCode::OK);
    }
    // No token or a wrong one: 401 for every method.
    for auth in [&[][..], &wrong[..]] {
        for (method, body) in [
            ("GET", None),
            ("HEAD", None),
            ("PUT", Some(HTTP)),
            ("DELETE", None),
        ] {
            let resp = call(&app, method, svc, body, auth).await;
            assert_eq!(resp.0, StatusCode::UNAUTHORIZED, "{method}");
        }
        let resp = call(&app, "POST", "/api/v1/proxy-tokens", Some("{}"), auth).await;
        assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // A reader's writes: 403 forbidden, and nothing changed.
    for (method, body) in [("PUT", Some(HTTP)), ("DELETE", None)] {
        let resp = call(&app, method, svc, body, &reader).await;
        let err = assert_error(&resp, StatusCode::FORBIDDEN, "forbidden");
        assert!(
            err["message"].as_str().unwrap().contains("admin token"),
            "{err}"
        );
    }
    let resp = call(&app, "POST", "/api/v1/proxy-tokens", Some("{}"), &reader).await;
    assert_error(&resp, StatusCode::FORBIDDEN, "forbidden");
    let resp = call(&app, "GET", svc, None, &reader).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");

    // The admin writes.
    let (status, _, body) = call(&app, "PUT", svc, Some(HTTP), &admin).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let resp = call(&app, "DELETE", svc, None, &reader).await;
    assert_error(&resp, StatusCode::FORBIDDEN, "forbidden");
    let (status, _, body) = call(&app, "DELETE", svc, None, &admin).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Probes stay open.
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(call(&app, "GET", probe, None, &[]).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn the_document_names_403_on_writes_when_tokens_are_on() {
    let (app, _dir) = app().await;
    let reader = [("authorization", "Bearer r3ad")];
    let (status, _, doc) = call(&app, "GET", "/api/openapi.json", None, &reader).await;
    assert_eq!(status, StatusCode::OK);
    let item = &doc["paths"]["/api/v1/services/{name}"];
    for method in ["put", "delete"] {
        let responses = &item[method]["responses"];
        assert!(responses.get("403").is_some(), "{method}: {responses}");
        assert!(responses.get("401").is_some(), "{method}: {responses}");
    }
    assert!(item["get"]["responses"].get("403").is_none());
}
