//! The request and response bodies of the agent and admin APIs: one definition shared by the
//! server's handlers, the OpenAPI document ([`super::openapi`]) and `callq agent`
//! ([`super::client`]).
//!
//! Request bodies deny unknown fields, so a typo (`"device_registred"`) is an error that names
//! the field rather than a silently ignored value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::read::QueueStats;
use crate::store::{AgentRecord, AgentStatus, CallKind, CallRecord, CallState, RequestedStatus};

/// `POST /v1/agents/{id}/heartbeat`: the agent's desktop is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// Whether the Twilio Voice SDK device is registered; an agent whose device is not
    /// registered is never offered a call.
    pub device_registered: bool,
}

/// The agent's status after a heartbeat, and how long this heartbeat keeps it online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatResponse {
    pub status: AgentStatus,
    /// Milliseconds until the agent counts as offline unless it beats again.
    pub ttl_ms: u64,
}

/// `PUT .../status`: go available, paused or offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub status: RequestedStatus,
    /// Free text kept with the status (e.g. "lunch"), at most 200 characters, no control
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$",
        example = "lunch"
    )]
    pub reason: Option<String>,
}

/// `POST /v1/agents/{id}/transfer`: send the caller of a call connected to this agent on, to
/// a queue, to a named agent, or to a named agent in a queue. Then hang up your own leg: the
/// caller holds in the target queue until the next agent takes the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The caller's CallSid (the call connected to this agent).
    #[schema(
        pattern = r"^[A-Za-z0-9_.-]{1,64}$",
        example = "CA0123456789abcdef0123456789abcdef"
    )]
    pub call: String,
    /// The queue to send the caller to; absent: the call's own queue (with `agent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$", example = "support")]
    pub queue: Option<String>,
    /// An agent to offer the call to first (alone, for up to a minute and one ring; then
    /// anyone of the queue). Absent: anyone of the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$", example = "bob")]
    pub agent: Option<String>,
}

/// Where the call went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferResponse {
    pub call: String,
    pub queue: String,
    pub from_queue: String,
    /// The agent the call is offered to first, if one was named.
    pub agent: Option<String>,
}

/// The agent's status once the request was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    pub status: AgentStatus,
}

/// One queue an agent serves, at a tier (1 is offered calls first, up to 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueTier {
    /// A configured queue (`GET /v1/admin/queues` lists them); another name is 422
    /// `unknown_queue`.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$", example = "sales")]
    pub queue: String,
    #[schema(minimum = 1, maximum = 9, example = 1)]
    pub tier: u32,
}

fn one() -> u32 {
    1
}

/// One skill of an agent, at a level from 1 to 5 (5 the most able). A call that requires
/// the skill at a level goes only to agents who have it at that level or higher (until the
/// queue's widening lowers it); among those, a higher level is offered first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillLevel {
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$", example = "billing")]
    pub skill: String,
    #[schema(minimum = 1, maximum = 5, example = 3)]
    pub level: u8,
}

/// `POST /v1/admin/agents`: a new agent (it starts offline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    /// 1-64 letters, digits, `_`, `-` or `.`.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$", example = "alice")]
    pub id: String,
    /// The Twilio Voice SDK identity the agent's device registers with: the worker rings
    /// `client:<identity>`. 1-121 letters, digits, `_`, `-`, `.` or `@`; defaults to the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9_.@-]{1,121}$", example = "alice")]
    pub identity: Option<String>,
    /// 1 to 32 queues; each at most once.
    #[schema(min_items = 1, max_items = 32)]
    pub queues: Vec<QueueTier>,
    /// Calls the agent holds at once, 1 to 100.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 100, default = 1)]
    pub capacity: u32,
    /// The agent's skills, each at most once (up to 20); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 20)]
    pub skills: Vec<SkillLevel>,
    /// Place in a `linear` queue's order, 0 to 1000000 (lower first; equal orders by id).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000000, default = 0)]
    pub order: u32,
    /// Share of a `weighted_random` queue's offers relative to the other agents', 1 to 1000.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 1000, default = 1)]
    pub weight: u32,
}

/// `PUT /v1/admin/agents/{id}`: replaces the agent's profile; its status is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentRequest {
    /// The Twilio Voice SDK identity (`client:<identity>`); defaults to the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9_.@-]{1,121}$", example = "alice")]
    pub identity: Option<String>,
    /// 1 to 32 queues; each at most once.
    #[schema(min_items = 1, max_items = 32)]
    pub queues: Vec<QueueTier>,
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 100, default = 1)]
    pub capacity: u32,
    /// The agent's skills, each at most once (up to 20); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 20)]
    pub skills: Vec<SkillLevel>,
    /// Place in a `linear` queue's order, 0 to 1000000 (lower first; equal orders by id).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000000, default = 0)]
    pub order: u32,
    /// Share of a `weighted_random` queue's offers relative to the other agents', 1 to 1000.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 1000, default = 1)]
    pub weight: u32,
}

