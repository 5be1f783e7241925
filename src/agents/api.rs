//! The agent API, called by the agent's desktop with its own token: heartbeat, status, a
//! look at itself and at the queues it serves.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::auth::{mint, token_ttl, AgentAuth, AgentToken};
use super::error::{shorten, store, store_raw, ApiError, ApiJson, OptionalJson};
use super::types::{
    AgentQueueList, AgentQueueView, AgentView, ErrorBody, HeartbeatRequest, HeartbeatResponse,
    StatusRequest, StatusResponse, TokenRequest, TokenResponse, TransferRequest, TransferResponse,
};
use crate::app::AppState;
use crate::store::{check_name, AgentStatus, HandOver, StatusChange, StoreError};

/// How long a queue's numbers are reused across agents' requests to this server: every
/// desktop polls them, and they need not be fresher than this.
pub const QUEUE_VIEW_TTL: Duration = Duration::from_secs(1);

/// Longest status reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// The agent's desktop is alive: refresh its heartbeat for the server's TTL.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/heartbeat",
    tag = "agent",
    params(("id" = String, Path, description = "The agent's id")),
    request_body = HeartbeatRequest,
    responses(
        (status = 200, description = "Heartbeat recorded", body = HeartbeatResponse),
        (status = 401, description = "Missing, invalid, expired or revoked token (`missing_token`, `invalid_token`, `token_expired`, `token_revoked`)", body = ErrorBody),
        (status = 403, description = "Token of another agent (`forbidden`), or the agent API is off (`agent_api_disabled`)", body = ErrorBody),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Invalid body; `field` names the field", body = ErrorBody),
    ),
    security(("agent_token" = []))
)]
pub async fn heartbeat(
    State(app): State<AppState>,
    AgentAuth(id): AgentAuth,
    ApiJson(req): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let ttl = app.agents.heartbeat_ttl;
    // the `device_check` feature off: a live heartbeat is enough, whatever the device says
    let registered = req.device_registered || !app.features().await.device_check;
    let status = store(app.store.heartbeat(&id, ttl, registered)).await?;
    metrics::counter!("callq_agent_heartbeats_total").increment(1);
    Ok(Json(HeartbeatResponse {
        status,
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
    }))
}

/// Go available, paused or offline. On a call, paused or offline is recorded and applied
/// when the call ends (409 `deferred_until_call_ends`).
#[utoipa::path(
    put,
    path = "/v1/agents/{id}/status",
    tag = "agent",
    params(("id" = String, Path, description = "The agent's id")),
    request_body = StatusRequest,
    responses(
        (status = 200, description = "Status applied", body = StatusResponse),
        (status = 409, description = "On a call: recorded, applied when the call ends (`deferred_until_call_ends`)", body = ErrorBody),
        (status = 401, description = "Missing, invalid, expired or revoked token (`missing_token`, `invalid_token`, `token_expired`, `token_revoked`)", body = ErrorBody),
        (status = 403, description = "Token of another agent (`forbidden`), or the agent API is off (`agent_api_disabled`)", body = ErrorBody),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Invalid body; `field` names the field", body = ErrorBody),
    ),
    security(("agent_token" = []))
)]
pub async fn set_status(
    State(app): State<AppState>,
    AgentAuth(id): AgentAuth,
    ApiJson(req): ApiJson<StatusRequest>,
) -> Result<Json<StatusResponse>, ApiError> {
    apply_status(&app, &id, req, "").await
}

/// The agent as routing sees it (also a way to check a token).
#[utoipa::path(
    get,
    path = "/v1/agents/{id}",
    tag = "agent",
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 200, description = "The agent", body = AgentView),
        (status = 401, description = "Missing, invalid, expired or revoked token (`missing_token`, `invalid_token`, `token_expired`, `token_revoked`)", body = ErrorBody),
        (status = 403, description = "Token of another agent (`forbidden`), or the agent API is off (`agent_api_disabled`)", body = ErrorBody),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
    ),
    security(("agent_token" = []))
)]
pub async fn me(
    State(app): State<AppState>,
    AgentAuth(id): AgentAuth,
) -> Result<Json<AgentView>, ApiError> {
    find_agent(&app, &id).await.map(Json)
}

