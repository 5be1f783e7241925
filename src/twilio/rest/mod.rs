//! Twilio REST client used by the worker: redirect a live call to new TwiML or a URL, hang it up,
//! dequeue a queue member, create outbound calls (agent-first callbacks), and read calls back
//! (fetch one, list a call's child legs) when callq must ask Twilio what became of a call.
//!
//! Everything Twilio can answer is turned into a [`RestError`] (nothing from the network panics),
//! and [`RestError::kind`] says what the worker should do next ([`FailureKind`]: an outage to
//! retry, 21220 to confirm with a fetch, a misconfiguration, a refusal for good).
//! [`with_retry`] retries with full-jitter
//! exponential backoff but never past a deadline (the offer lease), and an optional
//! [`RequestGate`] consulted around every request lets the worker's circuit breaker
//! ([`crate::worker::breaker`]) make requests fail fast while Twilio is unreachable, so leases
//! are not burnt waiting on a dead upstream.
//!
//! Paths and parameter names follow Twilio's OpenAPI description (`twilio_api_v2010.json`):
//! `UpdateCall` (`Url`, `Method`, `Twiml`, `Status`), `CreateCall` (`To`, `From`, `Url`, `Method`,
//! `Twiml`, `StatusCallback`, `StatusCallbackEvent` once per value, `StatusCallbackMethod`,
//! `Timeout`), `UpdateMember` (`Url`, `Method`), `FetchCall` and `ListCall` (`ParentCallSid`,
//! `To`, `From`, `StartTime>`, `PageSize`). `docs/twilio.md` sums up what callq relies on.
//!
//! Laid out as `client` ([`TwilioRest`], [`RestConfig`], [`RequestGate`]), `resources` (the
//! Call resource, queue members, [`CreateCall`]), `error` ([`RestError`], Twilio's error JSON
//! [`ErrorBody`] and its error codes) and `retry` ([`Backoff`], [`with_retry`],
//! [`with_retry_if`]).

mod client;
mod error;
mod resources;
mod retry;

// against the lab's REST recorder (`crate::sim::recorder`)
#[cfg(all(test, feature = "lab"))]
mod tests;

pub use client::{RequestGate, RequestPass, RestConfig, TwilioRest, DEFAULT_API_BASE};
pub use error::{
    ErrorBody, FailureKind, RestError, CODE_CALL_NOT_IN_PROGRESS, CODE_NOT_FOUND,
    CODE_TOO_MANY_REQUESTS, CODE_TWIML_TOO_LONG,
};
pub use resources::{
    CallEvent, CallFilter, CallInstructions, CallPage, CallResource, CallStatus, CreateCall,
    HttpMethod, MemberPage, QueueMember, QueuePage, QueueResource, MAX_CREATE_CALL_TIMEOUT_S,
    MAX_INLINE_TWIML_CHARS,
};
pub use retry::{with_retry, with_retry_if, Backoff};
