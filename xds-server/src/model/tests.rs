//! Unit tests for the mesh model's parsing and validation rules (names, durations, and each kind).

mod hash_policy;
mod security;

use serde_json::{Value, json};

use super::*;

// === helpers ===

/// Deserializes `json` into `S`, panicking with serde's message when it does not parse.
#[track_caller]
fn parse<S: Spec>(json: Value) -> S {
    serde_json::from_value(json).unwrap_or_else(|e| panic!("should deserialize: {e}"))
}

/// The serde error for `json`, which must not deserialize into `S`.
#[track_caller]
fn serde_err<S: Spec>(json: Value) -> String {
    let Err(e) = serde_json::from_value::<S>(json.clone()) else {
        panic!("serde should reject {json}");
    };
    e.to_string()
}

/// Parses and validates `json` as a resource called `name`; it must be valid.
#[track_caller]
fn ok<S: Spec>(json: Value, name: &str) -> S {
    let spec: S = parse(json.clone());
    if let Err(e) = spec.validate(name) {
        panic!("{json} should be valid, got {e}");
    }
    spec
}

/// Parses `json` (which must deserialize) and returns the validation error it must produce.
#[track_caller]
fn err<S: Spec>(json: Value, name: &str) -> ValidationError {
    let Err(e) = parse::<S>(json.clone()).validate(name) else {
        panic!("validation should reject {json}");
    };
    e
}

/// Asserts that `json`, as a resource called `name`, is rejected naming the field `want`.
#[track_caller]
fn rejects<S: Spec>(name: &str, json: Value, want: &str) {
    let e = err::<S>(json.clone(), name);
    assert_eq!(e.field, want, "{json} gave {e}");
}

/// `base` with the top-level keys of `patch` added or replaced.
fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().expect("patch is an object") {
        base[k] = v.clone();
    }
    base
}

/// A route with the given hosts and one minimal rule.
fn hosts_route(hosts: Value) -> Value {
    json!({ "hosts": hosts, "rules": [{ "destinations": [{ "service": "web" }] }] })
}

/// A one-rule route whose rule is a minimal valid one patched with `rule_patch`.
fn route_with_rule(rule_patch: Value) -> Value {
    let base = json!({ "destinations": [{ "service": "web" }] });
    json!({ "hosts": ["web.example.com"], "rules": [with(base, rule_patch)] })
}

