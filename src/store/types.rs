//! The typed values that cross the store's boundary: queue settings, agents, calls, offers and
//! the results of each transition. Their string forms are the ones stored in Redis.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $s:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($s => Ok($name::$variant),)*
                    _ => Err(UnknownValue { kind: stringify!($name), value: s.to_string() }),
                }
            }
        }
    };
}

/// A string that is not one of an enum's stored forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

string_enum! {
    /// How a queue picks among ready agents of the same tier.
    Strategy {
        LongestIdle => "longest_idle",
        FewestCalls => "fewest_calls",
        LeastTalkTime => "least_talk_time",
        RoundRobin => "round_robin",
        Random => "random",
        Linear => "linear",
        WeightedRandom => "weighted_random",
        RingAll => "ring_all",
    }
}

// (the variants come from a macro, so `#[derive(Default)]` cannot mark one)
#[allow(clippy::derivable_impls)]
impl Default for Strategy {
    fn default() -> Self {
        Strategy::LongestIdle
    }
}

string_enum! {
    /// Whether and how Twilio records the agent's leg of a queue's calls: the values of
    /// `<Dial record>`, as Twilio spells them.
    RecordMode {
        DoNotRecord => "do-not-record",
        FromAnswer => "record-from-answer",
        FromRinging => "record-from-ringing",
        FromAnswerDual => "record-from-answer-dual",
        FromRingingDual => "record-from-ringing-dual",
    }
}

#[allow(clippy::derivable_impls)]
impl Default for RecordMode {
    fn default() -> Self {
        RecordMode::DoNotRecord
    }
}

impl RecordMode {
    /// Whether Twilio records at all.
    pub fn records(self) -> bool {
        self != RecordMode::DoNotRecord
    }
}

string_enum! {
    /// Where an agent stands in routing.
    AgentStatus {
        Offline => "offline",
        Available => "available",
        Reserved => "reserved",
        Busy => "busy",
        Wrapup => "wrapup",
        Paused => "paused",
    }
}

string_enum! {
    /// The statuses an agent (or supervisor) may ask for.
    RequestedStatus {
        Available => "available",
        Paused => "paused",
        Offline => "offline",
    }
}

string_enum! {
    /// A call's place in the state machine (see `docs/design.md`, "Call states").
    CallState {
        Arriving => "arriving",
        Waiting => "waiting",
        Callback => "callback",
        Offered => "offered",
        Connected => "connected",
        Completed => "completed",
        Abandoned => "abandoned",
        Overflowed => "overflowed",
        CallbackFailed => "callback_failed",
    }
}

impl CallState {
    /// Completed, abandoned, overflowed and failed callbacks never change again (but for a
    /// caller proven still on hold, see `reenter`).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallState::Completed
                | CallState::Abandoned
                | CallState::Overflowed
                | CallState::CallbackFailed
        )
    }
}

string_enum! {
    /// How the call reached the queue: a caller holding, or a callback request (virtual hold).
    CallKind {
        Inbound => "inbound",
        Callback => "callback",
    }
}

string_enum! {
    /// What became of an offer; the non-answered values are Twilio's DialCallStatus names,
    /// and `refused` is Twilio refusing for good to connect this call (a permanent error).
    OfferOutcome {
        Answered => "answered",
        NoAnswer => "no-answer",
        Busy => "busy",
        Failed => "failed",
        Canceled => "canceled",
        Refused => "refused",
    }
}

string_enum! {
    /// Why a waiting call overflowed (kept as its `end_reason`). `no_answer` is set by
    /// `offer_result` alone (one attempt only, the `fallback` feature off).
    OverflowRule {
        MaxWait => "max_wait",
        NoAgents => "no_agents",
        NoAnswer => "no_answer",
        QueueFull => "queue_full",
    }
}

string_enum! {
    /// Who reports that a connected call ended (a callback completes only on word about its
    /// customer: a `Dial` result or a check).
    EndSource {
        Dial => "dial",
        Leg => "leg",
        Status => "status",
        Check => "check",
    }
}

