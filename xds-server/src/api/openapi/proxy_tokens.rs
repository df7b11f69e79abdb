//! The document's part for proxy tokens (`api/proxy_tokens.rs`): issue, list, revoke.

use utoipa::openapi::{
    ArrayBuilder, HttpMethod, ObjectBuilder, PathItem, Required,
    path::{ParameterBuilder, ParameterIn, PathItemBuilder},
    request_body::RequestBodyBuilder,
    schema::{AdditionalProperties, Type},
};

use super::{error_response, json, op, plain, store_errors};

fn text(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(max))
        .pattern(Some("^[^\\u0000-\\u001f\\u007f-\\u009f]*$"))
}

/// A token as listed (and, with `token`, as issued).
fn view(with_secret: bool) -> ObjectBuilder {
    let mut o = ObjectBuilder::new()
        .property("id", text(64).description(Some("e.g. pt-1f2e3d4c5b6a7988")))
        .property("node_id", text(256))
        .property("node_cluster", text(256))
        .property("description", text(1024))
        .property("created_at", ObjectBuilder::new().schema_type(Type::String))
        .required("id")
        .required("node_id")
        .required("node_cluster")
        .required("created_at");
    if with_secret {
        o = o
            .property(
                "token",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "The secret, shown only here: send it as gRPC metadata \
                     'authorization: Bearer <token>' on the xDS port",
                    )),
            )
            .required("token");
    }
    o
}

/// `/api/v1/proxy-tokens` and `/api/v1/proxy-tokens/{id}`.
pub(super) fn paths() -> Vec<(String, PathItem)> {
    let body = ObjectBuilder::new()
        .property("node_id", text(256).min_length(Some(1)))
        .property("node_cluster", text(256).min_length(Some(1)))
        .property("description", text(1024))
        .required("node_id")
        .required("node_cluster")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    let create = store_errors(
        op(
            "proxy_tokens_create",
            "Issue a proxy token for one node id and cluster",
        )
        .description(Some(
            "The answer holds the secret, once: the server keeps only its SHA-256. A proxy \
                 presents it on the xDS port; its streams must announce this node id and \
                 cluster (else PERMISSION_DENIED).",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    utoipa::openapi::Content::new(Some(body)),
                )
                .required(Some(Required::True))
                .build(),
        ))
        .response("201", json("the token, with its secret", view(true)))
        .response(
            "400",
            error_response("invalid_json: the body is not a JSON object"),
        )
        .response(
            "422",
            error_response("invalid_field or unknown_field: the field is named"),
        ),
    );
    let list = store_errors(
        op(
            "proxy_tokens_list",
            "Every proxy token, oldest first (never the secrets)",
        )
        .response(
            "200",
            json(
                "the tokens",
                ObjectBuilder::new()
                    .property("items", ArrayBuilder::new().items(view(false)))
                    .required("items"),
            ),
        ),
    );
    let id = ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .example(Some(serde_json::json!("pt-1f2e3d4c5b6a7988")));
    let revoke = store_errors(
        op(
            "proxy_tokens_delete",
            "Revoke a proxy token; streams using it end at once",
        )
        .parameter(id)
        .response("204", plain("revoked"))
        .response("404", error_response("not_found: no such token")),
    );
    vec![
        (
            "/api/v1/proxy-tokens".into(),
            PathItemBuilder::new()
                .operation(HttpMethod::Get, list)
                .operation(HttpMethod::Post, create)
                .build(),
        ),
        (
            "/api/v1/proxy-tokens/{id}".into(),
            PathItem::new(HttpMethod::Delete, revoke),
        ),
    ]
}