/// Asserts that a one-rule route patched with `rule_patch` is rejected on field `want`.
#[track_caller]
fn rule_rejects(rule_patch: Value, want: &str) {
    rejects::<Route>("web", route_with_rule(rule_patch), want);
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

/// A TCP listener to `db`, patched with `patch`.
fn tcp_listener(patch: Value) -> Value {
    let base = json!({ "port": 80, "protocol": "tcp", "service": "db" });
    with(base, patch)
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

/// Asserts that a raw resource is rejected on `resource`, with a message mentioning `needle`.
#[track_caller]
fn resource_rejected(type_url: &str, resource: Value, name: &str, needle: &str) {
    let e = err::<EnvoyResource>(raw(type_url, resource), name);
    assert_eq!(e.field, "resource", "{e}");
    assert!(e.message.contains(needle), "{e}");
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
    // '|'-separated so that the empty name is visible.
    let bad = "|Web|web-|-web|-|my_svc|web.example|web 1|wéb".split('|');
    for name in bad.chain([long.as_str()]) {
        let e = validate_name("routes[2]", name).expect_err(name);
        assert_eq!(e.field, "routes[2]", "{name:?}");
    }
}

// === durations ===

#[test]
fn duration_parses_each_unit() {
    let d = |text: &str| text.parse::<Duration>().map(|d| d.get().as_millis());
    assert_eq!(d("250ms"), Ok(250));
    assert_eq!(d("5s"), Ok(5_000));
    assert_eq!(d("1m"), Ok(60_000));
    assert_eq!(d("1h"), Ok(3_600_000));
    assert_eq!(d("24h"), Ok(86_400_000));
    assert!("0s".parse::<Duration>().unwrap().is_zero());
}

#[test]
fn duration_displays_in_the_largest_exact_unit() {
    let shown = |text: &str| text.parse::<Duration>().unwrap().to_string();
    assert_eq!(shown("1000ms"), "1s");
    assert_eq!(shown("90s"), "90s");
    assert_eq!(shown("60000ms"), "1m");
    assert_eq!(shown("120m"), "2h");
    assert_eq!(shown("3600s"), "1h");
    assert_eq!(shown("1500ms"), "1500ms");
    let zero: Duration = "0s".parse().unwrap();
    assert_eq!(zero.to_string().parse::<Duration>(), Ok(zero));
}

#[test]
fn duration_rejects_malformed_text() {
    // '|'-separated so that the empty string and strings with spaces are visible.
    let bad = "|5|s|1.5s|-1s|+1s|5d|25h|1441m|1 s| 1s|1s |1S|1sec|10000000000ms";
    for text in bad.split('|') {
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
    let full = json!({ "protocol": "http", "lb_policy": "round_robin", "connect_timeout": "1s",
        "circuit_breaker": { "max_connections": 1024, "max_pending_requests": 1024,
                             "max_requests": 1024, "max_retries": 3 },
        "outlier_detection": { "consecutive_5xx": 5, "interval": "10s",
                               "base_ejection_time": "30s", "max_ejection_percent": 10 },
        "health_check": { "path": "/healthz", "interval": "5s", "timeout": "1s",
                          "healthy_threshold": 1, "unhealthy_threshold": 3 } });
    ok::<Service>(full, "web");
}

#[test]
fn service_serde_rejects_unknown_fields_and_bad_enums() {
    let e = serde_err::<Service>(json!({ "protocol": "http", "foo": 1 }));
    assert!(e.contains("unknown field"), "{e}");
    let e = serde_err::<Service>(json!({ "protocol": "udp" }));
    assert!(e.contains("udp"), "{e}");
    serde_err::<Service>(json!({ "protocol": "http", "lb_policy": "fastest" }));
    serde_err::<Service>(json!({}));
    let e = serde_err::<Service>(json!({ "protocol": "http", "connect_timeout": "5d" }));
    assert!(e.contains("not a duration"), "{e}");
}

#[test]
fn service_rejects_zero_timeout_and_out_of_range_percent() {
    let svc = json!({ "protocol": "http", "connect_timeout": "0s" });
    rejects::<Service>("web", svc, "connect_timeout");
    let od = |pct: u32| json!({ "max_ejection_percent": pct });
    let svc = |pct: u32| json!({ "protocol": "http", "outlier_detection": od(pct) });
    let e = err::<Service>(svc(101), "web");
    assert_eq!(e.field, "outlier_detection.max_ejection_percent");
    assert!(e.message.contains("0..=100"), "{}", e.message);
    ok::<Service>(svc(100), "web");
}

#[test]
fn service_health_check_path_depends_on_protocol() {
    ok::<Service>(health_check("tcp", None), "db");
    ok::<Service>(health_check("grpc", Some("/grpc.health")), "g");
    let bad = |protocol: &str, path: Option<&str>| {
        rejects::<Service>("web", health_check(protocol, path), "health_check.path");
    };
    bad("tcp", Some("/healthz"));
    bad("http", None);
    bad("http2", None);
    bad("http", Some("healthz"));
    bad("http", Some("/health z"));
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
    let bad = |eps: Value, want: &str| rejects::<Endpoints>("web", eps, want);
    let second = |ep: Value| json!({ "endpoints": [endpoint("10.0.0.1", 80), ep] });
    let not_ip = json!({ "endpoints": [endpoint("not-an-ip", 80)] });
    bad(not_ip, "endpoints[0].address");
    bad(second(endpoint("web.internal", 80)), "endpoints[1].address");
    bad(second(endpoint("10.0.0.2", 0)), "endpoints[1].port");
    bad(second(endpoint("10.0.0.2", 65536)), "endpoints[1].port");
    for weight in [0, 10_001] {
        let ep = json!({ "address": "10.0.0.2", "port": 80, "weight": weight });
        let e = err::<Endpoints>(second(ep), "web");
        assert_eq!(e.field, "endpoints[1].weight", "weight {weight}");
        assert!(e.message.contains("1..=10000"), "{}", e.message);
    }
}

#[test]
fn endpoints_reject_duplicates_and_bad_labels() {
    let bad = |eps: Value, want: &str| rejects::<Endpoints>("web", eps, want);
    let two = |a: Value, b: Value| json!({ "endpoints": [a, b] });
    let ep = endpoint("10.0.0.1", 80);
    bad(two(ep.clone(), ep.clone()), "endpoints[1].address");
    // The same IPv6 address spelled two ways is still the same endpoint.
    let v6 = two(endpoint("::1", 80), endpoint("0:0:0:0:0:0:0:1", 80));
    bad(v6, "endpoints[1].address");
    ok::<Endpoints>(two(ep.clone(), endpoint("10.0.0.1", 81)), "web");
    let one = |patch: Value| json!({ "endpoints": [with(ep.clone(), patch)] });
    bad(one(json!({ "zone": "zone a" })), "endpoints[0].zone");
    let label = one(json!({ "labels": { "v": "" } }));
    bad(label, "endpoints[0].labels.v");
    serde_err::<Endpoints>(one(json!({ "x": 1 })));
    serde_err::<Endpoints>(one(json!({ "port": -1 })));
    serde_err::<Endpoints>(one(json!({ "health": "sick" })));
}

#[test]
fn endpoints_are_owned_by_their_service() {
    let eps: Endpoints = ok(json!({ "endpoints": [endpoint("10.0.0.1", 80)] }), "web");
    let refs = eps.references("web");
    assert_eq!(refs.len(), 1, "{refs:?}");
    let r = &refs[0];
    assert_eq!(
        (r.kind, r.name.as_str(), r.owned),
        (Kind::Service, "web", true)
    );
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
          "response_headers": { "set": {}, "remove": [] },
          "hash_policy": [ { "header": "x-user", "terminal": true }, { "source_ip": true } ] },
        { "destinations": [ { "service": "fallback" } ] } ] })
}

