//! LDS `Listener` → [`ListenerConfig`].

use envoy_types::pb::envoy::config::listener::v3::Listener;

use super::{ListenerConfig, Rejection};

/// Converts a listener: one filter chain holding an HTTP connection manager (router filter
/// only) or a TCP proxy.
pub fn listener_from_proto(listener: &Listener) -> Result<ListenerConfig, Rejection> {
    Err(Rejection {
        resource: format!("listener '{}'", listener.name),
        field: String::new(),
        reason: "not implemented yet".into(),
    })
}
