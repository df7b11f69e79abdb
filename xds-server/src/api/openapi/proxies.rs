//! The OpenAPI paths of the read-only and operations endpoints: connected proxies, their
//! computed config, the Envoy bootstrap and the Prometheus metrics.

use utoipa::openapi::{
    AllOfBuilder, ArrayBuilder, Content, HttpMethod, KnownFormat, ObjectBuilder, PathItem, Ref,
    RefOr, Required, ResponseBuilder, Schema, SchemaFormat,
    path::{ParameterBuilder, ParameterIn},
    schema::{AnyOfBuilder, Type},
};

use super::{error_response, json, op, query_param};

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn nullable_string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
        Type::String,
        Type::Null,
    ]))
}

/// `TypeStatus`, `ProxyStatus` and `HeldBack`, as `status.rs` and `translate.rs` serialise them.
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
        .required("version_sent")
        .required("version_acked")
        .required("status")
        .required("resources_sent");
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
        )
        .property(
            "held_back",
            ArrayBuilder::new()
                .items(Ref::from_schema_name("HeldBack"))
                .description(Some(
                    "Resources whose current version a proxy of this node's group rejected \
                     (last-known-good); absent when none",
                )),
        )
        .required("node_id")
        .required("cluster")
        .required("metadata")
        .required("variant")
        .required("service")
        .required("connected_since")
        .required("types");
    let held_back = ObjectBuilder::new()
        .property("type_url", string())
        .property("name", string())
        .property(
            "rejected_version",
            string().description(Some("Not sent to any proxy of the group")),
        )
        .property(
            "serving_version",
            nullable_string().description(Some(
                "Sent instead: the last version a proxy of the group accepted; null when none \
                 did (the resource is left out)",
            )),
        )
        .property(
            "rejected_by",
            string().description(Some("The node id of the proxy that rejected it")),
        )
        .property("message", string().description(Some("Its NACK message")))
        .required("type_url")
        .required("name")
        .required("rejected_version")
        .required("serving_version")
        .required("rejected_by")
        .required("message");
    schemas.push((
        "HeldBack".into(),
        RefOr::T(Schema::Object(held_back.build())),
    ));
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
        .example(Some(serde_json::json!("web")))
}

/// `bootstrap.rs`'s rule for node_id and cluster: 1..=256 characters, no control characters
/// (Unicode Cc, as Rust's `char::is_control`).
fn identifier() -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .max_length(Some(256))
        .pattern(Some("^[^\\u0000-\\u001f\\u007f-\\u009f]*$"))
}

/// `bootstrap.rs`'s rule for xds_host: an IP address, or a DNS name of 1..=63-character labels
/// of ASCII letters, digits and inner hyphens, at most 253 characters.
fn host() -> RefOr<Schema> {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let dns = string()
        .max_length(Some(253))
        .pattern(Some(format!("^{label}(\\.{label})*$")));
    let format = |f: KnownFormat| string().format(Some(SchemaFormat::KnownFormat(f)));
    RefOr::T(Schema::AnyOf(
        AnyOfBuilder::new()
            .item(dns)
            .item(format(KnownFormat::Ipv4))
            .item(format(KnownFormat::Ipv6))
            .build(),
    ))
}

/// The bootstrap's top level, as `bootstrap.rs` renders it.
fn bootstrap_schema() -> ObjectBuilder {
    let object = || ObjectBuilder::new().schema_type(Type::Object);
    ObjectBuilder::new()
        .property(
            "node",
            object()
                .property("id", string())
                .property("cluster", string())
                .property("metadata", object())
                .required("id")
                .required("cluster")
                .required("metadata"),
        )
        .property("admin", object())
        .property("dynamic_resources", object())
        .property("static_resources", object())
        .property("stats_flush_interval", string())
        .property("stats_sinks", ArrayBuilder::new().items(object()))
        .required("node")
        .required("admin")
        .required("dynamic_resources")
        .required("static_resources")
        .description(Some(
            "An Envoy v3 Bootstrap: node, admin on 127.0.0.1, ADS or per-type xDS sources, and \
             the static xDS cluster",
        ))
}

