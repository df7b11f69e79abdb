//! The OpenAPI paths of the golden metrics (`/api/v1/stats`, `/api/v1/services/{name}/stats`)
//! and the Prometheus service discovery (`/api/v1/prometheus/targets`), as
//! `telemetry/view.rs` and `api/prometheus.rs` serialise them.

use utoipa::openapi::{
    ArrayBuilder, HttpMethod, ObjectBuilder, PathItem, Ref, RefOr, Schema,
    schema::{SchemaType, Type},
};

use super::{error_response, json, name_param, op, query_param};

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn count() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
}

fn number() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0))
}

fn nullable_number() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .minimum(Some(0))
}

/// The four golden figures, on `object` (whose other properties say what they are about).
fn figures(object: ObjectBuilder) -> ObjectBuilder {
    object
        .property(
            "requests",
            count().description(Some("Requests completed in the window")),
        )
        .property("requests_per_second", number())
        .property(
            "success_rate",
            nullable_number().maximum(Some(1)).description(Some(
                "Requests not answered 5xx over all requests; null without requests",
            )),
        )
        .property("latency_ms", Ref::from_schema_name("Latency"))
        .required("requests")
        .required("requests_per_second")
        .required("success_rate")
        .required("latency_ms")
}

fn schemas(all: &mut Vec<(String, RefOr<Schema>)>) {
    let latency = ObjectBuilder::new()
        .description(Some(
            "Latency percentiles in milliseconds, from merged histogram buckets (linear inside \
             a bucket); null without samples",
        ))
        .property("p50", nullable_number())
        .property("p95", nullable_number())
        .property("p99", nullable_number())
        .required("p50")
        .required("p95")
        .required("p99");
    let route = figures(
        ObjectBuilder::new()
            .property("route", string())
            .required("route"),
    )
    .description(Some(
        "A route sending to the service; its figures cover the whole route",
    ));
    let proxy = figures(
        ObjectBuilder::new()
            .property("node_id", string())
            .required("node_id"),
    )
    .description(Some("A proxy that called the service in the window"));
    let service = figures(
        ObjectBuilder::new()
            .property("service", string())
            .property("window", window())
            .property("window_seconds", count())
            .property(
                "routes",
                ArrayBuilder::new().items(Ref::from_schema_name("RouteStats")),
            )
            .property(
                "proxies",
                ArrayBuilder::new().items(Ref::from_schema_name("ProxyStats")),
            )
            .required("service")
            .required("window")
            .required("window_seconds")
            .required("routes")
            .required("proxies"),
    )
    .description(Some(
        "Golden metrics of one destination service over the window, summed over every proxy",
    ));
    for (name, schema) in [
        ("Latency", latency),
        ("RouteStats", route),
        ("ProxyStats", proxy),
        ("ServiceStats", service),
    ] {
        all.push((name.into(), RefOr::T(Schema::Object(schema.build()))));
    }
}

fn window() -> ObjectBuilder {
    string().enum_values(Some(["10s", "1m"]))
}

/// The paths, adding the schemas they use to `all`.
pub(super) fn paths(all: &mut Vec<(String, RefOr<Schema>)>) -> Vec<(String, PathItem)> {
    schemas(all);
    let window_param = || query_param("window", window(), "The window (default 1m)");
    let bad_query = || error_response("a window other than 10s or 1m, or another parameter");
    let list = ObjectBuilder::new()
        .property("window", window())
        .property("window_seconds", count())
        .property(
            "items",
            ArrayBuilder::new().items(Ref::from_schema_name("ServiceStats")),
        )
        .required("window")
        .required("window_seconds")
        .required("items");
    let group = ObjectBuilder::new()
        .property("targets", ArrayBuilder::new().items(string()))
        .property(
            "labels",
            ObjectBuilder::new()
                .property("__metrics_path__", string())
                .property("node_id", string())
                .property("node_cluster", string())
                .property(
                    "service",
                    string().description(Some(
                        "Present when the node cluster names a service of the mesh",
                    )),
                )
                .required("__metrics_path__")
                .required("node_id")
                .required("node_cluster"),
        )
        .required("targets")
        .required("labels");
    vec![
        (
            "/api/v1/stats".into(),
            PathItem::new(
                HttpMethod::Get,
                op(
                    "stats_list",
                    "Golden metrics of every service, in name order",
                )
                .parameter(window_param())
                .response("200", json("every service's figures", list))
                .response("400", bad_query()),
            ),
        ),
        (
            "/api/v1/services/{name}/stats".into(),
            PathItem::new(
                HttpMethod::Get,
                op(
                    "stats_get",
                    "Golden metrics of one service: requests/s, success rate, latency \
                     percentiles, per route and per calling proxy",
                )
                .parameter(name_param())
                .parameter(window_param())
                .response(
                    "200",
                    json("the figures", Ref::from_schema_name("ServiceStats")),
                )
                .response(
                    "400",
                    error_response(
                        "a bad window or another parameter, or invalid_path (a name that is \
                         not percent-encoded UTF-8)",
                    ),
                )
                .response("404", error_response("no such service in the mesh")),
            ),
        ),
        (
            "/api/v1/prometheus/targets".into(),
            PathItem::new(
                HttpMethod::Get,
                op(
                    "prometheus_targets",
                    "Prometheus HTTP service discovery: every connected proxy whose node \
                     metadata has stats_address, scraped at /stats/prometheus",
                )
                .response(
                    "200",
                    json(
                        "http_sd_configs target groups, in node id order",
                        ArrayBuilder::new().items(group),
                    ),
                )
                .response(
                    "400",
                    error_response("an unknown query parameter (this path takes none)"),
                ),
            ),
        ),
    ]
}