/// A queue's routing settings, as the scripts read them from `callq:{C}:queue:<Q>`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSettings {
    pub name: String,
    pub strategy: Strategy,
    pub ring_timeout: Duration,
    pub wrapup: Duration,
    pub max_no_answer: u32,
    pub no_answer_delay: Duration,
    /// How many more times a callback whose customer did not answer is tried.
    pub callback_retries: u32,
    /// How long a callback whose customer did not answer waits before it is tried again.
    pub callback_retry_delay: Duration,
    /// How long a connected call may go without word before the worker asks Twilio.
    pub check_after: Duration,
    /// Whether an unanswered offer goes on to the next agent (`[features] fallback`); off,
    /// it ends the call's time in line with the overflow action. An admin's run-time
    /// override (`feature:fallback` in the switches hash) wins over it.
    pub fallback: bool,
    /// `fewest_calls` and `least_talk_time` compare agents' recent work: calls and talk
    /// time fade with this half-life, so a newcomer catches up within hours, not a lifetime.
    pub half_life: Duration,
    /// Whether Twilio records the agent's leg of this queue's inbound calls.
    pub record: RecordMode,
    /// The skills (minimum levels) every call of the queue requires, unless the call brings
    /// its own (an IVR choice, a priority rule).
    pub skills: Skills,
    /// How a call's reach widens as it waits, in order of `after`.
    pub widen: Vec<WidenStep>,
    /// Whether calls of this queue may bring their own skills (an IVR choice or a priority
    /// rule gives some): with this, skills or widening, a claim looks past the first call in
    /// line, since the calls behind it may suit other agents.
    pub calls_carry_skills: bool,
    /// Rest after an offer the agent's device answered busy (a Voice SDK device that rejects
    /// the call reports busy); None: `no_answer_delay`.
    pub busy_delay: Option<Duration>,
    /// Rest after an offer Twilio could not ring through to the device (failed); None:
    /// `no_answer_delay`.
    pub failed_delay: Option<Duration>,
    /// A caller who hangs up in line and calls this queue again from the same number within
    /// this window goes back in at the rank they had (None: off).
    pub resume_within: Option<Duration>,
    /// A call an agent transfers into this queue keeps the rank it had (false: it joins at
    /// the back).
    pub transfer_keeps_rank: bool,
}

/// How many calls from the head of a line a claim looks at when the calls can differ in who
/// may take them.
pub const MIXED_LINE_DEPTH: u32 = 8;

impl QueueSettings {
    /// How many calls from the head of the line `claim` considers.
    pub fn claim_depth(&self) -> u32 {
        if self.skills.is_empty() && self.widen.is_empty() && !self.calls_carry_skills {
            1
        } else {
            MIXED_LINE_DEPTH
        }
    }

