//! What `meshctl apply` decides, without any I/O: the order of writes, whether an object is
//! created, configured or unchanged (comparing body fields only), the field-level diff shown
//! by `--dry-run`, what `--prune` deletes, and which objects name others.

use std::{collections::HashSet, fmt};

use serde_json::{Map, Value};

use crate::{kind::Kind, manifest::Object};

/// Fields the server adds to every object (`status` to what GET returns); they are not part
/// of its spec.
const SERVER_FIELDS: &[&str] = &["name", "version", "created_at", "updated_at", "status"];

/// An object's spec: the body fields of what the server returned, without the envelope.
pub fn spec(object: &Value) -> Value {
    let mut fields = object.as_object().cloned().unwrap_or_default();
    for key in SERVER_FIELDS {
        fields.remove(*key);
    }
    Value::Object(fields)
}

/// The version of what the server returned; 0 for a service's endpoints never set.
pub fn version(object: &Value) -> i64 {
    object["version"].as_i64().unwrap_or(0)
}

/// One field that differs, as a path such as `rules[0].destinations[1].weight`.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added {
        path: String,
        value: Value,
    },
    Removed {
        path: String,
        value: Value,
    },
    Changed {
        path: String,
        from: Value,
        to: Value,
    },
}

impl fmt::Display for Change {
    /// `~ port: 10000 -> 10001`, `+ labels.team: "web"`, `- timeout: "5s"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added { path, value } => write!(f, "+ {path}: {value}"),
            Change::Removed { path, value } => write!(f, "- {path}: {value}"),
            Change::Changed { path, from, to } => write!(f, "~ {path}: {from} -> {to}"),
        }
    }
}

/// The fields that differ from `current` to `desired`, in path order. Objects are compared
/// key by key, lists element by element, so a change deep inside a rule names that field.
pub fn diff(current: &Value, desired: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff_at("", current, desired, &mut out);
    out
}

fn diff_at(path: &str, current: &Value, desired: &Value, out: &mut Vec<Change>) {
    match (current, desired) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let child = join_key(path, key);
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff_at(&child, x, y, out),
                    (Some(x), None) => out.push(Change::Removed {
                        path: child,
                        value: x.clone(),
                    }),
                    (None, Some(y)) => out.push(Change::Added {
                        path: child,
                        value: y.clone(),
                    }),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let child = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => diff_at(&child, x, y, out),
                    (Some(x), None) => out.push(Change::Removed {
                        path: child,
                        value: x.clone(),
                    }),
                    (None, Some(y)) => out.push(Change::Added {
                        path: child,
                        value: y.clone(),
                    }),
                    (None, None) => {}
                }
            }
        }
        (a, b) if a != b => out.push(Change::Changed {
            path: path.to_string(),
            from: a.clone(),
            to: b.clone(),
        }),
        _ => {}
    }
}

/// `parent.key`, or `parent["key"]` when the key is not a plain word (label keys such as
/// `app.kubernetes.io/name`).
fn join_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::String(key.to_string())),
    }
}

/// What applying one object does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create,
    /// The fields that change.
    Configure(Vec<Change>),
    Unchanged,
}

/// Compares what the server has (`current`, as GET returned it, or `None`) with what it would
/// store (`desired`, as a dry run returned it): body fields only. Endpoints never set (version
/// 0) count as absent.
pub fn decide(current: Option<&Value>, desired: &Value) -> Action {
    let Some(current) = current.filter(|c| version(c) > 0) else {
        return Action::Create;
    };
    let changes = diff(&spec(current), &spec(desired));
    if changes.is_empty() {
        Action::Unchanged
    } else {
        Action::Configure(changes)
    }
}

/// The objects `body` (of kind `kind`, named `name`) names, which must exist before it: the
/// same references the server checks.
pub fn references(kind: Kind, name: &str, body: &Map<String, Value>) -> Vec<(Kind, String)> {
    let names = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    match kind {
        Kind::Endpoints => vec![(Kind::Service, name.to_string())],
        Kind::Route => body
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|rule| rule["destinations"].as_array().cloned().unwrap_or_default())
            .filter_map(|d| {
                d["service"]
                    .as_str()
                    .map(|s| (Kind::Service, s.to_string()))
            })
            .collect(),
        Kind::Listener => {
            let mut refs: Vec<(Kind, String)> = names(body.get("routes"))
                .into_iter()
                .map(|r| (Kind::Route, r))
                .collect();
            if let Some(s) = body.get("service").and_then(Value::as_str) {
                refs.push((Kind::Service, s.to_string()));
            }
            refs
        }
        Kind::TrafficPermission => {
            let mut refs: Vec<(Kind, String)> = names(body.get("from"))
                .into_iter()
                .filter(|f| f != "*")
                .map(|f| (Kind::Service, f))
                .collect();
            if let Some(s) = body.get("to").and_then(Value::as_str) {
                refs.push((Kind::Service, s.to_string()));
            }
            refs
        }
        Kind::Service | Kind::EnvoyResource => Vec::new(),
    }
}

/// Sorts objects into dependency order (services, endpoints, routes, listeners,
/// envoy-resources, traffic-permissions), keeping the files' order within a kind.
pub fn order(objects: &mut [Object]) {
    objects.sort_by_key(|o| o.kind);
}

/// An object `--prune` deletes, at the version it was listed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prune {
    pub kind: Kind,
    pub name: String,
    pub version: i64,
}

/// Of the objects listed by selector (`listed`, per kind), those the files no longer name, in
/// delete order (reverse dependency order, then by name).
pub fn prune(listed: &[(Kind, Value)], named: &HashSet<(Kind, String)>) -> Vec<Prune> {
    let mut out: Vec<Prune> = listed
        .iter()
        .filter_map(|(kind, object)| {
            let name = object["name"].as_str()?.to_string();
            (!named.contains(&(*kind, name.clone()))).then(|| Prune {
                kind: *kind,
                name,
                version: version(object),
            })
        })
        .collect();
    out.sort_by(|a, b| b.kind.cmp(&a.kind).then_with(|| a.name.cmp(&b.name)));
    out
}

/// Whether `body`'s labels carry every `key=value` of `selector` (for the warning that an
/// applied object would never be pruned).
pub fn carries(body: &Map<String, Value>, selector: &[(String, String)]) -> bool {
    selector.iter().all(|(k, v)| {
        body.get("labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            == Some(v)
    })
}

#[cfg(test)]
mod tests;
