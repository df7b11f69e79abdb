//! Bootstrap parsing: the bootstraps xds-server renders, and every refusal by field path.

use super::*;

fn refusal(doc: serde_json::Value) -> String {
    match from_document(doc, &Overrides::default()) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn probe() {
    println!("{}", refusal(serde_json::json!({"layered_runtime": {}})));
    println!(
        "{}",
        refusal(
            serde_json::json!({"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}}, "access_log": []}})
        )
    );
    println!(
        "{}",
        refusal(
            serde_json::json!({"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": "x"}}}})
        )
    );
    println!(
        "{}",
        refusal(
            serde_json::json!({"static_resources": {"clusters": [{"name": "a", "outlier_detection": {}}]}})
        )
    );
}
