//! Who may call what. Agent routes take a bearer token made by [`super::token::issue`] that is
//! valid for the agent in the URL only; admin routes take the configured admin token. Both
//! run as extractors ahead of the body, so a caller without the right credential learns
//! nothing about the body it sent and changes nothing.
//!
//! Answers: no `Authorization: Bearer` header → 401 `missing_token`; a token that is not
//! genuine (garbage, another secret, an admin token on an agent route, an agent token on an
//! admin route, a wrong admin token) → 401 `invalid_token`; a genuine agent token past its
//! expiry → 401 `token_expired`; another agent's genuine token → 403 `forbidden`; an empty
//! configured admin token (admin API off) → 403 `admin_disabled`; an empty agent secret
//! (agent API off) → 403 `agent_api_disabled`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiPath};
use super::token::{self, TokenError};
use crate::app::AppState;

/// Proof that the request carries a live token for the agent named in the path (`{id}`).
/// Holds that agent's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAuth(pub String);

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let claims = verify_agent_token(&parts.headers, &app.agents.agent_secret)?;
        let ApiPath(id) = ApiPath::<String>::from_request_parts(parts, app).await?;
        if !claims.is_for(&id) {
            return Err(ApiError::forbidden(
                "forbidden",
                "this token is for another agent",
            ));
        }
        Ok(AgentAuth(id))
    }
}

fn verify_agent_token(headers: &HeaderMap, secret: &[u8]) -> Result<token::AgentClaims, ApiError> {
    if secret.is_empty() {
        return Err(ApiError::forbidden(
            "agent_api_disabled",
            "the agent API is disabled: the server has no agent secret (CALLQ_AGENT_SECRET)",
        ));
    }
    let bearer = bearer(headers)?;
    token::verify(secret, bearer, now_unix_s()).map_err(|e| match e {
        TokenError::Expired => ApiError::unauthorized(
            "token_expired",
            "the agent token has expired; ask for a new one",
        ),
        _ => ApiError::unauthorized(
            "invalid_token",
            "the bearer token is not a valid agent token",
        ),
    })
}

/// Proof that the request carries the admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let configured = app.agents.admin_token.as_bytes();
        if configured.is_empty() {
            return Err(ApiError::forbidden(
                "admin_disabled",
                "the admin API is disabled: the server has no admin token (CALLQ_ADMIN_TOKEN)",
            ));
        }
        let given = bearer(&parts.headers)?;
        if !constant_time_eq(given.as_bytes(), configured) {
            return Err(ApiError::unauthorized(
                "invalid_token",
                "the bearer token is not the admin token",
            ));
        }
        Ok(AdminAuth)
    }
}

/// The credentials of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let missing = || ApiError::unauthorized("missing_token", "send Authorization: Bearer <token>");
    let value = headers.get(AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, credentials) = value.trim().split_once(' ').ok_or_else(missing)?;
    let credentials = credentials.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || credentials.is_empty() {
        return Err(missing());
    }
    Ok(credentials)
}

/// Equality whose time depends on neither the contents nor the lengths: both sides are
/// hashed first, then every byte of the digests is compared.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    let diff = da
        .iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Seconds since the Unix epoch, as tokens count them.
pub fn now_unix_s() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(auth).expect("header"));
        h
    }

    #[test]
    fn bearer_reads_the_credentials() {
        assert_eq!(bearer(&headers("Bearer abc")).ok(), Some("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")).ok(), Some("abc"));
        for bad in ["", "Bearer", "Bearer ", "Basic abc", "abc", "Token abc"] {
            let e = bearer(&headers(bad)).expect_err(bad);
            assert_eq!(e.code, "missing_token", "{bad}");
        }
        assert!(bearer(&HeaderMap::new()).is_err());
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
