//! `/api/v1/proxy-tokens`: issue, list and revoke the tokens proxies present on the xDS port.
//! The secret is in the answer to its POST and nowhere else: the store keeps its SHA-256.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, body::Body, path::Path};
use crate::{proxy_auth::secret, store::ProxyToken};

/// Longest node id or cluster accepted, in characters (the bootstrap's limit too).
const MAX_ID_LEN: usize = 256;
const MAX_DESCRIPTION_LEN: usize = 1024;

/// The body of a POST.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProxyToken {
    pub node_id: String,
    pub node_cluster: String,
    /// Free text for operators ("" = none); `null` is refused, as the document says.
    #[serde(default)]
    pub description: String,
}

/// A token as listed: never the secret, nor its hash.
#[derive(Debug, Serialize)]
pub struct ProxyTokenView {
    pub id: String,
    pub node_id: String,
    pub node_cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: String,
}

impl From<&ProxyToken> for ProxyTokenView {
    fn from(t: &ProxyToken) -> Self {
        Self {
            id: t.id.clone(),
            node_id: t.node_id.clone(),
            node_cluster: t.node_cluster.clone(),
            description: t.description.clone(),
            created_at: t.created_at.to_rfc3339(),
        }
    }
}

/// An issued token: the view plus the secret, shown this once.
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub view: ProxyTokenView,
    /// The secret itself: `Authorization: Bearer <token>` on the xDS port.
    pub token: String,
}

/// `POST /api/v1/proxy-tokens` → 201 with the secret.
pub async fn proxy_tokens_create(
    State(state): State<AppState>,
    Body(bytes): Body,
) -> Result<Response, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid_json(format!("body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid_json("body must be a JSON object"));
    }
    let new: NewProxyToken =
        serde_path_to_error::deserialize(value).map_err(super::body::from_serde)?;
    validate(&new)?;
    let issued = issue(&state, new).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// `GET /api/v1/proxy-tokens`.
pub async fn proxy_tokens_list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tokens = state.store.proxy_tokens().await?;
    let items: Vec<ProxyTokenView> = tokens.iter().map(ProxyTokenView::from).collect();
    Ok(Json(serde_json::json!({ "items": items })).into_response())
}

/// `DELETE /api/v1/proxy-tokens/{id}` → 204; the proxies using it lose their streams.
pub async fn proxy_tokens_delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !state.store.proxy_token_revoke(&id).await? {
        return Err(ApiError::not_found(format!(
            "proxy token '{id}' does not exist (GET /api/v1/proxy-tokens lists them)"
        )));
    }
    tracing::info!(token = %id, "proxy token revoked");
    reload(&state).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Mints, stores and announces a token for `new`; also what `bootstrap?token=issue` uses.
pub(super) async fn issue(state: &AppState, new: NewProxyToken) -> Result<IssuedToken, ApiError> {
    let minted = secret::mint();
    let token = ProxyToken {
        id: minted.id,
        secret_sha256: minted.secret_sha256,
        node_id: new.node_id,
        node_cluster: new.node_cluster,
        description: Some(new.description).filter(|d| !d.is_empty()),
        created_at: Utc::now().trunc_subsecs(0),
    };
    state.store.proxy_token_create(&token).await?;
    tracing::info!(token = %token.id, node = %token.node_id, cluster = %token.node_cluster, "proxy token issued");
    reload(state).await;
    Ok(IssuedToken {
        view: ProxyTokenView::from(&token),
        token: minted.secret,
    })
}

/// This replica's xDS port sees the change at once (others follow the store's revision).
async fn reload(state: &AppState) {
    if let Err(e) = state.proxy_auth.reload().await {
        tracing::warn!(error = %e, "could not reload proxy tokens after a change");
    }
}

/// The field-level checks of a new token.
pub(super) fn validate(new: &NewProxyToken) -> Result<(), ApiError> {
    let check = |field: &str, value: &str, max: usize, required: bool| {
        let bad = |why: &str| {
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                why.to_string(),
            )
            .with_field(field))
        };
        if required && value.is_empty() {
            return bad(&format!("{field} must not be empty: name the proxy's node"));
        }
        if value.chars().count() > max {
            return bad(&format!("{field} is longer than {max} characters"));
        }
        if value.chars().any(char::is_control) {
            return bad(&format!("{field} must not contain control characters"));
        }
        Ok(())
    };
    check("node_id", &new.node_id, MAX_ID_LEN, true)?;
    check("node_cluster", &new.node_cluster, MAX_ID_LEN, true)?;
    check("description", &new.description, MAX_DESCRIPTION_LEN, false)
}
