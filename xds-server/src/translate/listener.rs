//! Listeners → `Listener`s with an HTTP connection manager (RDS) or a TCP proxy.

use envoy_types::pb::envoy::config::listener::v3::Listener;

pub(super) fn listener(name: &str, _listener: &crate::model::Listener) -> Listener {
    Listener {
        name: name.to_string(),
        ..Listener::default()
    }
}
