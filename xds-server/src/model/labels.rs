//! Operator labels on mesh objects (`{"labels": {"team": "web"}}`) and the label selectors that
//! filter lists by them (`?selector=team=web,tier=edge`).
//!
//! Labels are the operator's own bookkeeping: tools such as `meshctl apply --prune` find the
//! objects they manage by them. They are part of the stored spec and never reach Envoy. Keys
//! and values follow Kubernetes' rules, so labels copied from there are accepted as they are.

use std::{collections::BTreeMap, sync::LazyLock};

use super::{ValidationError, invalid};

/// An object's labels, in key order.
pub type Labels = BTreeMap<String, String>;

/// The most labels one object may carry (Kubernetes sets no number; a bound keeps objects and
/// list filters small).
pub const MAX_LABELS: usize = 64;

/// The longest label name (the part after an optional `prefix/`) and value, as in Kubernetes.
const MAX_NAME_LEN: usize = 63;
/// The longest key prefix, a DNS subdomain.
const MAX_PREFIX_LEN: usize = 253;

/// A label name or a non-empty value: alphanumeric at both ends, `-`, `_`, `.` inside.
const NAME: &str = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
/// A DNS subdomain (its length is checked apart: a regex cannot bound it).
const PREFIX: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

/// The grammar of `?selector=`: `key=value` requirements joined by `,`. The OpenAPI document
/// states this very pattern, and the parser checks the query against it, so the two cannot
/// disagree.
pub static SELECTOR_PATTERN: LazyLock<String> = LazyLock::new(|| {
    let requirement = format!("({PREFIX}/)?{NAME}=({NAME})?");
    format!("^{requirement}(,{requirement})*$")
});

/// The OpenAPI schema of `labels`: the rules above, but for the prefix's length (a pattern
/// cannot bound it; the server refuses a longer one with 422).
pub fn labels_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, schema::Type};
    let string = |pattern: String| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "The operator's labels, Kubernetes-style: found by ?selector= on lists, never sent \
             to proxies",
        ))
        .property_names(Some(string(format!("^({PREFIX}/)?{NAME}$"))))
        .additional_properties(Some(string(format!("^({NAME})?$"))))
        .max_properties(Some(MAX_LABELS))
        .build()
}

/// Checks the `labels` of an object: at most [`MAX_LABELS`], keys `[prefix/]name`, values empty
/// or a name (see the module documentation).
pub fn validate_labels(field: &str, labels: &Labels) -> Result<(), ValidationError> {
    if labels.len() > MAX_LABELS {
        return Err(invalid(
            field,
            format!(
                "at most {MAX_LABELS} labels per object, got {}",
                labels.len()
            ),
        ));
    }
    for (key, value) in labels {
        let at = format!("{field}.{key}");
        check_key(&at, key)?;
        if !value.is_empty() {
            check_name(&at, "value", value)?;
        }
    }
    Ok(())
}

fn check_key(field: &str, key: &str) -> Result<(), ValidationError> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        if prefix.len() > MAX_PREFIX_LEN || !prefix.split('.').all(label_ok) {
            return Err(invalid(
                field,
                format!(
                    "the key prefix '{prefix}' must be a DNS subdomain (lowercase letters, \
                     digits, '-' and '.', at most {MAX_PREFIX_LEN} characters), e.g. \
                     'example.com/team'"
                ),
            ));
        }
    }
    check_name(field, "key", name)
}

/// A label name or value: 1..=63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
fn check_name(field: &str, what: &str, text: &str) -> Result<(), ValidationError> {
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let ok = !text.is_empty()
        && text.len() <= MAX_NAME_LEN
        && text.chars().all(inner)
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        return Ok(());
    }
    Err(invalid(
        field,
        format!(
            "'{text}' is not a valid label {what}: 1..={MAX_NAME_LEN} letters, digits, '-', '_' \
             or '.', starting and ending with a letter or digit"
        ),
    ))
}

/// `?selector=key=value[,key2=value2]`: an object matches when it carries every pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<(String, String)>,
}

