//! Rendering for people and scripts: aligned tables, ages, and objects as YAML or JSON (with
//! `kind` first, so what `get` prints can be applied again).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::kind::Kind;

/// Columns padded to their widest cell, separated by three spaces, no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 3));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// How long ago `since` (RFC 3339) was, as kubectl prints it: `42s`, `7m`, `5h`, `3d`;
/// `<unknown>` when absent or unreadable.
pub fn age(since: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(then) = since.and_then(|s| DateTime::parse_from_rfc3339(s).ok()) else {
        return "<unknown>".into();
    };
    let secs = (now - then.with_timezone(&Utc)).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// An object as the server returned it, with `kind` first and `name` second (the rest in
/// the server's order).
pub fn with_kind(kind: Kind, object: &Value) -> serde_yaml_ng::Mapping {
    let mut out = serde_yaml_ng::Mapping::new();
    out.insert("kind".into(), kind.as_str().into());
    if let Some(name) = object.get("name") {
        out.insert("name".into(), to_yaml(name));
    }
    if let Some(fields) = object.as_object() {
        for (key, value) in fields.iter().filter(|(k, _)| *k != "name") {
            out.insert(key.as_str().into(), to_yaml(value));
        }
    }
    out
}

/// JSON values are YAML values; this conversion cannot fail for them.
fn to_yaml(value: &Value) -> serde_yaml_ng::Value {
    serde_yaml_ng::to_value(value).unwrap_or(serde_yaml_ng::Value::Null)
}

/// Documents separated by `---`, as `apply -f` reads them.
pub fn yaml_documents(docs: &[serde_yaml_ng::Mapping]) -> String {
    docs.iter()
        .map(|d| serde_yaml_ng::to_string(d).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Writes to standard output, ignoring a closed pipe (`meshctl get … | head`).
pub fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Pretty JSON with a trailing newline.
pub fn json(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// `a, b, c`, or `+N more` after `max` items; `-` for none.
pub fn list(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "-".into();
    }
    let mut shown = items[..items.len().min(max)].join(",");
    if items.len() > max {
        shown.push_str(&format!(",+{} more", items.len() - max));
    }
    shown
}

/// A scalar field for a table cell (`-` when absent).
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `k=v,k2=v2` for a labels map, `-` for none.
pub fn labels(value: &Value) -> String {
    let pairs: Vec<String> = value
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect())
        .unwrap_or_default();
    list(&pairs, 3)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["web".to_string(), "1".into(), "http".into()],
            vec!["database".to_string(), "12".into(), "-".into()],
        ];
        assert_eq!(
            table(&["NAME", "VERSION", "PROTOCOL"], &rows),
            "NAME       VERSION   PROTOCOL\nweb        1         http\ndatabase   12        -\n"
        );
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
            .unwrap()
            .to_utc();
        let at = |s| age(Some(s), now);
        assert_eq!(at("2026-01-10T11:59:15Z"), "45s");
        assert_eq!(at("2026-01-10T11:30:00Z"), "30m");
        assert_eq!(at("2026-01-10T07:00:00Z"), "5h");
        assert_eq!(at("2026-01-07T12:00:00Z"), "3d");
        assert_eq!(age(None, now), "<unknown>");
    }

    #[test]
    fn yaml_puts_kind_and_name_first_and_reads_back() {
        let object = json!({ "name": "web", "version": 2, "protocol": "http" });
        let text = yaml_documents(&[with_kind(Kind::Service, &object)]);
        assert!(text.starts_with("kind: service\nname: web\n"), "{text}");
        let back = crate::manifest::parse("x", &text).unwrap();
        assert_eq!(back[0].id(), "service/web");
    }

    #[test]
    fn lists_and_labels_are_short() {
        let items: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(list(&items, 2), "a,b,+2 more");
        assert_eq!(list(&[], 2), "-");
        assert_eq!(labels(&json!({ "app": "web" })), "app=web");
        assert_eq!(labels(&Value::Null), "-");
    }
}