    /// The stored form of the widening steps (`configure_queue.lua`, `ARGV[14]`).
    pub fn widen_field(&self) -> String {
        self.widen
            .iter()
            .map(WidenStep::field)
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// Skills with levels from 1 to 5: what an agent has, or the least a call requires. Stored as
/// `billing=3,spanish=5`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Skills(pub BTreeMap<String, u8>);

/// The highest skill level.
pub const MAX_SKILL_LEVEL: u8 = 5;

impl Skills {
    pub fn new<'a>(items: impl IntoIterator<Item = (&'a str, u8)>) -> Self {
        Skills(
            items
                .into_iter()
                .map(|(name, level)| (name.to_string(), level))
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stored form: `billing=3,spanish=5` (empty: none).
    pub fn field(&self) -> String {
        self.0
            .iter()
            .map(|(s, l)| format!("{s}={l}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Read the stored form back (entries that do not parse are left out).
    pub fn parse_field(s: &str) -> Self {
        Skills(
            s.split(',')
                .filter_map(|item| {
                    let (name, level) = item.split_once('=')?;
                    Some((name.to_string(), level.parse().ok()?))
                })
                .collect(),
        )
    }

    /// Both sets of skills; a skill in both at the higher level.
    pub fn merged(mut self, other: &Skills) -> Self {
        for (name, level) in &other.0 {
            let l = self.0.entry(name.clone()).or_insert(*level);
            *l = (*l).max(*level);
        }
        self
    }

    /// Every name a valid key part, every level from 1 to 5, at most 20 skills.
    pub fn check(&self) -> Result<(), super::StoreError> {
        if self.0.len() > 20 {
            return Err(super::StoreError::Invalid {
                what: "skills",
                value: self.field().chars().take(80).collect(),
                why: "at most 20 skills",
            });
        }
        for (name, level) in &self.0 {
            super::check_name("skill", name)?;
            if *level == 0 || *level > MAX_SKILL_LEVEL {
                return Err(super::StoreError::Invalid {
                    what: "skill level",
                    value: format!("{name}={level}"),
                    why: "skill levels run from 1 to 5",
                });
            }
        }
        Ok(())
    }

    /// Whether these skills meet `need` (every skill there at its level or higher).
    pub fn meet(&self, need: &Skills) -> bool {
        need.0
            .iter()
            .all(|(name, least)| self.0.get(name).is_some_and(|l| l >= least))
    }
}

/// One step of a queue's widening: once a call has waited `after`, it accepts more agents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WidenStep {
    pub after: Duration,
    /// Every required skill accepted from this level on (never raising a requirement).
    pub min_level: Option<u8>,
    /// Agents of the queue's tiers up to this one. A queue with a `tiers` step offers its
    /// calls to tier 1 only until then.
    pub tiers: Option<u32>,
    /// No skill required any more.
    pub any_skill: bool,
    /// The ready agents of this queue may take the call too.
    pub queue: Option<String>,
}

impl WidenStep {
    /// The stored form: `30000:level=2,tiers=2,skills=any,queue=support`.
    pub fn field(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.min_level {
            parts.push(format!("level={l}"));
        }
        if let Some(t) = self.tiers {
            parts.push(format!("tiers={t}"));
        }
        if self.any_skill {
            parts.push("skills=any".to_string());
        }
        if let Some(q) = &self.queue {
            parts.push(format!("queue={q}"));
        }
        format!("{}:{}", self.after.as_millis(), parts.join(","))
    }
}

/// An agent's routing profile, as the admin API writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub id: String,
    /// The `<Client>` identity of the agent's Voice SDK device.
    pub identity: String,
    /// (queue, tier); tier 1 is offered first.
    pub queues: Vec<(String, u32)>,
    pub capacity: u32,
    /// Skills with levels (1-5); calls that require skills go to agents who have them.
    #[serde(default)]
    pub skills: Skills,
    /// Place in a `linear` queue's order (lower first; agents with the same order by id).
    #[serde(default)]
    pub order: u32,
    /// Share of a `weighted_random` queue's offers, relative to the other agents' (1-1000).
    #[serde(default = "one_weight")]
    pub weight: u32,
}

fn one_weight() -> u32 {
    1
}

impl AgentSpec {
    /// The stored form of the queue list: `sales=1,support=2`.
    pub fn queues_field(&self) -> String {
        self.queues
            .iter()
            .map(|(q, t)| format!("{q}={t}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn parse_queues_field(s: &str) -> Vec<(String, u32)> {
        s.split(',')
            .filter_map(|item| {
                let (q, t) = item.split_once('=')?;
                Some((q.to_string(), t.parse().ok()?))
            })
            .collect()
    }
}

/// One offer of a call to an agent, named by the call, the agent and the offer's number.
/// Every URL the worker gives Twilio carries it, and every transition acting on a result
/// checks it: a result for any other offer changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OfferRef {
    pub call_sid: String,
    pub agent_id: String,
    pub attempt: u32,
}

/// A claimed (call, agent) pair: the worker now rings the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub call_sid: String,
    pub agent_id: String,
    pub identity: String,
    pub queue: String,
    pub attempt: u32,
    pub ring_timeout: Duration,
    pub kind: CallKind,
    pub from: String,
    pub to: String,
    /// How long the call had been in line (since it entered) when it was claimed.
    pub waited: Duration,
    /// The queue's recording mode when the call was claimed.
    pub record: RecordMode,
    /// A `ring_all` offer: the other agents it rings with this one, as (agent id, identity),
    /// best first; empty for an offer to one agent. Any of them names the offer.
    pub also: Vec<(String, String)>,
}

impl Offer {
    /// The name of this offer.
    pub fn offer_ref(&self) -> OfferRef {
        OfferRef {
            call_sid: self.call_sid.clone(),
            agent_id: self.agent_id.clone(),
            attempt: self.attempt,
        }
    }

    /// Every agent this offer rings, as (agent id, identity): the first, then the others of
    /// a `ring_all` offer.
    pub fn agents(&self) -> Vec<(String, String)> {
        let mut all = vec![(self.agent_id.clone(), self.identity.clone())];
        all.extend(self.also.iter().cloned());
        all
    }

    /// The name of this offer as agent `agent_id` of it (a `ring_all` offer has one per agent).
    pub fn offer_ref_for(&self, agent_id: &str) -> OfferRef {
        OfferRef {
            agent_id: agent_id.to_string(),
            ..self.offer_ref()
        }
    }
}

/// How a call comes in: Twilio is about to hold the caller (an answer to `/twilio/voice`),
/// or already holds them (a wait request for a call callq had no record of).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Offerable once Twilio asks for the wait document (or after a grace).
    Arriving,
    /// Offerable now; the caller already waited this long in Twilio's queue.
    Holding { waited: Duration },
}

/// A call entering a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall<'a> {
    pub call_sid: &'a str,
    pub queue: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    /// Rank = entered_ms − boost: a bigger boost is served sooner.
    pub priority_boost: Duration,
    pub kind: CallKind,
    pub arrival: Arrival,
    /// Skills this call requires (an IVR choice, a priority rule); empty: the queue's.
    pub skills: Skills,
}

/// What `claim` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Offer(Offer),
    /// Nothing to offer now; look again at `next_due_ms` (Redis clock, unix ms) at the latest.
    Idle {
        next_due_ms: Option<i64>,
    },
}

