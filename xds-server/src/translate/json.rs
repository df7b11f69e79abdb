//! A group's resources as proto3 JSON, for the proxy-config API and golden files (one
//! resource's rendering is `xds_core::json::any_to_json`).

use serde_json::{Value, json};
use xds_core::json::any_to_json;

use super::Resources;

/// `{"<type_url>": {"<name>": {"version", "resource"}}, "warnings": [...]}`; a resource that
/// cannot be rendered shows `error` instead of `resource`.
pub fn resources_to_json(r: &Resources) -> Value {
    let mut out = serde_json::Map::new();
    for (type_url, resources) in &r.by_type {
        let by_name: serde_json::Map<String, Value> = resources
            .iter()
            .map(|(name, encoded)| {
                // Every type: secrets hold keys, listeners a tap's access-log credential.
                let body = match any_to_json(&encoded.resource) {
                    Ok(mut resource) => {
                        super::redact_secrets(&mut resource);
                        json!({ "version": encoded.version, "resource": resource })
                    }
                    Err(error) => json!({ "version": encoded.version, "error": error }),
                };
                (name.clone(), body)
            })
            .collect();
        out.insert(type_url.clone(), Value::Object(by_name));
    }
    out.insert("warnings".into(), json!(r.warnings));
    Value::Object(out)
}
