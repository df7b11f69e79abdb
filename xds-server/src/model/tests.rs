//! Unit tests for the mesh model's parsing and validation rules (names, durations, and each kind).

use serde_json::{Value, json};

use super::*;

// === helpers ===

/// Deserializes `json` into `S`, panicking with serde's message when it does not parse.
fn parse<S: Spec>(json: Value) -> S {
    serde_json::from_value(json).unwrap_or_else(|e| panic!("should deserialize: {e}"))
}

/// The serde error for `json`, which must not deserialize into `S`.
fn serde_err<S: Spec + std::fmt::Debug>(json: Value) -> String {
    serde_json::from_value::<S>(json)
        .expect_err("should be rejected by serde")
        .to_string()
}

/// Parses and validates `json` as a resource called `name`; it must be valid.
fn ok<S: Spec>(json: Value, name: &str) -> S {
    let spec: S = parse(json);
    if let Err(e) = spec.validate(name) {
        panic!("should be valid, got {e}");
    }
    spec
}

/// Parses `json` (which must deserialize) and returns the validation error it must produce.
fn err<S: Spec>(json: Value, name: &str) -> ValidationError {
    parse::<S>(json)
        .validate(name)
        .expect_err("should be rejected by validation")
}

/// The field named by the validation error of `json`.
fn field<S: Spec>(json: Value, name: &str) -> String {
    err::<S>(json, name).field
}

/// `base` with the top-level keys of `patch` added or replaced.
fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().expect("patch is an object") {
        base[k] = v.clone();
    }
    base
}

/// A one-rule route whose rule is a minimal valid one patched with `rule_patch`.
fn route_with_rule(rule_patch: Value) -> Value {
    let rule = with(
        json!({ "destinations": [{ "service": "web" }] }),
        rule_patch,
    );
    json!({ "hosts": ["web.example.com"], "rules": [rule] })
}

/// The field named by the error of a one-rule route patched with `rule_patch`.
fn rule_field(rule_patch: Value) -> String {
    field::<Route>(route_with_rule(rule_patch), "web")
}

fn health_check(protocol: &str, path: Option<&str>) -> Value {
    let mut hc = json!({ "interval": "5s", "timeout": "1s" });
    if let Some(p) = path {
        hc["path"] = json!(p);
    }
    json!({ "protocol": protocol, "health_check": hc })
}

fn endpoint(address: &str, port: u32) -> Value {
    json!({ "address": address, "port": port })
}

const CLUSTER_URL: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const CLA_URL: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
const LISTENER_URL: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";

fn static_cluster() -> Value {
    json!({
        "name": "extra", "connect_timeout": "1s", "type": "STATIC",
        "load_assignment": { "cluster_name": "extra", "endpoints": [{ "lb_endpoints": [{
            "endpoint": { "address": { "socket_address": {
                "address": "127.0.0.1", "port_value": 8080 } } } }] }] }
    })
}

fn raw(type_url: &str, resource: Value) -> Value {
    json!({ "type_url": type_url, "resource": resource })
}

// === names ===

#[test]
fn name_accepts_dns_labels() {
    for name in ["a", "web-1", "0", "a1-b2-c3", &"a".repeat(63)] {
        assert_eq!(validate_name("name", name), Ok(()), "{name:?}");
    }
}

#[test]
fn name_rejects_everything_else() {
    let long = "a".repeat(64);
    for name in [
        "",
        &long,
        "Web",
        "web-",
        "-web",
        "-",
        "my_svc",
        "web.example",
        "web 1",
        "wéb",
    ] {
        let e = validate_name("routes[2]", name).expect_err(name);
        assert_eq!(e.field, "routes[2]", "{name:?}");
    }
}

// === durations ===

#[test]
fn duration_parses_each_unit() {
    for (text, ms) in [
        ("250ms", 250),
        ("5s", 5_000),
        ("1m", 60_000),
        ("1h", 3_600_000),
        ("0s", 0),
        ("24h", 86_400_000),
    ] {
        let d: Duration = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(d, Duration::from_millis(ms), "{text}");
    }
    assert!("0s".parse::<Duration>().unwrap().is_zero());
}

