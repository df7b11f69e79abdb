//! The end-to-end harness: real processes on 127.0.0.1, one conformance suite for two data
//! planes.
//!
//! - [`net`]: free ports, HTTP clients, one request through a proxy read back as a `Reply`.
//! - [`postgres`]: the test PostgreSQL server (started by `scripts/test.sh`) and fresh
//!   databases on it; skips loudly without one, fails under `CI=true`; and a private
//!   `postgres::Cluster` a test may restart and stop (outage tests).
//! - [`server`]: the real `xds-server` binary as a child process.
//! - [`proxy`]: the data plane under test, Envoy (`ENVOY_BIN`; skips loudly without it, fails
//!   under `CI=true`) or minimal-proxy, started the same way and read through the same admin
//!   API.
//! - [`upstream`]: real upstreams that echo what reached them and misbehave on request:
//!   HTTP/1.1 + h2c, gRPC, TCP.
//! - [`control_plane`]: the server on a fixed xDS port, restartable in place, and its REST API.
//! - [`netns`]: test hosts in network namespaces on a private bridge, for end-to-end runs
//!   across real network boundaries (root only; skips loudly otherwise).
//! - [`mesh`]: the xDS stage: server + one proxy bootstrapped from it, driven over REST.
//! - [`sidecars`]: the sidecar tests' stage: sidecars bootstrapped per service on the
//!   [`control_plane`], `api` calling `web`, and a URL polled until the answer fits.
//! - [`browser`]: headless Chromium over the DevTools protocol, for the web console's tests.
//! - [`conformance`]: the macros that run each scenario for every data plane × xDS variant ×
//!   store backend it applies to.

pub mod browser;
pub mod conformance;
pub mod control_plane;
pub mod mesh;
pub mod net;
pub mod netns;
pub mod postgres;
pub mod proxy;
pub mod server;
pub mod sidecars;
pub mod upstream;

use std::path::PathBuf;

/// Writes straight to the terminal: libtest captures `eprintln!`, and a skip must be seen.
pub fn announce_skip(what: &str, why: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {what} ({why})");
}

/// True under `CI=true`, where a missing dependency fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A workspace binary cargo built beside this test executable (`cargo test --workspace`
/// builds every one).
///
/// # Panics
/// When it is missing, saying how to build it.
pub fn target_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p {name}` (cargo test --workspace does)",
        path.display()
    );
    path
}
