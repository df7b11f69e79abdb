//! Unit tests of the xDS client's state machine, one protocol rule per test, through a
//! [`Harness`] that plays the server: it numbers responses, and checks on every step that
//! each answer echoes the nonce of the response it answers, carries the right type, and that
//! a NACK keeps the previously accepted version.
//!
//! Fixtures are written as proto3 JSON (decoded with Envoy's descriptors: tests may pay for the
//! pool, the proxy does not).

mod delta;
pub(crate) mod secrets;
mod sotw;
mod warming;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use envoy_types::pb::{
    envoy::service::discovery::v3::{DeltaDiscoveryResponse, DiscoveryResponse, Resource},
    google::protobuf::Any,
};
use prost::Message;
use serde::de::DeserializeSeed;
use serde_json::{Value, json};
use xds_core::{TypeUrl, type_url};

use super::{
    Outgoing, Update,
    engine::{Effects, Engine},
};
use crate::bootstrap::{Bootstrap, Channel, Dynamic, Node, Protocol, Source, Target};

// === fixtures ===

/// A resource from its proto3 JSON.
pub(crate) fn any(type_url: &str, json: Value) -> Any {
    let descriptor = xds_core::descriptors::message(type_url).expect("known type");
    let message = descriptor.deserialize(json).expect("valid proto3 JSON");
    Any {
        type_url: type_url.to_string(),
        value: message.encode_to_vec(),
    }
}

/// An EDS cluster fetched over ADS; `service` names its assignment (empty: its own name).
pub(crate) fn eds_cluster(name: &str, service: &str) -> Any {
    let mut eds = json!({ "eds_config": { "ads": {}, "resource_api_version": "V3" } });
    if !service.is_empty() {
        eds["service_name"] = service.into();
    }
    any(
        type_url::CLUSTER,
        json!({ "name": name, "type": "EDS", "connect_timeout": "1s", "eds_cluster_config": eds }),
    )
}

/// A cluster the proxy refuses (Envoy's `CLUSTER_PROVIDED` balancer).
pub(crate) fn bad_cluster(name: &str) -> Any {
    any(
        type_url::CLUSTER,
        json!({ "name": name, "type": "EDS", "lb_policy": "CLUSTER_PROVIDED",
                "eds_cluster_config": { "eds_config": { "ads": {} } } }),
    )
}

pub(crate) fn assignment(name: &str, port: u16) -> Any {
    let endpoint = json!({ "endpoint": { "address": { "socket_address": {
        "address": "127.0.0.1", "port_value": port } } } });
    any(
        type_url::ENDPOINT,
        json!({ "cluster_name": name, "endpoints": [{ "lb_endpoints": [endpoint] }] }),
    )
}

/// An HTTP listener on `port` whose routes come over RDS as `route`.
pub(crate) fn listener(name: &str, port: u16, route: &str) -> Any {
    let hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        "rds": { "config_source": { "ads": {}, "resource_api_version": "V3" }, "route_config_name": route },
        "http_filters": [{ "name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
    });
    any(
        type_url::LISTENER,
        json!({ "name": name,
                "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } },
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm }] }] }),
    )
}

pub(crate) fn route(name: &str, cluster: &str) -> Any {
    any(
        type_url::ROUTE,
        json!({ "name": name, "virtual_hosts": [{ "name": "all", "domains": ["*"],
            "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": cluster } }] }] }),
    )
}

/// A bootstrap with CDS and LDS over one channel (ADS or per-type) and no static resources.
fn bootstrap(protocol: Protocol, aggregated: bool, timeout: Option<Duration>) -> Bootstrap {
    let channel = Channel {
        aggregated,
        protocol,
        cluster: "xds_cluster".into(),
        target: Target {
            host: "127.0.0.1".into(),
            port: 18000,
            connect_timeout: Duration::from_secs(1),
            tls: None,
        },
        node_on_first_message_only: true,
        initial_metadata: vec![],
    };
    let source = Source {
        channel,
        initial_fetch_timeout: timeout,
    };
    Bootstrap {
        node: Node {
            id: "n1".into(),
            cluster: "c1".into(),
            ..Node::default()
        },
        admin: None,
        dynamic: Some(Dynamic {
            cds: Some(source.clone()),
            lds: Some(source),
        }),
        clusters: Vec::new(),
        listeners: Vec::new(),
        metrics_sink: None,
        grpc_targets: Default::default(),
        document: Value::Null,
    }
}

// === the harness ===

