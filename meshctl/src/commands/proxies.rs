//! `meshctl proxy-status` and `meshctl proxy-config`: what the server sent each connected
//! proxy, whether the proxy runs it (`SYNCED`, `STALE`, `NACKED`, as the server reports), and
//! the resources computed for one proxy.

use chrono::Utc;
use serde_json::{Map, Value};
use xds_core::TypeUrl;

use crate::{
    cli::{Format, ProxyConfigArgs, ProxyStatusArgs, StatusFormat},
    client::{Client, NO_QUERY},
    error::Error,
    output::{self, age, cell, out},
};

/// The columns of the fleet table, in ADS order.
const MAIN_TYPES: [TypeUrl; 4] = TypeUrl::ADS_ORDER;

pub async fn status(client: &Client, args: ProxyStatusArgs) -> Result<(), Error> {
    let path = match &args.node {
        Some(node) => format!("/api/v1/proxies/{}", segment(node)?),
        None => "/api/v1/proxies".to_string(),
    };
    let answer = client.get(&path, &NO_QUERY).await?;
    if args.output == StatusFormat::Json {
        out(&output::json(&answer));
        return Ok(());
    }
    match &args.node {
        Some(_) => out(&one_proxy(&answer)),
        None => {
            let items = answer["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                eprintln!("no proxies are connected to {}", client.server());
            } else {
                out(&fleet(&items));
            }
        }
    }
    Ok(())
}

/// One row per proxy: its state per type (`-` for a type it never asked for), then every
/// NACK and held-back resource with its message.
fn fleet(items: &[Value]) -> String {
    let now = Utc::now();
    let mut headers = vec!["NODE", "CLUSTER", "VARIANT"];
    headers.extend(MAIN_TYPES.iter().map(TypeUrl::short_name));
    headers.extend(["OTHER", "CONNECTED"]);
    let mut rows = Vec::new();
    let mut notes = String::new();
    for item in items {
        let node = cell(&item["node_id"]);
        let types = item["types"].as_object().cloned().unwrap_or_default();
        let mut row = vec![node.clone(), cell(&item["cluster"]), cell(&item["variant"])];
        for t in &MAIN_TYPES {
            row.push(
                types
                    .get(t.as_str())
                    .map_or("-".into(), |s| cell(&s["status"])),
            );
        }
        let others: Vec<String> = types
            .iter()
            .filter(|(url, _)| !MAIN_TYPES.iter().any(|t| t.as_str() == url.as_str()))
            .map(|(url, s)| format!("{}={}", short(url), cell(&s["status"])))
            .collect();
        row.push(output::list(&others, 2));
        row.push(age(item["connected_since"].as_str(), now));
        rows.push(row);
        notes.push_str(&problems(&node, &types, &item["held_back"]));
    }
    let mut text = output::table(&headers, &rows);
    if !notes.is_empty() {
        text.push('\n');
        text.push_str(&notes);
    }
    text
}

/// One proxy in detail: who it is, then per type the versions sent and acknowledged.
fn one_proxy(item: &Value) -> String {
    let node = cell(&item["node_id"]);
    let mut text = format!(
        "node:      {node}\ncluster:   {}\nvariant:   {} over {} ({} stream(s))\nconnected: {} ({} ago)\n\n",
        cell(&item["cluster"]),
        cell(&item["variant"]),
        cell(&item["service"]),
        cell(&item["streams"]),
        cell(&item["connected_since"]),
        age(item["connected_since"].as_str(), Utc::now()),
    );
    let types = item["types"].as_object().cloned().unwrap_or_default();
    let mut urls: Vec<TypeUrl> = types.keys().map(|u| TypeUrl::from(u.as_str())).collect();
    urls.sort_by_key(|u| (u.ads_rank(), u.as_str().to_string()));
    let rows: Vec<Vec<String>> = urls
        .iter()
        .map(|url| {
            let s = &types[url.as_str()];
            vec![
                url.short_name().to_string(),
                cell(&s["status"]),
                cell(&s["version_sent"]),
                cell(&s["version_acked"]),
                cell(&s["resources_sent"]),
            ]
        })
        .collect();
    text.push_str(&output::table(
        &["TYPE", "STATUS", "SENT", "ACKED", "RESOURCES"],
        &rows,
    ));
    let notes = problems(&node, &types, &item["held_back"]);
    if !notes.is_empty() {
        text.push('\n');
        text.push_str(&notes);
    }
    text
}

/// `node CDS NACKED: <message>` for each rejected type, and each held-back resource.
fn problems(node: &str, types: &Map<String, Value>, held_back: &Value) -> String {
    let mut text = String::new();
    for (url, s) in types {
        if let Some(detail) = s["error_detail"].as_str() {
            text.push_str(&format!(
                "{node} {} {}: {detail}\n",
                short(url),
                cell(&s["status"])
            ));
        }
    }
    for h in held_back.as_array().into_iter().flatten() {
        text.push_str(&format!(
            "{node} holds back {} {} version {} (rejected by {}; serving {}): {}\n",
            short(h["type_url"].as_str().unwrap_or_default()),
            cell(&h["name"]),
            cell(&h["rejected_version"]),
            cell(&h["rejected_by"]),
            h["serving_version"].as_str().unwrap_or("nothing"),
            cell(&h["message"]),
        ));
    }
    text
}

