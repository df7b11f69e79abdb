//! `*_headers_to_add` / `*_headers_to_remove` → [`HeaderMutation`].
//!
//! As in Envoy: pseudo-headers and `host` cannot be changed; a value with no content is not
//! added (unless `keep_empty_value`, which is refused); `%` starts a formatter command, which
//! is refused, and `%%` is a literal `%`.

use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, header_value_option::HeaderAppendAction,
};

use crate::config::{
    HeaderMutation,
    check::{self, Refusal, Result, required, unset},
};

const ACTIONS: &str = "APPEND_IF_EXISTS_OR_ADD, OVERWRITE_IF_EXISTS_OR_ADD";

/// One direction's changes; `prefix` is `request` or `response` (for the field names).
pub(in crate::config) fn mutation(
    prefix: &str,
    add: &[HeaderValueOption],
    remove: &[String],
) -> Result<HeaderMutation> {
    let mut out = HeaderMutation::default();
    for (i, option) in add.iter().enumerate() {
        let field = format!("{prefix}_headers_to_add[{i}]");
        if let Some(entry) = header_option(option).map_err(|r| r.under(&field))? {
            out.add.push(entry);
        }
    }
    for (i, name) in remove.iter().enumerate() {
        let field = format!("{prefix}_headers_to_remove[{i}]");
        out.remove.push(header_name(&field, name)?);
    }
    Ok(out)
}

/// `(name, value, append)`, or `None` for an empty value (Envoy skips those).
#[allow(deprecated)] // `append` is deprecated and still honoured, as by Envoy.
fn header_option(
    o: &HeaderValueOption,
) -> Result<Option<(http::HeaderName, http::HeaderValue, bool)>> {
    let HeaderValueOption {
        header,
        append,
        append_action,
        keep_empty_value,
    } = o;
    unset!(keep_empty_value);
    let action = HeaderAppendAction::try_from(*append_action)
        .map_err(|_| check::unknown_enum("append_action", *append_action, ACTIONS))?;
    let append = match (append, action) {
        (Some(a), HeaderAppendAction::AppendIfExistsOrAdd) => a.value,
        (Some(_), _) => {
            return Err(Refusal::new(
                "append",
                "must not be set together with append_action (Envoy refuses both)",
            ));
        }
        (None, HeaderAppendAction::AppendIfExistsOrAdd) => true,
        (None, HeaderAppendAction::OverwriteIfExistsOrAdd) => false,
        (None, other) => {
            return Err(check::unsupported_value(
                "append_action",
                other.as_str_name(),
                ACTIONS,
            ));
        }
    };
    let Some(HeaderValue {
        key,
        value,
        raw_value,
    }) = header
    else {
        return Err(required("header"));
    };
    check::nested(|| {
        unset!(raw_value);
        Ok(())
    })
    .map_err(|r| r.under("header"))?;
    let name = header_name("header.key", key)?;
    let value = literal(value).map_err(|r| r.under("header"))?;
    if value.is_empty() {
        return Ok(None);
    }
    let value = http::HeaderValue::from_str(&value)
        .map_err(|_| Refusal::new("header.value", "is not a valid header value"))?;
    Ok(Some((name, value, append)))
}

/// A header name that may be changed: not a pseudo-header, not `host` (Envoy refuses both).
fn header_name(field: &str, name: &str) -> Result<http::HeaderName> {
    if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
        return Err(Refusal::new(
            field,
            format!("'{name}' cannot be changed: pseudo-headers and host are not modifiable"),
        ));
    }
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Refusal::new(field, format!("'{name}' is not a valid header name")))
}

/// The value with `%%` unescaped; any other `%` would start a formatter command.
fn literal(value: &str) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('%') {
            out.push('%');
        } else {
            return Err(Refusal::new(
                "value",
                "header value formatters (%COMMAND%) are not supported by minimal-proxy; \
                 write %% for a literal %",
            ));
        }
    }
    Ok(out)
}