/// An agent as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    pub id: String,
    pub identity: String,
    pub queues: Vec<QueueTier>,
    pub capacity: u32,
    /// The agent's skills, by name.
    pub skills: Vec<SkillLevel>,
    /// Place in a `linear` queue's order.
    pub order: u32,
    /// Share of a `weighted_random` queue's offers.
    pub weight: u32,
    pub status: AgentStatus,
    /// Why the agent is in this status: the reason sent with it (`lunch`), `supervisor`
    /// when a supervisor set it without one, `no_answer` when routing paused the agent after
    /// missed offers, `new` for an agent not yet set, empty otherwise. A lapsed heartbeat
    /// changes neither status nor reason (see `online`).
    pub reason: String,
    /// Calls held now.
    pub active: u32,
    /// Calls handled since created.
    pub handled: u64,
    /// Offers not answered in a row.
    pub misses: u32,
    /// Unix ms since when the agent has been idle (longest-idle routing).
    pub idle_since_ms: i64,
    /// A status asked for while on a call, applied when the call ends.
    pub pending: Option<RequestedStatus>,
    /// Whether the heartbeat is live.
    pub online: bool,
    /// Whether the last live heartbeat said the device is registered.
    pub device_registered: bool,
    /// In wrap-up (after a call, or resting after a missed offer): milliseconds until the
    /// agent is offered calls again (0 once due); absent in every other status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapup_left_ms: Option<u64>,
}

impl From<AgentRecord> for AgentView {
    fn from(a: AgentRecord) -> Self {
        AgentView {
            queues: a
                .queues
                .into_iter()
                .map(|(queue, tier)| QueueTier { queue, tier })
                .collect(),
            skills: a
                .skills
                .0
                .into_iter()
                .map(|(skill, level)| SkillLevel { skill, level })
                .collect(),
            order: a.order,
            weight: a.weight,
            id: a.id,
            identity: a.identity,
            capacity: a.capacity,
            status: a.status,
            reason: a.reason,
            active: a.active,
            handled: a.handled,
            misses: a.misses,
            idle_since_ms: a.idle_ms,
            pending: a.pending,
            online: a.heartbeat.is_some(),
            device_registered: a.heartbeat == Some(true),
            wrapup_left_ms: a
                .wrapup_left
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    /// Sorted by id.
    pub agents: Vec<AgentView>,
}

/// `POST /v1/admin/agents/{id}/token` and `POST /v1/agents/{id}/token`; the body is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Lifetime in seconds, 1 to 604800 (7 days); default 43200 (12 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 604800, default = 43200)]
    pub ttl_s: Option<u64>,
}

/// A bearer token for one agent's heartbeat and status calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub agent: String,
    pub token: String,
    /// Unix seconds; the token is refused from then on.
    pub expires_at: i64,
}

/// Agents of a queue, by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentCounts {
    pub available: u64,
    pub reserved: u64,
    pub busy: u64,
    pub wrapup: u64,
    pub paused: u64,
    pub offline: u64,
}

/// A queue's live numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    pub name: String,
    pub strategy: String,
    /// Calls waiting (callback requests included).
    pub waiting: u64,
    /// Seconds the call at the head of the line has waited.
    pub oldest_wait_s: f64,
    pub agents: AgentCounts,
    /// Mean handle time (talk plus wrap-up) the estimate uses, seconds.
    pub aht_s: f64,
    /// Expected wait of a call entering now, seconds.
    pub estimated_wait_s: f64,
}

impl From<QueueStats> for QueueView {
    fn from(q: QueueStats) -> Self {
        let n = |s: AgentStatus| q.agents.get(s.as_str()).copied().unwrap_or(0);
        QueueView {
            agents: AgentCounts {
                available: n(AgentStatus::Available),
                reserved: n(AgentStatus::Reserved),
                busy: n(AgentStatus::Busy),
                wrapup: n(AgentStatus::Wrapup),
                paused: n(AgentStatus::Paused),
                offline: n(AgentStatus::Offline),
            },
            name: q.name,
            strategy: q.strategy,
            waiting: q.waiting,
            oldest_wait_s: q.oldest_wait_s,
            aht_s: q.aht_s,
            estimated_wait_s: q.estimated_wait_s,
        }
    }
}