#[test]
fn route_design_example_is_valid_and_lists_its_destinations() {
    let route: Route = ok(design_route(), "web");
    assert_eq!(route.rules[1].destinations[0].weight, 1, "default weight");
    let refs = route.references("web").into_iter();
    let refs: Vec<_> = refs.map(|r| (r.kind, r.name, r.field, r.owned)).collect();
    let to = |name: &str, field: &str| (Kind::Service, name.into(), field.into(), false);
    let want = [
        to("web", "rules[0].destinations[0].service"),
        to("web-v2", "rules[0].destinations[1].service"),
        to("fallback", "rules[1].destinations[0].service"),
    ];
    assert_eq!(refs, want);
}

#[test]
fn route_accepts_other_match_forms() {
    let headers = json!([{ "name": ":path", "regex": "^/a" }, { "name": "x-b", "present": true }]);
    let m = json!({ "match": { "path": { "regex": "^/v[0-9]+/" }, "headers": headers } });
    ok::<Route>(route_with_rule(m), "web");
    let m = json!({ "match": { "path": { "exact": "/x" }, "method": "DELETE" } });
    ok::<Route>(route_with_rule(m), "web");
    let hosts = json!(["*.example.com", "web.example.com:8080", "10.0.0.1"]);
    ok::<Route>(hosts_route(hosts), "web");
}

#[test]
fn route_host_errors() {
    let bad = |hosts: Value, want: &str| rejects::<Route>("web", hosts_route(hosts), want);
    bad(json!([]), "hosts");
    bad(json!(["Web.Example.com"]), "hosts[0]");
    bad(json!(["a.com", "a.com:0"]), "hosts[1]");
    bad(json!(["a.com", "b.com", "a.com"]), "hosts[2]");
}

/// `check_host` promises "a lowercase host name": empty labels are not host names.
#[test]
fn route_rejects_hosts_with_empty_labels() {
    for host in [".", "..", ".example.com", "web..example.com"] {
        rejects::<Route>("web", hosts_route(json!([host])), "hosts[0]");
    }
}

