//! The access log a live tap switches on: what to log (plain types, part of a proxy's
//! [`Selection`](super::Selection)) and the Envoy `http_grpc` access-log config it becomes.
//! Only Envoy's simple filters are used (`:path` header prefix, status code comparisons,
//! and/or), so minimal-proxy implements the same (`minimal-proxy/src/access_log/filter.rs`).

use envoy_types::pb::{
    envoy::{
        config::{
            accesslog::v3::{
                AccessLog as EnvoyAccessLog, AccessLogFilter, AndFilter, ComparisonFilter,
                HeaderFilter, OrFilter, StatusCodeFilter, access_log, access_log_filter,
                comparison_filter::Op,
            },
            core::v3::{ApiVersion, GrpcService, HeaderValue, RuntimeUInt32, grpc_service},
            route::v3::{HeaderMatcher, header_matcher::HeaderMatchSpecifier},
        },
        extensions::access_loggers::grpc::v3::{
            CommonGrpcAccessLogConfig, HttpGrpcAccessLogConfig,
        },
        r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern},
    },
    google::protobuf::{Duration, UInt32Value},
};

use super::cluster::to_any;

/// The access logger's extension name.
pub const HTTP_GRPC: &str = "envoy.access_loggers.http_grpc";
/// The `log_name` every tap access log carries (the receiver accepts others too).
pub const LOG_NAME: &str = "xds-tap";
/// Envoy requires a runtime key on a status comparison; none is meant to override it.
const STATUS_RUNTIME_KEY: &str = "xds_tap.status";
/// How long Envoy may buffer entries before sending them: short, since someone is watching.
const FLUSH_INTERVAL_MS: i32 = 200;
/// Envoy's default batch size, stated so the contract does not depend on Envoy's defaults.
const BUFFER_BYTES: u32 = 16 * 1024;

/// What one HTTP listener of a proxy logs to the server while taps concern it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessLog {
    /// The bootstrap's xDS cluster: the log stream goes where xDS comes from.
    pub xds_cluster: String,
    /// A request is logged when any of these matches it; empty: every request.
    pub matches: Vec<LogMatch>,
    /// With proxy tokens required: what the proxy authenticates its access-log stream with,
    /// sent as `authorization: Bearer <credential>` (`tap/credential.rs`).
    pub credential: Option<crate::tap::credential::Credential>,
}

/// One tap's conditions on a request; every one given must hold. With none, every request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogMatch {
    pub path_prefix: Option<String>,
    pub status: Option<StatusMatch>,
}

/// A response status: one code, or a class (`5` for 5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusMatch {
    Code(u16),
    Class(u8),
}

impl StatusMatch {
    /// Whether a response with `code` (none: no response was sent) matches.
    pub fn matches(self, code: Option<u16>) -> bool {
        match (self, code) {
            (Self::Code(want), Some(code)) => want == code,
            (Self::Class(class), Some(code)) => code / 100 == u16::from(class),
            (_, None) => false,
        }
    }
}

impl std::fmt::Display for StatusMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(code) => write!(f, "{code}"),
            Self::Class(class) => write!(f, "{class}xx"),
        }
    }
}

impl LogMatch {
    pub fn is_unconditional(&self) -> bool {
        self.path_prefix.is_none() && self.status.is_none()
    }
}

impl AccessLog {
    /// The log for several taps' matches: deduplicated and sorted (so equal sets of taps give
    /// equal selections), and empty as soon as one of them logs everything.
    pub fn new(xds_cluster: String, matches: impl IntoIterator<Item = LogMatch>) -> Self {
        let mut matches: Vec<LogMatch> = matches.into_iter().collect();
        if matches.iter().any(LogMatch::is_unconditional) {
            matches.clear();
        }
        matches.sort();
        matches.dedup();
        Self {
            xds_cluster,
            matches,
            credential: None,
        }
    }
}

