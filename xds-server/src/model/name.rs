//! Resource names: DNS-label-like, so they are safe as Envoy resource names, URL path segments
//! and metric labels alike.

use super::{ValidationError, invalid};

/// The longest name accepted, as for a DNS label.
pub const MAX_NAME_LEN: usize = 63;

/// Checks `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn validate_name(field: &str, name: &str) -> Result<(), ValidationError> {
    if name.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(
            field,
            format!(
                "must be at most {MAX_NAME_LEN} characters, got {}",
                name.len()
            ),
        ));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !name.chars().all(ok_char) || name.starts_with('-') || name.ends_with('-') {
        return Err(invalid(
            field,
            format!(
                "'{name}' is not a valid name: use lowercase letters, digits and '-', \
                 starting and ending with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Label keys and values (endpoint labels, subsets, node metadata selectors): non-empty,
/// at most 63 characters of letters, digits, `-`, `_`, `.` and `/`.
pub(crate) fn validate_label(field: &str, text: &str) -> Result<(), ValidationError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/');
    if text.is_empty() || text.len() > MAX_NAME_LEN || !text.chars().all(ok_char) {
        return Err(invalid(
            field,
            format!(
                "'{text}' is not a valid label: 1..=63 characters of letters, digits, '-', '_', '.', '/'"
            ),
        ));
    }
    Ok(())
}
