//! `--xds-auth`: whether the xDS port asks proxies for a token.

use std::net::SocketAddr;

/// The operator's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum XdsAuth {
    /// Off when the xDS port listens on loopback only (the zero-setup default), required
    /// otherwise.
    Auto,
    /// Every stream on the xDS port must present a valid proxy token.
    Required,
    /// No token is asked for, wherever the port listens.
    Off,
}

impl XdsAuth {
    /// Whether streams on `addr` must present a token.
    pub fn required_on(self, addr: SocketAddr) -> bool {
        match self {
            XdsAuth::Required => true,
            XdsAuth::Off => false,
            XdsAuth::Auto => !addr.ip().is_loopback(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_listen_address() {
        let lo: SocketAddr = "127.0.0.1:18000".parse().unwrap();
        let lo6: SocketAddr = "[::1]:18000".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:18000".parse().unwrap();
        assert!(!XdsAuth::Auto.required_on(lo) && !XdsAuth::Auto.required_on(lo6));
        assert!(XdsAuth::Auto.required_on(any));
        assert!(XdsAuth::Required.required_on(lo));
        assert!(!XdsAuth::Off.required_on(any));
    }
}