/// The HCM `access_log` entry for `log`.
pub(super) fn access_log(log: &AccessLog) -> EnvoyAccessLog {
    let config = HttpGrpcAccessLogConfig {
        common_config: Some(CommonGrpcAccessLogConfig {
            log_name: LOG_NAME.to_string(),
            grpc_service: Some(GrpcService {
                target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                    grpc_service::EnvoyGrpc {
                        cluster_name: log.xds_cluster.clone(),
                        ..Default::default()
                    },
                )),
                initial_metadata: log
                    .credential
                    .iter()
                    .map(|c| HeaderValue {
                        key: "authorization".to_string(),
                        value: format!("Bearer {}", c.expose()),
                        ..HeaderValue::default()
                    })
                    .collect(),
                ..GrpcService::default()
            }),
            transport_api_version: ApiVersion::V3 as i32,
            buffer_flush_interval: Some(Duration {
                seconds: 0,
                nanos: FLUSH_INTERVAL_MS * 1_000_000,
            }),
            buffer_size_bytes: Some(UInt32Value {
                value: BUFFER_BYTES,
            }),
            ..CommonGrpcAccessLogConfig::default()
        }),
        ..HttpGrpcAccessLogConfig::default()
    };
    EnvoyAccessLog {
        name: HTTP_GRPC.to_string(),
        filter: any_of(log.matches.iter().filter_map(log_match).collect()),
        config_type: Some(access_log::ConfigType::TypedConfig(to_any(&config))),
    }
}

/// One tap's conditions as a filter; `None` when it has none.
fn log_match(m: &LogMatch) -> Option<AccessLogFilter> {
    let mut all = Vec::new();
    if let Some(prefix) = &m.path_prefix {
        all.push(path_prefix(prefix));
    }
    match m.status {
        Some(StatusMatch::Code(code)) => all.push(status(Op::Eq, u32::from(code))),
        Some(StatusMatch::Class(class)) => {
            let low = u32::from(class) * 100;
            all.push(combine(
                vec![status(Op::Ge, low), status(Op::Le, low + 99)],
                And,
            ));
        }
        None => {}
    }
    match all.len() {
        0 => None,
        _ => Some(combine(all, And)),
    }
}

/// Any of `filters`; `None` (log everything) when there are none.
fn any_of(filters: Vec<AccessLogFilter>) -> Option<AccessLogFilter> {
    (!filters.is_empty()).then(|| combine(filters, Or))
}

struct And;
struct Or;

trait Combinator {
    fn wrap(filters: Vec<AccessLogFilter>) -> access_log_filter::FilterSpecifier;
}

impl Combinator for And {
    fn wrap(filters: Vec<AccessLogFilter>) -> access_log_filter::FilterSpecifier {
        access_log_filter::FilterSpecifier::AndFilter(AndFilter { filters })
    }
}

impl Combinator for Or {
    fn wrap(filters: Vec<AccessLogFilter>) -> access_log_filter::FilterSpecifier {
        access_log_filter::FilterSpecifier::OrFilter(OrFilter { filters })
    }
}

/// A single filter bare (Envoy wants at least two in an and/or), else combined.
fn combine<C: Combinator>(mut filters: Vec<AccessLogFilter>, _: C) -> AccessLogFilter {
    if filters.len() == 1 {
        return filters.pop().expect("one filter");
    }
    AccessLogFilter {
        filter_specifier: Some(C::wrap(filters)),
    }
}

fn path_prefix(prefix: &str) -> AccessLogFilter {
    AccessLogFilter {
        filter_specifier: Some(access_log_filter::FilterSpecifier::HeaderFilter(
            HeaderFilter {
                header: Some(HeaderMatcher {
                    name: ":path".to_string(),
                    header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(
                        StringMatcher {
                            match_pattern: Some(MatchPattern::Prefix(prefix.to_string())),
                            ..StringMatcher::default()
                        },
                    )),
                    ..HeaderMatcher::default()
                }),
            },
        )),
    }
}