#[test]
fn duration_displays_in_the_largest_exact_unit() {
    for (text, shown) in [
        ("1000ms", "1s"),
        ("90s", "90s"),
        ("60000ms", "1m"),
        ("120m", "2h"),
        ("1500ms", "1500ms"),
        ("3600s", "1h"),
    ] {
        let d: Duration = text.parse().unwrap();
        assert_eq!(d.to_string(), shown, "{text}");
    }
    let zero: Duration = "0s".parse().unwrap();
    assert_eq!(zero.to_string().parse::<Duration>(), Ok(zero));
}

#[test]
fn duration_rejects_malformed_text() {
    for text in [
        "",
        "5",
        "s",
        "1.5s",
        "-1s",
        "+1s",
        "5d",
        "25h",
        "1441m",
        "1 s",
        " 1s",
        "1s ",
        "1S",
        "1sec",
        "10000000000ms",
    ] {
        assert!(text.parse::<Duration>().is_err(), "{text:?} should fail");
    }
}

#[test]
fn duration_serde_round_trip() {
    let d: Duration = serde_json::from_value(json!("60000ms")).unwrap();
    assert_eq!(d, Duration::from_millis(60_000));
    assert_eq!(serde_json::to_value(d).unwrap(), json!("1m"));
    assert_eq!(serde_json::from_value::<Duration>(json!("1m")).unwrap(), d);
    assert!(serde_json::from_value::<Duration>(json!(5)).is_err());
    assert!(serde_json::from_value::<Duration>(json!("5d")).is_err());
}

// === services ===

#[test]
fn service_minimal_and_full_examples_are_valid() {
    let s: Service = ok(json!({ "protocol": "http" }), "web");
    assert_eq!(s.protocol, Protocol::Http);
    assert!(s.references("web").is_empty());
    ok::<Service>(
        json!({ "protocol": "http", "lb_policy": "round_robin", "connect_timeout": "1s",
            "circuit_breaker": { "max_connections": 1024, "max_pending_requests": 1024,
                                 "max_requests": 1024, "max_retries": 3 },
            "outlier_detection": { "consecutive_5xx": 5, "interval": "10s",
                                   "base_ejection_time": "30s", "max_ejection_percent": 10 },
            "health_check": { "path": "/healthz", "interval": "5s", "timeout": "1s",
                              "healthy_threshold": 1, "unhealthy_threshold": 3 } }),
        "web",
    );
}

#[test]
fn service_serde_rejects_unknown_fields_and_bad_enums() {
    let e = serde_err::<Service>(json!({ "protocol": "http", "foo": 1 }));
    assert!(e.contains("unknown field"), "{e}");
    serde_err::<Service>(json!({ "protocol": "udp" }));
    serde_err::<Service>(json!({ "protocol": "http", "lb_policy": "fastest" }));
    serde_err::<Service>(json!({}));
    let e = serde_err::<Service>(json!({ "protocol": "http", "connect_timeout": "5d" }));
    assert!(e.contains("not a duration"), "{e}");
}

#[test]
fn service_rejects_zero_timeout_and_out_of_range_percent() {
    let svc = json!({ "protocol": "http", "connect_timeout": "0s" });
    assert_eq!(field::<Service>(svc, "web"), "connect_timeout");
    let svc = json!({ "protocol": "http", "outlier_detection": { "max_ejection_percent": 101 } });
    let e = err::<Service>(svc, "web");
    assert_eq!(e.field, "outlier_detection.max_ejection_percent");
    assert!(e.message.contains("0..=100"), "{}", e.message);
    ok::<Service>(
        json!({ "protocol": "http", "outlier_detection": { "max_ejection_percent": 100 } }),
        "web",
    );
}

#[test]
fn service_health_check_path_depends_on_protocol() {
    ok::<Service>(health_check("tcp", None), "db");
    ok::<Service>(
        health_check("grpc", Some("/grpc.health.v1.Health/Check")),
        "g",
    );
    for (protocol, path) in [
        ("tcp", Some("/healthz")),
        ("http", None),
        ("http2", None),
        ("http", Some("healthz")),
        ("http", Some("/health z")),
    ] {
        let f = field::<Service>(health_check(protocol, path), "web");
        assert_eq!(f, "health_check.path", "{protocol} {path:?}");
    }
}

// === endpoints ===

