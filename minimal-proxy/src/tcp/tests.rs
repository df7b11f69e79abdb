//! The TCP proxy against real echo servers.
