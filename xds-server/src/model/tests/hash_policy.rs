//! Validation of a rule's `hash_policy`: exactly one input per entry, header and cookie names
//! checked, `ttl` only with a cookie, `source_ip` only as `true`, at most 8 entries; every
//! error names the field.

use serde_json::json;

use super::*;

#[test]
fn every_input_and_terminal_are_accepted_and_round_trip() {
    let policy = json!([
        { "header": "x-user", "terminal": true },
        { "header": ":authority" },
        { "cookie": "session", "ttl": "1h" },
        { "cookie": "JSESSIONID", "ttl": "0ms" },
        { "source_ip": true }
    ]);
    let route: Route = ok(route_with_rule(json!({ "hash_policy": policy })), "web");
    let rule = &route.rules[0];
    let on: Vec<HashOn> = rule
        .hash_policy
        .iter()
        .filter_map(HashPolicy::hash_on)
        .collect();
    assert_eq!(on.len(), 5);
    assert_eq!(on[0], HashOn::Header("x-user"));
    assert!(rule.hash_policy[0].terminal && !rule.hash_policy[1].terminal);
    assert_eq!(
        on[2],
        HashOn::Cookie {
            name: "session",
            ttl: Some(Duration::from_millis(3_600_000))
        }
    );
    assert_eq!(on[4], HashOn::SourceIp);
    // What the API returns is what was written (false `terminal` left out).
    let back = serde_json::to_value(&route).unwrap();
    assert_eq!(back["rules"][0]["hash_policy"], policy);
    // A rule without one serializes without the key.
    let plain: Route = ok(route_with_rule(json!({})), "web");
    assert!(
        serde_json::to_value(&plain).unwrap()["rules"][0]
            .get("hash_policy")
            .is_none()
    );
}

#[test]
fn each_entry_names_exactly_one_input() {
    let at = "rules[0].hash_policy[1]";
    for entry in [
        json!({}),
        json!({ "terminal": true }),
        json!({ "header": "x-user", "cookie": "session" }),
        json!({ "cookie": "session", "source_ip": true }),
    ] {
        let policy = json!([{ "source_ip": true }, entry]);
        let e = err::<Route>(route_with_rule(json!({ "hash_policy": policy })), "web");
        assert_eq!(e.field, at, "{entry}: {e}");
        assert!(e.message.contains("exactly one of"), "{e}");
    }
}

#[test]
fn names_ttl_and_source_ip_are_checked_by_field() {
    let one = |entry: Value, want: &str| {
        rule_rejects(json!({ "hash_policy": [entry] }), want);
    };
    one(
        json!({ "header": "X-User" }),
        "rules[0].hash_policy[0].header",
    );
    one(json!({ "header": "" }), "rules[0].hash_policy[0].header");
    one(json!({ "cookie": "a b" }), "rules[0].hash_policy[0].cookie");
    one(json!({ "cookie": "" }), "rules[0].hash_policy[0].cookie");
    one(
        json!({ "header": "x-user", "ttl": "1h" }),
        "rules[0].hash_policy[0].ttl",
    );
    one(
        json!({ "source_ip": false }),
        "rules[0].hash_policy[0].source_ip",
    );
}

#[test]
fn at_most_eight_entries() {
    let entries = |n: usize| json!({ "hash_policy": vec![json!({ "source_ip": true }); n] });
    ok::<Route>(route_with_rule(entries(MAX_HASH_POLICIES)), "web");
    let e = err::<Route>(route_with_rule(entries(MAX_HASH_POLICIES + 1)), "web");
    assert_eq!(e.field, "rules[0].hash_policy");
    assert!(e.message.contains("0..=8"), "{e}");
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_by_the_parser() {
    let with_policy = |policy: Value| route_with_rule(json!({ "hash_policy": policy }));
    let e = serde_err::<Route>(with_policy(json!([{ "query": "q" }])));
    assert!(e.contains("unknown field `query`"), "{e}");
    let e = serde_err::<Route>(with_policy(json!([{ "cookie": "s", "ttl": "soon" }])));
    assert!(e.contains("not a duration"), "{e}");
    let e = serde_err::<Route>(with_policy(json!({ "header": "x-user" })));
    assert!(e.contains("sequence"), "{e}");
}