#[test]
fn endpoints_valid_list() {
    let eps: Endpoints = ok(
        json!({ "endpoints": [
            { "address": "127.0.0.1", "port": 8081, "weight": 1, "zone": "z1",
              "labels": { "version": "v1" }, "health": "healthy" },
            { "address": "::1", "port": 65535, "weight": 10000, "health": "draining" },
            endpoint("127.0.0.1", 1) ] }),
        "web",
    );
    assert_eq!(eps.endpoints[2].weight, 1, "weight defaults to 1");
    assert_eq!(eps.endpoints[2].health, EndpointHealth::Healthy);
    ok::<Endpoints>(json!({ "endpoints": [] }), "web");
}

#[test]
fn endpoints_reject_bad_address_port_and_weight() {
    let eps = |second: Value| json!({ "endpoints": [endpoint("10.0.0.1", 80), second] });
    let not_ip = json!({ "endpoints": [endpoint("not-an-ip", 80)] });
    assert_eq!(field::<Endpoints>(not_ip, "web"), "endpoints[0].address");
    let host = eps(endpoint("web.internal", 80));
    assert_eq!(field::<Endpoints>(host, "web"), "endpoints[1].address");
    for port in [0, 65536] {
        let f = field::<Endpoints>(eps(endpoint("10.0.0.2", port)), "web");
        assert_eq!(f, "endpoints[1].port", "port {port}");
    }
    for weight in [0, 10_001] {
        let e = err::<Endpoints>(
            eps(json!({ "address": "10.0.0.2", "port": 80, "weight": weight })),
            "web",
        );
        assert_eq!(e.field, "endpoints[1].weight", "weight {weight}");
        assert!(e.message.contains("1..=10000"), "{}", e.message);
    }
}

#[test]
fn endpoints_reject_duplicates_and_bad_labels() {
    let dup = json!({ "endpoints": [endpoint("10.0.0.1", 80), endpoint("10.0.0.1", 80)] });
    assert_eq!(field::<Endpoints>(dup, "web"), "endpoints[1].address");
    // The same IPv6 address spelled two ways is still the same endpoint.
    let dup6 = json!({ "endpoints": [endpoint("::1", 80), endpoint("0:0:0:0:0:0:0:1", 80)] });
    assert_eq!(field::<Endpoints>(dup6, "web"), "endpoints[1].address");
    ok::<Endpoints>(
        json!({ "endpoints": [endpoint("10.0.0.1", 80), endpoint("10.0.0.1", 81)] }),
        "web",
    );
    let zone = json!({ "endpoints": [{ "address": "10.0.0.1", "port": 80, "zone": "zone a" }] });
    assert_eq!(field::<Endpoints>(zone, "web"), "endpoints[0].zone");
    let label =
        json!({ "endpoints": [{ "address": "10.0.0.1", "port": 80, "labels": { "v": "" } }] });
    assert_eq!(field::<Endpoints>(label, "web"), "endpoints[0].labels.v");
    serde_err::<Endpoints>(json!({ "endpoints": [{ "address": "10.0.0.1", "port": 80, "x": 1 }] }));
    serde_err::<Endpoints>(json!({ "endpoints": [{ "address": "10.0.0.1", "port": -1 }] }));
}

#[test]
fn endpoints_are_owned_by_their_service() {
    let eps: Endpoints = ok(json!({ "endpoints": [endpoint("10.0.0.1", 80)] }), "web");
    let refs = eps.references("web");
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(
        (refs[0].kind, refs[0].name.as_str()),
        (Kind::Service, "web")
    );
    assert!(refs[0].owned);
}

// === routes ===

fn design_route() -> Value {
    json!({ "hosts": ["web.example.com", "*"],
      "rules": [
        { "match": { "path": { "prefix": "/api/" },
                     "headers": [ { "name": "x-canary", "exact": "1" } ],
                     "method": "GET" },
          "destinations": [ { "service": "web", "weight": 80, "subset": { "version": "v1" } },
                            { "service": "web-v2", "weight": 20, "subset": { "version": "v2" } } ],
          "timeout": "5s",
          "retries": { "attempts": 2, "per_try_timeout": "1s",
                       "retry_on": ["5xx", "gateway-error", "connect-failure", "reset"],
                       "backoff": { "base_interval": "25ms", "max_interval": "250ms" } },
          "rewrite": { "prefix": "/" },
          "request_headers": { "set": { "x-from": "mesh" }, "remove": ["x-debug"] },
          "response_headers": { "set": {}, "remove": [] } },
        { "destinations": [ { "service": "fallback" } ] } ] })
}

