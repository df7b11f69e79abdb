//! `meshctl stat [SERVICE]`: golden metrics (requests/s, success rate, latency p50/p95/p99)
//! from `GET /api/v1/stats` or `GET /api/v1/services/{name}/stats`, as a table (one service:
//! with its routes and calling proxies) or the server's JSON/YAML; `--watch` refreshes.

use std::{io::IsTerminal, time::Duration};

use serde_json::Value;

use crate::{
    cli::{Format, StatArgs},
    client::Client,
    error::Error,
    output::{self, cell, out},
};

pub async fn run(client: &Client, args: StatArgs) -> Result<(), Error> {
    let path = match &args.service {
        Some(name) => format!("/api/v1/services/{}/stats", segment(name)?),
        None => "/api/v1/stats".to_string(),
    };
    let query = [("window", args.window.as_str())];
    let clear = args.watch && args.output == Format::Table && std::io::stdout().is_terminal();
    let mut shown = 0u64;
    loop {
        let answer = client.get(&path, &query).await?;
        let text = match args.output {
            Format::Json => output::json(&answer),
            Format::Yaml => yaml(&answer),
            Format::Table if args.service.is_some() => one_service(&answer),
            Format::Table => services(&answer),
        };
        if clear {
            out("\x1b[2J\x1b[H");
        } else if shown > 0 && args.output != Format::Json {
            out("---\n");
        }
        out(&text);
        shown += 1;
        if !args.watch || args.count.is_some_and(|n| shown >= n) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(args.interval)).await;
    }
}

fn yaml(value: &Value) -> String {
    serde_yaml_ng::to_string(value).unwrap_or_default()
}

/// A service name as a path segment: names are `[a-z0-9-]`, so anything else is a typo the
/// server would only answer 404 to.
fn segment(name: &str) -> Result<&str, Error> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(name)
    } else {
        Err(Error::Input(format!(
            "'{name}' is not a service name: use lowercase letters, digits and '-'"
        )))
    }
}

const FIGURES: [&str; 6] = ["RPS", "SUCCESS", "P50", "P95", "P99", "REQUESTS"];

/// The figure columns of one item: rate, success, p50/p95/p99, requests (`-` when unknown).
fn figures(item: &Value) -> Vec<String> {
    let latency = |p: &str| {
        item["latency_ms"][p]
            .as_f64()
            .map_or("-".into(), milliseconds)
    };
    vec![
        item["requests_per_second"]
            .as_f64()
            .map_or("-".into(), |r| format!("{r:.1}")),
        item["success_rate"]
            .as_f64()
            .map_or("-".into(), |r| format!("{:.2}%", r * 100.0)),
        latency("p50"),
        latency("p95"),
        latency("p99"),
        cell(&item["requests"]),
    ]
}

/// `0.8ms`, `12ms`, `1.5s`: enough digits to compare, no more.
fn milliseconds(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{ms:.1}ms")
    }
}

fn headers(first: &'static str) -> Vec<&'static str> {
    let mut headers = vec![first];
    headers.extend(FIGURES);
    headers
}

/// One row per service.
fn services(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let mut row = vec![cell(&s["service"])];
            row.extend(figures(s));
            row
        })
        .collect();
    if rows.is_empty() {
        return "no services in the mesh\n".into();
    }
    format!(
        "window: {}\n{}",
        cell(&answer["window"]),
        output::table(&headers("SERVICE"), &rows)
    )
}

/// The service, then its routes and the proxies that called it.
fn one_service(answer: &Value) -> String {
    let mut row = vec![cell(&answer["service"])];
    row.extend(figures(answer));
    let mut text = format!(
        "window: {}\n{}",
        cell(&answer["window"]),
        output::table(&headers("SERVICE"), &[row])
    );
    for (key, title, name) in [
        ("routes", "ROUTE", "route"),
        ("proxies", "PROXY", "node_id"),
    ] {
        let rows: Vec<Vec<String>> = answer[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                let mut row = vec![cell(&item[name])];
                row.extend(figures(item));
                row
            })
            .collect();
        text.push('\n');
        if rows.is_empty() {
            text.push_str(&format!("no {key}\n"));
        } else {
            text.push_str(&output::table(&headers(title), &rows));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn web() -> Value {
        json!({
            "service": "web", "window": "1m", "window_seconds": 60,
            "requests": 120, "requests_per_second": 2.0, "success_rate": 0.95,
            "latency_ms": { "p50": 3.25, "p95": 48.0, "p99": 1500.0 },
            "routes": [{ "route": "main", "requests": 120, "requests_per_second": 2.0,
                         "success_rate": 0.95,
                         "latency_ms": { "p50": 3.25, "p95": 48.0, "p99": 1500.0 } }],
            "proxies": [],
        })
    }

    #[test]
    fn one_service_with_its_routes_and_proxies() {
        assert_eq!(
            one_service(&web()),
            "window: 1m\n\
             SERVICE   RPS   SUCCESS   P50     P95    P99    REQUESTS\n\
             web       2.0   95.00%    3.2ms   48ms   1.5s   120\n\
             \n\
             ROUTE   RPS   SUCCESS   P50     P95    P99    REQUESTS\n\
             main    2.0   95.00%    3.2ms   48ms   1.5s   120\n\
             \n\
             no proxies\n"
        );
    }

    #[test]
    fn no_traffic_shows_dashes() {
        let quiet = json!({
            "window": "10s",
            "items": [{ "service": "api", "requests": 0, "requests_per_second": 0.0,
                        "success_rate": null,
                        "latency_ms": { "p50": null, "p95": null, "p99": null } }],
        });
        assert_eq!(
            services(&quiet),
            "window: 10s\n\
             SERVICE   RPS   SUCCESS   P50   P95   P99   REQUESTS\n\
             api       0.0   -         -     -     -     0\n"
        );
        assert_eq!(
            services(&json!({ "items": [] })),
            "no services in the mesh\n"
        );
    }

    #[test]
    fn service_names_are_checked_before_asking() {
        assert!(segment("web-2").is_ok());
        for bad in ["", "Web", "a/b", "a b"] {
            assert!(segment(bad).is_err(), "{bad}");
        }
    }
}