#[test]
fn route_rule_and_destination_errors() {
    rejects::<Route>("web", json!({ "hosts": ["*"], "rules": [] }), "rules");
    rule_rejects(json!({ "destinations": [] }), "rules[0].destinations");
    let dests = json!([{ "service": "a", "weight": 1 }, { "service": "b", "weight": 0 }]);
    let e = err::<Route>(route_with_rule(json!({ "destinations": dests })), "web");
    assert_eq!(e.field, "rules[0].destinations[1].weight");
    assert!(e.message.contains("1..=10000"), "{}", e.message);
    let bad_service = json!({ "destinations": [{ "service": "Web_1" }] });
    rule_rejects(bad_service, "rules[0].destinations[0].service");
    let subset = json!({ "destinations": [{ "service": "web", "subset": { "version": "v 1" } }] });
    rule_rejects(subset, "rules[0].destinations[0].subset.version");
    rule_rejects(json!({ "timeout": "0ms" }), "rules[0].timeout");
    // The error names the rule it is in.
    let mut two = route_with_rule(json!({}));
    let rules = two["rules"].as_array_mut().unwrap();
    rules.push(json!({ "destinations": [] }));
    rejects::<Route>("web", two, "rules[1].destinations");
}

#[test]
fn route_match_errors() {
    let m = |m: Value, want: &str| rule_rejects(json!({ "match": m }), want);
    let path = |kind: &str, p: &str, want: &str| m(json!({ "path": { kind: p } }), want);
    path("prefix", "api/", "rules[0].match.path.prefix");
    path("exact", "x", "rules[0].match.path.exact");
    path("regex", "(", "rules[0].match.path.regex");
    let both = json!({ "headers": [{ "name": "x-a", "exact": "1", "regex": "1" }] });
    m(both, "rules[0].match.headers[0]");
    let none = json!({ "headers": [{ "name": "x-a" }, { "name": "x-b" }] });
    m(none, "rules[0].match.headers[0]");
    let bad_re = json!([{ "name": "x-a", "present": true }, { "name": "x-b", "regex": "[" }]);
    let bad_re = json!({ "headers": bad_re });
    m(bad_re, "rules[0].match.headers[1].regex");
    let upper = json!({ "headers": [{ "name": "X-A", "exact": "1" }] });
    m(upper, "rules[0].match.headers[0].name");
    m(json!({ "method": "FETCH" }), "rules[0].match.method");
    let two_kinds = json!({ "match": { "path": { "prefix": "/", "exact": "/" } } });
    serde_err::<Route>(route_with_rule(two_kinds));
    serde_err::<Route>(route_with_rule(json!({ "match": { "paths": {} } })));
}

#[test]
fn route_retry_errors() {
    let r = |retries: Value, want: &str| rule_rejects(json!({ "retries": retries }), want);
    r(json!({ "attempts": 11 }), "rules[0].retries.attempts");
    let on = json!({ "attempts": 1, "retry_on": ["5xx", "sometimes"] });
    r(on, "rules[0].retries.retry_on[1]");
    let t = json!({ "attempts": 1, "per_try_timeout": "0s" });
    r(t, "rules[0].retries.per_try_timeout");
    let b = json!({ "attempts": 1,
                    "backoff": { "base_interval": "250ms", "max_interval": "25ms" } });
    r(b, "rules[0].retries.backoff.max_interval");
    let b = json!({ "attempts": 1, "backoff": { "base_interval": "0ms" } });
    r(b, "rules[0].retries.backoff.base_interval");
}

#[test]
fn route_rewrite_needs_a_non_regex_match() {
    let rw = json!({ "match": { "path": { "regex": "^/a" } }, "rewrite": { "prefix": "/" } });
    rule_rejects(rw, "rules[0].rewrite.prefix");
    let rw = json!({ "match": { "path": { "prefix": "/a" } }, "rewrite": { "prefix": "b" } });
    rule_rejects(rw, "rules[0].rewrite.prefix");
}

