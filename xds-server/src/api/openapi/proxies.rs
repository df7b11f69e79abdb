//! The OpenAPI paths of the read-only and operations endpoints: connected proxies, their
//! computed config, the Envoy bootstrap and the Prometheus metrics.

use utoipa::openapi::{
    ArrayBuilder, Content, HttpMethod, ObjectBuilder, PathItem, Ref, RefOr, Required,
    ResponseBuilder, Schema,
    path::{ParameterBuilder, ParameterIn},
    schema::Type,
};

use super::{error_response, op, query_param};

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn nullable_string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
        Type::String,
        Type::Null,
    ]))
}

/// `TypeStatus` and `ProxyStatus`, as `status.rs` serialises them.
fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    let type_status = ObjectBuilder::new()
        .property("version_sent", nullable_string())
        .property("version_acked", nullable_string())
        .property(
            "status",
            string()
                .enum_values(Some(["SYNCED", "STALE", "NACKED"]))
                .description(Some(
                    "SYNCED: the last response was ACKed; STALE: sent, not answered yet; \
                     NACKED: rejected (see error_detail)",
                )),
        )
        .property(
            "error_detail",
            string().description(Some("The proxy's NACK message (only when NACKED)")),
        )
        .property(
            "resources_sent",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some(
                    "Resources in the last response (SotW) or changed (delta)",
                )),
        )
        .required("status");
    let proxy_status = ObjectBuilder::new()
        .property("node_id", string())
        .property("cluster", string())
        .property("metadata", ObjectBuilder::new().schema_type(Type::Object))
        .property("variant", string().enum_values(Some(["sotw", "delta"])))
        .property(
            "service",
            string().description(Some("ads, or the per-type service: cds, eds, lds, rds")),
        )
        .property(
            "connected_since",
            string().format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            ))),
        )
        .property(
            "types",
            ObjectBuilder::new()
                .description(Some("Keyed by type URL"))
                .additional_properties(Some(Ref::from_schema_name("TypeStatus"))),
        );
    schemas.push((
        "TypeStatus".into(),
        RefOr::T(Schema::Object(type_status.build())),
    ));
    schemas.push((
        "ProxyStatus".into(),
        RefOr::T(Schema::Object(proxy_status.build())),
    ));
}

fn node_id_param() -> ParameterBuilder {
    ParameterBuilder::new()
        .name("node_id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(string()))
}

fn json(description: &str, schema: impl Into<RefOr<Schema>>) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(schema.into())))
}

/// The paths, adding the schemas they use to `all`.
pub(super) fn paths(all: &mut Vec<(String, RefOr<Schema>)>) -> Vec<(String, PathItem)> {
    schemas(all);
    let status = || Ref::from_schema_name("ProxyStatus");
    let list = ObjectBuilder::new().property("items", ArrayBuilder::new().items(status()));
    let one = ObjectBuilder::new()
        .property(
            "streams",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some(
                    "How many xDS streams the node has open (one for ADS, one per type otherwise)",
                )),
        )
        .description(Some(
            "The node's newest stream: ProxyStatus fields plus streams",
        ));
    let config = ObjectBuilder::new()
        .description(Some(
            "{\"<type_url>\": {\"<name>\": {\"version\", \"resource\" (proto3 JSON)}}, \"warnings\": [...]}",
        ))
        .property("warnings", ArrayBuilder::new().items(string()));
    let text = |media: &str, description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(media, Content::new(Some(string())))
    };
    let bootstrap = op(
        "bootstrap_get",
        "A ready Envoy bootstrap pointing at this server",
    )
    .description(Some(
        "JSON text, which is also YAML: save it as envoy.yaml. The xDS host is the server's \
             xDS address, or the host this request came to when xDS listens on 0.0.0.0 or ::, \
             or xds_host.",
    ))
    .parameter(
        query_param(
            "node_id",
            Type::String,
            "Required: the proxy's node id (1..=256 characters)",
        )
        .required(Required::True),
    )
    .parameter(query_param(
        "cluster",
        Type::String,
        "The proxy's node cluster (default \"default\")",
    ))
    .parameter(query_param(
        "delta",
        Type::Boolean,
        "true: delta xDS (DELTA_GRPC); false (default): state of the world",
    ))
    .parameter(query_param(
        "admin_port",
        Type::Integer,
        "Envoy's admin port on 127.0.0.1, 1..=65535 (default 9901)",
    ))
    .parameter(query_param(
        "xds_host",
        Type::String,
        "Override the xDS host (IP address or DNS name)",
    ))
    .parameter(query_param(
        "metadata.<key>",
        Type::String,
        "Node metadata: metadata.role=edge sets {\"role\": \"edge\"}",
    ))
    .response("200", text("application/yaml", "the bootstrap"))
    .response(
        "400",
        error_response("missing node_id, bad or unknown parameter"),
    );
    let metrics = op("metrics_get", "Prometheus metrics (text format 0.0.4)")
        .response("200", text("text/plain", "the exposition"));
    vec![
        (
            "/api/v1/proxies".into(),
            PathItem::new(
                HttpMethod::Get,
                op("proxies_list", "Every open xDS stream, oldest first")
                    .response("200", json("the streams", list)),
            ),
        ),
        (
            "/api/v1/proxies/{node_id}".into(),
            PathItem::new(
                HttpMethod::Get,
                op("proxies_get", "The status of one connected proxy")
                    .parameter(node_id_param())
                    .response(
                        "200",
                        json(
                            "the newest stream",
                            RefOr::T(Schema::AllOf(
                                utoipa::openapi::AllOfBuilder::new()
                                    .item(status())
                                    .item(one)
                                    .build(),
                            )),
                        ),
                    )
                    .response("404", error_response("not connected")),
            ),
        ),
        (
            "/api/v1/proxies/{node_id}/config".into(),
            PathItem::new(
                HttpMethod::Get,
                op(
                    "proxy_config",
                    "The resources computed for a connected proxy, as proto3 JSON",
                )
                .parameter(node_id_param())
                .response("200", json("the resources by type URL and name", config))
                .response("404", error_response("not connected"))
                .response(
                    "503",
                    error_response("connected, resources not computed yet"),
                ),
            ),
        ),
        (
            "/api/v1/bootstrap".into(),
            PathItem::new(HttpMethod::Get, bootstrap),
        ),
        ("/metrics".into(), PathItem::new(HttpMethod::Get, metrics)),
    ]
}
