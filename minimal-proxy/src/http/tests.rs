//! End-to-end tests of the connection manager and router against real upstream servers.