#[test]
fn route_header_change_errors() {
    let req = |c: Value, want: &str| rule_rejects(json!({ "request_headers": c }), want);
    let set = |name: &str, value: &str| json!({ "set": { name: value } });
    let remove = |names: Value| json!({ "remove": names });
    let host = remove(json!(["x-a", "host"]));
    req(host, "rules[0].request_headers.remove[1]");
    let authority = remove(json!([":authority"]));
    req(authority, "rules[0].request_headers.remove[0]");
    req(set(":path", "/x"), "rules[0].request_headers.set.:path");
    req(set("x-a", "a\nb"), "rules[0].request_headers.set.x-a");
    let both = json!({ "response_headers": { "set": { "x-a": "1" }, "remove": ["x-a"] } });
    rule_rejects(both, "rules[0].response_headers.remove[0]");
    // The same pseudo-header is fine in a match.
    let m = json!({ "match": { "headers": [{ "name": ":path", "exact": "/x" }] } });
    ok::<Route>(route_with_rule(m), "web");
}

/// Envoy refuses `host` in `request_headers_to_add` (":-prefixed or host headers may not be
/// modified", router/header_parser.cc), so the model must refuse it too or Envoy NACKs.
#[test]
fn route_rejects_setting_the_host_header() {
    let set = json!({ "request_headers": { "set": { "host": "other.example.com" } } });
    rule_rejects(set, "rules[0].request_headers.set.host");
}

// === listeners ===

#[test]
fn listener_design_examples_are_valid() {
    let selector = json!({ "node_id": "ingress-1", "node_cluster": "ingress",
                           "metadata": { "role": "edge" } });
    let ingress = json!({ "address": "0.0.0.0", "port": 10000, "protocol": "http",
                          "routes": ["web", "api"], "selector": selector });
    let http: Listener = ok(ingress, "ingress");
    let want = [
        Reference::to(Kind::Route, "web", "routes[0]"),
        Reference::to(Kind::Route, "api", "routes[1]"),
    ];
    assert_eq!(http.references("ingress"), want);
    let db = json!({ "port": 15432, "protocol": "tcp", "service": "postgres", "selector": {} });
    let tcp: Listener = ok(db, "db");
    assert_eq!(tcp.address, "0.0.0.0", "address defaults to 0.0.0.0");
    let want = [Reference::to(Kind::Service, "postgres", "service")];
    assert_eq!(tcp.references("db"), want);
}

#[test]
fn listener_protocol_decides_routes_or_service() {
    let l = |patch: Value, want: &str| {
        rejects::<Listener>("l", with(json!({ "port": 8080 }), patch), want);
    };
    let http = |routes: Value| json!({ "protocol": "http", "routes": routes });
    l(json!({ "protocol": "http" }), "routes");
    let both = with(http(json!(["web"])), json!({ "service": "web" }));
    l(both, "service");
    l(http(json!(["web", "Api"])), "routes[1]");
    l(http(json!(["web", "api", "web"])), "routes[2]");
    l(json!({ "protocol": "tcp" }), "service");
    l(tcp_listener(json!({ "routes": ["web"] })), "routes");
    l(tcp_listener(json!({ "service": "Db" })), "service");
    serde_err::<Listener>(tcp_listener(json!({ "protocol": "udp" })));
}

#[test]
fn listener_address_and_port() {
    let l = |address: &str, port: u32| tcp_listener(json!({ "address": address, "port": port }));
    ok::<Listener>(l("::1", 1), "l");
    ok::<Listener>(l("127.0.0.1", 65535), "l");
    rejects::<Listener>("l", l("localhost", 80), "address");
    rejects::<Listener>("l", l("0.0.0.0:80", 80), "address");
    rejects::<Listener>("l", l("0.0.0.0", 0), "port");
    rejects::<Listener>("l", l("0.0.0.0", 65536), "port");
}

// === selectors ===

#[test]
fn selector_errors_are_reported_through_the_listener() {
    let with_selector = |selector: Value| tcp_listener(json!({ "selector": selector }));
    let s = |selector: Value, want: &str| rejects::<Listener>("l", with_selector(selector), want);
    s(json!({ "node_id": "" }), "selector.node_id");
    s(json!({ "node_id": "n".repeat(257) }), "selector.node_id");
    let ctl = json!({ "node_cluster": "a\u{7}b" });
    s(ctl, "selector.node_cluster");
    let value = json!({ "metadata": { "role": "a\nb" } });
    s(value, "selector.metadata.role");
    let key = with_selector(json!({ "metadata": { "bad key": "x" } }));
    let e = err::<Listener>(key, "l");
    assert!(e.field.starts_with("selector.metadata"), "{e}");
    serde_err::<Listener>(with_selector(json!({ "node": "x" })));
}