#[test]
fn route_design_example_is_valid_and_lists_its_destinations() {
    let route: Route = ok(design_route(), "web");
    assert_eq!(
        route.rules[1].destinations[0].weight, 1,
        "weight defaults to 1"
    );
    let refs: Vec<_> = route
        .references("web")
        .into_iter()
        .map(|r| (r.kind, r.name, r.field, r.owned))
        .collect();
    let expect =
        |name: &str, field: &str| (Kind::Service, name.to_string(), field.to_string(), false);
    assert_eq!(
        refs,
        [
            expect("web", "rules[0].destinations[0].service"),
            expect("web-v2", "rules[0].destinations[1].service"),
            expect("fallback", "rules[1].destinations[0].service"),
        ]
    );
}

#[test]
fn route_accepts_other_match_forms() {
    ok::<Route>(
        route_with_rule(json!({ "match": { "path": { "regex": "^/v[0-9]+/" },
            "headers": [ { "name": ":path", "regex": "^/a" }, { "name": "x-b", "present": true } ] } })),
        "web",
    );
    let hosts = json!({ "hosts": ["*.example.com", "web.example.com:8080", "10.0.0.1"],
        "rules": [ { "destinations": [ { "service": "web" } ] } ] });
    ok::<Route>(hosts, "web");
}

#[test]
fn route_host_errors() {
    let route = |hosts: Value| json!({ "hosts": hosts, "rules": [ { "destinations": [ { "service": "web" } ] } ] });
    assert_eq!(field::<Route>(route(json!([])), "web"), "hosts");
    assert_eq!(
        field::<Route>(route(json!(["Web.Example.com"])), "web"),
        "hosts[0]"
    );
    assert_eq!(
        field::<Route>(route(json!(["a.com", "web.example.com:0"])), "web"),
        "hosts[1]"
    );
    assert_eq!(
        field::<Route>(route(json!(["a.com", "b.com", "a.com"])), "web"),
        "hosts[2]"
    );
}

/// `check_host` promises "a lowercase host name": empty labels are not host names.
#[test]
fn route_rejects_hosts_with_empty_labels() {
    for host in [".", "..", ".example.com", "web..example.com"] {
        let route =
            json!({ "hosts": [host], "rules": [ { "destinations": [ { "service": "web" } ] } ] });
        assert_eq!(field::<Route>(route, "web"), "hosts[0]", "{host:?}");
    }
}

#[test]
fn route_rule_and_destination_errors() {
    assert_eq!(
        field::<Route>(json!({ "hosts": ["*"], "rules": [] }), "web"),
        "rules"
    );
    assert_eq!(
        rule_field(json!({ "destinations": [] })),
        "rules[0].destinations"
    );
    let weights = json!({ "destinations": [ { "service": "a", "weight": 1 }, { "service": "b", "weight": 0 } ] });
    let e = err::<Route>(route_with_rule(weights), "web");
    assert_eq!(e.field, "rules[0].destinations[1].weight");
    assert!(e.message.contains("1..=10000"), "{}", e.message);
    let bad_service = json!({ "destinations": [ { "service": "Web_1" } ] });
    assert_eq!(rule_field(bad_service), "rules[0].destinations[0].service");
    let subset =
        json!({ "destinations": [ { "service": "web", "subset": { "version": "v 1" } } ] });
    assert_eq!(
        rule_field(subset),
        "rules[0].destinations[0].subset.version"
    );
    assert_eq!(rule_field(json!({ "timeout": "0ms" })), "rules[0].timeout");
    // The error names the rule it is in.
    let mut two = route_with_rule(json!({}));
    let rules = two["rules"].as_array_mut().unwrap();
    rules.push(json!({ "destinations": [] }));
    assert_eq!(field::<Route>(two, "web"), "rules[1].destinations");
}

