//! The OpenAPI paths and schemas of the mesh resources: list, get, put and delete per kind,
//! and a service's endpoints. A resource is read as `{Model}Resource` (the model's fields, the
//! envelope and the read-only `status` block), answered to a PUT as `{Model}Stored` (the same
//! without `status`) and written as `{Model}Put` (the model's fields with the envelope as
//! `body.rs` reads it).

use utoipa::{
    ToSchema,
    openapi::{
        ArrayBuilder, ContentBuilder, HttpMethod, ObjectBuilder, PathItem, Ref, RefOr, Required,
        Schema,
        header::HeaderBuilder,
        path::OperationBuilder,
        request_body::{RequestBody, RequestBodyBuilder},
        schema::{KnownFormat, SchemaFormat, SchemaType, Type},
    },
};

use super::{error_response, json, name_param, name_schema, op, plain, query_param, store_errors};
use serde_json::{Value, json};

use crate::model::{
    Endpoints, EnvoyResource, Kind, Listener, Route, SELECTOR_PATTERN, Service, Spec,
    TrafficPermission, noun,
};

type Schemas = Vec<(String, RefOr<Schema>)>;

/// Every resource path, adding the schemas they use to `schemas`.
pub(super) fn paths(schemas: &mut Schemas) -> Vec<(String, PathItem)> {
    let mut out = Vec::new();
    out.extend(kind_paths::<Service>(schemas));
    out.extend(kind_paths::<Route>(schemas));
    out.extend(kind_paths::<Listener>(schemas));
    out.extend(kind_paths::<EnvoyResource>(schemas));
    out.extend(kind_paths::<TrafficPermission>(schemas));
    out.push(endpoints_path(schemas));
    out
}

/// `/api/v1/{kind}` (list) and `/api/v1/{kind}/{name}` (get, put, delete).
fn kind_paths<S: Spec>(schemas: &mut Schemas) -> [(String, PathItem); 2] {
    collect_resource::<S>(schemas, true);
    let kind = S::KIND.collection();
    let noun = noun(S::KIND);
    let schema = S::name();
    let id = kind.replace('-', "_");
    let list = ObjectBuilder::new()
        .property("items", ArrayBuilder::new().items(resource_ref(&schema)))
        .property(
            "next_page_token",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .description(Some(
                    "Pass as page_token for the next page; null on the last page",
                )),
        )
        .required("items")
        .required("next_page_token");
    let collection = PathItem::new(
        HttpMethod::Get,
        store_errors(
            op(&format!("{id}_list"), &format!("List {kind} in name order"))
                .parameter(query_param(
                    "limit",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                        .maximum(Some(1000)),
                    "Page size, 1..=1000 (default 100)",
                ))
                .parameter(query_param(
                    "page_token",
                    name_schema(),
                    "The next_page_token of the previous page",
                ))
                .parameter(query_param(
                    "selector",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(SELECTOR_PATTERN.as_str())),
                    "Only objects carrying every label given, as key=value pairs joined by \
                     ',' (e.g. team=web,tier=edge)",
                ))
                .response("200", json("a page", list))
                .response(
                    "400",
                    error_response("bad limit, page_token or selector, or an unknown parameter"),
                ),
        ),
    );
    let mut item = PathItem::new(
        HttpMethod::Get,
        store_errors(
            op(&format!("{id}_get"), &format!("Get one {noun}"))
                .parameter(name_param())
                .response("200", resource_response(&schema, true))
                .response("400", bad_path())
                .response("404", error_response("not found")),
        ),
    );
    item.put = Some(
        writes(
            op(&format!("{id}_put"), &format!("Create or replace a {noun}"))
                .description(Some(PUT_DESCRIPTION))
                .parameter(name_param())
                .parameter(dry_run_param())
                .request_body(Some(body(&schema, S::KIND))),
            &schema,
        )
        .response(
            "422",
            error_response(
                "an invalid or unknown field, a dangling reference, or a body name other than \
                 the path's",
            ),
        )
        .build(),
    );
    item.delete = Some(
        store_errors(
            op(&format!("{id}_delete"), &format!("Delete a {noun}"))
                .description(Some(
                    "`?version=N` or `If-Match: N` (N ≥ 1, the version last read) deletes only \
                     at that version; both must agree when both are sent.",
                ))
                .parameter(name_param())
                .parameter(query_param(
                    "version",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                        .maximum(Some(i64::MAX)),
                    "Delete only at this version",
                ))
                .response("204", plain("deleted"))
                .response(
                    "400",
                    error_response(
                        "bad version or If-Match, the two disagree, an unknown parameter, or \
                         invalid_path",
                    ),
                )
                .response("404", error_response("not found"))
                .response(
                    "409",
                    error_response("version conflict, or still referenced (see referrers)"),
                ),
        )
        .build(),
    );
    [
        (format!("/api/v1/{kind}"), collection),
        (format!("/api/v1/{kind}/{{name}}"), item),
    ]
}