/// A request in a comparable form: `"CDS v=1 n=2 [a,b]"`, `"EDS +[a] -[b] n=3"`, with ` NACK`
/// and the message when rejecting.
fn show(o: &Outgoing) -> String {
    let short = |t: &str| TypeUrl::from(t).short_name().to_string();
    let nack = |e: &Option<envoy_types::pb::google::rpc::Status>| match e {
        Some(s) => format!(" NACK {}", s.message),
        None => String::new(),
    };
    match o {
        Outgoing::Sotw(r) => format!(
            "{} v={} n={} [{}]{}",
            short(&r.type_url),
            r.version_info,
            r.response_nonce,
            r.resource_names.join(","),
            nack(&r.error_detail)
        ),
        Outgoing::Delta(r) => {
            let mut initial: Vec<String> = r
                .initial_resource_versions
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            initial.sort();
            format!(
                "{} +[{}] -[{}] n={}{}{}",
                short(&r.type_url),
                r.resource_names_subscribe.join(","),
                r.resource_names_unsubscribe.join(","),
                r.response_nonce,
                if initial.is_empty() {
                    String::new()
                } else {
                    format!(" initial[{}]", initial.join(","))
                },
                nack(&r.error_detail)
            )
        }
    }
}

struct Harness {
    engine: Engine,
    now: Instant,
    nonce: u64,
}

impl Harness {
    fn new(bootstrap: &Bootstrap) -> Harness {
        let now = Instant::now();
        let mut engine = Engine::new(bootstrap, now);
        let effects = engine.start(now);
        assert!(
            effects.publish && effects.listeners.is_some(),
            "the first step publishes"
        );
        assert!(
            engine.complete(Vec::new(), now).is_empty(),
            "nothing to say before a stream"
        );
        Harness {
            engine,
            now,
            nonce: 0,
        }
    }

    /// The ADS stream (every type) came up.
    fn connect(&mut self) -> Vec<String> {
        let types = TypeUrl::ADS_ORDER.to_vec();
        self.engine.on_connected(&types).iter().map(show).collect()
    }

    /// A SotW response; returns the effects and the requests that answer it.
    #[track_caller]
    fn sotw(&mut self, t: &str, version: &str, resources: Vec<Any>) -> (Effects, Vec<String>) {
        self.nonce += 1;
        let response = DiscoveryResponse {
            version_info: version.into(),
            resources,
            type_url: t.into(),
            nonce: self.nonce.to_string(),
            ..Default::default()
        };
        self.step(Update::from_sotw(response), Vec::new())
    }

    /// A Delta response: `(name, version, resource)` updates and removed names.
    #[track_caller]
    fn delta(
        &mut self,
        t: &str,
        updates: Vec<(&str, &str, Any)>,
        removed: &[&str],
    ) -> (Effects, Vec<String>) {
        self.nonce += 1;
        let response = DeltaDiscoveryResponse {
            resources: updates
                .into_iter()
                .map(|(name, version, resource)| Resource {
                    name: name.into(),
                    version: version.into(),
                    resource: Some(resource),
                    ..Default::default()
                })
                .collect(),
            removed_resources: removed.iter().map(|n| n.to_string()).collect(),
            type_url: t.into(),
            nonce: self.nonce.to_string(),
            ..Default::default()
        };
        self.step(Update::from_delta(response), Vec::new())
    }

    /// One response through both halves, checking the answer echoes its nonce and type.
    #[track_caller]
    fn step(
        &mut self,
        update: Update,
        refused: Vec<crate::config::Rejection>,
    ) -> (Effects, Vec<String>) {
        let type_url = update.type_url.clone();
        let nonce = update.nonce.clone();
        let effects = self.engine.on_response(update, self.now);
        let out = self.engine.complete(refused, self.now);
        let answers: Vec<&Outgoing> = out
            .iter()
            .filter(|o| o.is_answer() && o.type_url() == type_url)
            .collect();
        assert_eq!(
            answers.len(),
            1,
            "exactly one ACK or NACK per response: {out:?}"
        );
        let echoed = match answers[0] {
            Outgoing::Sotw(r) => &r.response_nonce,
            Outgoing::Delta(r) => &r.response_nonce,
        };
        assert_eq!(*echoed, nonce, "the answer echoes the response's nonce");
        (effects, out.iter().map(show).collect())
    }

    /// Time passes by `d`; returns the effects and the requests that follow.
    fn tick(&mut self, d: Duration) -> (Effects, Vec<String>) {
        self.now += d;
        let effects = self.engine.on_tick(self.now);
        let out = self.engine.complete(Vec::new(), self.now);
        (effects, out.iter().map(show).collect())
    }

    fn active_clusters(&self) -> Vec<String> {
        let store = self.engine.store();
        store
            .active_clusters()
            .map(|(c, _)| c.name.clone())
            .collect()
    }

    fn active_listeners(&self) -> Vec<String> {
        let listeners = self.engine.store().active_listeners();
        listeners.iter().map(|l| l.name.clone()).collect()
    }
}

fn names(listeners: &Option<Vec<Arc<crate::config::ListenerConfig>>>) -> Option<Vec<String>> {
    listeners
        .as_ref()
        .map(|ls| ls.iter().map(|l| l.name.clone()).collect())
}
