//! The OpenAPI paths of the probes (open to all, as `auth.rs` leaves them) and of the
//! document itself.

use utoipa::openapi::{
    HttpMethod, ObjectBuilder, PathItem, path::Operation, schema::Type,
    security::SecurityRequirement,
};

use super::{json, op, store_unavailable};

/// `/healthz`, `/readyz` and `/api/openapi.json`.
pub(super) fn paths() -> Vec<(String, PathItem)> {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let healthz = open(
        op("healthz", "Liveness: the process is up (no token needed)")
            .response(
                "200",
                json(
                    "up",
                    ObjectBuilder::new()
                        .property("status", string().enum_values(Some(["ok"])))
                        .required("status"),
                ),
            )
            .build(),
    );
    let readyz = open(
        op("readyz", "Readiness: the store answers (no token needed)")
            .response(
                "200",
                json(
                    "ready",
                    ObjectBuilder::new()
                        .property("status", string().enum_values(Some(["ready"])))
                        .property(
                            "store",
                            string().description(Some("The backend: sqlite or postgres")),
                        )
                        .property(
                            "revision",
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .description(Some("The store's write counter")),
                        )
                        .required("status"),
                ),
            )
            .response(
                "503",
                store_unavailable(
                    "store_unavailable: the store did not answer (details in the server log)",
                ),
            )
            .build(),
    );
    let document = op("openapi_json", "This document")
        .response(
            "200",
            json(
                "the OpenAPI document",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .property("openapi", string())
                    .required("openapi"),
            ),
        )
        .build();
    let item = |op: Operation| PathItem::new(HttpMethod::Get, op);
    vec![
        ("/healthz".into(), item(healthz)),
        ("/readyz".into(), item(readyz)),
        ("/api/openapi.json".into(), item(document)),
    ]
}

/// Lifts the document's bearer requirement: the probes answer without a token.
fn open(mut op: Operation) -> Operation {
    op.security = Some(Vec::<SecurityRequirement>::new());
    op
}
