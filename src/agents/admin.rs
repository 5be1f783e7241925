//! The admin API, for supervisors' tools and provisioning scripts (admin token): agents
//! (create, change, list, show, delete, issue tokens, set status), queues' live numbers, and
//! one call's history.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::api::{apply_status, find_agent};
use super::auth::{mint, token_ttl, AdminAuth};
use super::error::{shorten, store, store_raw, ApiError, ApiJson, ApiPath, OptionalJson};
use super::types::{
    AgentList, AgentView, CallDetail, CallEvent, CallView, CreateAgentRequest, ErrorBody,
    QueueList, QueueTier, QueueView, SkillLevel, StatusRequest, StatusResponse, TokenRequest,
    TokenResponse, UpdateAgentRequest,
};
use crate::app::AppState;
use crate::store::{check_name, AgentSpec, Skills, StoreError, Transition, UpsertMode};

/// Longest `<Client>` identity Twilio accepts.
pub const MAX_IDENTITY_LEN: usize = 121;
/// Most queues one agent serves.
pub const MAX_AGENT_QUEUES: usize = 32;

/// Create an agent; it starts offline until it heartbeats and goes available.
#[utoipa::path(
    post,
    path = "/v1/admin/agents",
    tag = "admin",
    request_body = CreateAgentRequest,
    responses(
        (status = 201, description = "Created", body = AgentView,
            headers(("Location" = String, description = "The new agent's admin URL"))),
        (status = 409, description = "The agent exists (`agent_exists`)", body = ErrorBody),
        (status = 422, description = "Invalid body or unknown queue; `field` names the field", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn create_agent(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiJson(req): ApiJson<CreateAgentRequest>,
) -> Result<Response, ApiError> {
    let spec = agent_spec(
        &req.id,
        req.identity,
        req.queues,
        req.capacity,
        req.skills,
        (req.order, req.weight),
    )?;
    store_raw(app.store.upsert_agent(&spec, UpsertMode::Create))
        .await
        .map_err(|e| queue_field(e, &spec))?;
    let view = find_agent(&app, &spec.id).await?;
    let location = HeaderValue::from_str(&format!("/v1/admin/agents/{}", spec.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/v1/admin/agents"));
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(view)).into_response())
}

/// Replace an agent's profile (identity, queues and tiers, capacity); its status is kept.
#[utoipa::path(
    put,
    path = "/v1/admin/agents/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The agent's id")),
    request_body = UpdateAgentRequest,
    responses(
        (status = 200, description = "Updated", body = AgentView),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
        (status = 422, description = "Invalid body or unknown queue; `field` names the field", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn update_agent(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateAgentRequest>,
) -> Result<Json<AgentView>, ApiError> {
    if check_name("agent id", &id).is_err() {
        return Err(ApiError::agent_not_found(&id));
    }
    let spec = agent_spec(
        &id,
        req.identity,
        req.queues,
        req.capacity,
        req.skills,
        (req.order, req.weight),
    )?;
    store_raw(app.store.upsert_agent(&spec, UpsertMode::Update))
        .await
        .map_err(|e| queue_field(e, &spec))?;
    find_agent(&app, &id).await.map(Json)
}

/// Every agent, sorted by id.
#[utoipa::path(
    get,
    path = "/v1/admin/agents",
    tag = "admin",
    responses(
        (status = 200, description = "All agents", body = AgentList),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn list_agents(
    State(app): State<AppState>,
    _: AdminAuth,
) -> Result<Json<AgentList>, ApiError> {
    let agents = store(app.store.agents()).await?;
    Ok(Json(AgentList {
        agents: agents.into_iter().map(AgentView::from).collect(),
    }))
}

/// One agent.
#[utoipa::path(
    get,
    path = "/v1/admin/agents/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 200, description = "The agent", body = AgentView),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn get_agent(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentView>, ApiError> {
    find_agent(&app, &id).await.map(Json)
}

/// Remove an agent; refused (409 `agent_on_call`) while it holds a call.
#[utoipa::path(
    delete,
    path = "/v1/admin/agents/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
        (status = 409, description = "On a call (`agent_on_call`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn delete_agent(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if check_name("agent id", &id).is_err() {
        return Err(ApiError::agent_not_found(&id));
    }
    store(app.store.delete_agent(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issue a bearer token for the agent's heartbeat and status calls. The body is optional.
#[utoipa::path(
    post,
    path = "/v1/admin/agents/{id}/token",
    tag = "admin",
    params(("id" = String, Path, description = "The agent's id")),
    request_body(content = Option<TokenRequest>, description = "Optional; `{}` or no body for 12 hours"),
    responses(
        (status = 200, description = "A token for this agent", body = TokenResponse),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
        (status = 422, description = "ttl_s out of range", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`), or no agent secret configured (`agent_api_disabled`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn issue_token(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let ttl = token_ttl(&req)?;
    let agent = find_agent(&app, &id).await?;
    let generation = match store(app.store.token_generation(&agent.id)).await? {
        Some(g) => g,
        // An agent made before tokens carried a generation gets its first one now.
        None => store(app.store.revoke_tokens(&agent.id)).await?,
    };
    mint(&app, &agent.id, &generation, ttl).map(Json)
}

/// Void every token issued so far for the agent (a lost laptop, a leaver). Its status, its
/// presence and any call it holds are untouched; its desktop gets 401 `token_revoked` on its
/// next request and needs a new token from `POST /v1/admin/agents/{id}/token`.
#[utoipa::path(
    post,
    path = "/v1/admin/agents/{id}/token/revoke",
    tag = "admin",
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 204, description = "Every earlier token of this agent is void"),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn revoke_tokens(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if check_name("agent id", &id).is_err() {
        return Err(ApiError::agent_not_found(&id));
    }
    store(app.store.revoke_tokens(&id)).await?;
    tracing::info!(agent = %id, "agent tokens revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// A supervisor sets an agent's status (same rules as the agent's own request).
#[utoipa::path(
    put,
    path = "/v1/admin/agents/{id}/status",
    tag = "admin",
    params(("id" = String, Path, description = "The agent's id")),
    request_body = StatusRequest,
    responses(
        (status = 200, description = "Status applied", body = StatusResponse),
        (status = 409, description = "On a call: recorded, applied when the call ends (`deferred_until_call_ends`)", body = ErrorBody),
        (status = 404, description = "Unknown agent (`agent_not_found`)", body = ErrorBody),
        (status = 422, description = "Invalid body; `field` names the field", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn set_agent_status(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<StatusRequest>,
) -> Result<Json<StatusResponse>, ApiError> {
    apply_status(&app, &id, req, "supervisor").await
}

/// Every queue's live numbers: waiting calls, oldest wait, agents by status, estimated wait.
#[utoipa::path(
    get,
    path = "/v1/admin/queues",
    tag = "admin",
    responses(
        (status = 200, description = "All queues, by name", body = QueueList),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn list_queues(
    State(app): State<AppState>,
    _: AdminAuth,
) -> Result<Json<QueueList>, ApiError> {
    let names = store(app.store.queue_names()).await?;
    let mut queues = Vec::with_capacity(names.len());
    for name in names {
        match store_raw(app.store.queue_stats(&name)).await {
            Ok(stats) => queues.push(QueueView::from(stats)),
            // removed between the two reads: leave it out
            Err(StoreError::UnknownQueue(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(QueueList { queues }))
}

/// One call as stored, and its transitions from the event stream, oldest first.
#[utoipa::path(
    get,
    path = "/v1/admin/calls/{sid}",
    tag = "admin",
    params(("sid" = String, Path, description = "The Twilio CallSid")),
    responses(
        (status = 200, description = "The call and its history", body = CallDetail),
        (status = 404, description = "Unknown call (`call_not_found`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn get_call(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiPath(sid): ApiPath<String>,
) -> Result<Json<CallDetail>, ApiError> {
    let not_found = || call_not_found(&sid);
    if check_name("CallSid", &sid).is_err() {
        return Err(not_found());
    }
    let call = store(app.store.call(&sid)).await?.ok_or_else(not_found)?;
    let events = store(app.store.call_events(&sid)).await?;
    let history = events
        .into_iter()
        .map(|(id, mut fields)| CallEvent {
            at_ms: id
                .split('-')
                .next()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0),
            id,
            kind: fields.remove("type").unwrap_or_default(),
            fields: fields.into_iter().collect(),
        })
        .collect();
    Ok(Json(CallDetail {
        call: CallView::from(call),
        history,
    }))
}

/// End a call callq still holds open (its end never reached callq: lost webhooks, Redis out
/// of reach), releasing its agent at once. The transition is recorded in the event stream as
/// `ended` with `by=admin`. It does not hang up anything at Twilio.
#[utoipa::path(
    post,
    path = "/v1/admin/calls/{sid}/end",
    tag = "admin",
    params(("sid" = String, Path, description = "The Twilio CallSid")),
    responses(
        (status = 200, description = "Ended; the call and its history", body = CallDetail),
        (status = 404, description = "Unknown call (`call_not_found`)", body = ErrorBody),
        (status = 409, description = "The call has already ended (`call_already_ended`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token (`missing_token`, `invalid_token`)", body = ErrorBody),
        (status = 403, description = "Admin API disabled (`admin_disabled`)", body = ErrorBody),
        (status = 503, description = "Redis unavailable (`store_unavailable`)", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn end_call(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiPath(sid): ApiPath<String>,
) -> Result<Json<CallDetail>, ApiError> {
    if check_name("CallSid", &sid).is_err() {
        return Err(call_not_found(&sid));
    }
    match store(app.store.end_call(&sid, "admin")).await? {
        Transition::Done(prior) => {
            tracing::warn!(call_sid = %sid, prior = %prior, "call ended by an operator");
        }
        Transition::Stale(None) => return Err(call_not_found(&sid)),
        Transition::Stale(Some(state)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "call_already_ended",
                format!("call {:?} has already ended ({state})", shorten(&sid)),
            ))
        }
    }
    get_call(State(app), AdminAuth, ApiPath(sid)).await
}

fn call_not_found(sid: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "call_not_found",
        format!("no call {:?}", shorten(sid)),
    )
}

/// Check an agent's profile field by field and build the store's spec.
fn agent_spec(
    id: &str,
    identity: Option<String>,
    queues: Vec<QueueTier>,
    capacity: u32,
    skills: Vec<SkillLevel>,
    (order, weight): (u32, u32),
) -> Result<AgentSpec, ApiError> {
    if check_name("agent id", id).is_err() {
        return Err(ApiError::invalid(
            "id",
            format!(
                "id {:?}: use 1-64 letters, digits, '_', '-' or '.'",
                shorten(id)
            ),
        ));
    }
    let identity = identity.unwrap_or_else(|| id.to_string());
    let identity_ok = !identity.is_empty()
        && identity.len() <= MAX_IDENTITY_LEN
        && identity
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    if !identity_ok {
        return Err(ApiError::invalid(
            "identity",
            format!(
                "identity {:?}: use 1-{MAX_IDENTITY_LEN} letters, digits, '_', '-', '.' or '@'",
                shorten(&identity)
            ),
        ));
    }
    if queues.is_empty() || queues.len() > MAX_AGENT_QUEUES {
        return Err(ApiError::invalid(
            "queues",
            format!("queues: 1 to {MAX_AGENT_QUEUES} queues"),
        ));
    }
    for (i, qt) in queues.iter().enumerate() {
        if check_name("queue", &qt.queue).is_err() {
            return Err(ApiError::invalid(
                format!("queues[{i}].queue"),
                format!("queue {:?}: not a queue name", shorten(&qt.queue)),
            ));
        }
        if queues[..i].iter().any(|earlier| earlier.queue == qt.queue) {
            return Err(ApiError::invalid(
                format!("queues[{i}].queue"),
                format!("queue {:?} is listed twice", qt.queue),
            ));
        }
        if !(1..=9).contains(&qt.tier) {
            return Err(ApiError::invalid(
                format!("queues[{i}].tier"),
                "tier: 1 (offered first) to 9",
            ));
        }
    }
    if !(1..=100).contains(&capacity) {
        return Err(ApiError::invalid("capacity", "capacity: 1 to 100 calls"));
    }
    if order > 1_000_000 {
        return Err(ApiError::invalid("order", "order: 0 to 1000000"));
    }
    if !(1..=1000).contains(&weight) {
        return Err(ApiError::invalid("weight", "weight: 1 to 1000"));
    }
    if skills.len() > 20 {
        return Err(ApiError::invalid("skills", "skills: at most 20"));
    }
    for (i, sl) in skills.iter().enumerate() {
        if check_name("skill", &sl.skill).is_err() {
            return Err(ApiError::invalid(
                format!("skills[{i}].skill"),
                format!(
                    "skill {:?}: use 1-64 letters, digits, '_', '-' or '.'",
                    shorten(&sl.skill)
                ),
            ));
        }
        if skills[..i].iter().any(|earlier| earlier.skill == sl.skill) {
            return Err(ApiError::invalid(
                format!("skills[{i}].skill"),
                format!("skill {:?} is listed twice", sl.skill),
            ));
        }
        if !(1..=5).contains(&sl.level) {
            return Err(ApiError::invalid(
                format!("skills[{i}].level"),
                "level: 1 to 5 (5 the most able)",
            ));
        }
    }
    Ok(AgentSpec {
        id: id.to_string(),
        identity,
        queues: queues.into_iter().map(|qt| (qt.queue, qt.tier)).collect(),
        capacity,
        skills: Skills(skills.into_iter().map(|sl| (sl.skill, sl.level)).collect()),
        order,
        weight,
    })
}

/// Map a store error, pointing an unknown queue at its place in the request
/// (`queues[1].queue`).
fn queue_field(e: StoreError, spec: &AgentSpec) -> ApiError {
    let at = match &e {
        StoreError::UnknownQueue(name) => spec.queues.iter().position(|(q, _)| q == name),
        _ => None,
    };
    let err = ApiError::from(e);
    match at {
        Some(i) => err.on(format!("queues[{i}].queue")),
        None => err,
    }
}