/// What a claim of several offers at once (`claim_many`) made: the offers, in the order
/// they were decided, and whether it went idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimBatch {
    pub offers: Vec<Offer>,
    /// None: it stopped at the most it was asked for, so there may be more to offer now.
    /// Some: it found nothing more to offer; look again at that time (Redis clock, unix ms)
    /// at the latest (None inside: nothing falls due).
    pub idle: Option<Option<i64>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// False when the CallSid was already known (a retried webhook).
    pub created: bool,
    pub state: CallState,
    pub rank: i64,
    /// The caller came back within the queue's resume window and took their old rank again.
    pub resumed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    Applied(AgentStatus),
    /// The agent holds a call; the request is applied when it ends.
    Deferred(RequestedStatus),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferResult {
    Connected,
    /// The call is back in line; the agent's status afterwards.
    Requeued(AgentStatus),
    /// Twilio refused the call for good: it overflowed, the agent is free.
    Refused,
    /// Not answered with the `fallback` feature off: one attempt only, so the call overflowed
    /// (`end_reason` `no_answer`); the agent's status afterwards.
    Missed(AgentStatus),
    /// One agent of a `ring_all` offer stopped ringing and was released (its status
    /// afterwards); the others still ring, the call stays offered.
    Released(AgentStatus),
    /// The offer was not current (retry, out-of-order, already settled): nothing changed.
    Stale(Option<CallState>),
}

