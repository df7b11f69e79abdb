//! `meshctl proxy-token create|list|revoke` and `bootstrap --issue-token` against the real
//! server: the secret is printed once and never listed, revocation removes the token, an
//! unknown id is a clear error.

mod support;

use serde_json::Value;
use support::Env;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn create_list_revoke_and_a_bootstrap_that_carries_a_token() {
    let env = Env::start();
    let run = env.meshctl(&["proxy-token", "list"]);
    assert!(run.ok().stderr.contains("no proxy tokens"), "{run}");

    let run = env.meshctl(&["proxy-token", "create", "web-1", "--cluster", "prod"]);
    let secret = run.ok().stdout.trim().to_string();
    assert!(secret.starts_with("xdst_"), "{run}");
    assert!(run.stderr.contains("shown only once"), "{run}");
    let id = run
        .stderr
        .split_whitespace()
        .find(|w| w.starts_with("pt-"))
        .unwrap()
        .to_string();

    let run = env.meshctl(&[
        "proxy-token",
        "create",
        "web-2",
        "--cluster",
        "prod",
        "--description",
        "canary",
        "-o",
        "json",
    ]);
    let second = json(&run.ok().stdout);
    assert_eq!(second["description"], "canary");
    assert_eq!(second["node_id"], "web-2");

    let run = env.meshctl(&["proxy-token", "list"]);
    let table = &run.ok().stdout;
    assert!(table.starts_with("ID"), "{run}");
    assert!(
        table.contains(&id) && table.contains("web-1") && table.contains("canary"),
        "{run}"
    );
    assert!(
        !table.contains(&secret),
        "the secret is never listed: {run}"
    );
    let listed = json(
        &env.meshctl(&["proxy-token", "list", "-o", "json"])
            .ok()
            .stdout,
    );
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("xdst_"));

    let run = env.meshctl(&["proxy-token", "revoke", &id]);
    assert!(run.ok().stderr.contains("revoked"), "{run}");
    let run = env.meshctl(&["proxy-token", "revoke", &id]);
    assert!(run.code(1).stderr.contains("does not exist"), "{run}");
    let listed = json(
        &env.meshctl(&["proxy-token", "list", "-o", "json"])
            .ok()
            .stdout,
    );
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Missing --cluster: clap refuses before the server is asked.
    let run = env.meshctl(&["proxy-token", "create", "web-3"]);
    assert!(run.code(2).stderr.contains("--cluster"), "{run}");

    // A bootstrap with a fresh token in every grpc_service's initial_metadata.
    let run = env.meshctl(&["bootstrap", "web-3", "--cluster", "prod", "--issue-token"]);
    let boot = json(&run.ok().stdout);
    let ads = &boot["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"][0];
    assert_eq!(ads["key"], "authorization");
    assert!(
        ads["value"].as_str().unwrap().starts_with("Bearer xdst_"),
        "{boot}"
    );
    let listed = json(
        &env.meshctl(&["proxy-token", "list", "-o", "json"])
            .ok()
            .stdout,
    );
    let nodes: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["node_id"].as_str())
        .collect();
    assert!(nodes.contains(&"web-3") && nodes.len() == 2, "{listed}");
}