/// The paths, adding the schemas they use to `all`.
pub(super) fn paths(all: &mut Vec<(String, RefOr<Schema>)>) -> Vec<(String, PathItem)> {
    schemas(all);
    let status = || Ref::from_schema_name("ProxyStatus");
    let one = ObjectBuilder::new()
        .property(
            "streams",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some(
                    "How many xDS streams the node has open (one for ADS, one per type otherwise)",
                )),
        )
        .required("streams")
        .build();
    let node = || {
        RefOr::T(Schema::AllOf(
            AllOfBuilder::new()
                .item(status())
                .item(one.clone())
                .description(Some(
                    "The node's newest stream, types merged over all its streams, plus streams",
                ))
                .build(),
        ))
    };
    let list = ObjectBuilder::new()
        .property("items", ArrayBuilder::new().items(node()))
        .required("items");
    let unknown = || error_response("an unknown query parameter (this path takes none)");
    let unknown_or_path = || {
        error_response(
            "an unknown query parameter (this path takes none), or invalid_path (a node id \
             that is not percent-encoded UTF-8)",
        )
    };
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
        "Served as application/yaml; the text is JSON, which is also YAML: save it as \
         envoy.yaml or envoy.json. The xDS host is xds_host, else the server's xDS address, or \
         the host this request came to when xDS listens on 0.0.0.0 or ::. Node metadata: \
         metadata.<key>=<value> query parameters (at most 64; keys 1..=128 characters, values \
         at most 1024 bytes, no control characters), e.g. metadata.role=edge sets \
         {\"role\": \"edge\"}; stats_address (where Prometheus scrapes the proxy, listed by \
         /api/v1/prometheus/targets) defaults to 127.0.0.1:<admin_port>. Each parameter may be \
         given once.",
    ))
    .parameter(
        query_param(
            "node_id",
            identifier(),
            "The proxy's node id (1..=256 characters)",
        )
        .required(Required::True),
    )
    .parameter(query_param(
        "cluster",
        identifier(),
        "The proxy's node cluster (default \"default\")",
    ))
    .parameter(query_param(
        "delta",
        ObjectBuilder::new().schema_type(Type::Boolean),
        "true: delta xDS (DELTA_GRPC); false (default): state of the world",
    ))
    .parameter(query_param(
        "ads",
        ObjectBuilder::new().schema_type(Type::Boolean),
        "true (default): one ADS stream; false: separate CDS/LDS/EDS/RDS streams",
    ))
    .parameter(query_param(
        "admin_port",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(65535)),
        "Envoy's admin port on 127.0.0.1 (default 9901)",
    ))
    .parameter(query_param(
        "xds_host",
        host(),
        "Override the xDS host (IP address or DNS name)",
    ))
    .parameter(query_param(
        "stats_sink",
        ObjectBuilder::new().schema_type(Type::Boolean),
        "true (default): the proxy streams its stats to this server (golden metrics, \
         envoy.stat_sinks.metrics_service); false: no stats_sinks",
    ))
    .parameter(query_param(
        "stats_flush_interval",
        string().pattern(Some("^([1-9]|[1-5][0-9]|60)s$")),
        "Seconds between two stats reports, 1s..60s (default 1s)",
    ))
    .parameter(query_param(
        "token",
        string().enum_values(Some(["issue"])),
        "issue: mint a proxy token for this node id and cluster (admin token only) and put it \
         in the initial_metadata of every grpc_service pointing at this server; its id is in \
         the X-Proxy-Token-Id header",
    ))
    .response(
        "200",
        ResponseBuilder::new().description("the bootstrap").content(
            super::super::bootstrap::CONTENT_TYPE,
            Content::new(Some(bootstrap_schema())),
        ),
    )
    .response(
        "400",
        error_response("missing node_id, a bad, repeated or unknown parameter"),
    )
    .response(
        "403",
        error_response("forbidden: token=issue needs the admin token"),
    );
    let metrics = op("metrics_get", "Prometheus metrics (text format 0.0.4)")
        .response("200", text("text/plain", "the exposition"))
        .response("400", unknown());
    vec![
        (
            "/api/v1/proxies".into(),
            PathItem::new(
                HttpMethod::Get,
                op(
                    "proxies_list",
                    "Every connected proxy, one item per node id, in node id order",
                )
                .response("200", json("the proxies", list))
                .response("400", unknown()),
            ),
        ),
        (
            "/api/v1/proxies/{node_id}".into(),
            PathItem::new(
                HttpMethod::Get,
                op("proxies_get", "The status of one connected proxy")
                    .parameter(node_id_param())
                    .response("200", json("the node", node()))
                    .response("400", unknown_or_path())
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
                .response("400", unknown_or_path())
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
