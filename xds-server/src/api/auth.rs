//! Admin API roles. When an admin token is configured, every request but the health checks
//! must carry `Authorization: Bearer <token>`: the admin token may do anything, a reader token
//! may only read (GET/HEAD, the tap). Comparisons take the same time wherever the tokens
//! differ, and no token is ever logged.

use axum::{
    extract::{Request, State},
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};

/// Paths that load balancers and orchestrators probe without credentials.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];

/// What a presented token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads only: GET and HEAD.
    Reader,
    /// Everything, including writes and minting proxy tokens.
    Admin,
}

pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(admin) = state.admin_token.as_deref() else {
        // No token configured: the API is open (loopback by default), everyone is admin.
        req.extensions_mut().insert(Role::Admin);
        return next.run(req).await;
    };
    if OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let Some(presented) = bearer(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    ) else {
        return ApiError::unauthorized().into_response();
    };
    let Some(role) = role_of(presented, admin, &state.reader_tokens) else {
        return ApiError::unauthorized().into_response();
    };
    if role == Role::Reader && !is_read(req.method()) {
        return ApiError::forbidden("this token may only read (GET): changes need the admin token")
            .into_response();
    }
    req.extensions_mut().insert(role);
    next.run(req).await
}

/// The token of an `Authorization: Bearer <token>` value. The scheme name is case-insensitive
/// (RFC 9110); the token is not.
pub fn bearer(value: Option<&[u8]>) -> Option<&[u8]> {
    value
        .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "))
        .map(|v| &v[7..])
}

/// The role `presented` grants, comparing against every token in constant time each (every
/// reader token is compared even after a match, so timing says nothing about which matched).
fn role_of(presented: &[u8], admin: &str, readers: &[std::sync::Arc<str>]) -> Option<Role> {
    if bool::from(presented.ct_eq(admin.as_bytes())) {
        return Some(Role::Admin);
    }
    let reader = readers.iter().fold(subtle::Choice::from(0), |found, t| {
        found | presented.ct_eq(t.as_bytes())
    });
    bool::from(reader).then_some(Role::Reader)
}

/// Methods that change nothing.
fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses a request a reader token made where admin is needed (e.g. a GET that mints a
/// token). Requests on an API without tokens are admin.
pub fn require_admin(role: Option<&Role>) -> Result<(), ApiError> {
    match role {
        Some(Role::Admin) => Ok(()),
        _ => Err(ApiError::forbidden(
            "this needs the admin token: a reader token may only read",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_the_exact_token() {
        let readers: Vec<std::sync::Arc<str>> = vec!["r1".into(), "r2".into()];
        assert_eq!(role_of(b"adm", "adm", &readers), Some(Role::Admin));
        assert_eq!(role_of(b"r2", "adm", &readers), Some(Role::Reader));
        assert_eq!(role_of(b"r", "adm", &readers), None);
        assert_eq!(role_of(b"ADM", "adm", &readers), None);
        assert_eq!(bearer(Some(b"BEARER x")), Some(&b"x"[..]));
        assert_eq!(bearer(Some(b"Basic x")), None);
        assert_eq!(bearer(Some(b"Bearer ")), None);
    }
}