const PUT_DESCRIPTION: &str = "The body may also carry `name` (must equal the path) and `version` \
     (the version last read; 0 = must not exist); `If-Match: N` does the same as `version` and \
     must agree with it. `created_at` and `updated_at` are ignored, so a GET response can be \
     sent back unchanged. 201 when created, 200 when replaced; the ETag is the new version. \
     With `?dry_run=true` every check runs and the answer is the same (the resource as it \
     would be stored, without an ETag), but nothing is written.";

/// `?dry_run=true`: check and answer, write nothing (`api/dry_run.rs`).
fn dry_run_param() -> utoipa::openapi::path::ParameterBuilder {
    query_param(
        "dry_run",
        ObjectBuilder::new().schema_type(Type::Boolean),
        "true: run every check and answer as the write would, but write nothing",
    )
}

/// `/api/v1/services/{name}/endpoints` (get, put).
fn endpoints_path(schemas: &mut Schemas) -> (String, PathItem) {
    collect_resource::<Endpoints>(schemas, false);
    let schema = Endpoints::name();
    let mut item = PathItem::new(
        HttpMethod::Get,
        store_errors(
            op(
                "endpoints_get",
                "The service's endpoints (version 0, no timestamps, while none were set)",
            )
            .parameter(name_param())
            .response("200", resource_response(&schema, false))
            .response("400", bad_path())
            .response("404", error_response("no such service")),
        ),
    );
    item.put = Some(
        writes(
            op("endpoints_put", "Replace all endpoints of the service")
                .description(Some(PUT_DESCRIPTION))
                .parameter(name_param())
                .parameter(dry_run_param())
                .request_body(Some(body(&schema, Kind::Endpoints))),
            &schema,
        )
        .response("404", error_response("no such service"))
        .response(
            "422",
            error_response("an invalid or unknown field, or a body name other than the path's"),
        )
        .build(),
    );
    ("/api/v1/services/{name}/endpoints".into(), item)
}

/// The answers every PUT shares (422 is the caller's: what it checks differs per kind).
fn writes(op: OperationBuilder, schema: &str) -> OperationBuilder {
    store_errors(
        op.response("200", stored_response(schema))
            .response("201", stored_response(schema))
            .response(
                "400",
                error_response(
                    "a body that is not a JSON object, a bad If-Match, a bad dry_run or an \
                     unknown parameter, or invalid_path",
                ),
            )
            .response("409", error_response("version conflict"))
            .response("413", error_response("body larger than --max-body-bytes")),
    )
}

/// `invalid_path`: a path segment whose percent-encoding is not UTF-8 (`path.rs`).
fn bad_path() -> utoipa::openapi::ResponseBuilder {
    error_response("invalid_path: the path is not percent-encoded UTF-8")
}

fn collect<T: ToSchema>(schemas: &mut Schemas) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

fn resource_ref(schema: &str) -> Ref {
    Ref::from_schema_name(format!("{schema}Resource"))
}

fn stored_ref(schema: &str) -> Ref {
    Ref::from_schema_name(format!("{schema}Stored"))
}

fn put_ref(schema: &str) -> Ref {
    Ref::from_schema_name(format!("{schema}Put"))
}

fn date_time() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

fn version(minimum: i64, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(minimum))
        .maximum(Some(i64::MAX))
        .description(Some(description))
}

