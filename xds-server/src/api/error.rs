//! One JSON error shape for every failure the admin API reports:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    model::{Kind, ValidationError},
    store,
};

/// An error as the client sees it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `invalid_json`, `invalid_field`, `unknown_field`,
    /// `invalid_query`, `invalid_header`, `invalid_path`, `not_found`, `conflict`, `referenced`, `payload_too_large`,
    /// `unauthorized`, `method_not_allowed`, `too_many_taps`, `unavailable`, `store_unavailable`,
    /// `internal`.
    pub code: &'static str,
    /// For people: what was wrong and what to do.
    pub message: String,
    /// The offending field as a JSON path, e.g. `rules[0].destinations[1].weight`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `referenced`: who still uses the resource.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<Referrer>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Referrer {
    pub kind: String,
    pub name: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code,
                message: message.into(),
                field: None,
                referrers: Vec::new(),
            },
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong admin token: send 'Authorization: Bearer <token>'",
        )
    }

    /// A valid token without the right to do this (a reader token on a write).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this path does not support that method; see /api/openapi.json",
        )
    }

    /// The store cannot be reached (or is too busy) right now: a 503 with `Retry-After`. A
    /// write that gets this was not acknowledged; it may still have committed if the
    /// connection broke during the commit, so a conditional write should re-read first.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store (database) is unavailable; retry shortly. The mesh last loaded \
             is still served to proxies. A write answered with this error may not have been \
             applied: read the resource back (GET) before retrying a write that sets a version",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", e.message).with_field(e.field)
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        let message = e.to_string();
        match e {
            store::Error::NotFound { .. } => Self::not_found(message),
            store::Error::Conflict { .. } => Self::new(StatusCode::CONFLICT, "conflict", message),
            store::Error::DanglingReference { field, .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
                    .with_field(field)
            }
            store::Error::Referenced { referrers, .. } => {
                let mut err = Self::new(StatusCode::CONFLICT, "referenced", message);
                err.body.referrers = referrers
                    .into_iter()
                    .map(|(kind, name): (Kind, String)| Referrer {
                        kind: kind.collection().to_string(),
                        name,
                    })
                    .collect();
                err
            }
            e if e.is_unavailable() => {
                tracing::warn!(error = %message, "store unavailable");
                Self::store_unavailable()
            }
            store::Error::Database(_) | store::Error::Migrate(_) => {
                // The detail may name hosts or users: it goes to the log only.
                tracing::error!(error = %message, "store error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the store failed to run the request; see the server log",
                )
            }
            store::Error::Corrupt(_) => {
                tracing::error!(error = %message, "corrupt row in the store");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let retry = self.body.code == "store_unavailable";
        let mut response = (self.status, Json(ErrorEnvelope { error: self.body })).into_response();
        if retry {
            // RFC 9110: how long to wait before retrying a 503, in seconds.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if unauthorized {
            // RFC 9110: a 401 names the scheme the client should use.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"xds-server\""),
            );
        }
        response
    }
}
