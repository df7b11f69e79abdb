//! Reaching the server: the admin token (from a flag, the environment or the config file;
//! never printed), a wrong token (exit 1 with the server's message), an unreachable server
//! (exit 3 naming the URL), and which of flag, environment and config file wins.

mod support;

use integration::net::free_port;
use support::{Env, meshctl};

const TOKEN: &str = "s3cret-admin-token-4711";

#[tokio::test]
async fn the_token_is_sent_never_printed_and_a_wrong_one_gets_the_servers_message() {
    let tmp = tempfile::tempdir().unwrap();
    let server_token = tmp.path().join("server-token");
    std::fs::write(&server_token, format!("{TOKEN}\n")).unwrap();
    let env = Env::start_with(&["--admin-token-file", &server_token.display().to_string()]);
    let right = env.file("token", &format!("{TOKEN}\n"));
    let wrong = env.file("wrong", "not-the-token\n");
    let url = env.server.admin_url.clone();
    let demo = support::repo().join("demo/mesh.yaml").display().to_string();

    // No token: the server's 401 and its words, exit 1.
    let run = env.meshctl(&["get", "services"]);
    run.code(1);
    assert!(run.stderr.contains("401 unauthorized"), "{run}");
    assert!(run.stderr.contains("missing or wrong admin token"), "{run}");

    // A wrong token: the same, and neither token appears anywhere.
    let run = env.meshctl(&["--token-file", &wrong, "apply", "-f", &demo]);
    run.code(1);
    assert!(run.stderr.contains("401 unauthorized"), "{run}");
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains("not-the-token") && !text.contains(TOKEN),
            "{run}"
        );
    }

    // The right one, by flag, by environment, by config file.
    let run = env.meshctl(&["--token-file", &right, "apply", "-f", &demo]);
    assert!(run.ok().stdout.contains("service/web created"), "{run}");
    let home = env.dir.path();
    let run = meshctl(
        &["get", "services"],
        &[("MESHCTL_SERVER", &url), ("MESHCTL_TOKEN_FILE", &right)],
        home,
    );
    assert!(run.ok().stdout.contains("web"), "{run}");
    let config = env.file(
        "config.yaml",
        &format!("server: {url}\ntoken_file: token\n"),
    );
    let run = meshctl(&["get", "routes"], &[("MESHCTL_CONFIG", &config)], home);
    assert!(run.ok().stdout.contains("web"), "{run}");
    assert!(
        !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
        "{run}"
    );

    // The default config file, $XDG_CONFIG_HOME/meshctl/config.yaml, is read when present.
    let xdg = home.join("config").join("meshctl");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::write(
        xdg.join("config.yaml"),
        format!("server: {url}\ntoken_file: {right}\n"),
    )
    .unwrap();
    let run = meshctl(&["get", "listeners"], &[], home);
    assert!(run.ok().stdout.contains("ingress"), "{run}");
    // A flag beats the file: this token is wrong.
    let run = meshctl(&["--token-file", &wrong, "get", "listeners"], &[], home);
    run.code(1);

    // An unreadable token file is an input error that names the file, not its content.
    let missing = env.dir.path().join("no-such-token").display().to_string();
    let run = env.meshctl(&["--token-file", &missing, "get", "services"]);
    run.code(2);
    assert!(run.stderr.contains("no-such-token"), "{run}");
}

#[test]
fn an_unreachable_server_exits_3_naming_the_url() {
    let home = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let url = format!("http://127.0.0.1:{}", free_port());
    let run = meshctl(&["--server", &url, "get", "services"], &[], home.path());
    run.code(3);
    assert!(
        run.stderr
            .contains(&format!("cannot reach the server at {url}")),
        "{run}"
    );
    assert!(run.stderr.contains("--server"), "{run}");

    // The same through the environment and for apply (the file is read first, and is fine).
    let demo = support::repo().join("demo/mesh.yaml").display().to_string();
    let run = meshctl(
        &["apply", "-f", &demo],
        &[("MESHCTL_SERVER", &url)],
        home.path(),
    );
    run.code(3);
    assert!(run.stdout.is_empty(), "{run}");

    // Not a URL at all: an input error.
    let run = meshctl(
        &["--server", "localhost:9090", "get", "services"],
        &[],
        home.path(),
    );
    run.code(2);
    assert!(
        run.stderr.contains("http://host:port") || run.stderr.contains("not http"),
        "{run}"
    );

    // Bad flags: clap's usage error, exit 2.
    meshctl(&["get"], &[], home.path()).code(2);
    meshctl(&["frobnicate"], &[], home.path()).code(2);
}

#[test]
fn completion_scripts_need_no_server() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let run = meshctl(&["completion", shell], &[], home.path());
        assert!(run.ok().stdout.contains("proxy-status"), "{shell}: {run}");
    }
    meshctl(&["completion", "tcsh"], &[], home.path()).code(2);
}