/// Adds the model's schema, `{Model}Resource` (what GET returns), `{Model}Stored` (what a PUT
/// answers) and `{Model}Put` (what it accepts). The model objects refuse unknown fields, so
/// the envelope cannot be an `allOf` beside them: it is merged into copies of the model's
/// object. `stamped`: responses always carry `created_at` and `updated_at` (all but the
/// endpoints placeholder).
fn collect_resource<T: ToSchema>(schemas: &mut Schemas, stamped: bool) {
    collect::<T>(schemas);
    let RefOr::T(Schema::Object(model)) = T::schema() else {
        return;
    };
    let mut read = model.clone();
    let mut write = model;
    let envelope = ObjectBuilder::new()
        .property("name", name_schema())
        .property(
            "version",
            version(0, "Bumped on every write; send it back to update safely"),
        )
        .property("created_at", date_time())
        .property("updated_at", date_time())
        .build();
    read.properties.extend(envelope.properties);
    read.required
        .extend(["name".to_string(), "version".to_string()]);
    if stamped {
        read.required
            .extend(["created_at".to_string(), "updated_at".to_string()]);
    }
    let stored = read.clone();
    read.properties.insert(
        "status".into(),
        RefOr::Ref(Ref::from_schema_name("ObjectStatus")),
    );
    read.required.push("status".into());
    let ignored = |what: &str| {
        ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .description(Some(format!("{what}: accepted and ignored")))
    };
    let write_envelope = ObjectBuilder::new()
        .property(
            "name",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("Must equal the name in the path")),
        )
        .property(
            "version",
            version(
                0,
                "The version last read: the write happens only at that version (0: only if \
                 it does not exist yet)",
            ),
        )
        .property("created_at", ignored("Set by the server"))
        .property("updated_at", ignored("Set by the server"))
        .property("status", ignored("Read-only, computed by the server"))
        .build();
    write.properties.extend(write_envelope.properties);
    let name = T::name();
    schemas.push((format!("{name}Resource"), RefOr::T(Schema::Object(read))));
    schemas.push((format!("{name}Stored"), RefOr::T(Schema::Object(stored))));
    schemas.push((format!("{name}Put"), RefOr::T(Schema::Object(write))));
}

/// The request body, with an example that the server accepts for the name `web` (the name
/// parameter's example) once the resources it names exist: a generated client's docs show it,
/// and schemathesis sends it first.
fn body(schema: &str, kind: Kind) -> RequestBody {
    let content = ContentBuilder::new()
        .schema(Some(put_ref(schema)))
        .example(Some(example(kind)))
        .build();
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content("application/json", content)
        .build()
}

fn example(kind: Kind) -> Value {
    match kind {
        Kind::Service => json!({ "protocol": "http" }),
        Kind::Endpoints => json!({ "endpoints": [{ "address": "127.0.0.1", "port": 8080 }] }),
        Kind::Route => json!({
            "hosts": ["web.example.com"],
            "rules": [{ "match": {}, "destinations": [{ "service": "web" }] }],
        }),
        Kind::Listener => json!({
            "address": "0.0.0.0", "port": 10000, "protocol": "http", "routes": ["web"],
        }),
        Kind::TrafficPermission => json!({
            "from": ["web"], "to": "api", "action": "deny", "paths": ["/admin"],
        }),
        Kind::EnvoyResource => json!({
            "type_url": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "resource": {
                "name": "web", "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": { "cluster_name": "web", "endpoints": [{ "lb_endpoints": [{
                    "endpoint": { "address": { "socket_address": {
                        "address": "127.0.0.1", "port_value": 8080 } } } }] }] },
            },
        }),
    }
}

/// A PUT's answer: the resource as stored (without `status`), and its version as the ETag.
fn stored_response(schema: &str) -> utoipa::openapi::ResponseBuilder {
    resource_response(schema, true).content(
        "application/json",
        utoipa::openapi::Content::new(Some(stored_ref(schema))),
    )
}

/// The resource as JSON; `etag`: the response carries `ETag: "<version>"`.
fn resource_response(schema: &str, etag: bool) -> utoipa::openapi::ResponseBuilder {
    let response = json("the resource", resource_ref(schema));
    if !etag {
        return response;
    }
    response.header(
        "ETag",
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^\"[0-9]+\"$")),
            )
            .description(Some("The version, quoted: send it back as If-Match"))
            .build(),
    )
}
