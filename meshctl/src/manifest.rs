//! Reading mesh objects from files: multi-document YAML or JSON, each document `kind`, `name`
//! and the REST body's fields, flat. Every mistake names the file, the document and what is
//! wrong, and is found before anything is sent to the server.

use std::{
    collections::HashMap,
    fmt,
    io::Read,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::kind::Kind;

/// Fields of a document that are not part of the body: `kind` and `name` say what it is;
/// `version`, `created_at`, `updated_at` and `status` (read-only) are what `meshctl get -o
/// yaml` prints, accepted so that output can be applied again, and ignored (apply writes at
/// the version it read).
const ENVELOPE: &[&str] = &[
    "kind",
    "name",
    "version",
    "created_at",
    "updated_at",
    "status",
];

/// One object a file describes.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub kind: Kind,
    pub name: String,
    /// The REST body: every field but the envelope's.
    pub body: Map<String, Value>,
    pub source: Source,
}

impl Object {
    /// `service/web`, as meshctl prints objects.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// Where an object was written: the file and its document (1-based; a top-level list's
/// elements count as documents of their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: String,
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, document {}", self.file, self.document)
    }
}

/// A file that cannot be read or a document that is not a mesh object.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: no .yaml, .yml or .json files in this directory")]
    EmptyDir { file: String },
    #[error("{file}: not valid YAML or JSON: {reason}")]
    Syntax { file: String, reason: String },
    #[error("{at}: {message}")]
    Document { at: Source, message: String },
    #[error("{second}: {id} is also defined at {first}; define each object once")]
    Duplicate {
        id: String,
        first: Source,
        second: Source,
    },
    #[error("no objects found in {files}: each document needs `kind` and `name`")]
    Nothing { files: String },
}

/// Reads every object named by `paths`: files, directories (their `.yaml`, `.yml` and `.json`
/// files, in name order, not recursing) or `-` for standard input. Refuses an object defined
/// twice.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Object>, ManifestError> {
    let mut objects = Vec::new();
    for path in paths {
        for (file, text) in read(path)? {
            objects.extend(parse(&file, &text)?);
        }
    }
    let mut seen: HashMap<(Kind, &str), &Source> = HashMap::new();
    for object in &objects {
        if let Some(first) = seen.insert((object.kind, &object.name), &object.source) {
            return Err(ManifestError::Duplicate {
                id: object.id(),
                first: first.clone(),
                second: object.source.clone(),
            });
        }
    }
    if objects.is_empty() {
        let files = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ManifestError::Nothing { files });
    }
    Ok(objects)
}

/// The text of each file `path` stands for, with the name to show in messages.
fn read(path: &Path) -> Result<Vec<(String, String)>, ManifestError> {
    let shown = path.display().to_string();
    let failed = |file: &str, e: std::io::Error| ManifestError::Read {
        file: file.to_string(),
        reason: e.to_string(),
    };
    if shown == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| failed("standard input", e))?;
        return Ok(vec![("standard input".into(), text)]);
    }
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| failed(&shown, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            })
            .collect();
        if files.is_empty() {
            return Err(ManifestError::EmptyDir { file: shown });
        }
        files.sort();
        return files
            .into_iter()
            .map(|f| {
                let name = f.display().to_string();
                let text = std::fs::read_to_string(&f).map_err(|e| failed(&name, e))?;
                Ok((name, text))
            })
            .collect();
    }
    let text = std::fs::read_to_string(path).map_err(|e| failed(&shown, e))?;
    Ok(vec![(shown, text)])
}

/// The objects in one file's text. JSON is read as YAML (JSON is a subset of YAML 1.2); empty
/// documents are skipped.
pub fn parse(file: &str, text: &str) -> Result<Vec<Object>, ManifestError> {
    let mut objects = Vec::new();
    let mut document = 0;
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| ManifestError::Syntax {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
        let items = match value {
            Value::Null => {
                document += 1;
                continue;
            }
            Value::Array(items) => items,
            other => vec![other],
        };
        for item in items {
            document += 1;
            let source = Source {
                file: file.to_string(),
                document,
            };
            objects.push(object(item, source)?);
        }
    }
    Ok(objects)
}

/// One document as an object, or why it is not one.
fn object(value: Value, source: Source) -> Result<Object, ManifestError> {
    let bad = |message: String| ManifestError::Document {
        at: source.clone(),
        message,
    };
    let Value::Object(mut body) = value else {
        return Err(bad(format!(
            "expected a mapping with `kind` and `name`, got {}",
            describe(&value)
        )));
    };
    let kind = match body.get("kind") {
        Some(Value::String(k)) => k.parse::<Kind>().map_err(|e| bad(e.to_string()))?,
        Some(other) => {
            return Err(bad(format!(
                "`kind` must be a string, got {}",
                describe(other)
            )));
        }
        None => {
            return Err(bad(
                "`kind` is missing: say what this is (service, endpoints, route, listener, \
                 envoy-resource)"
                    .into(),
            ));
        }
    };
    let name = match body.get("name") {
        Some(Value::String(n)) => n.clone(),
        Some(other) => {
            return Err(bad(format!(
                "`name` must be a string, got {}",
                describe(other)
            )));
        }
        None => {
            let what = if kind == Kind::Endpoints {
                "`name` is missing: for endpoints it is the service's name"
            } else {
                "`name` is missing"
            };
            return Err(bad(what.into()));
        }
    };
    check_name(&name).map_err(|m| bad(format!("`name` {m}")))?;
    for key in ENVELOPE {
        body.remove(*key);
    }
    if body.is_empty() {
        return Err(bad(format!(
            "{kind}/{name} has no fields besides kind and name; write the REST body's fields \
             beside them (see docs/design.md)"
        )));
    }
    Ok(Object {
        kind,
        name,
        body,
        source,
    })
}

/// The server's naming rule, checked early so a typo fails before anything is written.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if name.is_empty()
        || name.len() > 63
        || !name.chars().all(ok_char)
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(format!(
            "'{name}' is not a valid name: 1..=63 lowercase letters, digits and '-', starting \
             and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests;