/// The queues the agent serves, each with its line now: calls waiting, the oldest wait, the
/// estimated wait and the agents ready. A queue no longer configured is left out.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/queues",
    tag = "agent",
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 200, description = "The agent's queues", body = AgentQueueList),
        (status = 401, description = "Missing, invalid, expired or revoked token (`missing_token`, `invalid_token`, `token_expired`, `token_revoked`)", body = ErrorBody),
        (status = 403, description = "Token of another agent (`forbidden`), or the agent API is off (`agent_api_disabled`)", body = ErrorBody),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
    ),
    security(("agent_token" = []))
)]
pub async fn my_queues(
    State(app): State<AppState>,
    AgentAuth(id): AgentAuth,
) -> Result<Json<AgentQueueList>, ApiError> {
    let agent = find_agent(&app, &id).await?;
    let mut queues = Vec::with_capacity(agent.queues.len());
    for qt in agent.queues {
        let stats = app
            .stats_cache
            .queue_stats(&app.store, &qt.queue, QUEUE_VIEW_TTL);
        match store_raw(stats).await {
            Ok(s) => queues.push(AgentQueueView {
                waiting: s.waiting,
                oldest_wait_s: s.oldest_wait_s,
                estimated_wait_s: s.estimated_wait_s,
                available: s.count(AgentStatus::Available),
                queue: qt.queue,
                tier: qt.tier,
            }),
            // removed from the configuration since the profile was written: leave it out
            Err(StoreError::UnknownQueue(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(AgentQueueList { queues }))
}

/// Trade the agent's live token for a fresh one (same agent, same generation), so a desktop
/// left running through several shifts never needs the admin token. The body is optional.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/token",
    tag = "agent",
    params(("id" = String, Path, description = "The agent's id")),
    request_body(content = Option<TokenRequest>, description = "Optional; `{}` or no body for 12 hours"),
    responses(
        (status = 200, description = "A new token for this agent", body = TokenResponse),
        (status = 401, description = "Missing, invalid, expired or revoked token (`missing_token`, `invalid_token`, `token_expired`, `token_revoked`)", body = ErrorBody),
        (status = 403, description = "Token of another agent (`forbidden`), or the agent API is off (`agent_api_disabled`)", body = ErrorBody),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "ttl_s out of range", body = ErrorBody),
    ),
    security(("agent_token" = []))
)]
pub async fn refresh_token(
    State(app): State<AppState>,
    AgentToken { claims }: AgentToken,
    OptionalJson(req): OptionalJson<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let ttl = token_ttl(&req)?;
    mint(&app, &claims.agent_id, &claims.generation, ttl).map(Json)
}

/// Read one agent; 404 when there is none (ids that cannot exist included).
pub(crate) async fn find_agent(app: &AppState, id: &str) -> Result<AgentView, ApiError> {
    if crate::store::check_name("agent id", id).is_err() {
        return Err(ApiError::agent_not_found(id));
    }
    store(app.store.agent(id))
        .await?
        .map(AgentView::from)
        .ok_or_else(|| ApiError::agent_not_found(id))
}

