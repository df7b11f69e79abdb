//! The open taps as translation sees them: published with every mesh snapshot, so a tap
//! opening or closing wakes the streams, and each proxy's selection gains or loses access logs
//! on exactly the listeners its taps concern. Proxies no tap selects keep their selection, and
//! with it their group, their resources and their versions.

use std::collections::{BTreeMap, BTreeSet};

use super::{Filter, credential::TapKey};
use crate::{
    model::Mesh,
    translate::{AccessLog, NodeInfo},
};

/// The filters of the taps open at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    filters: Vec<Filter>,
    /// With proxy tokens required: the key each tapped proxy's access-log credential is made
    /// with (see `credential.rs`).
    key: Option<TapKey>,
}

impl Plan {
    pub fn new(filters: Vec<Filter>) -> Self {
        Self { filters, key: None }
    }

    /// The plan whose access logs carry credentials made with `key`.
    pub fn with_key(filters: Vec<Filter>, key: Option<TapKey>) -> Self {
        Self { filters, key }
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The open taps' filters.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// The access logs of `node`'s HTTP `listeners`, by listener: each with the matches of
    /// the taps that select the node and concern the listener. Empty when no tap does.
    pub fn access_logs(
        &self,
        mesh: &Mesh,
        node: &NodeInfo,
        listeners: &[String],
    ) -> BTreeMap<String, AccessLog> {
        let mut logs = BTreeMap::new();
        if self.filters.is_empty() {
            return logs;
        }
        let taps: Vec<&Filter> = self.filters.iter().filter(|f| f.selects(node)).collect();
        for name in listeners {
            let matches: BTreeSet<_> = taps
                .iter()
                .filter(|f| f.concerns(mesh, name))
                .map(|f| f.log_match())
                .collect();
            if !matches.is_empty() {
                let mut log = AccessLog::new(xds_cluster(node), matches);
                log.credential = self
                    .key
                    .as_ref()
                    .map(|k| k.credential(&node.id, &node.cluster));
                logs.insert(name.clone(), log);
            }
        }
        logs
    }
}

/// The bootstrap's xDS cluster, where the log stream goes: the node metadata field
/// `xds_cluster` when set, else `xds_cluster` (as `/api/v1/bootstrap` names it).
fn xds_cluster(node: &NodeInfo) -> String {
    node.metadata
        .get("xds_cluster")
        .filter(|n| !n.is_empty())
        .cloned()
        .unwrap_or_else(|| "xds_cluster".to_string())
}

#[cfg(test)]
mod tests {
    //! Which listeners of which proxies log, and with what.

    use serde_json::json;

    use super::*;
    use crate::translate::{LogMatch, StatusMatch};

    /// Listeners `edge` (routes `web`, `api`) and `admin` (route `ops`), and `db` (TCP);
    /// route `web` → service `web`, `api` → `api`, `ops` → `ops`.
    fn mesh() -> Mesh {
        fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
            serde_json::from_value(v).unwrap()
        }
        let route = |s: &str| {
            parse(
                json!({ "hosts": [format!("{s}.local")], "rules": [{ "destinations": [{ "service": s }] }] }),
            )
        };
        let http = |port: u16, routes: serde_json::Value| {
            parse(
                json!({ "address": "127.0.0.1", "port": port, "protocol": "http", "routes": routes }),
            )
        };
        Mesh {
            routes: [("web", route("web")), ("api", route("api")), ("ops", route("ops"))]
                .into_iter()
                .map(|(n, r)| (n.to_string(), r))
                .collect(),
            listeners: [
                ("edge".to_string(), http(10000, json!(["web", "api"]))),
                ("admin".to_string(), http(10001, json!(["ops"]))),
                (
                    "db".to_string(),
                    parse(json!({ "address": "127.0.0.1", "port": 5432, "protocol": "tcp", "service": "web" })),
                ),
            ]
            .into(),
            ..Mesh::default()
        }
    }

    fn node(id: &str) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            ..NodeInfo::default()
        }
    }

    fn all() -> Vec<String> {
        ["admin", "db", "edge"].map(String::from).to_vec()
    }

    fn filter(query: &[(&str, &str)]) -> Filter {
        Filter::parse(
            query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn logged(plan: &Plan, id: &str) -> Vec<String> {
        plan.access_logs(&mesh(), &node(id), &all())
            .into_keys()
            .collect()
    }

    #[test]
    fn no_tap_no_access_log() {
        assert!(
            Plan::default()
                .access_logs(&mesh(), &node("a"), &all())
                .is_empty()
        );
    }

    #[test]
    fn an_open_tap_logs_every_http_listener_but_no_tcp_one() {
        let plan = Plan::new(vec![filter(&[])]);
        assert_eq!(logged(&plan, "a"), ["admin", "edge"]);
    }

    #[test]
    fn a_node_id_selects_that_proxy_only() {
        let plan = Plan::new(vec![filter(&[("node_id", "b")])]);
        assert!(logged(&plan, "a").is_empty());
        assert_eq!(logged(&plan, "b"), ["admin", "edge"]);
    }

    #[test]
    fn a_service_or_route_concerns_the_listeners_that_reach_it() {
        let plan = Plan::new(vec![filter(&[("service", "ops")])]);
        assert_eq!(logged(&plan, "a"), ["admin"]);
        let plan = Plan::new(vec![filter(&[("route", "api")])]);
        assert_eq!(logged(&plan, "a"), ["edge"]);
        let plan = Plan::new(vec![filter(&[("route", "api"), ("service", "web")])]);
        assert!(logged(&plan, "a").is_empty(), "route api never reaches web");
        let plan = Plan::new(vec![filter(&[("service", "nowhere")])]);
        assert!(logged(&plan, "a").is_empty());
    }

    #[test]
    fn taps_on_one_listener_combine_and_carry_the_xds_cluster() {
        let plan = Plan::new(vec![
            filter(&[("path_prefix", "/api")]),
            filter(&[("status", "5xx"), ("service", "web")]),
        ]);
        let mut n = node("a");
        n.metadata.insert("xds_cluster".into(), "my_xds".into());
        let logs = plan.access_logs(&mesh(), &n, &all());
        assert_eq!(logs["admin"].matches.len(), 1);
        let edge = &logs["edge"];
        assert_eq!(edge.xds_cluster, "my_xds");
        assert_eq!(
            edge.matches,
            [
                LogMatch {
                    path_prefix: None,
                    status: Some(StatusMatch::Class(5))
                },
                LogMatch {
                    path_prefix: Some("/api".into()),
                    status: None
                },
            ]
        );
        assert_eq!(logs["admin"].xds_cluster, "my_xds");
        let plain = plan.access_logs(&mesh(), &node("b"), &all());
        assert_eq!(plain["edge"].xds_cluster, "xds_cluster");
    }
}
