//! Listener changes, removals and drains against real connections.
