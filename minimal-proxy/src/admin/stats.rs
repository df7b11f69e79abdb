//! `GET /stats` (Envoy's `name: value` lines, or `?format=json`), `GET /stats/prometheus`,
//! rendered by [`crate::stats::Registry`]; `?filter=<regex>` keeps matching names, as Envoy.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use super::{State, json, respond, text};

pub fn render(state: &State, query: &BTreeMap<String, String>) -> Response<Full<Bytes>> {
    let filter = match query.get("filter").filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => match regex::Regex::new(f) {
            Ok(re) => Some(re),
            Err(e) => {
                let message = format!("filter '{f}' is not a valid regular expression: {e}\n");
                return text(StatusCode::BAD_REQUEST, &message);
            }
        },
    };
    let keep = |name: &str| filter.as_ref().is_none_or(|re| re.is_match(name));
    let mut all = state.runtime.stats.render_json();
    if let Some(Value::Array(stats)) = all.get_mut("stats") {
        stats.retain_mut(|s| match s.get_mut("histograms") {
            Some(h) => {
                if let Some(Value::Array(q)) = h.get_mut("computed_quantiles") {
                    q.retain(|m| keep(m["name"].as_str().unwrap_or_default()));
                }
                true
            }
            None => keep(s["name"].as_str().unwrap_or_default()),
        });
    }
    match query.get("format").map(String::as_str) {
        Some("json") => json(StatusCode::OK, &all),
        None | Some("text") => text(StatusCode::OK, &as_text(&all)),
        Some("prometheus") => prometheus(state),
        Some(other) => text(
            StatusCode::BAD_REQUEST,
            &format!("format '{other}' is not supported: use text, json or prometheus\n"),
        ),
    }
}

pub fn prometheus(state: &State) -> Response<Full<Bytes>> {
    let body = state.runtime.stats.render_prometheus();
    respond(StatusCode::OK, "text/plain; charset=UTF-8", body)
}

/// The JSON rendering as Envoy's text page: `name: value` per counter and gauge, then each
/// histogram as `name: P0(nan,v) P25(nan,v) ...` (cumulative values; intervals are not kept).
fn as_text(all: &Value) -> String {
    let mut out = String::new();
    let Some(Value::Array(stats)) = all.get("stats") else {
        return out;
    };
    for s in stats {
        if let Some(h) = s.get("histograms") {
            let quantiles = h["supported_quantiles"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for m in h["computed_quantiles"].as_array().into_iter().flatten() {
                let values = m["values"].as_array().cloned().unwrap_or_default();
                let shown: Vec<String> = quantiles
                    .iter()
                    .zip(values)
                    .map(|(q, v)| format!("P{q}(nan,{})", number(&v["cumulative"])))
                    .collect();
                out.push_str(&format!(
                    "{}: {}\n",
                    m["name"].as_str().unwrap_or_default(),
                    shown.join(" ")
                ));
            }
        } else if let Some(name) = s["name"].as_str() {
            match &s["value"] {
                Value::String(v) => out.push_str(&format!("{name}: \"{v}\"\n")),
                v => out.push_str(&format!("{name}: {v}\n")),
            }
        }
    }
    out
}

fn number(v: &Value) -> String {
    match v {
        Value::Null => "nan".to_string(),
        v => v.to_string(),
    }
}