// === envoy resources ===

#[test]
fn envoy_static_cluster_is_valid_under_its_own_name() {
    ok::<EnvoyResource>(raw(CLUSTER_URL, static_cluster()), "extra");
    let cluster = raw(CLUSTER_URL, static_cluster());
    rejects::<EnvoyResource>("other", cluster, "resource.name");
    let mut nameless = static_cluster();
    nameless.as_object_mut().unwrap().remove("name");
    rejects::<EnvoyResource>("extra", raw(CLUSTER_URL, nameless), "resource.name");
    assert!(envoy_type_urls().any(|u| u == CLUSTER_URL));
}

#[test]
fn envoy_cluster_load_assignment_is_named_by_cluster_name() {
    let cla = json!({ "cluster_name": "extra", "endpoints": [] });
    ok::<EnvoyResource>(raw(CLA_URL, cla.clone()), "extra");
    rejects::<EnvoyResource>("web", raw(CLA_URL, cla), "resource.cluster_name");
}

#[test]
fn envoy_resource_is_decoded_strictly() {
    let cluster = |patch: Value| with(static_cluster(), patch);
    let bad = |patch: Value, needle: &str| {
        resource_rejected(CLUSTER_URL, cluster(patch), "extra", needle)
    };
    bad(json!({ "bogus": 1 }), "bogus");
    bad(json!({ "connect_timeout": 5 }), "duration");
    bad(json!({ "type": "SOMETIMES" }), "SOMETIMES");
    resource_rejected(CLUSTER_URL, json!("extra"), "extra", "object");
    let envelope = with(raw(CLUSTER_URL, static_cluster()), json!({ "extra": 1 }));
    serde_err::<EnvoyResource>(envelope);
}

#[test]
fn envoy_resource_rejects_unsupported_type_urls() {
    for url in [
        "type.googleapis.com/envoy.config.core.v3.Address",
        "envoy.config.cluster.v3.Cluster",
        "type.googleapis.com/envoy.config.cluster.v3.Nope",
        "",
    ] {
        rejects::<EnvoyResource>("extra", raw(url, static_cluster()), "type_url");
    }
}

fn hcm_listener(hcm_patch: Value) -> Value {
    let router = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
    let hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "raw",
        "rds": { "route_config_name": "web", "config_source": { "ads": {} } },
        "http_filters": [{ "name": "envoy.filters.http.router", "typed_config": { "@type": router } }]
    });
    let filter = json!({ "name": "envoy.filters.network.http_connection_manager",
                         "typed_config": with(hcm, hcm_patch) });
    json!({
        "name": "raw",
        "address": { "socket_address": { "address": "0.0.0.0", "port_value": 10001 } },
        "filter_chains": [{ "filters": [filter] }]
    })
}

#[test]
fn envoy_listener_resolves_any_typed_config() {
    ok::<EnvoyResource>(raw(LISTENER_URL, hcm_listener(json!({}))), "raw");
    // The Any's payload is checked against its own type, not skipped.
    let typo = hcm_listener(json!({ "stat_prefx": "raw" }));
    resource_rejected(LISTENER_URL, typo, "raw", "stat_prefx");
    let unknown_type = hcm_listener(json!({ "@type": "type.googleapis.com/no.such.Message" }));
    resource_rejected(LISTENER_URL, unknown_type, "raw", "no.such.Message");
}

#[test]
fn envoy_resource_selector_is_validated() {
    let selected = |s: Value| with(raw(CLUSTER_URL, static_cluster()), json!({ "selector": s }));
    let res = selected(json!({ "node_cluster": "" }));
    rejects::<EnvoyResource>("extra", res, "selector.node_cluster");
    let r: EnvoyResource = ok(selected(json!({ "node_cluster": "ingress" })), "extra");
    assert!(r.references("extra").is_empty());
}
