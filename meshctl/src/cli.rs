//! The command line: clap types only. What each command does lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use xds_core::TypeUrl;

use crate::kind::Kind;

const AFTER_HELP: &str = "\
Exit codes: 0 ok; 1 the server refused something (4xx/5xx) or an object failed to apply;
2 usage or input error (bad flags, bad YAML, bad config); 3 the server cannot be reached.";

/// meshctl: the operator CLI of the mesh, a client of xds-server's REST admin API.
#[derive(Debug, Parser)]
#[command(name = "meshctl", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the server is and how to authenticate: flags beat environment variables, which beat
/// the config file.
#[derive(Debug, Args)]
pub struct Global {
    /// The admin API's URL [default: http://127.0.0.1:9090, the server's default]
    #[arg(
        long,
        global = true,
        env = "MESHCTL_SERVER",
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub server: Option<String>,
    /// A file holding the admin bearer token (xds-server --admin-token-file); never printed
    #[arg(
        long,
        global = true,
        env = "MESHCTL_TOKEN_FILE",
        value_name = "PATH",
        help_heading = "Connection"
    )]
    pub token_file: Option<PathBuf>,
    /// The config file (`server`, `token_file`) [default: $XDG_CONFIG_HOME/meshctl/config.yaml
    /// or ~/.config/meshctl/config.yaml, when present]
    #[arg(
        long,
        global = true,
        env = "MESHCTL_CONFIG",
        value_name = "PATH",
        help_heading = "Connection"
    )]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update objects from YAML/JSON files, in dependency order, skipping those
    /// already as written
    Apply(ApplyArgs),
    /// Show objects: a table, or YAML/JSON that `apply` accepts back
    Get(GetArgs),
    /// Delete an object, or every object a file names
    Delete(DeleteArgs),
    /// Every connected proxy and, per xDS type, whether it runs what it was sent
    ProxyStatus(ProxyStatusArgs),
    /// The resources computed for one connected proxy
    ProxyConfig(ProxyConfigArgs),
    /// A ready Envoy bootstrap for a proxy (YAML on standard output)
    Bootstrap(BootstrapArgs),
    /// Proxy tokens for the xDS port: create (the secret is shown once), list, revoke
    #[command(subcommand)]
    ProxyToken(ProxyTokenCommand),
    /// Golden metrics: requests/s, success rate and latency per service (one service: per
    /// route and per calling proxy too)
    Stat(StatArgs),
    /// The live tap: one line per request the proxies serve, as it happens (Ctrl-C stops)
    Tap(TapArgs),
    /// A shell completion script on standard output
    Completion(CompletionArgs),
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A file, a directory (its .yaml/.yml/.json files) or - for standard input; repeatable
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR|-",
        required = true
    )]
    pub files: Vec<PathBuf>,
    /// Print what would change (created / a field diff / unchanged) and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete objects of the kinds applied that carry --selector's labels and that the
    /// files no longer name
    #[arg(long, requires = "selector")]
    pub prune: bool,
    /// Labels (key=value[,key2=value2]) that mark the objects --prune manages
    #[arg(short = 'l', long, value_name = "KEY=VALUE", requires = "prune")]
    pub selector: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// service, endpoints, route, listener or envoy-resource (plural REST names work too)
    pub kind: Kind,
    /// One object; all of the kind when absent
    pub name: Option<String>,
    /// How to print: a table for people, or YAML/JSON for scripts
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Only objects carrying these labels (key=value[,key2=value2])
    #[arg(short = 'l', long, value_name = "KEY=VALUE", conflicts_with = "name")]
    pub selector: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Yaml,
    Json,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["kind", "files"]))]
pub struct DeleteArgs {
    /// The kind of the object to delete
    #[arg(requires = "name")]
    pub kind: Option<Kind>,
    /// Its name
    pub name: Option<String>,
    /// Delete every object these files name (dependents first); repeatable
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR|-",
        conflicts_with = "kind"
    )]
    pub files: Vec<PathBuf>,
    /// Do not fail on objects that do not exist
    #[arg(long)]
    pub ignore_not_found: bool,
}

