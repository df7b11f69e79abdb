//! Shared pieces of the fuzz targets: the fixed meshes and synthetic resource sets the xDS
//! state machines are fed, and the fuzzer-chosen names, type URLs, nonces and versions their
//! requests are built from.

pub mod meshes;
pub mod xds;
