//! The OpenAPI document, generated from the same kinds and types the router serves, so it
//! cannot drift from the code. It describes the server as configured: with an admin token,
//! bearer security (and its 401) on every path but the probes; without one, none.

use std::sync::OnceLock;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use utoipa::{
    ToSchema,
    openapi::{
        ComponentsBuilder, Content, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder,
        PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Schema,
        header::HeaderBuilder,
        path::{Operation, OperationBuilder, ParameterBuilder, ParameterIn},
        schema::Type,
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};

mod ca;
mod object_status;
mod probes;
mod proxies;
mod proxy_tokens;
mod resources;
mod stats;
mod tap;

use super::{AppState, error::ErrorEnvelope};

/// The name of the bearer scheme in `components.securitySchemes`.
const SCHEME: &str = "admin_token";

/// `GET /api/openapi.json`: the document for this server's configuration, built once per
/// configuration (with or without the admin token) and served from memory after that.
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    static OPEN: OnceLock<Bytes> = OnceLock::new();
    static SECURED: OnceLock<Bytes> = OnceLock::new();
    let secured = state.admin_token.is_some();
    let cell = if secured { &SECURED } else { &OPEN };
    let body = cell.get_or_init(|| {
        // An `OpenApi` of plain maps and strings always serialises.
        Bytes::from(serde_json::to_vec(&document(secured)).unwrap_or_default())
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.clone(),
    )
        .into_response()
}

/// The document of a server without an admin token (no security requirement).
pub fn openapi() -> OpenApi {
    document(false)
}

/// The document of a server with (`secured`) or without an admin token.
pub fn document(secured: bool) -> OpenApi {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    collect::<ErrorEnvelope>(&mut schemas);
    object_status::schemas(&mut schemas);
    let mut paths = PathsBuilder::new();
    for (path, item) in resources::paths(&mut schemas)
        .into_iter()
        .chain(proxies::paths(&mut schemas))
        .chain(stats::paths(&mut schemas))
        .chain(probes::paths())
        .chain(tap::paths())
        .chain(proxy_tokens::paths())
        .chain(ca::paths())
    {
        paths = paths.path(path, item);
    }
    let mut components = ComponentsBuilder::new().schemas_from_iter(schemas);
    if secured {
        components = components.security_scheme(
            SCHEME,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("xds-server admin API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Describe the mesh; xds-server turns it into Envoy configuration. \
                     Errors are always {\"error\": {\"code\", \"message\", \"field\"}}. \
                     A method a path does not support answers 405 with an Allow header.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build();
    if secured {
        doc.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.delete,
                &mut item.post,
            ]
            .into_iter()
            .flatten()
            {
                require_token(op);
            }
            for op in [&mut item.put, &mut item.delete, &mut item.post]
                .into_iter()
                .flatten()
            {
                require_admin(op);
            }
        }
    }
    doc
}

/// An operation that inherits the global bearer requirement also answers 401 (the probes
/// opt out with `security: []`).
fn require_token(op: &mut Operation) {
    if op.security.is_some() {
        return;
    }
    let unauthorized = error_response("missing or wrong admin token: send Authorization: Bearer")
        .header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("Bearer realm=\"xds-server\""))
                .build(),
        )
        .build();
    op.responses
        .responses
        .insert("401".into(), RefOr::T(unauthorized));
}

/// A write (or token minting) also answers 403 to a valid reader token.
pub(super) fn require_admin(op: &mut Operation) {
    if op.security.is_some() {
        return;
    }
    let forbidden =
        error_response("forbidden: a reader token may only read; this needs the admin token")
            .build();
    op.responses
        .responses
        .insert("403".into(), RefOr::T(forbidden));
}

fn collect<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

fn op(id: &str, summary: &str) -> OperationBuilder {
    OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
}

/// The answers of every operation that reads or writes the store.
fn store_errors(op: OperationBuilder) -> OperationBuilder {
    op.response(
        "500",
        error_response(
            "internal: the store failed the request, or a stored row could not be read (see \
             the server log)",
        ),
    )
    .response(
        "503",
        store_unavailable("store_unavailable: the store is not reachable; retry shortly"),
    )
}

/// 503 `store_unavailable`, with the `Retry-After` header `error.rs` adds to it.
fn store_unavailable(description: &str) -> ResponseBuilder {
    error_response(description).header(
        "Retry-After",
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .description(Some("Seconds to wait before retrying"))
            .build(),
    )
}

/// A resource name: the rule `model::validate_name` enforces.
fn name_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
        .min_length(Some(1))
        .max_length(Some(63))
}

fn name_param() -> ParameterBuilder {
    ParameterBuilder::new()
        .name("name")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(name_schema()))
        .example(Some(serde_json::json!("web")))
}

fn query_param(
    name: &str,
    schema: impl Into<RefOr<Schema>>,
    description: &str,
) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
}

fn json(description: &str, schema: impl Into<RefOr<Schema>>) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(schema.into())))
}

fn error_response(description: &str) -> ResponseBuilder {
    json(description, Ref::from_schema_name(ErrorEnvelope::name()))
}

fn plain(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description)
}
