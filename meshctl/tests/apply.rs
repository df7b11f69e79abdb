//! `meshctl apply` against the real server: the demo mesh from `demo/mesh.yaml`, idempotence,
//! `--dry-run` (a field diff, nothing written), `--prune` (only labelled objects the files no
//! longer name), and refusals (bad documents exit 2 before any write; server refusals exit 1
//! after each is reported).

mod support;

use support::Env;

fn demo() -> String {
    support::repo().join("demo/mesh.yaml").display().to_string()
}

#[tokio::test]
async fn the_demo_mesh_applies_in_order_and_again_unchanged() {
    let env = Env::start();
    let run = env.meshctl(&["apply", "-f", &demo()]);
    run.ok();
    assert_eq!(
        run.lines(),
        [
            "service/web created",
            "endpoints/web created",
            "route/web created",
            "listener/ingress created",
        ]
    );
    let listener = env.rest("/api/v1/listeners/ingress").await.unwrap();
    assert_eq!(listener["labels"]["app"], "demo");
    assert_eq!(listener["selector"]["node_cluster"], "ingress");
    let endpoints = env.rest("/api/v1/services/web/endpoints").await.unwrap();
    assert_eq!(endpoints["endpoints"][1]["port"], 8082);
    let route = env.rest("/api/v1/routes/web").await.unwrap();
    assert_eq!(route["rules"][1]["destinations"][0]["weight"], 80);

    // The file leaves defaults out and writes "1s"; the server stores them normalised. Still,
    // applying the same file again changes nothing.
    let before = env.demo_versions().await;
    let run = env.meshctl(&["apply", "-f", &demo()]);
    run.ok();
    assert_eq!(
        run.lines(),
        [
            "service/web unchanged",
            "endpoints/web unchanged",
            "route/web unchanged",
            "listener/ingress unchanged",
        ]
    );
    assert_eq!(
        env.demo_versions().await,
        before,
        "an unchanged apply writes nothing"
    );

    // From standard input, as a directory, as JSON: the same objects, still unchanged.
    let text = std::fs::read_to_string(demo()).unwrap();
    let run = env.meshctl_stdin(&["apply", "-f", "-"], &text);
    assert_eq!(run.ok().lines().len(), 4, "{run}");
    let dir = env.dir.path().join("manifests");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(demo(), dir.join("mesh.yaml")).unwrap();
    env.meshctl(&["apply", "-f", &dir.display().to_string()])
        .ok();
    let json = env.meshctl(&["get", "services", "-o", "json"]);
    let file = env.file("services.json", &json.stdout);
    let run = env.meshctl(&["apply", "-f", &file]);
    assert_eq!(run.ok().lines(), ["service/web unchanged"]);
    assert_eq!(env.demo_versions().await, before);
}

#[tokio::test]
async fn dry_run_shows_a_field_diff_and_writes_nothing() {
    let env = Env::start();
    // On an empty server: everything would be created. What names objects this apply creates
    // cannot be checked by the server yet, and says so.
    let run = env.meshctl(&["apply", "-f", &demo(), "--dry-run"]);
    run.ok();
    assert!(
        run.stdout.starts_with(
            "service/web created (dry run)\n  + connect_timeout: \"1s\"\n  + labels: {\"app\":\"demo\"}\n\
             \x20 + protocol: \"http\"\nendpoints/web created (dry run; not checked by the server: \
             it names service/web, which this apply creates; defaults not shown)\n"
        ),
        "{run}"
    );
    assert!(
        run.stdout.contains(
            "listener/ingress created (dry run; not checked by the server: it names route/web"
        ),
        "{run}"
    );
    assert!(
        env.rest("/api/v1/services/web").await.is_none(),
        "a dry run creates nothing"
    );

    env.meshctl(&["apply", "-f", &demo()]).ok();
    let before = env.demo_versions().await;

    let text = std::fs::read_to_string(demo()).unwrap();
    let changed = text
        .replace("weight: 80", "weight: 90")
        .replace("weight: 20", "weight: 10")
        .replace("connect_timeout: 1s", "connect_timeout: 2000ms")
        + "---\nkind: service\nname: api\nprotocol: grpc\n";
    let file = env.file("changed.yaml", &changed);
    let run = env.meshctl(&["apply", "-f", &file, "--dry-run"]);
    run.ok();
    assert_eq!(
        run.lines(),
        [
            "service/web configured (dry run)",
            "  ~ connect_timeout: \"1s\" -> \"2s\"",
            "service/api created (dry run)",
            "  + protocol: \"grpc\"",
            "endpoints/web unchanged (dry run)",
            "route/web configured (dry run)",
            "  ~ rules[1].destinations[0].weight: 80 -> 90",
            "  ~ rules[1].destinations[1].weight: 20 -> 10",
            "listener/ingress unchanged (dry run)",
        ]
    );
    assert_eq!(
        env.demo_versions().await,
        before,
        "a dry run writes nothing"
    );
    assert!(
        env.rest("/api/v1/services/api").await.is_none(),
        "nor creates anything"
    );

    // A dry run also asks the server to check: what it would refuse is shown and exits 1.
    let bad = env.file("bad.yaml", "kind: service\nname: web\nprotocol: udp\n");
    let run = env.meshctl(&["apply", "-f", &bad, "--dry-run"]);
    run.code(1);
    assert!(run.stdout.contains("service/web would be refused"), "{run}");
    assert!(
        run.stdout.contains("422 invalid_field (field protocol)"),
        "{run}"
    );
}

