//! Filter evaluation: header conditions decided on arrival, the rest when logged.

use std::time::Duration;

use http::{HeaderMap, Method};

use super::*;
use crate::config::{HeaderMatch, HeaderMatchKind};

fn cmp(op: CompareOp, value: u32) -> Comparison {
    Comparison { op, value }
}

fn path_prefix(p: &str) -> LogFilter {
    LogFilter::Header(HeaderMatch {
        name: ":path".into(),
        kind: HeaderMatchKind::Prefix(p.into()),
        invert: false,
    })
}

/// A record of `path` answered `code` (None: no response) after `ms`, with the header bits
/// the compiled filter's conditions give.
fn logged(
    filter: &LogFilter,
    path: &str,
    code: Option<u16>,
    ms: u64,
    flags: ResponseFlags,
) -> bool {
    let mut headers = Vec::new();
    let compiled = compile(filter, &mut headers).expect("compiles");
    let map = HeaderMap::new();
    let view = RequestView {
        authority: "web.local",
        method: &Method::GET,
        path_and_query: path,
        scheme: "http",
        headers: &map,
    };
    let mut r = Record::new("127.0.0.1:1".parse().unwrap(), None);
    r.header_matches = header_bits(&headers, &view);
    r.response_code = code;
    r.duration = Duration::from_millis(ms);
    r.flags = flags;
    compiled.admits(&r)
}

#[test]
fn the_taps_filters_select_as_envoy_does() {
    let none = ResponseFlags::default();
    // path_prefix=/api&status=5xx
    let tap = LogFilter::And(vec![
        path_prefix("/api"),
        LogFilter::And(vec![
            LogFilter::Status(cmp(CompareOp::Ge, 500)),
            LogFilter::Status(cmp(CompareOp::Le, 599)),
        ]),
    ]);
    assert!(logged(&tap, "/api/items?id=3", Some(503), 1, none));
    assert!(!logged(&tap, "/api/items", Some(200), 1, none));
    assert!(!logged(&tap, "/web", Some(503), 1, none));
    // A tap on status=404 or-ed in.
    let either = LogFilter::Or(vec![tap, LogFilter::Status(cmp(CompareOp::Eq, 404))]);
    assert!(logged(&either, "/web", Some(404), 1, none));
    assert!(!logged(&either, "/web", Some(403), 1, none));
    // No response code compares as 0.
    let ne = LogFilter::Status(cmp(CompareOp::Ne, 0));
    assert!(!logged(&ne, "/", None, 1, none));
    assert!(logged(&ne, "/", Some(200), 1, none));
}

#[test]
fn duration_and_response_flags() {
    let slow = LogFilter::Duration(cmp(CompareOp::Ge, 100));
    let none = ResponseFlags::default();
    assert!(logged(&slow, "/", Some(200), 150, none));
    assert!(!logged(&slow, "/", Some(200), 99, none));
    let any = LogFilter::ResponseFlags(vec![]);
    assert!(!logged(&any, "/", Some(200), 1, none));
    assert!(logged(
        &any,
        "/",
        Some(503),
        1,
        ResponseFlags::UPSTREAM_CONNECT_FAILURE
    ));
    let uf = LogFilter::ResponseFlags(vec!["UF".into(), "LH".into()]);
    assert!(logged(
        &uf,
        "/",
        Some(503),
        1,
        ResponseFlags::UPSTREAM_CONNECT_FAILURE
    ));
    assert!(!logged(&uf, "/", Some(404), 1, ResponseFlags::NO_ROUTE));
}

#[test]
fn header_conditions_are_capped_per_listener() {
    let many = LogFilter::Or((0..=MAX_HEADER_FILTERS).map(|_| path_prefix("/")).collect());
    assert!(compile(&many, &mut Vec::new()).is_none());
    let enough = LogFilter::Or((0..MAX_HEADER_FILTERS).map(|_| path_prefix("/")).collect());
    assert!(compile(&enough, &mut Vec::new()).is_some());
}