/// What `complete` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Completed; the agent who had the call.
    Completed(String),
    /// A callback whose customer outcome is unknown: its check was brought forward.
    Check,
    /// Not the current offer, or the call is elsewhere: nothing changed.
    Stale(Option<CallState>),
}

/// What `transfer_connected` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOver {
    /// The call waits in the target queue (for the named agent, if one was given).
    Transferred { from_queue: String },
    /// The call is not connected (any more): nothing changed.
    Stale(Option<CallState>),
    /// The call is connected to another agent: nothing changed.
    NotYours,
    /// The named agent does not exist (or is the one asking): nothing changed.
    UnknownAgent,
}

/// A call Twilio still has in progress and the archive says an agent answered, to put back
/// connected after Redis lost it ([`super::Store::restore_connected`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedCall<'a> {
    pub call_sid: &'a str,
    pub queue: &'a str,
    /// Who answered.
    pub agent_id: &'a str,
    /// The answered offer's number.
    pub attempt: u32,
    pub from: &'a str,
    pub to: &'a str,
    pub kind: CallKind,
    /// Since the call entered the line.
    pub waited: Duration,
    /// Since the agent answered.
    pub talking: Duration,
}

/// What `restore_connected` did; all but `Restored` change nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoredCall {
    Restored,
    /// Redis knows the call.
    Known(Option<CallState>),
    UnknownAgent,
    UnknownQueue,
    /// The agent already holds as many calls as it may.
    AgentFull,
}

/// What `callback_result` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackRetry {
    /// The callback is tried again at `due_ms` (Redis clock, unix ms).
    Retry {
        due_ms: i64,
    },
    /// No retries left (or Twilio refused the number): `callback_failed`.
    Failed,
    Stale(Option<CallState>),
}

/// A call taken by `take_checks`: its state needs Twilio's word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The offer the call is in (offered, or connected).
    pub offer: OfferRef,
    pub state: CallState,
    pub kind: CallKind,
    /// `claimed` (the worker had not yet reached Twilio) or `ringing` (Twilio accepted).
    pub phase: String,
    /// The Twilio call ringing or connecting the agent, when known.
    pub leg_sid: Option<String>,
    /// The agent's `<Client>` identity.
    pub identity: String,
    /// When this offer was made, Redis clock, unix ms: the legs Twilio created for it
    /// began after this.
    pub since_ms: Option<i64>,
    /// How many times in a row the call was taken for a check without a change.
    pub checks: u32,
    /// A `ring_all` offer: every agent it still rings, as (agent id, identity); empty for
    /// an offer to one agent.
    pub ringing: Vec<(String, String)>,
}

/// Result of a transition that either happens or finds the call elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition<T> {
    Done(T),
    /// Nothing changed; the call's current state (None: unknown call).
    Stale(Option<CallState>),
}

/// What became of a recording reported for a call ([`Store::record`](super::Store::record)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Kept with the call (replacing an earlier recording of it, if any).
    Kept,
    /// This recording was already kept: nothing changed.
    Duplicate,
    /// callq has no record of the call (never seen, or expired): nothing kept.
    UnknownCall,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reaped {
    pub agents_lost: u32,
    pub wrapups_ended: u32,
    /// Arriving calls whose grace passed without a wait request.
    pub arrivals: u32,
    /// Callbacks whose retry delay ended.
    pub retries: u32,
}

