//! Twilio Voice access tokens for agent desktops: `POST /v1/agents/{id}/voice-token` (the
//! agent's own token) answers a short-lived JWT the Twilio Voice SDK `Device` registers with,
//! for the agent's `identity` (the `client:` the worker rings) with a grant for incoming
//! calls. Signed HS256 with the account's API key secret, header `cty: twilio-fpa;v=1`, as
//! Twilio specifies its access tokens. 503 `voice_tokens_unconfigured` without an API key.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::find_agent;
use super::auth::AgentAuth;
use super::error::ApiError;
use super::types::ErrorBody;
use crate::app::AppState;
pub use crate::app::VoiceGrant;

/// How long a voice token lasts unless configured otherwise; the desktop fetches a new one
/// before it ends (the SDK's `tokenWillExpire` event).
pub const DEFAULT_VOICE_TOKEN_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    jti: String,
    iss: String,
    sub: String,
    iat: u64,
    exp: u64,
    grants: Grants,
}

#[derive(Debug, Serialize, Deserialize)]
struct Grants {
    identity: String,
    voice: VoiceClaim,
}

#[derive(Debug, Serialize, Deserialize)]
struct VoiceClaim {
    incoming: Incoming,
}

#[derive(Debug, Serialize, Deserialize)]
struct Incoming {
    allow: bool,
}

/// A Twilio Voice access token for `identity`, issued at `now_s` (unix seconds).
pub fn access_token(
    grant: &VoiceGrant,
    identity: &str,
    now_s: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::HS256);
    header.cty = Some("twilio-fpa;v=1".into());
    let claims = Claims {
        jti: format!("{}-{now_s}", grant.api_key),
        iss: grant.api_key.clone(),
        sub: grant.account_sid.clone(),
        iat: now_s,
        exp: now_s + grant.ttl.as_secs(),
        grants: Grants {
            identity: identity.to_string(),
            voice: VoiceClaim {
                incoming: Incoming { allow: true },
            },
        },
    };
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(grant.api_secret.as_bytes()),
    )
}

/// `POST /v1/agents/{id}/voice-token`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoiceTokenResponse {
    /// The Voice SDK identity the token is for (the agent's `identity`).
    pub identity: String,
    /// The JWT to give `new Device(token)` / `device.updateToken(token)`.
    pub token: String,
    /// Unix seconds; fetch a new token before then.
    pub expires_at: u64,
}

/// A Twilio Voice access token for the agent's own identity, so its desktop's Voice SDK
/// `Device` can register and receive the calls the worker rings.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/voice-token",
    tag = "agent",
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 200, description = "A Voice access token for the agent's identity", body = VoiceTokenResponse),
        (status = 401, description = "Missing, invalid, expired or revoked token (`missing_token`, `invalid_token`, `token_expired`, `token_revoked`)", body = ErrorBody),
        (status = 403, description = "Token of another agent (`forbidden`), or the agent API is off (`agent_api_disabled`)", body = ErrorBody),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
        (status = 503, description = "No Twilio API key configured (`voice_tokens_unconfigured`), or the store is out of reach (`store_unavailable`)", body = ErrorBody),
    ),
    security(("agent_token" = []))
)]
pub async fn voice_token(
    State(app): State<AppState>,
    AgentAuth(id): AgentAuth,
) -> Result<Json<VoiceTokenResponse>, ApiError> {
    let Some(grant) = app.agents.voice.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "voice_tokens_unconfigured",
            "set TWILIO_API_KEY and TWILIO_API_SECRET on callq serve to issue Voice tokens",
        ));
    };
    let agent = find_agent(&app, &id).await?;
    let now_s = jiff::Timestamp::now().as_second().max(0) as u64;
    let token = access_token(grant, &agent.identity, now_s).map_err(|e| {
        tracing::error!(error = %e, "cannot sign a Voice token");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cannot sign a Voice token",
        )
    })?;
    Ok(Json(VoiceTokenResponse {
        identity: agent.identity,
        token,
        expires_at: now_s + grant.ttl.as_secs(),
    }))
}
