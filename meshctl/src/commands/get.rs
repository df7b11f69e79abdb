//! `meshctl get KIND [NAME]`: one object or all of a kind (every page), as a table with a few
//! key fields per kind and what the connected proxies did with it (the server's read-only
//! `status`: each rejection is listed under the table with the proxy's message), or as
//! YAML/JSON that `apply -f` reads back (`status` included; apply ignores it).

use chrono::Utc;
use serde_json::Value;

use super::parse_selector;
use crate::{
    cli::{Format, GetArgs},
    client::{Client, NO_QUERY},
    error::Error,
    kind::Kind,
    manifest,
    output::{self, age, cell, labels, list, out},
};

pub async fn run(client: &Client, args: GetArgs) -> Result<(), Error> {
    if let Some(s) = &args.selector {
        parse_selector(s)?;
    }
    if let Some(name) = &args.name {
        manifest::check_name(name).map_err(|m| Error::Input(format!("{}: {m}", args.kind)))?;
    }
    let objects = match &args.name {
        Some(name) => vec![client.get(&args.kind.path(name), &NO_QUERY).await?],
        None => list_all(client, args.kind, args.selector.as_deref()).await?,
    };
    match args.output {
        Format::Table if objects.is_empty() => {
            eprintln!("no {} found at {}", args.kind.collection(), client.server());
        }
        Format::Table => {
            out(&table(args.kind, &objects));
            out(&rejections(args.kind, &objects));
        }
        Format::Yaml => {
            let docs: Vec<_> = objects
                .iter()
                .map(|o| output::with_kind(args.kind, o))
                .collect();
            out(&output::yaml_documents(&docs));
        }
        Format::Json => {
            let with_kind = |o: &Value| {
                let mut o = o.clone();
                if let Some(map) = o.as_object_mut() {
                    map.insert("kind".into(), args.kind.as_str().into());
                }
                o
            };
            match (&args.name, objects.as_slice()) {
                (Some(_), [one]) => out(&output::json(&with_kind(one))),
                _ => out(&output::json(
                    &objects.iter().map(with_kind).collect::<Vec<_>>(),
                )),
            }
        }
    }
    Ok(())
}

/// Every object of `kind`. Endpoints have no list of their own: they are read per service
/// (the services `selector` picks).
async fn list_all(
    client: &Client,
    kind: Kind,
    selector: Option<&str>,
) -> Result<Vec<Value>, Error> {
    if kind != Kind::Endpoints {
        return Ok(client.list(kind.collection(), selector).await?);
    }
    let mut out = Vec::new();
    for service in client.list(Kind::Service.collection(), selector).await? {
        if let Some(name) = service["name"].as_str() {
            // A service deleted between the list and this read is simply not shown.
            out.extend(client.get_opt(&Kind::Endpoints.path(name)).await?);
        }
    }
    Ok(out)
}

/// A kind's own column headers, and how to fill them from an object.
type Columns = (&'static [&'static str], fn(&Value) -> Vec<String>);

