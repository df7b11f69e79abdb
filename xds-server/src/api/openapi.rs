//! The OpenAPI document, generated from the same kinds and types the router serves, so it
//! cannot drift from the code.

use axum::Json;
use utoipa::{
    ToSchema,
    openapi::{
        ComponentsBuilder, Content, HttpMethod, InfoBuilder, ObjectBuilder, OpenApi,
        OpenApiBuilder, PathItem, PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Schema,
        path::{OperationBuilder, ParameterBuilder, ParameterIn},
        request_body::RequestBodyBuilder,
        schema::Type,
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};

mod proxies;

use super::error::ErrorEnvelope;
use crate::model::{Endpoints, EnvoyResource, Listener, Route, Service, Spec};

pub async fn openapi_json() -> Json<OpenApi> {
    Json(openapi())
}

/// Builds the document: one path pair per kind, the endpoints sub-resource, proxies,
/// bootstrap, metrics and health checks.
pub fn openapi() -> OpenApi {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    let mut paths = PathsBuilder::new();
    collect::<ErrorEnvelope>(&mut schemas);
    for (path, item) in [
        kind_paths::<Service>(&mut schemas),
        kind_paths::<Route>(&mut schemas),
        kind_paths::<Listener>(&mut schemas),
        kind_paths::<EnvoyResource>(&mut schemas),
    ]
    .into_iter()
    .flatten()
    {
        paths = paths.path(path, item);
    }
    collect_resource::<Endpoints>(&mut schemas);
    let endpoints = Endpoints::name();
    let mut item = PathItem::new(
        HttpMethod::Get,
        op(
            "endpoints_get",
            "The service's endpoints (version 0 while none were set)",
        )
        .parameter(name_param())
        .response("200", resource_response(&endpoints))
        .response("404", error_response("no such service")),
    );
    item.put = Some(
        op("endpoints_put", "Replace all endpoints of the service")
            .parameter(name_param())
            .request_body(Some(body(&endpoints)))
            .response("200", resource_response(&endpoints))
            .response("201", resource_response(&endpoints))
            .response("400", error_response("malformed JSON"))
            .response("404", error_response("no such service"))
            .response("409", error_response("version conflict"))
            .response("413", error_response("body too large"))
            .response("422", error_response("invalid field"))
            .build(),
    );
    paths = paths.path("/api/v1/services/{name}/endpoints", item);
    for (path, item) in proxies::paths(&mut schemas) {
        paths = paths.path(path, item);
    }
    for (path, summary) in [
        ("/healthz", "Liveness: the process is up (no token needed)"),
        ("/readyz", "Readiness: the store answers (no token needed)"),
    ] {
        paths = paths.path(
            path,
            PathItem::new(
                HttpMethod::Get,
                op(&path[1..], summary)
                    .securities(Some(Vec::<SecurityRequirement>::new()))
                    .response("200", plain("ok")),
            ),
        );
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("xds-server admin API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Describe the mesh; xds-server turns it into Envoy configuration. \
                     Errors are always {\"error\": {\"code\", \"message\", \"field\"}}.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(
            ComponentsBuilder::new()
                .schemas_from_iter(schemas)
                .security_scheme(
                    "admin_token",
                    SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
                )
                .build(),
        ))
        .security(Some([SecurityRequirement::new(
            "admin_token",
            Vec::<String>::new(),
        )]))
        .build()
}

/// `/api/v1/{kind}` (list) and `/api/v1/{kind}/{name}` (get, put, delete).
fn kind_paths<S: Spec>(schemas: &mut Vec<(String, RefOr<Schema>)>) -> [(String, PathItem); 2] {
    collect_resource::<S>(schemas);
    let kind = S::KIND.as_str();
    let noun = S::KIND.singular();
    let schema = S::name();
    let id = kind.replace('-', "_");
    let list = ObjectBuilder::new()
        .property(
            "items",
            utoipa::openapi::ArrayBuilder::new().items(with_meta(&schema)),
        )
        .property(
            "next_page_token",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "Pass as page_token for the next page; null on the last page",
                )),
        );
    let collection = PathItem::new(
        HttpMethod::Get,
        op(&format!("{id}_list"), &format!("List {kind} in name order"))
            .parameter(query_param(
                "limit",
                Type::Integer,
                "Page size, 1..=1000 (default 100)",
            ))
            .parameter(query_param(
                "page_token",
                Type::String,
                "From the previous page",
            ))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("a page")
                    .content("application/json", Content::new(Some(list))),
            )
            .response("400", error_response("bad query")),
    );
    let mut item = PathItem::new(
        HttpMethod::Get,
        op(&format!("{id}_get"), &format!("Get one {noun}"))
            .parameter(name_param())
            .response("200", resource_response(&schema))
            .response("404", error_response("not found")),
    );
    item.put = Some(
        op(&format!("{id}_put"), &format!("Create or replace a {noun}"))
            .description(Some(
                "The body may also carry `name` (must equal the path) and `version` (the \
                 version last read; 0 = must not exist). `If-Match: N` does the same.",
            ))
            .parameter(name_param())
            .request_body(Some(body(&schema)))
            .response("200", resource_response(&schema))
            .response("201", resource_response(&schema))
            .response("400", error_response("malformed JSON"))
            .response("409", error_response("version conflict"))
            .response("413", error_response("body too large"))
            .response(
                "422",
                error_response("invalid or unknown field, or dangling reference"),
            )
            .build(),
    );
    item.delete = Some(
        op(&format!("{id}_delete"), &format!("Delete a {noun}"))
            .parameter(name_param())
            .parameter(query_param(
                "version",
                Type::Integer,
                "Delete only at this version",
            ))
            .response("204", plain("deleted"))
            .response("404", error_response("not found"))
            .response(
                "409",
                error_response("version conflict, or still referenced"),
            )
            .build(),
    );
    [
        (format!("/api/v1/{kind}"), collection),
        (format!("/api/v1/{kind}/{{name}}"), item),
    ]
}