fn short(url: &str) -> String {
    TypeUrl::from(url).short_name().to_string()
}

pub async fn config(client: &Client, args: ProxyConfigArgs) -> Result<(), Error> {
    let path = format!("/api/v1/proxies/{}/config", segment(&args.node)?);
    let mut answer = client.get(&path, &NO_QUERY).await?;
    let warnings = answer
        .as_object_mut()
        .and_then(|o| o.remove("warnings"))
        .unwrap_or(Value::Array(Vec::new()));
    let wanted = args.resource_type.map(|t| t.type_url());
    let mut resources: Map<String, Value> = answer.as_object().cloned().unwrap_or_default();
    resources.retain(|url, _| wanted.as_ref().is_none_or(|w| w.as_str() == url));
    for w in warnings.as_array().into_iter().flatten() {
        eprintln!("warning: {}", cell(w));
    }
    match args.output {
        Format::Json => out(&output::json(&resources)),
        Format::Yaml => out(&serde_yaml_ng::to_string(&resources).unwrap_or_default()),
        Format::Table => {
            let mut urls: Vec<TypeUrl> = resources
                .keys()
                .map(|u| TypeUrl::from(u.as_str()))
                .collect();
            urls.sort_by_key(|u| (u.ads_rank(), u.as_str().to_string()));
            let mut rows = Vec::new();
            for url in &urls {
                let by_name = resources[url.as_str()]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                for (name, r) in by_name {
                    rows.push(vec![
                        url.short_name().to_string(),
                        name,
                        cell(&r["version"]),
                    ]);
                }
            }
            if rows.is_empty() {
                eprintln!("proxy '{}' is sent no resources of that type", args.node);
            } else {
                out(&output::table(&["TYPE", "NAME", "VERSION"], &rows));
            }
        }
    }
    Ok(())
}

/// A node id as one URL path segment: ids may hold any character, so those that would change
/// the path are percent-encoded.
fn segment(node: &str) -> Result<String, Error> {
    if node.is_empty() {
        return Err(Error::Input("the node id is empty".into()));
    }
    let mut out = String::new();
    for byte in node.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use xds_core::type_url::{CLUSTER, ENDPOINT, LISTENER};

    use super::*;

    #[test]
    fn the_fleet_table_shows_each_type_and_every_nack() {
        let items = [json!({
            "node_id": "ingress-1", "cluster": "ingress", "variant": "sotw",
            "connected_since": "2026-01-01T00:00:00Z",
            "types": {
                CLUSTER: { "status": "NACKED", "error_detail": "bad cluster x", "version_sent": "b" },
                LISTENER: { "status": "SYNCED" },
                "type.googleapis.com/envoy.service.runtime.v3.Runtime": { "status": "STALE" },
            },
        })];
        let text = fleet(&items);
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            [
                "NODE",
                "CLUSTER",
                "VARIANT",
                "CDS",
                "EDS",
                "LDS",
                "RDS",
                "OTHER",
                "CONNECTED"
            ]
        );
        let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            &row[..8],
            [
                "ingress-1",
                "ingress",
                "sotw",
                "NACKED",
                "-",
                "SYNCED",
                "-",
                "envoy.service.runtime.v3.Runtime=STALE"
            ]
        );
        assert!(
            text.contains("ingress-1 CDS NACKED: bad cluster x"),
            "{text}"
        );
    }

    #[test]
    fn one_proxy_lists_types_in_ads_order_with_versions() {
        let item = json!({ "node_id": "n", "types": {
            LISTENER: { "status": "SYNCED", "version_sent": "l1", "version_acked": "l1", "resources_sent": 1 },
            ENDPOINT: { "status": "STALE", "version_sent": "e2", "version_acked": "e1", "resources_sent": 3 },
        }, "held_back": [{ "type_url": CLUSTER, "name": "extra", "rejected_version": "v2",
                           "serving_version": "v1", "rejected_by": "m", "message": "no" }] });
        let text = one_proxy(&item);
        let eds = text.find("EDS").unwrap();
        assert!(eds < text.find("LDS").unwrap(), "{text}");
        assert!(text.contains("STALE    e2     e1"), "{text}");
        assert!(
            text.contains("n holds back CDS extra version v2 (rejected by m; serving v1): no"),
            "{text}"
        );
    }

    #[test]
    fn node_ids_are_one_path_segment() {
        assert_eq!(segment("ingress-1").unwrap(), "ingress-1");
        assert_eq!(segment("a/b c").unwrap(), "a%2Fb%20c");
        assert!(segment("").is_err());
    }
}