fn status(op: Op, value: u32) -> AccessLogFilter {
    AccessLogFilter {
        filter_specifier: Some(access_log_filter::FilterSpecifier::StatusCodeFilter(
            StatusCodeFilter {
                comparison: Some(ComparisonFilter {
                    op: op as i32,
                    value: Some(RuntimeUInt32 {
                        default_value: value,
                        runtime_key: STATUS_RUNTIME_KEY.to_string(),
                    }),
                }),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    //! The filters as Envoy's JSON shows them: bare when single, and/or when several, none
    //! when a tap wants everything.

    use serde_json::{Value, json};

    use super::*;

    fn filter_json(log: &AccessLog) -> Value {
        let entry = access_log(log);
        match entry.filter {
            None => Value::Null,
            Some(f) => to_json(&f),
        }
    }

    /// A filter in Envoy's JSON form, written by hand: the three shapes used here.
    fn to_json(f: &AccessLogFilter) -> Value {
        use access_log_filter::FilterSpecifier as F;
        match f.filter_specifier.as_ref().unwrap() {
            F::AndFilter(a) => json!({ "and": a.filters.iter().map(to_json).collect::<Vec<_>>() }),
            F::OrFilter(o) => json!({ "or": o.filters.iter().map(to_json).collect::<Vec<_>>() }),
            F::HeaderFilter(h) => {
                let h = h.header.as_ref().unwrap();
                let Some(HeaderMatchSpecifier::StringMatch(s)) = &h.header_match_specifier else {
                    panic!("string match")
                };
                let Some(MatchPattern::Prefix(p)) = &s.match_pattern else {
                    panic!("prefix")
                };
                json!({ "header": h.name, "prefix": p })
            }
            F::StatusCodeFilter(s) => {
                let c = s.comparison.as_ref().unwrap();
                let v = c.value.as_ref().unwrap();
                assert_eq!(v.runtime_key, STATUS_RUNTIME_KEY, "Envoy requires a key");
                json!({ "status": Op::try_from(c.op).unwrap().as_str_name(), "value": v.default_value })
            }
            other => panic!("unexpected filter {other:?}"),
        }
    }

    fn m(path: Option<&str>, status: Option<StatusMatch>) -> LogMatch {
        LogMatch {
            path_prefix: path.map(str::to_string),
            status,
        }
    }

    #[test]
    fn an_unconditional_tap_logs_everything_whatever_the_others_ask() {
        let log = AccessLog::new(
            "xds_cluster".into(),
            [m(Some("/api"), None), LogMatch::default()],
        );
        assert!(log.matches.is_empty());
        assert_eq!(filter_json(&log), Value::Null);
    }

    #[test]
    fn one_condition_is_bare_and_two_are_anded() {
        let log = AccessLog::new("x".into(), [m(Some("/api"), None)]);
        assert_eq!(
            filter_json(&log),
            json!({ "header": ":path", "prefix": "/api" })
        );
        let log = AccessLog::new("x".into(), [m(None, Some(StatusMatch::Code(503)))]);
        assert_eq!(filter_json(&log), json!({ "status": "EQ", "value": 503 }));
        let log = AccessLog::new("x".into(), [m(Some("/a"), Some(StatusMatch::Class(5)))]);
        assert_eq!(
            filter_json(&log),
            json!({ "and": [
                { "header": ":path", "prefix": "/a" },
                { "and": [{ "status": "GE", "value": 500 }, { "status": "LE", "value": 599 }] },
            ] })
        );
    }

    #[test]
    fn several_taps_are_ored_in_a_stable_order() {
        let a = AccessLog::new(
            "x".into(),
            [
                m(Some("/b"), None),
                m(Some("/a"), None),
                m(Some("/b"), None),
            ],
        );
        let b = AccessLog::new("x".into(), [m(Some("/a"), None), m(Some("/b"), None)]);
        assert_eq!(a, b, "deduplicated and sorted");
        assert_eq!(
            filter_json(&a),
            json!({ "or": [
                { "header": ":path", "prefix": "/a" },
                { "header": ":path", "prefix": "/b" },
            ] })
        );
    }

    #[test]
    fn the_log_goes_to_the_xds_cluster_over_v3() {
        let entry = access_log(&AccessLog::new("my_xds".into(), []));
        assert_eq!(entry.name, HTTP_GRPC);
        let Some(access_log::ConfigType::TypedConfig(any)) = entry.config_type else {
            panic!("typed config")
        };
        let config: HttpGrpcAccessLogConfig = prost::Message::decode(&*any.value).unwrap();
        let common = config.common_config.unwrap();
        assert_eq!(common.log_name, LOG_NAME);
        assert_eq!(common.transport_api_version, ApiVersion::V3 as i32);
        let Some(grpc_service::TargetSpecifier::EnvoyGrpc(g)) =
            common.grpc_service.unwrap().target_specifier
        else {
            panic!("envoy_grpc")
        };
        assert_eq!(g.cluster_name, "my_xds");
    }

    #[test]
    fn status_classes_and_codes_match_as_documented() {
        assert!(StatusMatch::Class(5).matches(Some(503)));
        assert!(!StatusMatch::Class(5).matches(Some(404)));
        assert!(StatusMatch::Code(404).matches(Some(404)));
        assert!(!StatusMatch::Code(404).matches(None));
        assert_eq!(StatusMatch::Class(5).to_string(), "5xx");
    }
}