#[test]
fn route_match_errors() {
    let m = |m: Value| rule_field(json!({ "match": m }));
    assert_eq!(
        m(json!({ "path": { "prefix": "api/" } })),
        "rules[0].match.path.prefix"
    );
    assert_eq!(
        m(json!({ "path": { "exact": "x" } })),
        "rules[0].match.path.exact"
    );
    assert_eq!(
        m(json!({ "path": { "regex": "(" } })),
        "rules[0].match.path.regex"
    );
    let both = json!({ "headers": [ { "name": "x-a", "exact": "1", "regex": "1" } ] });
    assert_eq!(m(both), "rules[0].match.headers[0]");
    let none = json!({ "headers": [ { "name": "x-a" }, { "name": "x-b" } ] });
    assert_eq!(m(none), "rules[0].match.headers[0]");
    let bad_re = json!({ "headers": [ { "name": "x-a", "present": true }, { "name": "x-b", "regex": "[" } ] });
    assert_eq!(m(bad_re), "rules[0].match.headers[1].regex");
    let upper = json!({ "headers": [ { "name": "X-A", "exact": "1" } ] });
    assert_eq!(m(upper), "rules[0].match.headers[0].name");
    assert_eq!(m(json!({ "method": "FETCH" })), "rules[0].match.method");
    serde_err::<Route>(route_with_rule(
        json!({ "match": { "path": { "prefix": "/", "exact": "/" } } }),
    ));
    serde_err::<Route>(route_with_rule(json!({ "match": { "paths": {} } })));
}

#[test]
fn route_retry_errors() {
    let r = |retries: Value| rule_field(json!({ "retries": retries }));
    assert_eq!(r(json!({ "attempts": 11 })), "rules[0].retries.attempts");
    let on = json!({ "attempts": 1, "retry_on": ["5xx", "sometimes"] });
    assert_eq!(r(on), "rules[0].retries.retry_on[1]");
    let t = json!({ "attempts": 1, "per_try_timeout": "0s" });
    assert_eq!(r(t), "rules[0].retries.per_try_timeout");
    let backoff =
        json!({ "attempts": 1, "backoff": { "base_interval": "250ms", "max_interval": "25ms" } });
    assert_eq!(r(backoff), "rules[0].retries.backoff.max_interval");
    let zero = json!({ "attempts": 1, "backoff": { "base_interval": "0ms" } });
    assert_eq!(r(zero), "rules[0].retries.backoff.base_interval");
}

#[test]
fn route_rewrite_needs_a_non_regex_match() {
    let rw = json!({ "match": { "path": { "regex": "^/a" } }, "rewrite": { "prefix": "/" } });
    assert_eq!(rule_field(rw), "rules[0].rewrite.prefix");
    let rw = json!({ "match": { "path": { "prefix": "/a" } }, "rewrite": { "prefix": "b" } });
    assert_eq!(rule_field(rw), "rules[0].rewrite.prefix");
}

#[test]
fn route_header_change_errors() {
    let h = |side: &str, changes: Value| rule_field(json!({ side: changes }));
    let host = json!({ "remove": ["x-a", "host"] });
    assert_eq!(
        h("request_headers", host),
        "rules[0].request_headers.remove[1]"
    );
    let both = json!({ "set": { "x-a": "1" }, "remove": ["x-a"] });
    assert_eq!(
        h("response_headers", both),
        "rules[0].response_headers.remove[0]"
    );
    let pseudo = json!({ "set": { ":path": "/x" } });
    assert_eq!(
        h("request_headers", pseudo),
        "rules[0].request_headers.set.:path"
    );
    let pseudo = json!({ "remove": [":authority"] });
    assert_eq!(
        h("request_headers", pseudo),
        "rules[0].request_headers.remove[0]"
    );
    let ctl = json!({ "set": { "x-a": "a\nb" } });
    assert_eq!(
        h("request_headers", ctl),
        "rules[0].request_headers.set.x-a"
    );
    // The same pseudo-header is fine in a match.
    let m = json!({ "match": { "headers": [ { "name": ":path", "exact": "/x" } ] } });
    ok::<Route>(route_with_rule(m), "web");
}

/// Envoy refuses `host` in `request_headers_to_add` (":-prefixed or host headers may not be
/// modified", router/header_parser.cc), so the model must refuse it too or Envoy NACKs.
#[test]
fn route_rejects_setting_the_host_header() {
    let set = json!({ "request_headers": { "set": { "host": "other.example.com" } } });
    assert_eq!(rule_field(set), "rules[0].request_headers.set.host");
}

