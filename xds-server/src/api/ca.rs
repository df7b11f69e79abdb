//! `GET /api/v1/ca`: the mesh CA's public facts and where a CA rotation stands.
//!
//! Rotating (a new CA, the old root kept with `--ca-extra-roots-file` or the stored built-in
//! one) is done when every proxy runs the newest certificates: each connected proxy holding
//! an identity has acknowledged the last secrets it was sent, which this server issued from
//! the current CA and which carry the whole bundle. Until then the old root must stay.

use std::collections::BTreeSet;

use axum::{Json, extract::State};
use serde::Serialize;
use xds_core::type_url;

use super::{ApiError, AppState};
use crate::{ca::CaSummary, status::SyncState};

/// The answer: the CA (absent when it is off) and the rotation's state.
#[derive(Debug, Serialize)]
pub struct CaView {
    /// `false` with `--ca off`: no identities, no SDS; the rest is then absent.
    pub enabled: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// Whether every proxy with an identity runs what this server last sent it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Rotation {
    /// `single_root` (nothing to finish), `in_progress` (some proxies still to acknowledge
    /// their new certificates: keep the old roots), `complete` (every connected proxy did:
    /// the old roots may go, e.g. `--ca-drop-stored-root`).
    pub state: RotationState,
    /// Connected proxies that were sent secrets, in node id order.
    pub proxies: usize,
    /// Those that have not acknowledged the last secrets sent (not sent, waiting, or
    /// rejected), in node id order.
    pub pending: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum RotationState {
    SingleRoot,
    InProgress,
    Complete,
}

/// `GET /api/v1/ca`.
pub async fn ca_get(State(state): State<AppState>) -> Result<Json<CaView>, ApiError> {
    let Some(authority) = state.ca.as_ref() else {
        return Ok(Json(CaView {
            enabled: false,
            ca: None,
            rotation: None,
        }));
    };
    let summary = authority.summary();
    let (proxies, pending) = secrets_acknowledged(&state);
    let rotation = Rotation {
        state: rotation_state(summary.roots.len(), pending.len()),
        proxies,
        pending,
    };
    Ok(Json(CaView {
        enabled: true,
        ca: Some(summary),
        rotation: Some(rotation),
    }))
}

/// How many connected proxies were sent secrets, and which of them have not acknowledged
/// the last ones (a node counts once, by its streams that carry secrets).
fn secrets_acknowledged(state: &AppState) -> (usize, Vec<String>) {
    let mut with_secrets = BTreeSet::new();
    let mut pending = BTreeSet::new();
    for stream in state.registry.list() {
        let Some(secrets) = stream.types.get(type_url::SECRET) else {
            continue;
        };
        with_secrets.insert(stream.node_id.clone());
        let acked = secrets.status == SyncState::Synced && secrets.version_sent.is_some();
        if !acked {
            pending.insert(stream.node_id);
        }
    }
    (with_secrets.len(), pending.into_iter().collect())
}

/// The rotation's state from the bundle's size and the proxies still pending.
fn rotation_state(roots: usize, pending: usize) -> RotationState {
    match (roots, pending) {
        (0 | 1, _) => RotationState::SingleRoot,
        (_, 0) => RotationState::Complete,
        _ => RotationState::InProgress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_is_complete_only_with_several_roots_and_nobody_pending() {
        assert_eq!(rotation_state(1, 3), RotationState::SingleRoot);
        assert_eq!(rotation_state(2, 1), RotationState::InProgress);
        assert_eq!(rotation_state(2, 0), RotationState::Complete);
    }
}