/// Ask the store for a status, shared by the agent's and the supervisor's routes; an empty
/// reason becomes `default_reason`.
pub(crate) async fn apply_status(
    app: &AppState,
    id: &str,
    req: StatusRequest,
    default_reason: &str,
) -> Result<Json<StatusResponse>, ApiError> {
    let reason = req.reason.as_deref().unwrap_or("").trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::invalid(
            "reason",
            format!("reason: at most {MAX_REASON_CHARS} characters"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ApiError::invalid("reason", "reason: no control characters"));
    }
    let reason = if reason.is_empty() {
        default_reason
    } else {
        reason
    };
    if crate::store::check_name("agent id", id).is_err() {
        return Err(ApiError::agent_not_found(id));
    }
    match store(app.store.set_agent_status(id, req.status, reason)).await? {
        StatusChange::Applied(status) => Ok(Json(StatusResponse { status })),
        StatusChange::Deferred(wanted) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "deferred_until_call_ends",
            format!("agent {id:?} is on a call: it goes {wanted} when the call ends"),
        )),
    }
}

/// Transfer a call connected to this agent: the caller waits again, in `queue` (at the place
/// they had, unless that queue puts transfers at the back) and, with `agent`, for that agent
/// first; this agent goes to wrap-up. Hang up your own leg next: the caller then holds in
/// the target queue until the next agent takes the call.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/transfer",
    tag = "agent",
    params(("id" = String, Path, description = "The agent's id")),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "Transferred", body = TransferResponse),
        (status = 404, description = "Unknown call (`call_not_found`) or agent (`agent_not_found`)", body = ErrorBody),
        (status = 409, description = "The call is not connected to this agent (`call_not_connected`, `not_your_call`)", body = ErrorBody),
        (status = 401, description = "Missing, invalid, expired or revoked token (`missing_token`, `invalid_token`, `token_expired`, `token_revoked`)", body = ErrorBody),
        (status = 403, description = "Token of another agent (`forbidden`), or the agent API is off (`agent_api_disabled`)", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Invalid body, unknown queue (`unknown_queue`) or agent to transfer to; `field` names the field", body = ErrorBody),
    ),
    security(("agent_token" = []))
)]
pub async fn transfer(
    State(app): State<AppState>,
    AgentAuth(id): AgentAuth,
    ApiJson(req): ApiJson<TransferRequest>,
) -> Result<Json<TransferResponse>, ApiError> {
    let named = |field: &str, v: &str| {
        check_name("name", v).map_err(|_| {
            ApiError::invalid(
                field,
                format!(
                    "{field} {:?}: use 1-64 letters, digits, '_', '-' or '.'",
                    shorten(v)
                ),
            )
        })
    };
    named("call", &req.call)?;
    if let Some(q) = &req.queue {
        named("queue", q)?;
    }
    if let Some(a) = &req.agent {
        named("agent", a)?;
    }
    if req.queue.is_none() && req.agent.is_none() {
        return Err(ApiError::invalid(
            "queue",
            "give a queue, an agent, or both",
        ));
    }
    let call = store(app.store.call(&req.call)).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "call_not_found",
            format!("no call {:?}", shorten(&req.call)),
        )
    })?;
    let queue = req.queue.clone().unwrap_or(call.queue);
    let outcome =
        store_raw(
            app.store
                .transfer_connected(&req.call, &id, &queue, req.agent.as_deref()),
        )
        .await
        .map_err(|e| ApiError::from(e).on("queue"))?;
    match outcome {
        HandOver::Transferred { from_queue } => {
            tracing::info!(agent = %id, call_sid = %req.call, queue = %queue, to_agent = ?req.agent, "call transferred");
            Ok(Json(TransferResponse {
                call: req.call,
                queue,
                from_queue,
                agent: req.agent,
            }))
        }
        HandOver::Stale(state) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "call_not_connected",
            format!(
                "call {:?} is not connected ({})",
                shorten(&req.call),
                state.map_or("unknown".to_string(), |s| s.to_string())
            ),
        )),
        HandOver::NotYours => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_your_call",
            format!(
                "call {:?} is connected to another agent",
                shorten(&req.call)
            ),
        )),
        HandOver::UnknownAgent => Err(ApiError::invalid(
            "agent",
            format!(
                "agent {:?}: no such agent (or yourself)",
                shorten(req.agent.as_deref().unwrap_or(""))
            ),
        )),
    }
}
