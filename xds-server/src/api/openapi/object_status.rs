//! The schemas of the read-only `status` block every mesh object carries when read
//! (`ObjectStatus`, `ObjectRejection`), as `status/objects.rs` serialises them.

use utoipa::openapi::{
    ArrayBuilder, KnownFormat, ObjectBuilder, Ref, RefOr, Schema, SchemaFormat,
    schema::{AdditionalProperties, Type},
};

/// Adds `ObjectStatus` and `ObjectRejection` (`{Model}Resource` refers to the first).
pub(super) fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    let count = |description: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(0))
            .description(Some(description))
    };
    let string = |description: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    };
    let status = ObjectBuilder::new()
        .description(Some(
            "Read-only, computed when read from the connected proxies: what they did with \
             this object's current version (a PUT body may carry it; it is ignored)",
        ))
        .property(
            "proxies",
            count("Connected proxies that fetch something this object made"),
        )
        .property(
            "received",
            count(
                "Of those, how many were last sent this object's current version of everything \
                 it made for them",
            ),
        )
        .property("accepted", count("Of those, how many acknowledged it"))
        .property(
            "rejected",
            ArrayBuilder::new()
                .items(Ref::from_schema_name("ObjectRejection"))
                .max_items(Some(crate::status::MAX_REJECTIONS))
                .description(Some(
                    "Rejections of this object's current version, in node id order: held back \
                     by last-known-good, or the proxy's last answer",
                )),
        )
        .required("proxies")
        .required("received")
        .required("accepted")
        .required("rejected")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    let rejection = ObjectBuilder::new()
        .property("node_id", string("The proxy that rejected it"))
        .property("type_url", string("The rejected resource's type"))
        .property(
            "resource",
            string("The rejected resource, which this object (and maybe others) made"),
        )
        .property("message", string("The proxy's NACK message"))
        .required("node_id")
        .required("type_url")
        .required("resource")
        .required("message")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    schemas.push((
        "ObjectStatus".into(),
        RefOr::T(Schema::Object(status.build())),
    ));
    schemas.push((
        "ObjectRejection".into(),
        RefOr::T(Schema::Object(rejection.build())),
    ));
}
