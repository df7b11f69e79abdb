//! `meshctl tap`: the live tap (`GET /api/v1/tap`, server-sent events), one line per request
//! on standard output (or one JSON object per line with `-o json`); what the server says
//! about the tap itself (opened, events dropped) goes to standard error. Ends on Ctrl-C, or
//! after `--count` requests.

use serde_json::Value;

use crate::{
    cli::{TapArgs, TapFormat},
    client::Client,
    error::Error,
    output::out,
};

pub async fn run(client: &Client, args: TapArgs) -> Result<(), Error> {
    let mut response = client.stream("/api/v1/tap", &query(&args)).await?;
    let mut parser = Parser::default();
    let mut seen = 0u64;
    if args.count == Some(0) {
        return Ok(());
    }
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk.map_err(|e| client.broken(e))?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(chunk) = chunk else {
            return Err(Error::Failed(
                "the server ended the tap (is it shutting down?)".into(),
            ));
        };
        for (event, data) in parser.push(&String::from_utf8_lossy(&chunk)) {
            match event.as_str() {
                "request" => {
                    let line = match args.output {
                        TapFormat::Line => line(&data),
                        TapFormat::Json => data.to_string(),
                    };
                    out(&format!("{line}\n"));
                    seen += 1;
                    if args.count.is_some_and(|c| seen >= c) {
                        return Ok(());
                    }
                }
                "open" => eprintln!("{}", opened(&data)),
                "dropped" => eprintln!(
                    "meshctl: the server dropped {} events (over the tap's rate, or this \
                     client too slow); {} in all",
                    data["dropped"], data["total_dropped"]
                ),
                _ => {}
            }
        }
    }
}

/// The query `api/tap.rs` reads; unset filters are left out.
fn query(args: &TapArgs) -> Vec<(&'static str, String)> {
    [
        ("service", &args.service),
        ("route", &args.route),
        ("node_id", &args.node_id),
        ("path_prefix", &args.path_prefix),
        ("status", &args.status),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
    .collect()
}

/// Server-sent events from text arriving in pieces: complete events out, the rest kept.
#[derive(Debug, Default)]
struct Parser {
    buffer: String,
}

impl Parser {
    /// Adds `text`; returns every event it completed, as (name, JSON data). Comments
    /// (keep-alives) and events whose data is not JSON are skipped.
    fn push(&mut self, text: &str) -> Vec<(String, Value)> {
        self.buffer.push_str(&text.replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if let Ok(value) = serde_json::from_str(&data) {
                events.push((name, value));
            }
        }
        events
    }
}

/// `TIME NODE METHOD AUTHORITY+PATH STATUS DURATION -> UPSTREAM FLAGS route=R service=S`;
/// what is unknown is `-`.
fn line(e: &Value) -> String {
    let text = |k: &str| e[k].as_str().filter(|s| !s.is_empty()).unwrap_or("-");
    let status = e["status"]
        .as_u64()
        .map_or_else(|| "-".to_string(), |s| s.to_string());
    let duration = e["duration_ms"]
        .as_f64()
        .map_or_else(|| "-".to_string(), |d| format!("{d:.1}ms"));
    let flags: Vec<&str> = e["response_flags"]
        .as_array()
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let flags = if flags.is_empty() {
        "-".to_string()
    } else {
        flags.join(",")
    };
    format!(
        "{} {} {} {}{} {status} {duration} -> {} {flags} route={} service={}",
        text("time"),
        text("node_id"),
        text("method"),
        e["authority"].as_str().unwrap_or_default(),
        text("path"),
        text("upstream_host"),
        text("route"),
        text("service"),
    )
}

/// The standard-error line for the `open` event.
fn opened(open: &Value) -> String {
    let filters: Vec<String> = open["filter"]
        .as_object()
        .map(|f| {
            f.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect()
        })
        .unwrap_or_default();
    let filters = if filters.is_empty() {
        "every request".to_string()
    } else {
        filters.join(" ")
    };
    format!(
        "meshctl: tap {} open ({filters}; at most {} events/s); Ctrl-C to stop",
        open["tap"].as_str().unwrap_or("?"),
        open["max_events_per_second"]
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use serde_json::json;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn events_are_parsed_across_chunks_and_comments_skipped() {
        let mut p = Parser::default();
        assert!(p.push("event: open\ndata: {\"tap\":").is_empty());
        let got =
            p.push("\"t1\"}\n\n:\n\nevent: request\r\ndata: {\"path\":\"/a\"}\r\n\r\nevent: req");
        assert_eq!(
            got,
            [
                ("open".to_string(), json!({ "tap": "t1" })),
                ("request".to_string(), json!({ "path": "/a" })),
            ]
        );
        assert_eq!(p.buffer, "event: req");
    }

    #[test]
    fn a_request_is_one_line_with_dashes_for_the_unknown() {
        let full = json!({ "time": "2026-12-01T23:45:01.123Z", "node_id": "edge-1",
            "method": "GET", "authority": "web.local", "path": "/api?x=1", "status": 503,
            "duration_ms": 1.25, "upstream_host": "127.0.0.1:8081",
            "response_flags": ["UF", "URX"], "route": "web", "service": "web" });
        assert_eq!(
            line(&full),
            "2026-12-01T23:45:01.123Z edge-1 GET web.local/api?x=1 503 1.2ms -> \
             127.0.0.1:8081 UF,URX route=web service=web"
        );
        let sparse = json!({ "time": "t", "node_id": "n", "method": "-", "authority": "",
            "path": "/", "status": null, "duration_ms": null, "upstream_host": null,
            "response_flags": [], "route": null, "service": null });
        assert_eq!(line(&sparse), "t n - / - - -> - - route=- service=-");
    }

    #[test]
    fn flags_become_the_servers_query() {
        let cli = Cli::parse_from([
            "meshctl",
            "tap",
            "--service",
            "web",
            "--node-id",
            "edge-1",
            "--status",
            "5xx",
            "--path-prefix",
            "/api",
        ]);
        let Command::Tap(args) = cli.command else {
            panic!("not tap");
        };
        assert_eq!(
            query(&args),
            [
                ("service", "web".to_string()),
                ("node_id", "edge-1".into()),
                ("path_prefix", "/api".into()),
                ("status", "5xx".into()),
            ]
        );
    }

    #[test]
    fn the_open_line_says_what_is_tapped() {
        let open = json!({ "tap": "t2", "max_events_per_second": 100,
            "filter": { "service": "web", "route": null, "status": "5xx" } });
        assert_eq!(
            opened(&open),
            "meshctl: tap t2 open (service=web status=5xx; at most 100 events/s); Ctrl-C to stop"
        );
    }
}