#[tokio::test]
async fn prune_deletes_only_labelled_objects_the_files_no_longer_name() {
    let env = Env::start();
    let extra = "---\nkind: service\nname: extra\nlabels: {app: demo}\nprotocol: tcp\n\
                 ---\nkind: route\nname: extra\nlabels: {app: demo}\nhosts: [extra.example.com]\n\
                 rules: [{destinations: [{service: extra}]}]\n";
    let grown = std::fs::read_to_string(demo()).unwrap() + extra;
    let run = env.meshctl(&["apply", "-f", &env.file("grown.yaml", &grown)]);
    assert!(run.ok().stdout.contains("route/extra created"), "{run}");
    // Not labelled app=demo: prune must never touch it.
    let other = env.file(
        "other.yaml",
        "kind: service\nname: other\nlabels: {app: other}\nprotocol: http\n",
    );
    env.meshctl(&["apply", "-f", &other]).ok();
    let before = env.demo_versions().await;

    let run = env.meshctl(&[
        "apply",
        "-f",
        &demo(),
        "--prune",
        "--selector",
        "app=demo",
        "--dry-run",
    ]);
    run.ok();
    assert!(
        run.stdout
            .contains("route/extra pruned (dry run)\nservice/extra pruned (dry run)\n"),
        "{run}"
    );
    assert!(
        env.rest("/api/v1/routes/extra").await.is_some(),
        "a dry run prunes nothing"
    );

    let run = env.meshctl(&["apply", "-f", &demo(), "--prune", "-l", "app=demo"]);
    run.ok();
    assert_eq!(
        run.lines(),
        [
            "service/web unchanged",
            "endpoints/web unchanged",
            "route/web unchanged",
            "listener/ingress unchanged",
            // Dependents first: the route still names the service.
            "route/extra pruned",
            "service/extra pruned",
        ]
    );
    assert!(env.rest("/api/v1/routes/extra").await.is_none());
    assert!(env.rest("/api/v1/services/extra").await.is_none());
    assert!(
        env.rest("/api/v1/services/other").await.is_some(),
        "other labels are kept"
    );
    assert_eq!(env.demo_versions().await, before);

    // --prune without --selector is a usage error.
    env.meshctl(&["apply", "-f", &demo(), "--prune"]).code(2);
}

#[tokio::test]
async fn a_bad_document_fails_before_anything_is_written() {
    let env = Env::start();
    let text = std::fs::read_to_string(demo()).unwrap()
        + "---\nkind: route\nname: Bad_Name\nhosts: ['*']\n";
    let file = env.file("broken.yaml", &text);
    let run = env.meshctl(&["apply", "-f", &file]);
    run.code(2);
    assert!(
        run.stderr
            .contains("broken.yaml, document 5: `name` 'Bad_Name'"),
        "{run}"
    );
    assert!(run.stdout.is_empty(), "{run}");
    assert!(
        env.rest("/api/v1/services/web").await.is_none(),
        "nothing was written"
    );

    let syntax = env.file("syntax.yaml", "kind: service\nname: web\nprotocol: [http\n");
    let run = env.meshctl(&["apply", "-f", &syntax]);
    run.code(2);
    assert!(
        run.stderr.contains("syntax.yaml: not valid YAML or JSON"),
        "{run}"
    );
    assert!(run.stderr.contains("line"), "{run}");

    env.meshctl(&[
        "apply",
        "-f",
        &env.dir.path().join("missing.yaml").display().to_string(),
    ])
    .code(2);
}

#[tokio::test]
async fn server_refusals_are_each_reported_and_nothing_is_written() {
    let env = Env::start();
    let file = env.file(
        "refused.yaml",
        "kind: service\nname: web\nprotocol: http\n---\n\
         kind: service\nname: db\nprotocol: tcp\nhealth_check: {path: /h, interval: 1s, timeout: 1s}\n---\n\
         kind: listener\nname: edge\nport: 70000\nprotocol: http\nroutes: [web]\n",
    );
    let run = env.meshctl(&["apply", "-f", &file]);
    run.code(1);
    assert!(
        run.stderr.contains("error: service/db (")
            && run
                .stderr
                .contains("document 2): 422 invalid_field (field health_check.path)"),
        "{run}"
    );
    // The listener names route/web, which does not exist: the server says so, naming the field.
    assert!(run.stderr.contains("listener/edge"), "{run}");
    assert!(run.stderr.contains("nothing was written"), "{run}");
    assert!(
        env.rest("/api/v1/services/web").await.is_none(),
        "the valid one waits too"
    );
}
