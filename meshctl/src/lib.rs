//! meshctl: the operator CLI of the mesh, a client of xds-server's REST admin API (as kubectl
//! and istioctl are of theirs).
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap types only).
//! - [`config`]: where the server and the token come from (flags, environment, config file).
//! - [`client`]: the HTTP client and its error enum (refused vs unreachable).
//! - [`manifest`]: reading objects from YAML/JSON files, with file and document in every error.
//! - [`apply`]: pure decisions of `apply`: order, created/configured/unchanged, diffs, prune.
//! - [`output`]: tables, ages, YAML/JSON rendering.
//! - [`commands`]: each command's I/O, built from the above.
//! - [`error`]: every failure and its exit code (0 ok, 1 refused, 2 input, 3 unreachable).
//! - [`kind`]: the object kinds, their names, paths and dependency order (from xds-core,
//!   shared with the server, so the two cannot drift).

#![forbid(unsafe_code)]

pub mod apply;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod error;
pub mod manifest;
pub mod output;

pub use error::Error;
pub use xds_core::kind;
