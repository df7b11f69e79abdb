//! Finds the Envoy descriptor set that ships inside the `envoy-types` crate.
//!
//! envoy-types carries `src/generated/types.bin` (the FileDescriptorSet its Rust types were
//! generated from) but does not export it. Validating raw Envoy resources needs exactly those
//! descriptors, so we locate the crate with `cargo metadata` and embed the file. This keeps
//! Envoy's protos out of the repository and guarantees that what we validate against is what we
//! serve.

use std::{env, fs, path::PathBuf, process::Command};

fn main() {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
        ])
        .arg(env::var("TARGET").unwrap())
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("run `cargo metadata` to locate envoy-types");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let envoy_types = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "envoy-types")
        .expect("envoy-types is a dependency");
    let dir = PathBuf::from(
        envoy_types["manifest_path"]
            .as_str()
            .expect("manifest_path"),
    )
    .parent()
    .expect("crate dir")
    .to_path_buf();
    let descriptors = dir.join("src/generated/types.bin");
    assert!(
        descriptors.exists(),
        "{} not found: the envoy-types version changed its layout",
        descriptors.display()
    );
    let dest = PathBuf::from(env::var("OUT_DIR").unwrap()).join("envoy_descriptors.bin");
    fs::copy(&descriptors, &dest).expect("copy envoy descriptor set");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", descriptors.display());
}
