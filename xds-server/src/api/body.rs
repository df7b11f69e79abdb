//! Request bodies: the resource envelope (`name`, `version`) around a typed spec, parsed so
//! that every mistake comes back as an [`ApiError`] naming the field.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, StatusCode, header},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ApiError, AppState};

/// A request body read whole, within the configured size limit.
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.max_body_bytes;
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::payload_too_large(limit))
            }
            Err(e) => Err(ApiError::invalid_json(format!(
                "could not read the body: {e}"
            ))),
        }
    }
}

/// A spec with the envelope fields a client may send along.
#[derive(Debug)]
pub struct Envelope<S> {
    pub spec: S,
    /// Must equal the name in the path when given.
    pub name: Option<String>,
    /// The version the client last read (optimistic concurrency).
    pub version: Option<i64>,
}

/// Parses `bytes` into an envelope around `S`. `created_at`, `updated_at` and `status` (what
/// the server sets) are accepted and ignored, so a resource read with GET can be sent back
/// with PUT unchanged.
pub fn parse<S: DeserializeOwned>(bytes: &[u8]) -> Result<Envelope<S>, ApiError> {
    let mut value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_json(format!("body is not valid JSON: {e}")))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid_json("body must be a JSON object"))?;
    let name = match obj.remove("name") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(invalid("name", "must be a string")),
    };
    let version = match obj.remove("version") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|v| *v >= 0)
                .ok_or_else(|| invalid("version", "must be a non-negative integer"))?,
        ),
    };
    obj.remove("created_at");
    obj.remove("updated_at");
    obj.remove("status");
    let spec = serde_path_to_error::deserialize(value).map_err(from_serde)?;
    Ok(Envelope {
        spec,
        name,
        version,
    })
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(field)
}

/// Turns serde's message into our shape: unknown and missing fields get their own path.
pub(super) fn from_serde(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let parent = e.path().to_string();
    let message = e.inner().to_string();
    let join = |child: &str| match parent.as_str() {
        "." | "" => child.to_string(),
        p => format!("{p}.{child}"),
    };
    let quoted = message.split('`').nth(1).unwrap_or_default();
    if message.starts_with("unknown field") {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
            message.clone(),
        )
        .with_field(parent) // serde_path_to_error's path already ends at the unknown key
    } else if message.starts_with("missing field") {
        invalid(&join(quoted), &format!("{message}: it is required"))
    } else {
        let err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message);
        if parent == "." {
            err
        } else {
            err.with_field(parent)
        }
    }
}

/// The version a write expects: from the body or `If-Match` (`3` or `"3"`); both must agree.
pub fn expected_version(headers: &HeaderMap, body: Option<i64>) -> Result<Option<i64>, ApiError> {
    let header = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(|s| s.trim().trim_matches('"'))
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|v| *v >= 0)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_header",
                        "If-Match must be a resource version, e.g. If-Match: 3",
                    )
                })?,
        ),
    };
    match (header, body) {
        (Some(h), Some(b)) if h != b => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            format!("If-Match says version {h} but the body says {b}; send one"),
        )),
        (h, b) => Ok(h.or(b)),
    }
}
