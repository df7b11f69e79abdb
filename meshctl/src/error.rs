//! meshctl's failures and the exit code each maps to, the contract scripts rely on:
//! 0 ok; 1 the server refused something; 2 usage or input error; 3 the server is unreachable.

use crate::{client::ClientError, config::ConfigError, kind::UnknownKind, manifest::ManifestError};

/// The exit codes, named.
pub mod exit {
    pub const OK: u8 = 0;
    pub const REFUSED: u8 = 1;
    pub const INPUT: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Kind(#[from] UnknownKind),
    /// Bad input meshctl found itself (a selector, a node id, …).
    #[error("{0}")]
    Input(String),
    /// Some objects failed; each was reported as it failed.
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Manifest(_) | Error::Config(_) | Error::Kind(_) | Error::Input(_) => exit::INPUT,
            Error::Client(ClientError::BadUrl { .. }) => exit::INPUT,
            Error::Client(ClientError::Unreachable { .. }) => exit::UNREACHABLE,
            Error::Client(ClientError::Refused(_) | ClientError::BadResponse { .. }) => {
                exit::REFUSED
            }
            Error::Failed(_) => exit::REFUSED,
        }
    }
}
