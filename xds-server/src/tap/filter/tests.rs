//! The query a tap accepts, what it refuses (with the parameter named), and how a filter
//! matches events and listeners.

use super::*;

fn parse(query: &[(&str, &str)]) -> Result<Filter, FilterError> {
    Filter::parse(
        query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn event() -> TapEvent {
    TapEvent {
        time: "2026-12-01T00:00:00.000Z".into(),
        node_id: "edge-1".into(),
        method: "GET".into(),
        authority: "web.local".into(),
        path: "/api/items".into(),
        status: Some(503),
        duration_ms: Some(1.0),
        upstream_host: None,
        response_flags: vec!["UF"],
        route: Some("web".into()),
        service: Some("web".into()),
    }
}

#[test]
fn every_parameter_parses() {
    let f = parse(&[
        ("service", "web"),
        ("route", "web"),
        ("node_id", "edge-1"),
        ("path_prefix", "/api"),
        ("status", "5XX"),
    ])
    .unwrap();
    assert_eq!(f.service.as_deref(), Some("web"));
    assert_eq!(f.status, Some(StatusMatch::Class(5)));
    assert_eq!(
        parse(&[("status", "404")]).unwrap().status,
        Some(StatusMatch::Code(404))
    );
    assert_eq!(parse(&[]).unwrap(), Filter::default());
}

#[test]
fn bad_queries_name_the_parameter_and_what_to_do() {
    /// A query, the parameter blamed, and words the message must have.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[("servce", "web")], "servce", "use service, route"),
        (&[("service", "a"), ("service", "b")], "service", "twice"),
        (&[("status", "5xx"), ("status", "4xx")], "status", "twice"),
        (&[("service", "")], "service", "is empty"),
        (&[("path_prefix", "api")], "path_prefix", "start with '/'"),
        (&[("status", "600")], "status", "100-599"),
        (&[("status", "6xx")], "status", "1xx-5xx"),
        (&[("status", "0503")], "status", "e.g. 503"),
        (&[("status", "ok")], "status", "got 'ok'"),
        (&[("node_id", "a\nb")], "node_id", "control characters"),
    ];
    for (query, field, message) in cases {
        let e = parse(query).unwrap_err();
        assert_eq!(e.field(), *field, "{query:?}");
        assert!(e.to_string().contains(message), "{query:?}: {e}");
    }
    let long = "a".repeat(MAX_NAME_BYTES + 1);
    assert_eq!(parse(&[("route", &long)]).unwrap_err().field(), "route");
}

#[test]
fn an_event_matches_when_every_given_field_does() {
    assert!(parse(&[]).unwrap().matches(&event()));
    let yes: &[&[(&str, &str)]] = &[
        &[("service", "web"), ("route", "web"), ("node_id", "edge-1")],
        &[("path_prefix", "/api"), ("status", "5xx")],
        &[("status", "503")],
    ];
    for q in yes {
        assert!(parse(q).unwrap().matches(&event()), "{q:?}");
    }
    let no: &[&[(&str, &str)]] = &[
        &[("service", "api")],
        &[("route", "other")],
        &[("node_id", "edge-2")],
        &[("path_prefix", "/web")],
        &[("status", "4xx")],
        &[("status", "500")],
    ];
    for q in no {
        assert!(!parse(q).unwrap().matches(&event()), "{q:?}");
    }
    let mut unknown = event();
    unknown.service = None;
    unknown.status = None;
    assert!(!parse(&[("service", "web")]).unwrap().matches(&unknown));
    assert!(!parse(&[("status", "5xx")]).unwrap().matches(&unknown));
}

#[test]
fn the_filter_serialises_for_the_open_event() {
    let f = parse(&[("status", "5xx"), ("path_prefix", "/a")]).unwrap();
    assert_eq!(
        serde_json::to_value(&f).unwrap(),
        serde_json::json!({ "service": null, "route": null, "node_id": null,
                            "path_prefix": "/a", "status": "5xx" })
    );
}