#[derive(Debug, Args)]
pub struct ProxyStatusArgs {
    /// One proxy's node id: one row per xDS type, with versions and NACK messages
    pub node: Option<String>,
    /// How to print: a table for people, or the server's JSON for scripts
    #[arg(short, long, value_enum, default_value_t = StatusFormat::Table)]
    pub output: StatusFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ProxyConfigArgs {
    /// The proxy's node id
    pub node: String,
    /// Only resources of this type
    #[arg(short = 't', long = "type", value_enum)]
    pub resource_type: Option<ResourceType>,
    /// How to print: a table for people, or YAML/JSON for scripts
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResourceType {
    Cluster,
    Listener,
    Route,
    Endpoint,
}

impl ResourceType {
    pub fn type_url(self) -> TypeUrl {
        match self {
            ResourceType::Cluster => TypeUrl::Cluster,
            ResourceType::Listener => TypeUrl::Listener,
            ResourceType::Route => TypeUrl::Route,
            ResourceType::Endpoint => TypeUrl::Endpoint,
        }
    }
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The node id the proxy will present (listener selectors match on it)
    pub node: String,
    /// The node's cluster [server default: default]
    #[arg(long)]
    pub cluster: Option<String>,
    /// State-of-the-World or incremental (Delta) xDS
    #[arg(long, value_enum, default_value_t = Variant::Sotw)]
    pub variant: Variant,
    /// Separate CDS/EDS/LDS/RDS streams instead of one ADS stream
    #[arg(long)]
    pub no_ads: bool,
    /// The proxy's admin port [server default: 9901]
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// The host the proxy reaches xDS on [server default: its xDS address]
    #[arg(long)]
    pub xds_host: Option<String>,
    /// Node metadata, KEY=VALUE; repeatable
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = key_value)]
    pub metadata: Vec<(String, String)>,
    /// Mint a proxy token for this node and put it in the bootstrap (needs the admin token)
    #[arg(long)]
    pub issue_token: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProxyTokenCommand {
    /// Issue a token for one node id and cluster; prints its secret, which is shown only once
    Create {
        /// The node id the proxy presents
        node: String,
        /// The node's cluster
        #[arg(long)]
        cluster: String,
        /// Free text for operators
        #[arg(long)]
        description: Option<String>,
        /// How to print: the secret alone (table), or the whole answer as YAML/JSON
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Every token (never the secrets)
    List {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Revoke a token: the proxies using it lose their xDS streams at once
    Revoke {
        /// The token's id (pt-…)
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Variant {
    Sotw,
    Delta,
}

#[derive(Debug, Args)]
pub struct StatArgs {
    /// One service, with its routes and calling proxies; every service when absent
    pub service: Option<String>,
    /// The window the figures cover
    #[arg(short, long, value_enum, default_value_t = Window::Minute)]
    pub window: Window,
    /// Refresh every --interval seconds until interrupted
    #[arg(long)]
    pub watch: bool,
    /// Seconds between two refreshes with --watch
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600), requires = "watch")]
    pub interval: u64,
    /// With --watch: stop after this many refreshes
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), requires = "watch")]
    pub count: Option<u64>,
    /// How to print: a table for people, or the server's figures as YAML/JSON for scripts
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// The windows the server computes golden metrics over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Window {
    #[value(name = "10s")]
    TenSeconds,
    #[value(name = "1m")]
    Minute,
}

impl Window {
    /// As the server's `?window=` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::TenSeconds => "10s",
            Window::Minute => "1m",
        }
    }
}

#[derive(Debug, Args)]
pub struct TapArgs {
    /// Only requests to this service
    #[arg(long)]
    pub service: Option<String>,
    /// Only requests that took this route
    #[arg(long)]
    pub route: Option<String>,
    /// Only requests this proxy (node id) served
    #[arg(long, visible_alias = "node")]
    pub node_id: Option<String>,
    /// Only requests whose path starts with this (e.g. /api)
    #[arg(long, value_name = "PREFIX")]
    pub path_prefix: Option<String>,
    /// Only responses with this status: a code (503) or a class (5xx)
    #[arg(long, value_name = "CODE|CLASS")]
    pub status: Option<String>,
    /// Stop after this many requests
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// How to print: one line per request, or one JSON object per line
    #[arg(short, long, value_enum, default_value_t = TapFormat::Line)]
    pub output: TapFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TapFormat {
    Line,
    Json,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    pub shell: clap_complete::Shell,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn prune_needs_a_selector() {
        let err = Cli::try_parse_from(["meshctl", "apply", "-f", "m.yaml", "--prune"]).unwrap_err();
        assert!(err.to_string().contains("--selector"), "{err}");
        assert!(
            Cli::try_parse_from(["meshctl", "apply", "-f", "m.yaml", "--prune", "-l", "a=b"])
                .is_ok()
        );
    }

    #[test]
    fn delete_takes_kind_and_name_or_files() {
        assert!(Cli::try_parse_from(["meshctl", "delete", "service", "web"]).is_ok());
        assert!(Cli::try_parse_from(["meshctl", "delete", "-f", "m.yaml"]).is_ok());
        assert!(Cli::try_parse_from(["meshctl", "delete", "service"]).is_err());
        assert!(Cli::try_parse_from(["meshctl", "delete"]).is_err());
    }
}
