//! SDS over ADS: the secrets TLS contexts name are subscribed to by name; a cluster or
//! listener waits for them (warming, as Envoy); a bad secret is NACKed by name without its
//! key; a new version of a secret is published without touching the listeners (rotation).

use xds_core::type_url::{CLUSTER, LISTENER, SECRET};

use super::*;

pub(crate) const API: &str = "spiffe://mesh.local/service/api";
const WEB: &str = "spiffe://mesh.local/service/web";
const BUNDLE: &str = "mesh-trust-bundle";

fn sds(name: &str) -> Value {
    json!({ "name": name, "sds_config": { "ads": {}, "resource_api_version": "V3" } })
}

/// `eds_cluster` with TLS to `web`, presenting `api`'s certificate.
pub(crate) fn tls_cluster(name: &str) -> Any {
    let mut json = xds_core::json::any_to_json(&eds_cluster(name, "")).unwrap();
    json["transport_socket"] = json!({ "name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": "web",
        "common_tls_context": {
            "tls_certificate_sds_secret_configs": [sds(API)],
            "combined_validation_context": {
                "default_validation_context": { "match_typed_subject_alt_names": [
                    { "san_type": "URI", "matcher": { "exact": WEB } }] },
                "validation_context_sds_secret_config": sds(BUNDLE) } } } });
    any(CLUSTER, json)
}

/// `listener` with strict mTLS on its one chain, as `web`'s sidecar.
fn tls_listener(name: &str) -> Any {
    let mut json = xds_core::json::any_to_json(&listener(name, 15006, "r")).unwrap();
    json["filter_chains"][0]["transport_socket"] = json!({ "name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": true,
        "common_tls_context": {
            "tls_certificate_sds_secret_configs": [sds(WEB)],
            "validation_context_sds_secret_config": sds(BUNDLE) } } });
    any(LISTENER, json)
}

pub(crate) fn pem(uri: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().unwrap())];
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

pub(crate) fn certificate(name: &str, key: &str) -> Any {
    let (chain, _) = pem(name);
    any(
        SECRET,
        json!({ "name": name, "tls_certificate": {
            "certificate_chain": { "inline_string": chain },
            "private_key": { "inline_string": key } } }),
    )
}

pub(crate) fn bundle() -> Any {
    let (root, _) = pem("spiffe://mesh.local");
    any(
        SECRET,
        json!({ "name": BUNDLE, "validation_context": { "trusted_ca": { "inline_string": root } } }),
    )
}

fn connect_with_sds(h: &mut Harness) {
    let mut types = TypeUrl::ADS_ORDER.to_vec();
    types.push(TypeUrl::Secret);
    h.engine.on_connected(&types);
}

#[test]
fn a_tls_cluster_subscribes_to_its_secrets_and_warms_until_they_arrive() {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, None));
    connect_with_sds(&mut h);
    let (_, out) = h.sotw(
        CLUSTER,
        "c1",
        vec![tls_cluster("web"), assignment("web", 1)],
    );
    assert!(
        out.contains(&format!("SDS v= n= [{BUNDLE},{API}]")),
        "subscribes to the bundle and its certificate: {out:?}"
    );
    assert!(h.active_clusters().is_empty(), "warming");
    let (_, key) = pem(API);
    let (_, out) = h.sotw(SECRET, "s1", vec![certificate(API, &key)]);
    assert!(
        h.active_clusters().is_empty(),
        "still waits for the bundle: {out:?}"
    );
    let (effects, out) = h.sotw(SECRET, "s2", vec![bundle()]);
    assert!(out[0].starts_with("SDS v=s2"), "ACK: {out:?}");
    assert!(effects.publish);
    // The assignment is not there yet (EDS follows CDS); the cluster waits for it too.
    h.sotw(type_url::ENDPOINT, "e1", vec![assignment("web", 1)]);
    assert_eq!(h.active_clusters(), ["web"]);
    assert_eq!(h.engine.store().secrets.len(), 2);
}

#[test]
fn a_bad_secret_is_nacked_by_name_without_its_key() {
    let mut h = Harness::new(&bootstrap(Protocol::Sotw, true, None));
    connect_with_sds(&mut h);
    h.sotw(CLUSTER, "c1", vec![tls_cluster("web")]);
    let (_, key) = pem(API);
    let secret_line = key.lines().nth(1).unwrap().to_string();
    let bad = key.replace(&secret_line, &format!("{secret_line}!"));
    let (_, out) = h.sotw(SECRET, "s1", vec![certificate(API, &bad)]);
    let nack = out.iter().find(|o| o.contains("NACK")).expect("a NACK");
    assert!(
        nack.contains(&format!("secret '{API}': tls_certificate.private_key:")),
        "{nack}"
    );
    assert!(
        !nack.contains(&secret_line[..20]),
        "the key never appears: {nack}"
    );
    assert!(h.engine.store().secrets.is_empty());
}

#[test]
fn a_tls_listener_warms_for_its_secrets_and_rotation_does_not_rebuild_it() {
    let mut h = Harness::new(&bootstrap(Protocol::Delta, true, None));
    connect_with_sds(&mut h);
    h.delta(CLUSTER, vec![], &[]);
    let (_, out) = h.delta(LISTENER, vec![("in", "1", tls_listener("in"))], &[]);
    assert!(
        out.iter()
            .any(|o| o.starts_with(&format!("SDS +[{BUNDLE},{WEB}]"))),
        "{out:?}"
    );
    h.delta(type_url::ROUTE, vec![("r", "1", route("r", "web"))], &[]);
    assert!(h.active_listeners().is_empty(), "waits for its secrets");
    let (_, key) = pem(WEB);
    let (effects, _) = h.delta(
        SECRET,
        vec![(WEB, "1", certificate(WEB, &key)), (BUNDLE, "1", bundle())],
        &[],
    );
    assert_eq!(names(&effects.listeners), Some(vec!["in".to_string()]));
    assert!(h.engine.ready());

    // A renewed certificate: published for the next handshakes; the listener stays.
    let (_, key) = pem(WEB);
    let (effects, out) = h.delta(SECRET, vec![(WEB, "2", certificate(WEB, &key))], &[]);
    assert!(effects.publish, "{out:?}");
    assert_eq!(effects.listeners, None, "the listener is not rebuilt");
    assert_eq!(h.active_listeners(), ["in"]);
}

#[test]
fn a_removed_secret_is_kept_as_removed_so_handshakes_needing_it_fail() {
    let mut h = Harness::new(&bootstrap(Protocol::Delta, true, None));
    connect_with_sds(&mut h);
    h.delta(CLUSTER, vec![("web", "1", tls_cluster("web"))], &[]);
    let (_, key) = pem(API);
    h.delta(
        SECRET,
        vec![(API, "1", certificate(API, &key)), (BUNDLE, "1", bundle())],
        &[],
    );
    let (effects, out) = h.delta(SECRET, vec![], &[BUNDLE]);
    assert!(effects.publish, "{out:?}");
    let secrets = &h.engine.store().secrets;
    assert_eq!(
        secrets.get(BUNDLE).map(|e| (*e.config).clone()),
        Some(crate::config::SecretConfig::Removed)
    );
    assert!(secrets.contains_key(API));
}