// === listeners ===

#[test]
fn listener_design_examples_are_valid() {
    let http: Listener = ok(
        json!({ "address": "0.0.0.0", "port": 10000, "protocol": "http", "routes": ["web", "api"],
          "selector": { "node_id": "ingress-1", "node_cluster": "ingress", "metadata": { "role": "edge" } } }),
        "ingress",
    );
    assert_eq!(
        http.references("ingress"),
        [
            Reference::to(Kind::Route, "web", "routes[0]"),
            Reference::to(Kind::Route, "api", "routes[1]"),
        ]
    );
    let tcp: Listener = ok(
        json!({ "port": 15432, "protocol": "tcp", "service": "postgres", "selector": {} }),
        "db",
    );
    assert_eq!(tcp.address, "0.0.0.0", "address defaults to 0.0.0.0");
    assert_eq!(
        tcp.references("db"),
        [Reference::to(Kind::Service, "postgres", "service")]
    );
}

#[test]
fn listener_protocol_decides_routes_or_service() {
    let l = |patch: Value| field::<Listener>(with(json!({ "port": 8080 }), patch), "l");
    assert_eq!(l(json!({ "protocol": "http" })), "routes");
    assert_eq!(
        l(json!({ "protocol": "http", "routes": ["web"], "service": "web" })),
        "service"
    );
    assert_eq!(l(json!({ "protocol": "tcp" })), "service");
    assert_eq!(
        l(json!({ "protocol": "tcp", "service": "db", "routes": ["web"] })),
        "routes"
    );
    assert_eq!(l(json!({ "protocol": "tcp", "service": "Db" })), "service");
    assert_eq!(
        l(json!({ "protocol": "http", "routes": ["web", "Api"] })),
        "routes[1]"
    );
    assert_eq!(
        l(json!({ "protocol": "http", "routes": ["web", "api", "web"] })),
        "routes[2]"
    );
    serde_err::<Listener>(json!({ "port": 8080, "protocol": "udp", "service": "db" }));
}

#[test]
fn listener_address_and_port() {
    let l = |address: &str, port: u32| json!({ "address": address, "port": port, "protocol": "tcp", "service": "db" });
    ok::<Listener>(l("::1", 1), "l");
    ok::<Listener>(l("127.0.0.1", 65535), "l");
    assert_eq!(field::<Listener>(l("localhost", 80), "l"), "address");
    assert_eq!(field::<Listener>(l("0.0.0.0:80", 80), "l"), "address");
    assert_eq!(field::<Listener>(l("0.0.0.0", 0), "l"), "port");
    assert_eq!(field::<Listener>(l("0.0.0.0", 65536), "l"), "port");
}

// === selectors ===

#[test]
fn selector_errors_are_reported_through_the_listener() {
    let l = |selector: Value| json!({ "port": 80, "protocol": "tcp", "service": "db", "selector": selector });
    assert_eq!(
        field::<Listener>(l(json!({ "node_id": "" })), "l"),
        "selector.node_id"
    );
    let long = "n".repeat(257);
    assert_eq!(
        field::<Listener>(l(json!({ "node_id": long })), "l"),
        "selector.node_id"
    );
    let ctl = json!({ "node_cluster": "a\u{7}b" });
    assert_eq!(field::<Listener>(l(ctl), "l"), "selector.node_cluster");
    let key = json!({ "metadata": { "bad key": "x" } });
    assert!(field::<Listener>(l(key), "l").starts_with("selector.metadata"));
    let value = json!({ "metadata": { "role": "a\nb" } });
    assert_eq!(field::<Listener>(l(value), "l"), "selector.metadata.role");
    serde_err::<Listener>(l(json!({ "node": "x" })));
}

// === envoy resources ===

#[test]
fn envoy_static_cluster_is_valid_under_its_own_name() {
    ok::<EnvoyResource>(raw(CLUSTER_URL, static_cluster()), "extra");
    let e = err::<EnvoyResource>(raw(CLUSTER_URL, static_cluster()), "other");
    assert_eq!(e.field, "resource.name");
    let mut nameless = static_cluster();
    nameless.as_object_mut().unwrap().remove("name");
    assert_eq!(
        field::<EnvoyResource>(raw(CLUSTER_URL, nameless), "extra"),
        "resource.name"
    );
    assert!(envoy_type_urls().any(|u| u == CLUSTER_URL));
}

