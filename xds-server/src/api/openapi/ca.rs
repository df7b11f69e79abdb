//! The document's part for the mesh CA (`api/ca.rs`): its public facts and the rotation.

use utoipa::openapi::{
    ArrayBuilder, HttpMethod, ObjectBuilder, PathItem,
    schema::{AdditionalProperties, Type},
};

use super::{json, op};

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

/// `/api/v1/ca`.
pub(super) fn paths() -> Vec<(String, PathItem)> {
    let root = ObjectBuilder::new()
        .property("subject", string("RFC 4514"))
        .property("not_after", string("RFC 3339"))
        .property(
            "sha256",
            string("SHA-256 of the DER certificate, lowercase hex"),
        )
        .property(
            "issuing",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("the current CA issues under this root")),
        )
        .required("subject")
        .required("not_after")
        .required("sha256")
        .required("issuing")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    let rotation = ObjectBuilder::new()
        .property(
            "state",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["single_root", "in_progress", "complete"])),
        )
        .property(
            "proxies",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .property(
            "pending",
            ArrayBuilder::new()
                .items(string("node id"))
                .description(Some(
                    "connected proxies that have not acknowledged the last secrets sent",
                )),
        )
        .required("state")
        .required("proxies")
        .required("pending")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    let view = ObjectBuilder::new()
        .property("enabled", ObjectBuilder::new().schema_type(Type::Boolean))
        .property(
            "trust_domain",
            string("identities are spiffe://<trust_domain>/service/<name>"),
        )
        .property(
            "workload_cert_ttl_seconds",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .property("roots", ArrayBuilder::new().items(root))
        .property("rotation", rotation)
        .required("enabled")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    vec![(
        "/api/v1/ca".into(),
        PathItem::new(
            HttpMethod::Get,
            op(
                "ca_get",
                "The mesh CA: trust domain, certificate lifetime, the trust bundle's roots \
                 (never a key), and whether a CA rotation is complete (every connected proxy \
                 acknowledged the certificates it was last sent)",
            )
            .response("200", json("the CA, or enabled: false with --ca off", view)),
        ),
    )]
}