fn collect<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

fn resource_meta() -> RefOr<Schema> {
    ObjectBuilder::new()
        .property("name", ObjectBuilder::new().schema_type(Type::String))
        .property(
            "version",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some("Bumped on every write; send it back to update safely")),
        )
        .property(
            "created_at",
            ObjectBuilder::new().schema_type(Type::String).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime),
            )),
        )
        .property(
            "updated_at",
            ObjectBuilder::new().schema_type(Type::String).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime),
            )),
        )
        .into()
}

/// The name of the schema of a kind as the API reads and writes it: the model's fields plus
/// the envelope (`name`, `version`, `created_at`, `updated_at`).
fn with_meta(schema: &str) -> Ref {
    Ref::from_schema_name(format!("{schema}Resource"))
}

/// Adds `{Model}Resource` to `schemas`. The model objects refuse unknown fields, so the envelope
/// cannot be an `allOf` beside them: it is merged into a copy of the model's object.
fn collect_resource<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    collect::<T>(schemas);
    let RefOr::T(Schema::Object(mut object)) = T::schema() else {
        return;
    };
    if let RefOr::T(Schema::Object(meta)) = resource_meta() {
        object.properties.extend(meta.properties);
    }
    schemas.push((
        format!("{}Resource", T::name()),
        RefOr::T(Schema::Object(object)),
    ));
}

fn op(id: &str, summary: &str) -> OperationBuilder {
    OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
}

fn name_param() -> ParameterBuilder {
    ParameterBuilder::new()
        .name("name")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
                .max_length(Some(63)),
        ))
}

fn query_param(name: &str, ty: Type, description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(ty)))
}

fn body(schema: &str) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content("application/json", Content::new(Some(with_meta(schema))))
        .build()
}

fn resource_response(schema: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description("the resource")
        .content("application/json", Content::new(Some(with_meta(schema))))
}

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name(ErrorEnvelope::name()))),
    )
}

fn plain(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description)
}
