//! The binary's edge, as a user meets it: Envoy's command line, a bootstrap accepted or refused
//! with the field path, clear exits. (Also makes `cargo test` build the binary that the
//! integration suite starts.)

use std::{path::Path, process::Command};

fn proxy() -> Command {
    Command::new(env!("CARGO_BIN_EXE_minimal-proxy"))
}

fn testdata(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/bootstrap/testdata")
        .join(name)
        .display()
        .to_string()
}

/// Runs the binary and returns (exit code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run minimal-proxy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_every_bootstrap_xds_server_renders() {
    for name in [
        "ads-grpc.yaml",
        "ads-delta-grpc.yaml",
        "ads-dns-metadata.yaml",
        "per-type-grpc.yaml",
        "per-type-delta-grpc.yaml",
        "ads-grpc-telemetry.json",
    ] {
        let (code, stdout, stderr) = run(proxy()
            .args(["--mode", "validate", "-c", &testdata(name)])
            // Envoy's flags that mean nothing here are accepted, so one command line fits both.
            .args([
                "--disable-hot-restart",
                "--use-dynamic-base-id",
                "-l",
                "warning",
            ]));
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(stdout.contains("OK"), "{name}: {stdout}");
    }
}

#[test]
fn an_unsupported_bootstrap_field_is_refused_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bootstrap.yaml");
    let mut bootstrap: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(testdata("ads-grpc.yaml")).unwrap())
            .unwrap();
    bootstrap["layered_runtime"] = serde_json::json!({ "layers": [] });
    std::fs::write(&path, bootstrap.to_string()).unwrap();

    let (code, _, stderr) = run(proxy().args(["--mode", "validate", "-c"]).arg(&path));
    assert_ne!(code, 0, "a bootstrap with layered_runtime must not start");
    assert!(
        stderr.contains("layered_runtime"),
        "names the field: {stderr}"
    );
}

#[test]
fn a_missing_file_and_an_unknown_flag_fail_clearly() {
    let (code, _, stderr) = run(proxy().args(["-c", "/nonexistent/bootstrap.yaml"]));
    assert_ne!(code, 0);
    assert!(stderr.contains("/nonexistent/bootstrap.yaml"), "{stderr}");

    let (code, _, stderr) =
        run(proxy().args(["-c", &testdata("ads-grpc.yaml"), "--hot-restart-version"]));
    assert_eq!(code, 2, "clap's usage error: {stderr}");
    assert!(stderr.contains("--hot-restart-version"), "{stderr}");
}
