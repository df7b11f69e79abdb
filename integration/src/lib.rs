//! The end-to-end harness: real processes on 127.0.0.1.
//!
//! - [`postgres`]: the test PostgreSQL server (started by `scripts/test.sh`) and fresh
//!   databases on it; skips loudly without one, fails under `CI=true`.
//! - [`server`]: the real `xds-server` binary as a child process.
//! - [`envoy`]: the real Envoy binary (`ENVOY_BIN`) and its admin API; skips loudly without
//!   it, fails under `CI=true`.
//! - [`upstream`]: small HTTP servers that echo what reached them.
//! - [`control_plane`]: the server on a fixed xDS port, restartable in place, and its REST API.
//! - [`mesh`]: the xDS stage: server + Envoy bootstrapped from it, driven over REST, for each
//!   ADS variant and store backend.

pub mod control_plane;
pub mod envoy;
pub mod mesh;
pub mod postgres;
pub mod server;
pub mod upstream;

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
