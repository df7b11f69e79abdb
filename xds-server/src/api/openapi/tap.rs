//! The document's part for the live tap (`api/tap.rs`): the query, the event stream and its
//! refusals. The stream never ends by itself, so the contract test leaves it out
//! (`tests/schemathesis.toml`) and checks its refusals in-process instead.

use utoipa::openapi::{
    Content, HttpMethod, ObjectBuilder, PathItem, ResponseBuilder, schema::Type,
};

use super::{error_response, op, query_param};

fn name(description: &str) -> (ObjectBuilder, String) {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(253))
        .pattern(Some("^[^\\u0000-\\u001f\\u007f-\\u009f]*$"));
    (schema, description.to_string())
}

/// `/api/v1/tap`.
pub(super) fn paths() -> Vec<(String, PathItem)> {
    let mut operation = op(
        "tap_get",
        "A live tap: one server-sent event per request the selected proxies serve",
    )
    .description(Some(
        "Opens a tap and streams text/event-stream until the client disconnects (which \
         closes the tap). While it is open, the proxies it selects log matching requests to \
         this server (Envoy's gRPC access log, filtered on the proxy by path_prefix and \
         status); when the last tap on a proxy closes, the next push removes the log. \
         Events: `open` (once: {\"tap\", \"filter\", \"max_events_per_second\"}), `request` \
         ({\"time\", \"node_id\", \"method\", \"authority\", \"path\", \"status\", \
         \"duration_ms\", \"upstream_host\", \"response_flags\", \"route\", \"service\"}; \
         status, duration_ms, upstream_host, route and service may be null), `dropped` (at \
         most once a second after drops: {\"dropped\", \"total_dropped\"}: events over the \
         tap's rate limit or beyond a slow client's queue), and keep-alive comments every \
         5 s. Each parameter may be given once; every one given must match.",
    ));
    for (param, (schema, description)) in [
        (
            "service",
            name("The destination service (upstream cluster)"),
        ),
        ("route", name("The mesh route the request took")),
        (
            "node_id",
            name("The proxy (node id) that served the request"),
        ),
    ] {
        operation = operation.parameter(query_param(param, schema, &description));
    }
    operation = operation
        .parameter(query_param(
            "path_prefix",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(1024))
                .pattern(Some("^/[^\\u0000-\\u001f\\u007f-\\u009f]*$")),
            "The start of the request's :path (query included)",
        ))
        .parameter(query_param(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^([1-5][0-9][0-9]|[1-5][xX][xX])$")),
            "A response code (e.g. 503) or class (e.g. 5xx)",
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("the event stream (never ends by itself)")
                .content(
                    "text/event-stream",
                    Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
                ),
        )
        .response(
            "400",
            error_response(
                "invalid_query: an unknown or repeated parameter, an empty name, a path_prefix \
                 not starting with '/', or a status that is neither a code nor a class",
            ),
        )
        .response(
            "429",
            error_response("too_many_taps: --tap-max-open taps are open; close one first"),
        )
        .response(
            "503",
            error_response("unavailable: the server is shutting down"),
        );
    vec![(
        "/api/v1/tap".into(),
        PathItem::new(HttpMethod::Get, operation),
    )]
}
