//! A service's inbound side: where its sidecars listen and where they forward to (the
//! application beside them). A service that declares it has sidecars; one that does not is
//! reached directly (a gateway's upstream), as before.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ValidationError, check_range, invalid};

/// The sidecar's inbound listener and the application behind it. The service's endpoints are
/// the addresses where its sidecars' inbound listeners are reached (`address`/`port` as seen
/// from other proxies), not the application's own port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inbound {
    /// The port the sidecar's inbound listener binds.
    #[schema(example = 15006)]
    pub port: u32,
    /// The IP the inbound listener binds; default `0.0.0.0`.
    #[serde(default = "any_address")]
    #[schema(example = "0.0.0.0")]
    pub address: String,
    /// The application's address as the sidecar reaches it; default `127.0.0.1`.
    #[serde(default = "loopback")]
    #[schema(example = "127.0.0.1")]
    pub app_address: String,
    /// The application's port.
    #[schema(example = 8080)]
    pub app_port: u32,
}

fn any_address() -> String {
    "0.0.0.0".into()
}

fn loopback() -> String {
    "127.0.0.1".into()
}

impl Inbound {
    /// Checks the ports and addresses, reporting fields under `field` (`inbound`).
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        check_range(&format!("{field}.port"), self.port, 1..=65535)?;
        check_range(&format!("{field}.app_port"), self.app_port, 1..=65535)?;
        for (key, value) in [
            ("address", &self.address),
            ("app_address", &self.app_address),
        ] {
            value.parse::<IpAddr>().map_err(|_| {
                invalid(
                    format!("{field}.{key}"),
                    format!("'{value}' is not an IP address"),
                )
            })?;
        }
        let app: IpAddr = self
            .app_address
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if app.is_unspecified() {
            return Err(invalid(
                format!("{field}.app_address"),
                "must name the application's host (e.g. 127.0.0.1), not 0.0.0.0 or ::",
            ));
        }
        let same_host = app.is_loopback() || app == self.address.parse().unwrap_or(app);
        if same_host && self.app_port == self.port {
            return Err(invalid(
                format!("{field}.app_port"),
                format!(
                    "equals inbound.port ({}): the sidecar would forward to itself; give the \
                     application its own port",
                    self.port
                ),
            ));
        }
        Ok(())
    }
}
