//! The small vocabulary every converter shares: a [`Refusal`] that knows only its field path
//! (the resource is added at the top), the "must be unset" checks, and the common protobuf
//! value shapes (durations, wrappers, `Any`).
//!
//! Converters destructure each accepted message without `..`, so the compiler makes a decision
//! for every field; the fields that must stay at their default go through [`unset!`], which
//! names the field in the refusal.

mod address;
mod source;

use std::time::Duration;

use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration as ProtoDuration, UInt32Value};
use prost::{Message, Name};

pub(super) use address::{endpoint_address, socket_address};
pub(super) use source::config_source;

use super::Rejection;

/// Why a field was refused, before the resource is known. Callers prefix the path with
/// [`Refusal::under`] as the error travels up; the top-level converter turns it into a
/// [`Rejection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    /// A proto field path relative to the message being converted (`lb_policy`,
    /// `health_checks[1].timeout`); empty for the message itself.
    pub(super) field: String,
    pub(super) reason: String,
}

/// Conversion result inside the config module.
pub(super) type Result<T> = std::result::Result<T, Refusal>;

impl Refusal {
    pub(super) fn new(field: impl Into<String>, reason: impl Into<String>) -> Refusal {
        Refusal {
            field: clean(field.into()),
            reason: reason.into(),
        }
    }

    /// Prefixes the field path with the field (or `field[i]`) that held the refused message.
    pub(super) fn under(mut self, prefix: impl AsRef<str>) -> Refusal {
        let prefix = clean(prefix.as_ref().to_string());
        self.field = match (prefix.is_empty(), self.field.is_empty()) {
            (true, _) => self.field,
            (false, true) => prefix,
            (false, false) if self.field.starts_with('[') => format!("{prefix}{}", self.field),
            (false, false) => format!("{prefix}.{}", self.field),
        };
        self
    }

    pub(super) fn into_rejection(self, resource: String) -> Rejection {
        Rejection {
            resource,
            field: self.field,
            reason: self.reason,
        }
    }
}

/// `r#match` (from `stringify!`) is the proto field `match`.
fn clean(field: String) -> String {
    if field.contains("r#") {
        field.replace("r#", "")
    } else {
        field
    }
}

/// A set field the proxy does not implement.
pub(super) fn not_supported(field: impl Into<String>) -> Refusal {
    Refusal::new(
        field,
        "is not supported by minimal-proxy; leave it unset (its default)",
    )
}

/// A value the proxy does not implement, with what it does.
pub(super) fn unsupported_value(
    field: impl Into<String>,
    value: impl std::fmt::Display,
    supported: &str,
) -> Refusal {
    Refusal::new(
        field,
        format!("'{value}' is not supported by minimal-proxy; supported: {supported}"),
    )
}

/// An enum number the proto does not define (a newer Envoy API than the proxy was built with).
pub(super) fn unknown_enum(field: impl Into<String>, value: i32, supported: &str) -> Refusal {
    Refusal::new(
        field,
        format!("unknown value {value}; supported: {supported}"),
    )
}

/// A field the proxy needs and Envoy requires.
pub(super) fn required(field: impl Into<String>) -> Refusal {
    Refusal::new(field, "is required")
}

/// Refuses `value` unless it is its type's default (unset, empty, zero, false).
pub(super) fn check_unset<T: Default + PartialEq>(field: &str, value: &T) -> Result<()> {
    if *value == T::default() {
        Ok(())
    } else {
        Err(not_supported(field))
    }
}

/// Refuses each named local (a proto field destructured from a borrowed message, so a
/// reference) that is not at its default; the local's name is the field name in the refusal.
macro_rules! unset {
    ($($field:ident),+ $(,)?) => {
        $( $crate::config::check::check_unset(stringify!($field), $field)?; )+
    };
}
pub(super) use unset;

/// Runs the checks of a nested message as one step, so that the caller can prefix their
/// refusals with the message's field.
pub(super) fn nested(checks: impl FnOnce() -> Result<()>) -> Result<()> {
    checks()
}

/// A protobuf duration as a `Duration`; negative or malformed ones are refused (Envoy's
/// validation refuses them too).
pub(super) fn duration(field: &str, value: &Option<ProtoDuration>) -> Result<Option<Duration>> {
    let Some(d) = value else {
        return Ok(None);
    };
    let seconds = u64::try_from(d.seconds);
    let nanos = u32::try_from(d.nanos).ok().filter(|n| *n < 1_000_000_000);
    match (seconds, nanos) {
        (Ok(s), Some(n)) => Ok(Some(Duration::new(s, n))),
        _ => Err(Refusal::new(
            field,
            format!(
                "must be a non-negative duration, got {}s {}ns",
                d.seconds, d.nanos
            ),
        )),
    }
}

/// A duration Envoy requires to be set and greater than zero.
pub(super) fn positive_duration(field: &str, value: &Option<ProtoDuration>) -> Result<Duration> {
    match duration(field, value)? {
        None => Err(required(field)),
        Some(d) if d.is_zero() => Err(Refusal::new(field, "must be greater than 0s")),
        Some(d) => Ok(d),
    }
}

/// An optional timeout in Envoy's convention: absent means `default`, zero means disabled
/// (`None`).
pub(super) fn timeout(
    field: &str,
    value: &Option<ProtoDuration>,
    default: Duration,
) -> Result<Option<Duration>> {
    Ok(match duration(field, value)? {
        None => Some(default),
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
    })
}

pub(super) fn uint32(value: &Option<UInt32Value>) -> Option<u32> {
    value.as_ref().map(|v| v.value)
}

/// A `BoolValue` that may only be absent or `default`: setting it to its default changes
/// nothing, setting it to the other value is not implemented.
pub(super) fn bool_default(field: &str, value: &Option<BoolValue>, default: bool) -> Result<()> {
    match value {
        Some(v) if v.value != default => Err(Refusal::new(
            field,
            format!(
                "{} is not supported by minimal-proxy; supported: {default}",
                v.value
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether an `Any` holds message `M` (type URL prefixes other than the canonical one are
/// allowed, as in Envoy).
pub(super) fn is<M: Name>(any: &Any) -> bool {
    any.type_url.rsplit('/').next() == Some(M::full_name().as_str())
}

/// Decodes an `Any` known to hold `M`.
pub(super) fn decode<M: Message + Default + Name>(field: &str, any: &Any) -> Result<M> {
    if !is::<M>(any) {
        return Err(Refusal::new(
            field,
            format!("expected {}, got '{}'", M::type_url(), any.type_url),
        ));
    }
    M::decode(any.value.as_slice())
        .map_err(|e| Refusal::new(field, format!("does not decode as {}: {e}", M::full_name())))
}

/// The message name an `Any` holds, for refusals.
pub(super) fn type_name(any: &Any) -> &str {
    any.type_url.rsplit('/').next().unwrap_or_default()
}