/// A call as stored in `callq:{C}:call:<CallSid>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    pub sid: String,
    pub queue: String,
    /// Skills the call itself requires (empty: its queue's).
    pub skills: Skills,
    pub from: String,
    pub to: String,
    pub state: CallState,
    pub kind: CallKind,
    pub rank: i64,
    pub priority_ms: i64,
    pub agent: Option<String>,
    pub attempts: u32,
    pub rang: Vec<String>,
    /// A `ring_all` offer: every agent it rang (empty for an offer to one agent).
    pub group: Vec<String>,
    /// A `ring_all` offer still ringing: the agents still reserved for it.
    pub ringing: Vec<String>,
    pub entered_ms: i64,
    pub offered_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub callback_to: Option<String>,
    /// When the call last moved to another queue (`transfer`), Redis clock, unix ms.
    pub transferred_ms: Option<i64>,
    /// While offered: `claimed` or `ringing`.
    pub phase: Option<String>,
    /// The Twilio call ringing or connecting the agent, when known.
    pub leg_sid: Option<String>,
    /// Why the call ended (final states): e.g. `hangup`, `call_gone`, `max_wait`.
    pub end_reason: Option<String>,
    /// Callback attempts whose customer did not answer.
    pub callback_tries: u32,
    /// The recording of the agent's leg, once Twilio reported it complete.
    pub recording: Option<Recording>,
}

/// A finished recording of a call's agent leg, as Twilio's recording status callback gave it.
/// Its URL is the caller's voice: it goes to the call record and the admin API, never to logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recording {
    /// `RE…`
    pub sid: String,
    /// Twilio's URL of the media (append `.mp3` or `.wav`). Unless the account requires HTTP
    /// authentication for media, the URL alone fetches the recording: treat it as a secret.
    pub url: String,
    /// Whole seconds.
    pub duration_s: u64,
}

/// An agent as stored in `callq:{C}:agent:<id>`, with its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRecord {
    pub id: String,
    pub identity: String,
    pub queues: Vec<(String, u32)>,
    pub capacity: u32,
    pub skills: Skills,
    pub order: u32,
    pub weight: u32,
    pub status: AgentStatus,
    pub reason: String,
    pub active: u32,
    pub handled: u64,
    pub misses: u32,
    pub idle_ms: i64,
    pub pending: Option<RequestedStatus>,
    /// Some(device_registered) while the heartbeat key lives.
    pub heartbeat: Option<bool>,
    /// In wrap-up (or a no-answer rest): the time left on Redis' clock, zero once due. Read
    /// by [`crate::store::Store::agent`] and [`crate::store::Store::agents`]; None otherwise.
    pub wrapup_left: Option<Duration>,
}

/// A queue's agent counter that did not match its agents (see [`crate::store::Store::recount_agents`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CounterDrift {
    pub queue: String,
    /// The state counted (`available`, `paused`, ...).
    pub state: String,
    /// What the counter said.
    pub stored: i64,
    /// What the agents say.
    pub counted: i64,
}

impl AgentRecord {
    /// Whether the agent can be offered a call as far as presence goes: a live heartbeat
    /// with a registered device.
    pub fn online(&self) -> bool {
        self.heartbeat == Some(true)
    }
}

/// The run-time overrides an admin set, as Redis holds them (`callq:{C}:switches`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Switches {
    /// The share of callers callq routes (`share_pct`).
    pub share_pct: Option<u8>,
    /// Features turned on or off (`feature:<name>`), by name.
    pub features: Vec<(String, bool)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_stored_form() {
        for s in CallState::ALL {
            assert_eq!(s.as_str().parse::<CallState>(), Ok(*s));
        }
        for s in AgentStatus::ALL {
            assert_eq!(s.as_str().parse::<AgentStatus>(), Ok(*s));
        }
        for s in OfferOutcome::ALL {
            assert_eq!(s.as_str().parse::<OfferOutcome>(), Ok(*s));
        }
        assert!("ringing".parse::<OfferOutcome>().is_err());
    }

    #[test]
    fn queue_field_round_trips() {
        let spec = AgentSpec {
            id: "a1".into(),
            identity: "alice".into(),
            queues: vec![("sales".into(), 1), ("support".into(), 2)],
            capacity: 1,
            skills: Default::default(),
            order: 0,
            weight: 1,
        };
        assert_eq!(spec.queues_field(), "sales=1,support=2");
        assert_eq!(
            AgentSpec::parse_queues_field(&spec.queues_field()),
            spec.queues
        );
        assert!(AgentSpec::parse_queues_field("").is_empty());
    }
}
