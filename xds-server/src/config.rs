//! Command-line flags, each also settable from the environment.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, ValueEnum};

use crate::model::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "xds-server",
    version,
    about = "An Envoy control plane with a REST admin API"
)]
pub struct Config {
    /// Where the REST admin API listens. Loopback by default: expose it deliberately, and with
    /// --admin-token-file.
    #[arg(long, env = "XDS_SERVER_ADMIN_ADDR", default_value = "127.0.0.1:9090")]
    pub admin_addr: SocketAddr,

    /// Where proxies connect for xDS (gRPC: ADS, CDS, EDS, LDS, RDS; SotW and delta).
    #[arg(long, env = "XDS_SERVER_XDS_ADDR", default_value = "127.0.0.1:18000")]
    pub xds_addr: SocketAddr,

    /// Changes arriving within this long of the previous rebuild are folded into one; an
    /// isolated change is rebuilt at once.
    #[arg(long, env = "XDS_SERVER_COALESCE_WINDOW", default_value = "50ms")]
    pub coalesce_window: Duration,

    /// `postgres://user:pass@host/db` for Postgres, or `sqlite://path`. When absent, the
    /// embedded SQLite file given by --sqlite-file is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The embedded database file, used when no --database-url is given.
    #[arg(long, env = "XDS_SERVER_SQLITE_FILE", default_value = "xds-server.db")]
    pub sqlite_file: PathBuf,

    /// A file holding the admin API bearer token. When set, every request except /healthz
    /// and /readyz needs `Authorization: Bearer <token>`.
    #[arg(long, env = "XDS_SERVER_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    #[arg(long, env = "XDS_SERVER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "XDS_SERVER_MAX_BODY_BYTES", default_value_t = crate::api::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// How often the store is polled for writes made by other processes (a fallback for
    /// Postgres NOTIFY; the only way for a shared SQLite file).
    #[arg(long, env = "XDS_SERVER_POLL_INTERVAL", default_value = "1s")]
    pub poll_interval: Duration,

    /// On SIGTERM/SIGINT, how long in-flight requests may finish before the server stops.
    #[arg(long, env = "XDS_SERVER_SHUTDOWN_GRACE", default_value = "10s")]
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_the_admin_api_on_loopback() {
        let config = Config::try_parse_from(["xds-server"]).unwrap();
        assert!(config.admin_addr.ip().is_loopback());
        assert_eq!(config.admin_addr.port(), 9090);
        assert_eq!(config.xds_addr.port(), 18000);
        assert!(config.database_url.is_none() || std::env::var("DATABASE_URL").is_ok());
        assert!(
            config.admin_token_file.is_none()
                || std::env::var("XDS_SERVER_ADMIN_TOKEN_FILE").is_ok()
        );
    }

    #[test]
    fn flags_parse_durations_and_reject_bad_values() {
        let config = Config::try_parse_from(["xds-server", "--poll-interval", "250ms"]).unwrap();
        assert_eq!(
            config.poll_interval.get(),
            std::time::Duration::from_millis(250)
        );
        assert!(Config::try_parse_from(["xds-server", "--poll-interval", "fast"]).is_err());
        assert!(Config::try_parse_from(["xds-server", "--admin-addr", "nowhere"]).is_err());
        assert!(Config::try_parse_from(["xds-server", "--log-format", "xml"]).is_err());
    }
}
