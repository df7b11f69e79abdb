//! Path parameters: axum's `Path`, refused in the API's JSON error shape. (axum's own
//! rejection is a plain-text 400, e.g. for a segment whose percent-encoding is not UTF-8.)

use axum::{extract::FromRequestParts, http::request::Parts};
use serde::de::DeserializeOwned;

use super::ApiError;

/// Drop-in for `axum::extract::Path` whose rejection is an [`ApiError`].
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(e) if e.status().is_client_error() => Err(ApiError::new(
                e.status(),
                "invalid_path",
                format!(
                    "{}: percent-encode the path as UTF-8; names are lowercase letters, digits \
                     and '-'",
                    e.body_text()
                ),
            )),
            Err(e) => {
                // Only a route whose pattern and extractor disagree gets here: a bug, not input.
                tracing::error!(error = %e.body_text(), "path parameters do not match the route");
                Err(ApiError::new(e.status(), "internal", e.body_text()))
            }
        }
    }
}
