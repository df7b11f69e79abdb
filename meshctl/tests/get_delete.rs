//! `meshctl get` in its three formats (and YAML that applies back unchanged), paging through
//! long lists, label selectors, and `meshctl delete` by name and by file.

mod support;

use serde_json::Value;
use support::Env;

fn demo() -> String {
    support::repo().join("demo/mesh.yaml").display().to_string()
}

#[tokio::test]
async fn get_prints_tables_yaml_and_json() {
    let env = Env::start();
    env.meshctl(&["apply", "-f", &demo()]).ok();

    // Table: a header and one row per object, with the kind's key fields.
    let run = env.meshctl(&["get", "listeners"]);
    let lines = run.ok().lines();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "VERSION",
            "ADDRESS",
            "PROTOCOL",
            "SERVES",
            "LABELS",
            "PROXIES",
            "ACCEPTED/RECEIVED",
            "REJECTED",
            "AGE"
        ]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &row[..9],
        [
            "ingress",
            "1",
            "0.0.0.0:10000",
            "http",
            "route/web",
            "app=demo",
            "0",
            "0/0",
            "0"
        ],
        "no proxy connected"
    );
    assert!(row[9].ends_with('s'), "an age in seconds: {run}");
    let run = env.meshctl(&["get", "endpoints"]);
    assert!(
        run.ok().stdout.contains("127.0.0.1:8081,127.0.0.1:8082"),
        "{run}"
    );
    let run = env.meshctl(&["get", "route", "web"]);
    assert!(run.ok().lines()[1].starts_with("web "), "{run}");

    // YAML: kind first, every field (the read-only status too), and it applies back
    // unchanged.
    let run = env.meshctl(&["get", "route", "web", "-o", "yaml"]);
    assert!(
        run.ok().stdout.starts_with("kind: route\nname: web\n"),
        "{run}"
    );
    assert!(run.stdout.contains("\nstatus:\n  accepted: 0\n"), "{run}");
    let file = env.file("route.yaml", &run.stdout);
    let again = env.meshctl(&["apply", "-f", &file]);
    assert_eq!(again.ok().lines(), ["route/web unchanged"]);
    let all = env.meshctl(&["get", "services", "-o", "yaml"]);
    assert!(
        all.ok().stdout.contains("kind: service\nname: web\n"),
        "{all}"
    );

    // JSON: one object, or a list of them, each with its kind.
    let run = env.meshctl(&["get", "service", "web", "-o", "json"]);
    let one: Value = serde_json::from_str(&run.ok().stdout).unwrap();
    assert_eq!(one["kind"], "service");
    assert_eq!(one["protocol"], "http");
    assert_eq!(one["version"], 1);
    let run = env.meshctl(&["get", "envoy-resources", "-o", "json"]);
    assert_eq!(run.ok().stdout.trim(), "[]");

    // Nothing of a kind: a note on stderr, nothing on stdout, success.
    let run = env.meshctl(&["get", "envoy-resources"]);
    assert!(run.ok().stdout.is_empty(), "{run}");
    assert!(run.stderr.contains("no envoy-resources found"), "{run}");

    // A missing object is the server's 404, exit 1; a bad name or kind is exit 2.
    let run = env.meshctl(&["get", "service", "nope"]);
    assert!(
        run.code(1)
            .stderr
            .contains("404 not_found: service 'nope' does not exist"),
        "{run}"
    );
    env.meshctl(&["get", "service", "No_Such"]).code(2);
    env.meshctl(&["get", "proxies"]).code(2);
}

#[tokio::test]
async fn get_pages_through_long_lists_and_filters_by_labels() {
    let env = Env::start();
    // More than one page of the server's largest page size (1000).
    let mut text = String::new();
    for i in 0..1005 {
        let team = if i % 100 == 0 { "web" } else { "api" };
        text.push_str(&format!(
            "---\nkind: service\nname: s{i:04}\nlabels: {{team: {team}}}\nprotocol: http\n"
        ));
    }
    let run = env.meshctl(&["apply", "-f", &env.file("many.yaml", &text)]);
    assert_eq!(run.ok().lines().len(), 1005);
    let run = env.meshctl(&["get", "services", "-o", "json"]);
    let all: Vec<Value> = serde_json::from_str(&run.ok().stdout).unwrap();
    assert_eq!(all.len(), 1005);
    assert_eq!(all[1004]["name"], "s1004");

    let run = env.meshctl(&["get", "services", "-l", "team=web"]);
    let names: Vec<&str> = run
        .ok()
        .lines()
        .iter()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            "s0000", "s0100", "s0200", "s0300", "s0400", "s0500", "s0600", "s0700", "s0800",
            "s0900", "s1000"
        ]
    );
    let run = env.meshctl(&["get", "services", "--selector", "team"]);
    assert!(run.code(2).stderr.contains("not key=value"), "{run}");
}

#[tokio::test]
async fn delete_by_name_and_by_file() {
    let env = Env::start();
    env.meshctl(&["apply", "-f", &demo()]).ok();

    // Still referenced: the server's 409, with who uses it.
    let run = env.meshctl(&["delete", "route", "web"]);
    run.code(1);
    assert!(run.stderr.contains("route/web: 409 referenced"), "{run}");
    assert!(run.stderr.contains("used by listener/ingress"), "{run}");

    let run = env.meshctl(&["delete", "listener", "ingress"]);
    assert_eq!(run.ok().lines(), ["listener/ingress deleted"]);
    assert!(env.rest("/api/v1/listeners/ingress").await.is_none());
    env.meshctl(&["delete", "listener", "ingress"]).code(1);
    env.meshctl(&["delete", "listener", "ingress", "--ignore-not-found"])
        .ok();

    // Everything the file names, dependents first; endpoints (no DELETE of their own) emptied.
    let run = env.meshctl(&["delete", "-f", &demo(), "--ignore-not-found"]);
    assert_eq!(
        run.ok().lines(),
        [
            "route/web deleted",
            "endpoints/web emptied",
            "service/web deleted"
        ]
    );
    for path in ["/api/v1/services/web", "/api/v1/routes/web"] {
        assert!(env.rest(path).await.is_none(), "{path}");
    }
    // Without --ignore-not-found, each missing object is reported and the run fails.
    let run = env.meshctl(&["delete", "-f", &demo()]);
    run.code(1);
    assert!(run.stderr.contains("error: listener/ingress: 404"), "{run}");
    assert!(run.stderr.contains("error: service/web: 404"), "{run}");
}
