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

    /// Whether every gRPC stream on the xDS port must present a proxy token
    /// (`authorization: Bearer <token>` metadata; issue them with POST /api/v1/proxy-tokens).
    /// `auto`: required unless --xds-addr is a loopback address (whether or not --xds-tls is
    /// on: TLS only keeps the tokens from crossing the network in plaintext).
    #[arg(long, env = "XDS_SERVER_XDS_AUTH", value_enum, default_value_t = crate::proxy_auth::XdsAuth::Auto)]
    pub xds_auth: crate::proxy_auth::XdsAuth,

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

    /// Files of read-only admin API tokens, one token per line (`#` starts a comment line);
    /// repeat the flag for several files (the env var takes a comma-separated list). A reader
    /// token may GET and HEAD (and open taps); writes answer 403. Needs --admin-token-file.
    #[arg(long, env = "XDS_SERVER_READER_TOKEN_FILE", value_delimiter = ',')]
    pub reader_token_file: Vec<PathBuf>,

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

    /// What any client reaching the xDS port may make the server hold or do.
    #[command(flatten)]
    pub xds_limits: XdsLimits,

    /// Live taps: how many at once, and how many events a second each.
    #[command(flatten)]
    pub tap: crate::tap::TapConfig,

    /// Service identities: the mesh CA and workload certificates (served over SDS).
    #[command(flatten)]
    pub ca: crate::ca::CaConfig,

    /// TLS on the xDS port (`--xds-tls off|builtin|files`).
    #[command(flatten)]
    pub xds_tls: crate::xds::tls::XdsTlsConfig,

    /// The mTLS mode of every service with sidecars (`inbound`) that sets none: `off` keeps
    /// today's plaintext; `strict` or `permissive` need the CA (--ca) for the certificates.
    #[arg(
        long,
        env = "XDS_SERVER_MTLS_DEFAULT",
        value_enum,
        default_value = "off"
    )]
    pub mtls_default: crate::model::MtlsMode,

    /// What a call no traffic permission decides gets: `allow` (today's behaviour) or `deny`
    /// (only what an allow permission names gets through; deny permissions still win).
    #[arg(
        long,
        env = "XDS_SERVER_PERMISSIONS_DEFAULT",
        value_enum,
        default_value = "allow"
    )]
    pub permissions_default: crate::model::PermissionsDefault,

    /// Last-known-good: a resource version a proxy rejects is held back from its group, which
    /// keeps the last version a proxy accepted. It trusts what proxies say: while the xDS port
    /// is not authenticated, a client reaching it can hold versions back from its group.
    #[arg(
        long,
        env = "XDS_SERVER_LAST_KNOWN_GOOD",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub last_known_good: bool,

    /// How often memory the process freed is handed back to the OS (glibc keeps it otherwise,
    /// so resident memory creeps up as streams come and go); `0s` turns it off. Linux with
    /// glibc only.
    #[arg(long, env = "XDS_SERVER_HEAP_TRIM_INTERVAL", default_value = "10s")]
    pub heap_trim_interval: Duration,
}

impl Config {
    /// The mesh-wide security settings translation reads (see `model::MeshSecurity`).
    pub fn mesh_security(&self) -> crate::model::MeshSecurity {
        crate::model::MeshSecurity {
            trust_domain: self.ca.trust_domain().as_str().to_string(),
            mtls_default: self.mtls_default,
            permissions_default: self.permissions_default,
            ca: self.ca.ca_mode != crate::ca::CaMode::Off,
        }
    }
}

/// The xDS limits (see `xds::limits`); defaults are far above what real proxies need.
#[derive(Debug, Clone, clap::Args)]
pub struct XdsLimits {
    /// xDS streams open at once, over all connections; the next is refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "XDS_SERVER_XDS_MAX_STREAMS", default_value_t = 10_000)]
    pub xds_max_streams: usize,

    /// xDS streams one HTTP/2 connection may open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "XDS_SERVER_XDS_MAX_STREAMS_PER_CONNECTION", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub xds_max_streams_per_connection: u32,

