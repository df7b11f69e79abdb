//! The REST API for sidecars, mTLS modes and traffic permissions: a permission naming a
//! service that does not exist is 422 naming the field and stores nothing; bad fields are 422;
//! a service a permission names cannot be deleted; and the OpenAPI document has the kind.

mod common;

use axum::{Router, http::StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use xds_server::api::{AppState, router};

use common::http::{Response, assert_error, call};

async fn app() -> (Router, TempDir) {
    let (store, dir) = common::sqlite().await;
    (router(AppState::new(store)), dir)
}

async fn put(app: &Router, path: &str, body: &Value) -> Response {
    let uri = format!("/api/v1/{path}");
    call(app, "PUT", &uri, Some(&body.to_string()), &[]).await
}

async fn get(app: &Router, path: &str) -> Response {
    call(app, "GET", &format!("/api/v1/{path}"), None, &[]).await
}

/// A PUT that must be 422 `code` on `field`, leaving nothing stored.
async fn refused(app: &Router, path: &str, body: Value, code: &str, field: &str) {
    let err = assert_error(
        &put(app, path, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
    );
    assert_eq!(err["field"], field, "PUT {path} {body}: {err}");
    assert_eq!(
        get(app, path).await.0,
        StatusCode::NOT_FOUND,
        "{path} stored"
    );
}

#[tokio::test]
async fn a_permission_naming_an_unknown_service_is_422_and_stores_nothing() {
    let (app, _dir) = app().await;
    assert_eq!(
        put(&app, "services/web", &json!({ "protocol": "http" }))
            .await
            .0,
        StatusCode::CREATED
    );
    let to_ghost = json!({ "from": ["web"], "to": "ghost", "action": "deny" });
    refused(
        &app,
        "traffic-permissions/p",
        to_ghost,
        "invalid_field",
        "to",
    )
    .await;
    let from_ghost = json!({ "from": ["*", "ghost"], "to": "web", "action": "allow" });
    refused(
        &app,
        "traffic-permissions/p",
        from_ghost,
        "invalid_field",
        "from[1]",
    )
    .await;
    let list = get(&app, "traffic-permissions").await;
    assert_eq!(list.2["items"], json!([]), "{}", list.2);
}

#[tokio::test]
async fn bad_fields_are_422_naming_them() {
    let (app, _dir) = app().await;
    for (body, field) in [
        (json!({ "from": [], "to": "web", "action": "deny" }), "from"),
        (
            json!({ "from": ["web"], "to": "web", "action": "deny", "methods": ["get"] }),
            "methods[0]",
        ),
        (
            json!({ "from": ["web"], "to": "web", "action": "allow", "shadow": true }),
            "shadow",
        ),
        (
            json!({ "from": ["web"], "to": "web", "action": "deny", "paths": ["x"] }),
            "paths[0]",
        ),
    ] {
        refused(&app, "traffic-permissions/p", body, "invalid_field", field).await;
    }
    let mtls_alone = json!({ "protocol": "http", "mtls": "strict" });
    refused(&app, "services/web", mtls_alone, "invalid_field", "mtls").await;
    let bad_port = json!({ "protocol": "http", "inbound": { "port": 0, "app_port": 8080 } });
    refused(
        &app,
        "services/web",
        bad_port,
        "invalid_field",
        "inbound.port",
    )
    .await;
}

#[tokio::test]
async fn permissions_are_kept_and_hold_the_services_they_name() {
    let (app, _dir) = app().await;
    let web = json!({ "protocol": "http", "mtls": "strict",
                      "inbound": { "port": 15006, "app_port": 8080 } });
    let created = put(&app, "services/web", &web).await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.2);
    assert_eq!(
        created.2["inbound"]["app_address"], "127.0.0.1",
        "defaults are filled in"
    );
    put(&app, "services/api", &json!({ "protocol": "http" })).await;
    let body = json!({ "from": ["api"], "to": "web", "action": "deny", "paths": ["/admin"],
                       "methods": ["POST"], "shadow": true, "labels": { "team": "a" } });
    let created = put(&app, "traffic-permissions/no-admin", &body).await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.2);
    let read = get(&app, "traffic-permissions/no-admin").await;
    assert_eq!(read.2["shadow"], true);
    assert_eq!(read.2["to"], "web");
    let listed = get(&app, "traffic-permissions?selector=team%3Da").await;
    assert_eq!(
        listed.2["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.2
    );
    for service in ["web", "api"] {
        let resp = call(
            &app,
            "DELETE",
            &format!("/api/v1/services/{service}"),
            None,
            &[],
        )
        .await;
        let err = assert_error(&resp, StatusCode::CONFLICT, "referenced");
        assert_eq!(
            err["referrers"],
            json!([{ "kind": "traffic-permissions", "name": "no-admin" }])
        );
    }
    let resp = call(
        &app,
        "DELETE",
        "/api/v1/traffic-permissions/no-admin",
        None,
        &[],
    )
    .await;
    assert_eq!(resp.0, StatusCode::NO_CONTENT);
    let resp = call(&app, "DELETE", "/api/v1/services/api", None, &[]).await;
    assert_eq!(resp.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_openapi_document_has_the_kind_and_the_new_fields() {
    let (app, _dir) = app().await;
    let (status, _, doc) = call(&app, "GET", "/api/openapi.json", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/v1/traffic-permissions",
        "/api/v1/traffic-permissions/{name}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["TrafficPermission"]["properties"]["from"].is_object());
    assert!(schemas["Service"]["properties"]["inbound"].is_object());
    assert!(schemas["Service"]["properties"]["mtls"].is_object());
}