/// One queue an agent serves, as its desktop shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentQueueView {
    pub queue: String,
    /// The agent's tier in this queue (1 is offered calls first).
    pub tier: u32,
    /// Calls waiting (callback requests included).
    pub waiting: u64,
    /// Seconds the call at the head of the line has waited.
    pub oldest_wait_s: f64,
    /// Expected wait of a call entering now, seconds.
    pub estimated_wait_s: f64,
    /// Agents of the queue ready for a call now (available with a live registered device).
    pub available: u64,
}

/// `GET /v1/agents/{id}/queues`: the queues the agent serves, in its profile's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentQueueList {
    pub queues: Vec<AgentQueueView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueList {
    /// Sorted by name.
    pub queues: Vec<QueueView>,
}

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CallView {
    pub sid: String,
    pub queue: String,
    pub from: String,
    pub to: String,
    pub state: CallState,
    pub kind: CallKind,
    /// Place in line (lower first): entry time in ms less the priority boost.
    pub rank: i64,
    pub priority_ms: i64,
    /// The agent the call is offered to or connected with.
    pub agent: Option<String>,
    pub attempts: u32,
    /// Agents this call has rung, in order.
    pub rang: Vec<String>,
    /// A `ring_all` offer still ringing: every agent it still rings (the offer's `agent` is
    /// the first it rang); empty otherwise.
    #[serde(default)]
    pub ringing: Vec<String>,
    pub entered_ms: i64,
    pub offered_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub callback_to: Option<String>,
    /// Why the call ended (final states): `hangup`, `call_gone`, `max_wait`,
    /// `customer_no-answer`, `ended_by_operator`, …
    pub end_reason: Option<String>,
    /// Callback attempts whose customer did not answer.
    pub callback_tries: u32,
    /// The recording of the agent's leg (a queue with `record`), once Twilio reported it.
    pub recording: Option<RecordingView>,
}

/// A recording of a call's agent leg, as Twilio reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordingView {
    /// Twilio's RecordingSid (`RE…`).
    pub sid: String,
    /// Twilio's URL of the recording (add `.mp3` or `.wav`). Unless the Twilio account
    /// requires HTTP authentication for media, the URL alone fetches the recording.
    pub url: String,
    /// Length in whole seconds.
    pub duration_s: u64,
}

impl From<CallRecord> for CallView {
    fn from(c: CallRecord) -> Self {
        CallView {
            sid: c.sid,
            queue: c.queue,
            from: c.from,
            to: c.to,
            state: c.state,
            kind: c.kind,
            rank: c.rank,
            priority_ms: c.priority_ms,
            agent: c.agent,
            attempts: c.attempts,
            rang: c.rang,
            ringing: c.ringing,
            entered_ms: c.entered_ms,
            offered_ms: c.offered_ms,
            answered_ms: c.answered_ms,
            ended_ms: c.ended_ms,
            callback_to: c.callback_to,
            end_reason: c.end_reason,
            callback_tries: c.callback_tries,
            recording: c.recording.map(|r| RecordingView {
                sid: r.sid,
                url: r.url,
                duration_s: r.duration_s,
            }),
        }
    }
}

/// One transition of a call, from the event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CallEvent {
    /// The stream entry id (`<ms>-<seq>`).
    pub id: String,
    /// Unix ms (Redis clock) of the transition.
    pub at_ms: i64,
    /// The kind of transition (`enqueue`, `offer`, `answered`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Every field the transition recorded.
    pub fields: BTreeMap<String, String>,
}

/// `GET /v1/admin/calls/{sid}`: the call and its history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CallDetail {
    pub call: CallView,
    pub history: Vec<CallEvent>,
}

/// Every error: a stable machine-readable `code`, a message for people, and the request
/// field at fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable: `missing_token`, `invalid_token`, `token_expired`, `token_revoked`,
    /// `forbidden`, `admin_disabled`, `agent_api_disabled`, `malformed_json`, `missing_field`,
    /// `unknown_field`, `invalid_field`, `unknown_queue`, `invalid_path`,
    /// `unsupported_media_type`, `body_too_large`, `body_timeout`, `agent_not_found`,
    /// `call_not_found`, `feature_not_found`, `not_found`, `call_already_ended`, `method_not_allowed`,
    /// `agent_exists`, `agent_on_call`, `deferred_until_call_ends`, `call_not_connected`,
    /// `not_your_call`, `no_legacy_path`, `voice_tokens_unconfigured`, `store_unavailable`,
    /// `internal`.
    #[schema(example = "invalid_field")]
    pub code: String,
    pub message: String,
    /// The offending request field as a path (`queues[0].tier`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