/// NAME, VERSION, the kind's key fields, then from the object's `status`: PROXIES (connected
/// proxies that fetch something it made), ACCEPTED/RECEIVED (how many acknowledged / were sent
/// its current version), REJECTED (rejections of it; `-` from a server without `status`), AGE.
fn table(kind: Kind, objects: &[Value]) -> String {
    let now = Utc::now();
    let (headers, fields): Columns = match kind {
        Kind::Service => (
            &["PROTOCOL", "LB_POLICY", "CONNECT_TIMEOUT", "LABELS"],
            |o| {
                vec![
                    cell(&o["protocol"]),
                    cell(&o["lb_policy"]),
                    cell(&o["connect_timeout"]),
                    labels(&o["labels"]),
                ]
            },
        ),
        Kind::Endpoints => (&["ENDPOINTS", "ADDRESSES"], |o| {
            let addresses: Vec<String> = o["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| format!("{}:{}", cell(&e["address"]), cell(&e["port"])))
                .collect();
            vec![addresses.len().to_string(), list(&addresses, 3)]
        }),
        Kind::Route => (&["HOSTS", "RULES", "SERVICES", "LABELS"], |o| {
            let mut services: Vec<String> = o["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["destinations"].as_array().cloned().unwrap_or_default())
                .map(|d| cell(&d["service"]))
                .collect();
            services.sort();
            services.dedup();
            let rules = o["rules"].as_array().map_or(0, Vec::len);
            vec![
                list(&strings_of(&o["hosts"]), 3),
                rules.to_string(),
                list(&services, 3),
                labels(&o["labels"]),
            ]
        }),
        Kind::Listener => (&["ADDRESS", "PROTOCOL", "SERVES", "LABELS"], |o| {
            let serves = match o["service"].as_str() {
                Some(service) => format!("service/{service}"),
                None => list(
                    &strings_of(&o["routes"])
                        .iter()
                        .map(|r| format!("route/{r}"))
                        .collect::<Vec<_>>(),
                    3,
                ),
            };
            vec![
                format!("{}:{}", cell(&o["address"]), cell(&o["port"])),
                cell(&o["protocol"]),
                serves,
                labels(&o["labels"]),
            ]
        }),
        Kind::EnvoyResource => (&["TYPE", "LABELS"], |o| {
            let type_url = cell(&o["type_url"]);
            let short = type_url.rsplit('.').next().unwrap_or_default().to_string();
            vec![short, labels(&o["labels"])]
        }),
        Kind::TrafficPermission => (&["FROM", "TO", "ACTION", "LABELS"], |o| {
            let mut action = cell(&o["action"]);
            if o["shadow"].as_bool() == Some(true) {
                action.push_str(" (shadow)");
            }
            vec![
                list(&strings_of(&o["from"]), 3),
                cell(&o["to"]),
                action,
                labels(&o["labels"]),
            ]
        }),
    };
    let mut all_headers = vec!["NAME", "VERSION"];
    all_headers.extend_from_slice(headers);
    all_headers.extend(["PROXIES", "ACCEPTED/RECEIVED", "REJECTED", "AGE"]);
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| {
            let mut row = vec![cell(&o["name"]), cell(&o["version"])];
            row.extend(fields(o));
            row.extend(status_cells(&o["status"]));
            row.push(age(o["created_at"].as_str(), now));
            row
        })
        .collect();
    output::table(&all_headers, &rows)
}

/// PROXIES, ACCEPTED/RECEIVED and REJECTED from a `status` block.
fn status_cells(status: &Value) -> [String; 3] {
    if !status.is_object() {
        return ["-".into(), "-".into(), "-".into()];
    }
    let rejected = status["rejected"].as_array().map_or(0, Vec::len);
    [
        cell(&status["proxies"]),
        format!(
            "{}/{}",
            cell(&status["accepted"]),
            cell(&status["received"])
        ),
        rejected.to_string(),
    ]
}

/// Under the table, each rejection with the proxy's message (nothing when there is none):
/// `route/web: rejected by ingress-1 (RouteConfiguration ingress): <message>`.
fn rejections(kind: Kind, objects: &[Value]) -> String {
    let mut out = String::new();
    for o in objects {
        for r in o["status"]["rejected"].as_array().into_iter().flatten() {
            let type_url = cell(&r["type_url"]);
            let short = type_url.rsplit('.').next().unwrap_or_default();
            out.push_str(&format!(
                "{kind}/{}: rejected by {} ({short} {}): {}\n",
                cell(&o["name"]),
                cell(&r["node_id"]),
                cell(&r["resource"]),
                cell(&r["message"]),
            ));
        }
    }
    if !out.is_empty() {
        out.insert(0, '\n');
    }
    out
}

fn strings_of(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().map(cell).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_kind_shows_its_key_fields() {
        let listener = json!({ "name": "ingress", "version": 2, "address": "0.0.0.0",
            "port": 10000, "protocol": "http", "routes": ["web"], "labels": { "app": "demo" } });
        let text = table(Kind::Listener, &[listener]);
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            [
                "NAME",
                "VERSION",
                "ADDRESS",
                "PROTOCOL",
                "SERVES",
                "LABELS",
                "PROXIES",
                "ACCEPTED/RECEIVED",
                "REJECTED",
                "AGE"
            ]
        );
        let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            row,
            [
                "ingress",
                "2",
                "0.0.0.0:10000",
                "http",
                "route/web",
                "app=demo",
                "-",
                "-",
                "-",
                "<unknown>"
            ],
            "a server without status"
        );

        let route = json!({ "name": "web", "version": 1, "hosts": ["*"], "rules": [
            { "destinations": [{ "service": "b" }, { "service": "a" }] },
            { "destinations": [{ "service": "a" }] }] });
        let text = table(Kind::Route, &[route]);
        assert!(text.lines().nth(1).unwrap().contains("a,b"), "{text}");
    }

    #[test]
    fn status_shows_as_counts_and_each_rejection_below() {
        let route = json!({ "name": "web", "version": 3, "hosts": ["*"], "rules": [],
            "status": { "proxies": 3, "received": 2, "accepted": 1, "rejected": [
                { "node_id": "edge-1",
                  "type_url": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
                  "resource": "ingress", "message": "regex too big" }] } });
        let text = table(Kind::Route, std::slice::from_ref(&route));
        let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(
            row[row.len() - 4..row.len() - 1],
            ["3", "1/2", "1"],
            "{text}"
        );
        assert_eq!(
            rejections(Kind::Route, &[route]),
            "\nroute/web: rejected by edge-1 (RouteConfiguration ingress): regex too big\n"
        );
        let quiet = json!({ "name": "web", "status": { "proxies": 0, "received": 0,
                                                        "accepted": 0, "rejected": [] } });
        assert_eq!(rejections(Kind::Route, &[quiet]), "");
    }
}
