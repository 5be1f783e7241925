//! The typed values that cross the store's boundary: queue settings, agents, calls, offers and
//! the results of each transition. Their string forms are the ones stored in Redis.

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
        RoundRobin => "round_robin",
        Random => "random",
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
    /// A call's place in the state machine (see DESIGN.md).
    CallState {
        Waiting => "waiting",
        Callback => "callback",
        Offered => "offered",
        Connected => "connected",
        Completed => "completed",
        Abandoned => "abandoned",
        Overflowed => "overflowed",
    }
}

impl CallState {
    /// Completed, abandoned and overflowed calls never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallState::Completed | CallState::Abandoned | CallState::Overflowed
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
    /// What became of an offer; the non-answered values are Twilio's DialCallStatus names.
    OfferOutcome {
        Answered => "answered",
        NoAnswer => "no-answer",
        Busy => "busy",
        Failed => "failed",
        Canceled => "canceled",
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// False when the CallSid was already known (a retried webhook).
    pub created: bool,
    pub state: CallState,
    pub rank: i64,
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
    /// The offer was not current (retry, out-of-order, already settled): nothing changed.
    Stale(Option<CallState>),
}

/// Result of a transition that either happens or finds the call elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition<T> {
    Done(T),
    /// Nothing changed; the call's current state (None: unknown call).
    Stale(Option<CallState>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reaped {
    pub expired_offers: u32,
    pub agents_lost: u32,
    pub wrapups_ended: u32,
}

/// A call as stored in `callq:{C}:call:<CallSid>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    pub sid: String,
    pub queue: String,
    pub from: String,
    pub to: String,
    pub state: CallState,
    pub kind: CallKind,
    pub rank: i64,
    pub priority_ms: i64,
    pub agent: Option<String>,
    pub attempts: u32,
    pub rang: Vec<String>,
    pub entered_ms: i64,
    pub offered_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub callback_to: Option<String>,
    /// When the call last moved to another queue (`transfer`), Redis clock, unix ms.
    pub transferred_ms: Option<i64>,
}

/// An agent as stored in `callq:{C}:agent:<id>`, with its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRecord {
    pub id: String,
    pub identity: String,
    pub queues: Vec<(String, u32)>,
    pub capacity: u32,
    pub status: AgentStatus,
    pub reason: String,
    pub active: u32,
    pub handled: u64,
    pub misses: u32,
    pub idle_ms: i64,
    pub pending: Option<RequestedStatus>,
    /// Some(device_registered) while the heartbeat key lives.
    pub heartbeat: Option<bool>,
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
        };
        assert_eq!(spec.queues_field(), "sales=1,support=2");
        assert_eq!(
            AgentSpec::parse_queues_field(&spec.queues_field()),
            spec.queues
        );
        assert!(AgentSpec::parse_queues_field("").is_empty());
    }
}