#[test]
fn envoy_cluster_load_assignment_is_named_by_cluster_name() {
    let cla = json!({ "cluster_name": "extra", "endpoints": [] });
    ok::<EnvoyResource>(raw(CLA_URL, cla.clone()), "extra");
    assert_eq!(
        field::<EnvoyResource>(raw(CLA_URL, cla), "web"),
        "resource.cluster_name"
    );
}

/// The error for a resource of `type_url` named `name`: it must be about `resource` and mention
/// `needle`.
fn resource_err(type_url: &str, resource: Value, name: &str, needle: &str) {
    let e = err::<EnvoyResource>(raw(type_url, resource), name);
    assert_eq!(e.field, "resource", "{e}");
    assert!(e.message.contains(needle), "{e}");
}

#[test]
fn envoy_resource_is_decoded_strictly() {
    let unknown = with(static_cluster(), json!({ "bogus": 1 }));
    resource_err(CLUSTER_URL, unknown, "extra", "bogus");
    let wrong_type = with(static_cluster(), json!({ "connect_timeout": 5 }));
    resource_err(CLUSTER_URL, wrong_type, "extra", "duration");
    let bad_enum = with(static_cluster(), json!({ "type": "SOMETIMES" }));
    resource_err(CLUSTER_URL, bad_enum, "extra", "SOMETIMES");
    assert_eq!(
        field::<EnvoyResource>(raw(CLUSTER_URL, json!("extra")), "extra"),
        "resource"
    );
    serde_err::<EnvoyResource>(with(
        raw(CLUSTER_URL, static_cluster()),
        json!({ "extra": 1 }),
    ));
}

#[test]
fn envoy_resource_rejects_unsupported_type_urls() {
    for url in [
        "type.googleapis.com/envoy.config.core.v3.Address",
        "envoy.config.cluster.v3.Cluster",
        "type.googleapis.com/envoy.config.cluster.v3.Nope",
        "",
    ] {
        let f = field::<EnvoyResource>(raw(url, static_cluster()), "extra");
        assert_eq!(f, "type_url", "{url:?}");
    }
}

fn hcm_listener(hcm_extra: Value) -> Value {
    let hcm = with(
        json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "raw",
            "rds": { "route_config_name": "web", "config_source": { "ads": {} } },
            "http_filters": [ { "name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } } ]
        }),
        hcm_extra,
    );
    json!({
        "name": "raw",
        "address": { "socket_address": { "address": "0.0.0.0", "port_value": 10001 } },
        "filter_chains": [ { "filters": [ {
            "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm } ] } ]
    })
}

#[test]
fn envoy_listener_resolves_any_typed_config() {
    ok::<EnvoyResource>(raw(LISTENER_URL, hcm_listener(json!({}))), "raw");
    // The Any's payload is checked against its own type, not skipped.
    let typo = hcm_listener(json!({ "stat_prefx": "raw" }));
    resource_err(LISTENER_URL, typo, "raw", "stat_prefx");
    let unknown_type = hcm_listener(json!({ "@type": "type.googleapis.com/no.such.Message" }));
    resource_err(LISTENER_URL, unknown_type, "raw", "no.such.Message");
}

#[test]
fn envoy_resource_selector_is_validated() {
    let res = with(
        raw(CLUSTER_URL, static_cluster()),
        json!({ "selector": { "node_cluster": "" } }),
    );
    assert_eq!(
        field::<EnvoyResource>(res, "extra"),
        "selector.node_cluster"
    );
    let res = with(
        raw(CLUSTER_URL, static_cluster()),
        json!({ "selector": { "node_cluster": "ingress" } }),
    );
    let r: EnvoyResource = ok(res, "extra");
    assert!(r.references("extra").is_empty());
}

// === kinds ===

#[test]
fn kind_names_round_trip() {
    for kind in Kind::ALL {
        assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    assert_eq!(Kind::parse("envoy-resources"), Some(Kind::EnvoyResource));
    assert_eq!(Kind::parse("service"), None);
}