    /// How long a new xDS stream may wait for its first request before it is closed with
    /// DEADLINE_EXCEEDED.
    #[arg(
        long,
        env = "XDS_SERVER_XDS_FIRST_REQUEST_TIMEOUT",
        default_value = "10s"
    )]
    pub xds_first_request_timeout: Duration,

    /// Distinct type URLs one xDS stream may use.
    #[arg(
        long,
        env = "XDS_SERVER_XDS_MAX_TYPES_PER_STREAM",
        default_value_t = 16
    )]
    pub xds_max_types_per_stream: usize,

    /// Entries in a delta request's initial_resource_versions.
    #[arg(
        long,
        env = "XDS_SERVER_XDS_MAX_INITIAL_RESOURCE_VERSIONS",
        default_value_t = 10_000
    )]
    pub xds_max_initial_resource_versions: usize,

    /// Bytes of one xDS request, encoded (what a stream may buffer while a request arrives).
    #[arg(long, env = "XDS_SERVER_XDS_MAX_REQUEST_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub xds_max_request_bytes: usize,

    /// Bytes of any resource name (or type URL) in an xDS request.
    #[arg(
        long,
        env = "XDS_SERVER_XDS_MAX_RESOURCE_NAME_BYTES",
        default_value_t = 1024
    )]
    pub xds_max_resource_name_bytes: usize,

    /// Bytes of the node (id, cluster, metadata, ...), encoded.
    #[arg(long, env = "XDS_SERVER_XDS_MAX_NODE_BYTES", default_value_t = 64 * 1024)]
    pub xds_max_node_bytes: usize,

    /// Bytes of a NACK's error_detail message kept in the proxy status; longer ones are cut.
    #[arg(long, env = "XDS_SERVER_XDS_MAX_ERROR_DETAIL_BYTES", default_value_t = 4 * 1024)]
    pub xds_max_error_detail_bytes: usize,

    /// How long an xDS response may wait for a proxy that reads nothing (with 8 more already
    /// queued) before the proxy's connection is closed.
    #[arg(long, env = "XDS_SERVER_XDS_WRITE_TIMEOUT", default_value = "30s")]
    pub xds_write_timeout: Duration,
}

impl XdsLimits {
    pub fn limits(&self) -> crate::xds::limits::Limits {
        crate::xds::limits::Limits {
            max_streams: self.xds_max_streams,
            max_streams_per_connection: self.xds_max_streams_per_connection,
            first_request_timeout: self.xds_first_request_timeout.get(),
            max_types_per_stream: self.xds_max_types_per_stream,
            max_initial_resource_versions: self.xds_max_initial_resource_versions,
            max_request_bytes: self.xds_max_request_bytes,
            max_name_bytes: self.xds_max_resource_name_bytes,
            max_node_bytes: self.xds_max_node_bytes,
            max_error_detail_bytes: self.xds_max_error_detail_bytes,
            write_timeout: self.xds_write_timeout.get(),
        }
    }
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
        let off = Config::try_parse_from(["xds-server", "--last-known-good", "false"]).unwrap();
        assert!(!off.last_known_good);
        assert!(Config::try_parse_from(["xds-server", "--last-known-good", "maybe"]).is_err());
        let never = Config::try_parse_from(["xds-server", "--heap-trim-interval", "0s"]).unwrap();
        assert!(never.heap_trim_interval.get().is_zero());
        assert_eq!(
            Config::try_parse_from(["xds-server"])
                .unwrap()
                .heap_trim_interval
                .get(),
            std::time::Duration::from_secs(10)
        );
    }

    #[test]
    fn xds_limit_defaults_match_the_embedded_servers() {
        let config = Config::try_parse_from(["xds-server"]).unwrap();
        if std::env::vars().all(|(k, _)| !k.starts_with("XDS_SERVER_XDS_")) {
            assert_eq!(
                config.xds_limits.limits(),
                crate::xds::limits::Limits::default()
            );
        }
        let config = Config::try_parse_from([
            "xds-server",
            "--xds-max-streams",
            "5",
            "--xds-write-timeout",
            "2s",
        ])
        .unwrap();
        assert_eq!(config.xds_limits.limits().max_streams, 5);
        assert_eq!(
            config.xds_limits.limits().write_timeout,
            std::time::Duration::from_secs(2)
        );
        assert!(
            Config::try_parse_from(["xds-server", "--xds-max-streams-per-connection", "0"])
                .is_err()
        );
    }
}
