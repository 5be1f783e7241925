//! Who may call what. Agent routes take a bearer token made by [`super::token::issue`] that is
//! valid for the agent in the URL only; admin routes take the configured admin token. Both
//! run as extractors ahead of the body, so a caller without the right credential learns
//! nothing about the body it sent and changes nothing.
//!
//! Answers: no `Authorization: Bearer` header → 401 `missing_token`; a token that is not
//! genuine (garbage, another secret, an admin token on an agent route, an agent token on an
//! admin route, a wrong admin token) → 401 `invalid_token`; a genuine agent token past its
//! expiry → 401 `token_expired`; another agent's genuine token → 403 `forbidden`; a genuine
//! token issued before the agent's tokens were revoked, or to an agent since deleted and
//! re-created → 401 `token_revoked`; a token for an agent that no longer exists → 404; an empty
//! configured admin token (admin API off) → 403 `admin_disabled`; an empty agent secret
//! (agent API off) → 403 `agent_api_disabled`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::error::{store, ApiError, ApiPath};
use super::token::{self, TokenError};
use super::types::{TokenRequest, TokenResponse};
use crate::app::AppState;

/// Token lifetime when the request names none: one long shift.
pub const DEFAULT_TOKEN_TTL_S: u64 = 12 * 3600;
/// Longest token lifetime the API issues.
pub const MAX_TOKEN_TTL_S: u64 = 7 * 86_400;
use crate::store::check_name;

/// Proof that the request carries a live token for the agent named in the path (`{id}`):
/// genuine, unexpired, issued to that agent, under its current token generation. Holds that
/// agent's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAuth(pub String);

/// [`AgentAuth`] together with the claims of the token that proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentToken {
    pub claims: token::AgentClaims,
}

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let AgentToken { claims } = AgentToken::from_request_parts(parts, app).await?;
        Ok(AgentAuth(claims.agent_id))
    }
}

/// A genuine, unexpired agent token issued to the agent of the path, not yet checked against
/// the agent's current token generation: for a handler whose own store call checks it in the
/// same round trip (the heartbeat). Every other handler takes [`AgentAuth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentClaimed {
    pub claims: token::AgentClaims,
}

impl FromRequestParts<AppState> for AgentClaimed {
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
        if check_name("agent id", &id).is_err() {
            return Err(ApiError::agent_not_found(&id));
        }
        Ok(AgentClaimed { claims })
    }
}

impl FromRequestParts<AppState> for AgentToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let AgentClaimed { claims } = AgentClaimed::from_request_parts(parts, app).await?;
        let id = claims.agent_id.clone();
        // One read per request: revocation takes effect on the agent's next call.
        match store(app.store.token_generation(&id)).await? {
            Some(current) if constant_time_eq(current.as_bytes(), claims.generation.as_bytes()) => {
                Ok(AgentToken { claims })
            }
            Some(_) => Err(ApiError::unauthorized(
                "token_revoked",
                "this agent's tokens were revoked; ask for a new one",
            )),
            None => match store(app.store.agent(&id)).await? {
                Some(_) => Err(ApiError::unauthorized(
                    "token_revoked",
                    "this agent's tokens were revoked; ask for a new one",
                )),
                None => Err(ApiError::agent_not_found(&id)),
            },
        }
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

/// A token for `agent_id` under `generation`, living `ttl_s` seconds from now (the caller has
/// checked `ttl_s` against [`MAX_TOKEN_TTL_S`]).
pub(crate) fn mint(
    app: &AppState,
    agent_id: &str,
    generation: &str,
    ttl_s: u64,
) -> Result<TokenResponse, ApiError> {
    let ttl_s = ttl_s.min(MAX_TOKEN_TTL_S);
    // ttl_s <= 7 days, so this cannot overflow
    let expires_at = now_unix_s() + ttl_s as i64;
    let token =
        token::issue(&app.agents.agent_secret, agent_id, generation, expires_at).map_err(|e| {
            match e {
            TokenError::EmptySecret => ApiError::forbidden(
                "agent_api_disabled",
                "the agent API is disabled: the server has no agent secret (CALLQ_AGENT_SECRET)",
            ),
            other => ApiError::invalid("id", other.to_string()),
        }
        })?;
    Ok(TokenResponse {
        agent: agent_id.to_string(),
        token,
        expires_at,
    })
}

/// A requested token lifetime, or the default; 422 outside 1 s to 7 days.
pub(crate) fn token_ttl(req: &TokenRequest) -> Result<u64, ApiError> {
    let ttl = req.ttl_s.unwrap_or(DEFAULT_TOKEN_TTL_S);
    if !(1..=MAX_TOKEN_TTL_S).contains(&ttl) {
        return Err(ApiError::invalid(
            "ttl_s",
            format!("ttl_s: 1 to {MAX_TOKEN_TTL_S} seconds (7 days)"),
        ));
    }
    Ok(ttl)
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