/// Why a selector was refused; the message shows the accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "selector '{0}' is not a label selector: write key=value pairs joined by ',', e.g. \
     selector=team=web,tier=edge (keys [prefix/]name, values empty or a name; no spaces)"
)]
pub struct ParseSelectorError(String);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, ParseSelectorError> {
        static GRAMMAR: LazyLock<regex::Regex> = LazyLock::new(|| {
            // The pattern is a constant this crate's tests compile.
            regex::Regex::new(&SELECTOR_PATTERN).expect("SELECTOR_PATTERN compiles")
        });
        if !GRAMMAR.is_match(text) {
            return Err(ParseSelectorError(text.to_string()));
        }
        let requirements = text
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Self { requirements })
    }

    /// Whether `labels` (an object's `labels` as stored JSON, possibly absent) has every pair.
    pub fn matches(&self, labels: Option<&serde_json::Value>) -> bool {
        self.requirements.iter().all(|(k, v)| {
            labels
                .and_then(|l| l.get(k))
                .and_then(|l| l.as_str())
                .is_some_and(|l| l == v)
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kubernetes_style_labels_are_accepted() {
        let ok = labels(&[
            ("app", "web"),
            ("app.kubernetes.io/part-of", "demo"),
            ("tier", ""),
            ("Team_1.x", "A-b_c.9"),
            (&"k".repeat(63), &"v".repeat(63)),
        ]);
        assert_eq!(validate_labels("labels", &ok), Ok(()));
    }

    #[test]
    fn bad_keys_and_values_name_the_label() {
        for (key, value, needle) in [
            ("", "x", "label key"),
            ("-app", "x", "label key"),
            ("app-", "x", "label key"),
            ("a b", "x", "label key"),
            (&"k".repeat(64), "x", "label key"),
            ("Example.com/app", "x", "prefix"),
            ("ex..com/app", "x", "prefix"),
            ("/app", "x", "prefix"),
            ("example.com/", "x", "label key"),
            ("app", "-v", "label value"),
            ("app", "v v", "label value"),
            ("app", &"v".repeat(64), "label value"),
        ] {
            let err = validate_labels("labels", &labels(&[(key, value)])).unwrap_err();
            assert_eq!(err.field, format!("labels.{key}"));
            assert!(err.message.contains(needle), "{key}={value}: {err}");
        }
        let long_prefix = format!("{}/app", "a".repeat(254));
        assert!(validate_labels("labels", &labels(&[(&long_prefix, "x")])).is_err());
    }

    #[test]
    fn at_most_64_labels() {
        let many: Labels = (0..65)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let err = validate_labels("labels", &many).unwrap_err();
        assert_eq!(err.field, "labels");
        assert!(err.message.contains("at most 64"), "{err}");
        let enough: Labels = many.into_iter().take(64).collect();
        assert_eq!(validate_labels("labels", &enough), Ok(()));
    }

    #[test]
    fn selectors_match_every_pair() {
        let s = LabelSelector::parse("app=web,example.com/tier=edge").unwrap();
        let both = json!({ "app": "web", "example.com/tier": "edge", "x": "y" });
        assert!(s.matches(Some(&both)));
        assert!(!s.matches(Some(&json!({ "app": "web" }))));
        assert!(!s.matches(Some(&json!({ "app": "api", "example.com/tier": "edge" }))));
        assert!(!s.matches(None));
        let empty_value = LabelSelector::parse("tier=").unwrap();
        assert!(empty_value.matches(Some(&json!({ "tier": "" }))));
        assert!(!empty_value.matches(Some(&json!({}))));
    }

    #[test]
    fn malformed_selectors_are_refused_with_the_accepted_form() {
        for bad in [
            "",
            "app",
            "=web",
            "app==web",
            "app=web,",
            ",app=web",
            "app = web",
            "app!=web",
            "app=web;x=y",
            "-app=web",
            "Ex.com/app=web",
        ] {
            let err = LabelSelector::parse(bad).unwrap_err();
            assert!(err.to_string().contains("key=value"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_valid_label_is_selectable() {
        // What validate_labels accepts, the selector grammar accepts (lengths aside: a longer
        // key parses and matches nothing).
        for (k, v) in [
            ("app", "web"),
            ("app.kubernetes.io/part-of", ""),
            ("A_b.c", "X-y"),
        ] {
            assert_eq!(validate_labels("labels", &labels(&[(k, v)])), Ok(()));
            assert!(LabelSelector::parse(&format!("{k}={v}")).is_ok(), "{k}={v}");
        }
    }
}
