//! Two REST extensions driven in-process: operator `labels` on every kind that has a name of
//! its own, the `?selector=` list filter (paging through filtered lists), and
//! `PUT …?dry_run=true` (every check, the normalised answer, nothing written).

mod common;

use axum::{Router, http::StatusCode};
use common::http::{Response, assert_error, call};
use serde_json::{Value, json};
use tempfile::TempDir;
use xds_server::api::{AppState, router};

async fn app() -> (Router, TempDir) {
    let (store, dir) = common::sqlite().await;
    (router(AppState::new(store)), dir)
}

async fn get(app: &Router, uri: &str) -> Response {
    call(app, "GET", uri, None, &[]).await
}

async fn put(app: &Router, uri: &str, body: &Value) -> Response {
    call(app, "PUT", uri, Some(&body.to_string()), &[]).await
}

async fn put_ok(app: &Router, uri: &str, body: &Value) -> Value {
    let (status, _, json) = put(app, uri, body).await;
    assert!(status.is_success(), "PUT {uri} {body}: {status} {json}");
    json
}

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect()
}

/// A valid body of each kind with these labels (the route and listener need `web`).
fn bodies(labels: &Value) -> [(&'static str, Value); 4] {
    [
        ("services", json!({ "protocol": "http", "labels": labels })),
        (
            "routes",
            json!({ "hosts": ["*"], "rules": [{ "destinations": [{ "service": "web" }] }],
                    "labels": labels }),
        ),
        (
            "listeners",
            json!({ "port": 10000, "protocol": "http", "routes": ["web"], "labels": labels }),
        ),
        (
            "envoy-resources",
            json!({ "type_url": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
                    "resource": { "name": "web", "connect_timeout": "1s" },
                    "labels": labels }),
        ),
    ]
}

#[tokio::test]
async fn labels_are_stored_and_returned_on_every_kind() {
    let (app, _dir) = app().await;
    let labels = json!({ "app.kubernetes.io/part-of": "demo", "tier": "" });
    for (kind, body) in bodies(&labels) {
        let written = put_ok(&app, &format!("/api/v1/{kind}/web"), &body).await;
        assert_eq!(written["labels"], labels, "{kind}");
        let (_, _, read) = get(&app, &format!("/api/v1/{kind}/web")).await;
        assert_eq!(read["labels"], labels, "{kind}");
    }
    // Without labels, none are returned (the field is optional and omitted when empty).
    let plain = put_ok(&app, "/api/v1/services/api", &json!({ "protocol": "http" })).await;
    assert!(plain.get("labels").is_none(), "{plain}");
}

#[tokio::test]
async fn invalid_labels_are_refused_naming_the_label() {
    let (app, _dir) = app().await;
    put_ok(&app, "/api/v1/services/web", &json!({ "protocol": "http" })).await;
    for (kind, body) in bodies(&json!({ "bad key": "x" })) {
        let err = assert_error(
            &put(&app, &format!("/api/v1/{kind}/web"), &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        );
        assert_eq!(err["field"], "labels.bad key", "{kind}");
    }
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    let err = assert_error(
        &put(
            &app,
            "/api/v1/services/web",
            &json!({ "protocol": "http", "labels": many }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(err["field"], "labels");
    let err = assert_error(
        &put(
            &app,
            "/api/v1/services/web",
            &json!({ "protocol": "http", "labels": { "app": 1 } }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(err["field"], "labels.app");
}

#[tokio::test]
async fn selector_filters_lists_and_pages_through_them() {
    let (app, _dir) = app().await;
    // 25 services; every third carries team=web, and s00/s03 also tier=edge.
    for i in 0..25 {
        let labels = match i {
            0 | 3 => json!({ "team": "web", "tier": "edge" }),
            i if i % 3 == 0 => json!({ "team": "web" }),
            _ => json!({ "team": "api" }),
        };
        let body = json!({ "protocol": "http", "labels": labels });
        put_ok(&app, &format!("/api/v1/services/s{i:02}"), &body).await;
    }
    let (status, _, both) = get(&app, "/api/v1/services?selector=team=web,tier=edge").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&both), ["s00", "s03"]);
    assert_eq!(both["next_page_token"], Value::Null);

    let mut seen = Vec::new();
    let mut uri = "/api/v1/services?selector=team%3Dweb&limit=3".to_string();
    loop {
        let (status, _, page) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(names(&page).len() <= 3);
        seen.extend(names(&page).into_iter().map(String::from));
        match &page["next_page_token"] {
            Value::String(token) => {
                uri = format!("/api/v1/services?selector=team=web&limit=3&page_token={token}")
            }
            _ => break,
        }
    }
    let expected: Vec<String> = (0..25).step_by(3).map(|i| format!("s{i:02}")).collect();
    assert_eq!(seen, expected);

    let (_, _, none) = get(&app, "/api/v1/services?selector=team=db").await;
    assert_eq!(names(&none), Vec::<&str>::new());
    assert_eq!(none["next_page_token"], Value::Null);
}

#[tokio::test]
async fn a_bad_selector_is_a_400_that_shows_the_form() {
    let (app, _dir) = app().await;
    for bad in ["team", "team=web,", "team!=web", "team%20=web", "=web", ""] {
        let err = assert_error(
            &get(&app, &format!("/api/v1/routes?selector={bad}")).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
        assert_eq!(err["field"], "selector", "{bad}");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains("key=value"), "{bad}: {message}");
    }
}

#[tokio::test]
async fn dry_run_answers_like_the_write_and_writes_nothing() {
    let (app, _dir) = app().await;
    // Created: 201 with version 1 and the normalised spec, yet nothing is stored.
    let body = json!({ "protocol": "http", "connect_timeout": "1000ms",
                       "health_check": { "path": "/h", "interval": "60s", "timeout": "1s" } });
    let (status, headers, preview) = put(&app, "/api/v1/services/web?dry_run=true", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{preview}");
    assert_eq!(preview["version"], 1);
    assert_eq!(preview["connect_timeout"], "1s");
    assert_eq!(preview["health_check"]["interval"], "1m");
    assert_eq!(preview["health_check"]["healthy_threshold"], 1);
    assert!(
        headers.get("etag").is_none(),
        "a dry run has no version to tag"
    );
    assert_error(
        &get(&app, "/api/v1/services/web").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Replaced: 200 with the next version; the stored one is untouched.
    let stored = put_ok(&app, "/api/v1/services/web", &body).await;
    let changed = json!({ "protocol": "http2" });
    let (status, _, preview) = put(&app, "/api/v1/services/web?dry_run=true", &changed).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["version"], 2);
    assert_eq!(preview["protocol"], "http2");
    assert_eq!(preview["created_at"], stored["created_at"]);
    let (_, _, mut read) = get(&app, "/api/v1/services/web").await;
    read.as_object_mut().unwrap().remove("status"); // read-only, GET only
    assert_eq!(read, stored);

    // The write's checks run: a stale version, a dangling reference, a bad field.
    let stale = json!({ "protocol": "http", "version": 7 });
    assert_error(
        &put(&app, "/api/v1/services/web?dry_run=true", &stale).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let route = json!({ "hosts": ["*"], "rules": [{ "destinations": [{ "service": "nope" }] }] });
    let err = assert_error(
        &put(&app, "/api/v1/routes/r?dry_run=true", &route).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(err["field"], "rules[0].destinations[0].service");
    assert_error(
        &put(
            &app,
            "/api/v1/services/web?dry_run=true",
            &json!({ "protocol": "udp" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );

    // Endpoints too: defaults filled in, nothing stored.
    let endpoints = json!({ "endpoints": [{ "address": "127.0.0.1", "port": 8081 }] });
    let (status, _, preview) = put(
        &app,
        "/api/v1/services/web/endpoints?dry_run=true",
        &endpoints,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{preview}");
    assert_eq!(preview["endpoints"][0]["weight"], 1);
    assert_eq!(preview["endpoints"][0]["health"], "healthy");
    let (_, _, read) = get(&app, "/api/v1/services/web/endpoints").await;
    assert_eq!(read["version"], 0, "{read}");

    // dry_run=false is an ordinary write.
    let (status, _, _) = put(&app, "/api/v1/services/api?dry_run=false", &changed).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_put_refuses_unknown_query_parameters_so_a_typo_never_writes() {
    let (app, _dir) = app().await;
    let body = json!({ "protocol": "http" });
    for query in ["dryrun=true", "dry_run=yes", "dry_run=1"] {
        assert_error(
            &put(&app, &format!("/api/v1/services/web?{query}"), &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
    }
    assert_error(
        &get(&app, "/api/v1/services/web").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}
