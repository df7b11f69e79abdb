//! Protobuf `Struct` <-> JSON, for node metadata: the bootstrap writes it as JSON, the proxy
//! sends it as a `Struct`, the server shows it and matches selectors on it.

use envoy_types::pb::google::protobuf::{ListValue, NullValue, Struct, Value, value::Kind};

/// A `Struct` as a JSON object.
pub fn struct_to_json(s: &Struct) -> serde_json::Value {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// One protobuf `Value` as JSON (an unset kind is `null`).
pub fn value_to_json(v: &Value) -> serde_json::Value {
    match &v.kind {
        Some(Kind::StringValue(s)) => s.clone().into(),
        Some(Kind::NumberValue(n)) => (*n).into(),
        Some(Kind::BoolValue(b)) => (*b).into(),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => l
            .values
            .iter()
            .map(value_to_json)
            .collect::<Vec<_>>()
            .into(),
        Some(Kind::NullValue(_)) | None => serde_json::Value::Null,
    }
}

/// A JSON object as a `Struct`; `None` when `json` is not an object.
pub fn json_to_struct(json: &serde_json::Value) -> Option<Struct> {
    let serde_json::Value::Object(map) = json else {
        return None;
    };
    Some(Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    })
}

/// JSON as a protobuf `Value` (numbers become doubles, as protobuf has no other).
pub fn json_to_value(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    let kind = match json {
        J::Null => Kind::NullValue(NullValue::NullValue as i32),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        J::Object(_) => Kind::StructValue(json_to_struct(json).unwrap_or_default()),
    };
    Value { kind: Some(kind) }
}

/// `Node.client_features` a proxy sends when a changed cluster re-warms from the assignment it
/// already holds. Envoy on ADS waits for the assignment to be sent again (shown by
/// `integration/tests/rewarm.rs` against Envoy 1.40); a proxy advertising this spares the
/// server that second response per cluster change.
pub const REWARMS_FROM_HELD_ASSIGNMENTS: &str = "xds.mesh.rewarms_from_held_assignments";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_struct() {
        let json = serde_json::json!({
            "role": "edge", "weight": 2.5, "canary": true, "none": null,
            "zones": ["a", "b"], "nested": { "k": "v" }
        });
        let s = json_to_struct(&json).expect("an object");
        assert_eq!(struct_to_json(&s), json);
        assert!(json_to_struct(&serde_json::json!([1])).is_none());
    }
}
