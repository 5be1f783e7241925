//! Turning a claimed [`Offer`] into Twilio REST calls, and recording what became of it.
//!
//! - Inbound call: redirect the caller's live call (`POST …/Calls/{CallSid}.json`, `Twiml=`)
//!   to a `<Dial>` of the agent's `<Client>` ([`inbound_twiml`]). Updating a call to the same
//!   TwiML is safe to repeat, so 429, 5xx, timeouts and connection failures are retried with
//!   jittered backoff, never past the offer lease (less a margin to write the result).
//! - Callback (virtual hold): create an agent-first call (`POST …/Calls.json`) to the agent's
//!   client that then dials the customer ([`callback_twiml`]). Creating a call is not
//!   idempotent, so only requests Twilio certainly did not process (429, no connection) are
//!   retried.
//!
//! What the result does to routing:
//!
//! | REST result | routing |
//! |---|---|
//! | accepted (2xx) | `extend_offer` by ring timeout + ring grace, recording the agent-first call's SID for a callback; webhooks take it from there |
//! | 21220 (not in progress) | ask Twilio (`GET` the call): over → `abandon(call_gone)`; not yet on hold or still live → back in line, no miss |
//! | Twilio failing (5xx, 429, timeouts, breaker open) until the deadline | `offer_result(Canceled)`: the call goes back at its rank, the agent is free, **no miss** |
//! | misconfiguration (401, 403, 404) | `Canceled` too; this worker pauses claiming (1 s doubling to 30 s) and `/readyz` fails until Twilio accepts a request |
//! | refused for good (another 4xx) | inbound: `offer_result(Refused)` (back in line; the third refusal overflows the call); callback: `callback_result(Refused)` → `callback_failed`. Other calls are not paused |
//! | the agent's TwiML cannot be built (identity too long) | `offer_result(Failed)`: a miss for that agent, so a broken profile ends up paused |
//! | a `ring_all` `<Dial>` too long for inline TwiML | the agents that do not fit are released first (`leg_result(Canceled)`, no miss); the others ring |
//! | callback create timed out or 5xx (may have been placed) | `extend_offer` as if accepted: webhooks settle it if it was placed, a check with Twilio if not; never a second call |
//!
//! A Twilio outage is never counted against agents: a miss means "the agent did not pick up",
//! and after a few misses in a row the agent is paused. Burning every agent's misses because
//! Twilio returned 503 would empty the floor exactly when Twilio comes back.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::contract::{self, LegParameters, OfferHook};
use crate::store::{
    CallKind, CallbackRetry, Offer, OfferOutcome, OfferResult, Store, StoreError, Transition,
};
use crate::twilio::rest::{
    with_retry, with_retry_if, CallEvent, CreateCall, FailureKind, RestError, TwilioRest,
    MAX_CREATE_CALL_TIMEOUT_S,
};
use crate::twilio::twiml::{Client, Dial, Number, Response, TwimlError};

use super::health::TwilioHealth;
use super::{RejectPause, Settings};

/// What became of one offer: the `outcome` label of `callq_offers_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Twilio accepted; the agent's phone rings and the lease covers the ring.
    Ringing,
    /// A callback whose creation may or may not have happened; the lease covers the ring.
    Unconfirmed,
    /// The caller had hung up: abandoned.
    CallGone,
    /// Twilio failed or refused: back in line, agent released without a miss.
    Requeued,
    /// The offer cannot be made to this agent: back in line with a miss for the agent.
    Failed,
    /// Twilio refused this call for good: back in line (or overflowed), or the callback ended.
    Refused,
    /// The offer was settled elsewhere meanwhile (abandoned, reaped): nothing to do.
    Stale,
    /// Redis could not record the result; the lease returns the call.
    Unrecorded,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ringing => "ringing",
            Outcome::Unconfirmed => "unconfirmed",
            Outcome::CallGone => "call_gone",
            Outcome::Requeued => "requeued",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Stale => "stale",
            Outcome::Unrecorded => "unrecorded",
        }
    }
}

/// `<Dial>` of the agent's `<Client>` for an inbound caller: its action and the agent leg's
/// status callback are the contract's hooks for this offer ([`OfferHook`]), its parameters
/// what the agent's desktop shows about the call ([`LegParameters`]). When the queue records,
/// so does the `<Dial>` ([`recorded`]). A `ring_all` offer dials every agent it rings in the
/// one `<Dial>`, a `<Client>` each, each leg's status callback naming its own agent: Twilio
/// rings them at once, bridges the first to answer and cancels the others.
pub fn inbound_twiml(public_url: &str, offer: &Offer) -> Result<String, TwimlError> {
    let named = offer.offer_ref();
    let nouns = offer
        .agents()
        .into_iter()
        .map(|(agent_id, identity)| {
            Client {
                identity,
                status_callback: Some(
                    OfferHook::AgentLeg.url(public_url, &offer.offer_ref_for(&agent_id)),
                ),
                status_callback_event: Some("answered completed".into()),
                status_callback_method: Some("POST".into()),
                parameters: LegParameters::of(offer).pairs(),
            }
            .into()
        })
        .collect();
    let dial = Dial {
        action: Some(OfferHook::DialResult.url(public_url, &named)),
        method: Some("POST".into()),
        timeout: Some(ring_seconds(offer.ring_timeout)),
        answer_on_bridge: Some(true),
        nouns,
        ..Dial::default()
    };
    Response::new()
        .verb(recorded(dial, public_url, offer))
        .to_inline_xml()
}

/// A `ring_all` offer whose `<Dial>` would not fit Twilio's inline TwiML limit rings only as
/// many of its agents as fit, best first: the offer so trimmed, and the agents left out (the
/// worker releases them at once, with no miss). Any other offer is returned as it is.
pub fn fit_inline(public_url: &str, offer: &Offer) -> (Offer, Vec<(String, String)>) {
    let mut trimmed = offer.clone();
    let mut left_out = Vec::new();
    while !trimmed.also.is_empty()
        && matches!(
            inbound_twiml(public_url, &trimmed),
            Err(TwimlError::InlineTooLong { .. })
        )
    {
        if let Some(last) = trimmed.also.pop() {
            left_out.push(last);
        }
    }
    (trimmed, left_out)
}

/// `dial` with the queue's recording of it, when the queue records: its `record` mode and the
/// contract's recording status callback ([`contract::recording_url`], naming the call),
/// told only of completed recordings.
fn recorded(dial: Dial, public_url: &str, offer: &Offer) -> Dial {
    if !offer.record.records() {
        return dial;
    }
    Dial {
        record: Some(offer.record.as_str().into()),
        recording_status_callback: Some(contract::recording_url(public_url, &offer.call_sid)),
        recording_status_callback_method: Some("POST".into()),
        recording_status_callback_event: Some("completed".into()),
        ..dial
    }
}

/// The agent leg of a callback: once the agent answers, tell them why and dial the customer
/// from the number the customer originally called; the customer `<Dial>`'s action is the
/// contract's [`OfferHook::CallbackResult`]. When the queue records, so does that `<Dial>`
/// ([`recorded`]): the conversation of agent and customer, reported for the callback's call.
pub fn callback_twiml(
    public_url: &str,
    offer: &Offer,
    callback_to: &str,
) -> Result<String, TwimlError> {
    let dial = Dial {
        action: Some(OfferHook::CallbackResult.url(public_url, &offer.offer_ref())),
        method: Some("POST".into()),
        timeout: Some(customer_ring_seconds(offer.ring_timeout)),
        caller_id: Some(offer.to.clone()),
        nouns: vec![Number::new(callback_to).into()],
        ..Dial::default()
    };
    Response::new()
        .say("Calling back a customer who kept their place in line.")
        .verb(recorded(dial, public_url, offer))
        .to_inline_xml()
}

/// The `POST …/Calls.json` request of a callback offer: the agent's client first, reporting
/// to the contract's [`OfferHook::AgentLeg`].
pub fn callback_request(
    public_url: &str,
    offer: &Offer,
    twiml: String,
) -> crate::twilio::rest::CreateCall {
    let mut req = CreateCall::with_twiml(format!("client:{}", offer.identity), &offer.to, twiml);
    req.status_callback = Some(OfferHook::AgentLeg.url(public_url, &offer.offer_ref()));
    req.status_callback_event = vec![
        CallEvent::Initiated,
        CallEvent::Ringing,
        CallEvent::Answered,
        CallEvent::Completed,
    ];
    req.timeout_s = Some(ring_seconds(offer.ring_timeout).min(MAX_CREATE_CALL_TIMEOUT_S));
    req
}

/// How long a callback rings its customer: twice an agent's ring (people are slower to pick
/// up an unexpected call than agents waiting for one), at most a minute.
fn customer_ring_seconds(agent_ring: Duration) -> u32 {
    ring_seconds(agent_ring).saturating_mul(2).min(60)
}

/// Whole seconds of ring time, rounded up, at least 1.
fn ring_seconds(d: Duration) -> u32 {
    let s = d.as_millis().div_ceil(1000);
    u32::try_from(s).unwrap_or(u32::MAX).max(1)
}

/// The `code` label of `callq_rest_errors_total`: Twilio's error code when there is one, else
/// the HTTP status, else what went wrong.
fn error_label(e: &RestError) -> String {
    match e {
        RestError::Api {
            code: Some(code), ..
        } => code.to_string(),
        RestError::Api { status, .. } => format!("http_{status}"),
        RestError::Timeout => "timeout".into(),
        RestError::Connect(_) => "connect".into(),
        RestError::Transport(_) => "transport".into(),
        RestError::CircuitOpen => "circuit_open".into(),
        RestError::TwimlTooLong { .. } => "32018".into(),
        RestError::Decode { .. } => "decode".into(),
        RestError::Invalid(_) => "invalid".into(),
    }
}

/// The reason recorded for a refusal: `twilio_<code>`, else `http_<status>`.
fn refusal_reason(e: &RestError) -> String {
    format!("twilio_{}", error_label(e))
}

/// A 2xx answer whose body did not parse: Twilio did what was asked.
fn accepted_anyway(e: &RestError) -> bool {
    matches!(e, RestError::Decode { status, .. } if (200..300).contains(status))
}

/// Rings agents: one [`Ringer::ring`] per claimed offer, run as its own task.
pub struct Ringer {
    store: Store,
    rest: TwilioRest,
    settings: Arc<Settings>,
    reject: RejectPause,
    health: Arc<TwilioHealth>,
}

impl Ringer {
    pub fn new(
        store: Store,
        rest: TwilioRest,
        settings: Arc<Settings>,
        health: Arc<TwilioHealth>,
    ) -> Self {
        Self {
            reject: RejectPause::new(settings.max_reject_pause),
            store,
            rest,
            settings,
            health,
        }
    }

    /// When Twilio refused requests outright lately: no claims before this.
    pub(crate) fn rejected_until(&self) -> Option<Instant> {
        self.reject.until()
    }

    /// Make the offer claimed at `claimed_at` and record what became of it. Never fails:
    /// whatever goes wrong ends in a routing transition, or, when Redis is out of reach too,
    /// in the lease running out (which `reap` turns into a requeue).
    pub async fn ring(&self, offer: Offer, claimed_at: Instant) -> Outcome {
        let outcome = match offer.kind {
            CallKind::Inbound => self.ring_inbound(&offer, claimed_at).await,
            CallKind::Callback => self.ring_callback(&offer, claimed_at).await,
        };
        metrics::counter!("callq_offers_total", "outcome" => outcome.as_str()).increment(1);
        outcome
    }

    async fn ring_inbound(&self, offer: &Offer, claimed_at: Instant) -> Outcome {
        // a ring_all offer rings as many agents as one <Dial> can carry; the rest are free
        let (trimmed, left_out) = fit_inline(&self.settings.public_url, offer);
        let offer = &trimmed;
        for (agent_id, _) in &left_out {
            let lease_end = claimed_at + self.settings.offer_lease;
            let named = offer.offer_ref_for(agent_id);
            let released = retry_store(lease_end, || {
                self.store.leg_result(&named, OfferOutcome::Canceled, "")
            })
            .await;
            tracing::warn!(call_sid = %offer.call_sid, agent = %agent_id, result = ?released,
                "ring_all: more agents than one <Dial> can carry; this one released");
        }
        let twiml = match inbound_twiml(&self.settings.public_url, offer) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                    "cannot build the agent's <Dial>; counting a miss for the agent");
                return self.requeue(offer, claimed_at, OfferOutcome::Failed).await;
            }
        };
        let deadline = self.settings.rest_deadline(claimed_at);
        let result = with_retry(deadline, &self.settings.backoff, || {
            self.counted(offer, self.rest.update_call_twiml(&offer.call_sid, &twiml))
        })
        .await;
        match result {
            Ok(_) => self.ringing(offer, claimed_at, None).await,
            Err(e) if accepted_anyway(&e) => self.ringing(offer, claimed_at, None).await,
            Err(e) => match e.kind() {
                FailureKind::NotInProgress => self.not_in_progress(offer, claimed_at, &e).await,
                FailureKind::Refused => {
                    tracing::error!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                        "Twilio refuses to redirect this call; back in line (it overflows after repeated refusals)");
                    let reason = refusal_reason(&e);
                    self.settle(offer, claimed_at, OfferOutcome::Refused, &reason)
                        .await
                }
                FailureKind::Local => {
                    tracing::error!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                        "the agent's <Dial> is refused locally; counting a miss for the agent");
                    self.requeue(offer, claimed_at, OfferOutcome::Failed).await
                }
                FailureKind::Outage | FailureKind::Misconfigured => {
                    self.twilio_failed(offer, claimed_at, &e).await
                }
            },
        }
    }

    /// Twilio says the call is not in progress (21220). That is either a caller who hung up
    /// or a call Twilio has not started running TwiML for yet: its own view of the call
    /// decides. Over: abandoned. Otherwise (or Twilio cannot be asked): back in line, no miss.
    async fn not_in_progress(&self, offer: &Offer, claimed_at: Instant, e: &RestError) -> Outcome {
        let seen = self
            .counted(offer, self.rest.fetch_call(&offer.call_sid))
            .await;
        match seen {
            Ok(call) if call.status.is_final() => {
                tracing::info!(call_sid = %offer.call_sid, agent = %offer.agent_id, status = ?call.status,
                    "the caller hung up before the agent rang; abandoning");
                self.abandon(offer, claimed_at, "call_gone").await
            }
            Ok(call) => {
                tracing::info!(call_sid = %offer.call_sid, agent = %offer.agent_id, status = ?call.status,
                    "Twilio cannot redirect the call yet; back in line");
                self.requeue(offer, claimed_at, OfferOutcome::Canceled)
                    .await
            }
            Err(fetch) => {
                tracing::warn!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e, fetch_error = %fetch,
                    "Twilio says the call is not in progress and cannot say more; back in line");
                self.requeue(offer, claimed_at, OfferOutcome::Canceled)
                    .await
            }
        }
    }

    async fn ring_callback(&self, offer: &Offer, claimed_at: Instant) -> Outcome {
        let lease_end = claimed_at + self.settings.offer_lease;
        let call = retry_store(lease_end, || self.store.call(&offer.call_sid)).await;
        let callback_to = match call {
            Ok(Some(c)) => c.callback_to.filter(|n| !n.trim().is_empty()),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                    "cannot read the callback number; the lease will return the call");
                return Outcome::Unrecorded;
            }
        };
        let prepared = match callback_to {
            None => Err("no callback number on the call".to_string()),
            Some(_) if offer.to.trim().is_empty() => {
                Err("no caller ID (the number the customer called)".to_string())
            }
            Some(number) => {
                callback_twiml(&self.settings.public_url, offer, &number).map_err(|e| e.to_string())
            }
        };
        let twiml = match prepared {
            Ok(t) => t,
            Err(why) => {
                tracing::error!(call_sid = %offer.call_sid, agent = %offer.agent_id, why,
                    "cannot place this callback; it ends as callback_failed");
                return self
                    .callback_refused(offer, claimed_at, "callback_invalid")
                    .await;
            }
        };
        let req = callback_request(&self.settings.public_url, offer, twiml);
        let deadline = self.settings.rest_deadline(claimed_at);
        // Creating a call twice rings the agent twice: replay only what Twilio never processed.
        let replay = |e: &RestError| e.is_retryable() && e.is_unprocessed();
        let result = with_retry_if(deadline, &self.settings.backoff, replay, || {
            self.counted(offer, self.rest.create_call(&req))
        })
        .await;
        match result {
            Ok(call) => self.ringing(offer, claimed_at, Some(&call.sid)).await,
            Err(e) if accepted_anyway(&e) => self.ringing(offer, claimed_at, None).await,
            Err(e) if !e.is_unprocessed() && e.is_retryable() => {
                // Timed out or 5xx: the call may exist. Hold the offer for the ring; if it
                // was placed the webhooks settle it, if not a check with Twilio finds out.
                tracing::warn!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                    "callback call may or may not have been created; holding the offer for the ring");
                match self.extend(offer, claimed_at, None).await {
                    Outcome::Ringing => Outcome::Unconfirmed,
                    other => other,
                }
            }
            Err(e) => match e.kind() {
                FailureKind::Refused | FailureKind::NotInProgress | FailureKind::Local => {
                    tracing::error!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                        "Twilio refuses this callback for good; it ends as callback_failed");
                    let reason = refusal_reason(&e);
                    self.callback_refused(offer, claimed_at, &reason).await
                }
                FailureKind::Outage | FailureKind::Misconfigured => {
                    self.twilio_failed(offer, claimed_at, &e).await
                }
            },
        }
    }

    /// A callback Twilio will never place: `callback_failed`, the agent free, no miss.
    async fn callback_refused(&self, offer: &Offer, claimed_at: Instant, reason: &str) -> Outcome {
        let lease_end = claimed_at + self.settings.offer_lease;
        let named = offer.offer_ref();
        match retry_store(lease_end, || {
            self.store
                .callback_result(&named, OfferOutcome::Refused, reason, Duration::ZERO)
        })
        .await
        {
            Ok(CallbackRetry::Failed | CallbackRetry::Retry { .. }) => Outcome::Refused,
            Ok(CallbackRetry::Stale(_)) => Outcome::Stale,
            Err(e) => {
                tracing::error!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                    "cannot record the refused callback; a check settles it");
                Outcome::Unrecorded
            }
        }
    }

    /// Run one REST attempt, counting and logging its failure.
    async fn counted<T>(
        &self,
        offer: &Offer,
        attempt: impl std::future::Future<Output = Result<T, RestError>>,
    ) -> Result<T, RestError> {
        let r = attempt.await;
        if let Err(e) = &r {
            metrics::counter!("callq_rest_errors_total", "code" => error_label(e)).increment(1);
            tracing::debug!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                "Twilio request failed");
        }
        r
    }

    /// Twilio accepted: extend the lease over the ring. `leg_sid` is the call Twilio created
    /// to ring the agent (a callback's agent-first call).
    async fn ringing(&self, offer: &Offer, claimed_at: Instant, leg_sid: Option<&str>) -> Outcome {
        self.reject.accepted();
        self.health.accepted();
        let outcome = self.extend(offer, claimed_at, leg_sid).await;
        if outcome == Outcome::Ringing {
            let secs = claimed_at.elapsed().as_secs_f64();
            metrics::histogram!("callq_assign_seconds").record(secs);
            tracing::info!(call_sid = %offer.call_sid, agent = %offer.agent_id,
                attempt = offer.attempt, ms = (secs * 1000.0) as u64, "agent ringing");
        }
        outcome
    }

    async fn extend(&self, offer: &Offer, claimed_at: Instant, leg_sid: Option<&str>) -> Outcome {
        let lease = offer.ring_timeout + self.settings.ring_grace;
        let lease_end = claimed_at + self.settings.offer_lease;
        let named = offer.offer_ref();
        match retry_store(lease_end, || {
            self.store.extend_offer(&named, Some(lease), leg_sid)
        })
        .await
        {
            Ok(Transition::Done(())) => Outcome::Ringing,
            Ok(Transition::Stale(state)) => {
                // Abandoned meanwhile (the webhooks got there first), or settled by a check
                // because we ran past the lease; either way routing moved on without us.
                tracing::info!(call_sid = %offer.call_sid, agent = %offer.agent_id, ?state,
                    "Twilio accepted, but the offer is no longer current");
                Outcome::Stale
            }
            Err(e) => {
                tracing::error!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                    "cannot extend the offer lease; the call may be offered again while ringing");
                Outcome::Unrecorded
            }
        }
    }

    /// Twilio out of reach, or refusing this worker (misconfigured): back in line without a
    /// miss for the agent. A misconfiguration also pauses this worker's claims and makes it
    /// unready until Twilio accepts a request again.
    async fn twilio_failed(&self, offer: &Offer, claimed_at: Instant, e: &RestError) -> Outcome {
        if e.kind() == FailureKind::Misconfigured {
            let pause = self.reject.rejected();
            self.health.misconfigured(e);
            tracing::error!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                pause_ms = pause.as_millis() as u64,
                "Twilio refused the request; call back in line, agent released, claims paused");
        } else {
            tracing::warn!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                "Twilio unavailable within the offer lease; call back in line, agent released");
        }
        self.requeue(offer, claimed_at, OfferOutcome::Canceled)
            .await
    }

    async fn requeue(&self, offer: &Offer, claimed_at: Instant, how: OfferOutcome) -> Outcome {
        self.settle(offer, claimed_at, how, "").await
    }

    /// `offer_result(how)` for this offer, within its lease.
    async fn settle(
        &self,
        offer: &Offer,
        claimed_at: Instant,
        how: OfferOutcome,
        detail: &str,
    ) -> Outcome {
        let lease_end = claimed_at + self.settings.offer_lease;
        let named = offer.offer_ref();
        match retry_store(lease_end, || self.store.offer_result(&named, how, detail)).await {
            Ok(OfferResult::Requeued(status)) => {
                tracing::debug!(call_sid = %offer.call_sid, agent = %offer.agent_id,
                    agent_status = %status, "call back in line");
                match how {
                    OfferOutcome::Canceled => Outcome::Requeued,
                    OfferOutcome::Refused => Outcome::Refused,
                    _ => Outcome::Failed,
                }
            }
            Ok(OfferResult::Missed(status)) => {
                tracing::debug!(call_sid = %offer.call_sid, agent = %offer.agent_id,
                    agent_status = %status, "one attempt only (fallback off): call overflowed");
                Outcome::Failed
            }
            Ok(OfferResult::Connected) => Outcome::Ringing,
            Ok(OfferResult::Refused) => Outcome::Refused,
            // (only an agent's own leg releases one agent of a ring_all offer; never this)
            Ok(OfferResult::Stale(_) | OfferResult::Released(_)) => Outcome::Stale,
            Err(e) => {
                tracing::error!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                    "cannot return the call to line; its lease will");
                Outcome::Unrecorded
            }
        }
    }

    async fn abandon(&self, offer: &Offer, claimed_at: Instant, reason: &str) -> Outcome {
        let lease_end = claimed_at + self.settings.offer_lease;
        match retry_store(lease_end, || self.store.abandon(&offer.call_sid, reason)).await {
            Ok(Transition::Done(_)) => Outcome::CallGone,
            Ok(Transition::Stale(_)) => Outcome::Stale,
            Err(e) => {
                tracing::error!(call_sid = %offer.call_sid, agent = %offer.agent_id, error = %e,
                    "cannot abandon the call; its lease returns it");
                Outcome::Unrecorded
            }
        }
    }
}

/// Retry a store operation on connection trouble (not on a bad reply) until `deadline`.
async fn retry_store<T, F, Fut>(deadline: Instant, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut pause = Duration::from_millis(20);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e @ (StoreError::Redis(_) | StoreError::Pool(_) | StoreError::Timeout(_)))
                if Instant::now() + pause < deadline =>
            {
                tracing::debug!(error = %e, "redis failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RecordMode;

    fn offer(kind: CallKind) -> Offer {
        Offer {
            call_sid: "CA0001".into(),
            agent_id: "a1".into(),
            identity: "alice".into(),
            queue: "sales".into(),
            attempt: 1,
            ring_timeout: Duration::from_millis(14_200),
            kind,
            from: "+15550001111".into(),
            to: "+15005550001".into(),
            waited: Duration::from_millis(42_000),
            record: RecordMode::DoNotRecord,
            also: Vec::new(),
        }
    }

    #[test]
    fn a_ring_all_offer_too_big_for_inline_twiml_rings_the_agents_that_fit() {
        let mut o = offer(CallKind::Inbound);
        o.also = (2..=10)
            .map(|i| {
                (
                    format!("a{i}"),
                    format!("agent-with-a-longish-identity-{i}"),
                )
            })
            .collect();
        let base = "https://callq-public-endpoint.contact-centre.example.com";
        assert!(
            matches!(
                inbound_twiml(base, &o),
                Err(TwimlError::InlineTooLong { .. })
            ),
            "ten agents do not fit"
        );
        let (fits, left_out) = fit_inline(base, &o);
        let xml = inbound_twiml(base, &fits).expect("fits");
        assert!(xml.chars().count() <= 4000);
        assert!(!left_out.is_empty() && !fits.also.is_empty());
        assert_eq!(fits.also.len() + left_out.len(), 9);
        // the best agents stay: the first, then the others in order
        assert_eq!(fits.agent_id, "a1");
        assert_eq!(fits.also[0].0, "a2");
        assert!(left_out.iter().any(|(id, _)| id == "a10"));
        // one more agent would not fit
        let mut more = fits.clone();
        more.also
            .push(left_out.last().cloned().expect("one left out"));
        assert!(inbound_twiml(base, &more).is_err());
        // an offer that fits is left alone
        let (same, none) = fit_inline("https://q.example.com", &offer(CallKind::Inbound));
        assert_eq!(same, offer(CallKind::Inbound));
        assert!(none.is_empty());
    }

    #[test]
    fn a_ring_all_offer_dials_every_agent_in_one_dial_each_leg_naming_its_agent() {
        let mut o = offer(CallKind::Inbound);
        o.also = vec![("a2".into(), "bob".into()), ("a3".into(), "carol".into())];
        let xml = inbound_twiml("https://q.example.com", &o).unwrap();
        assert_eq!(xml.matches("<Dial ").count(), 1, "{xml}");
        assert_eq!(xml.matches("<Client ").count(), 3, "{xml}");
        // the <Dial> action names the offer by its first agent; each leg by its own
        assert!(
            xml.contains("dial-result?call=CA0001&amp;agent=a1&amp;attempt=1"),
            "{xml}"
        );
        for (agent, identity) in [("a1", "alice"), ("a2", "bob"), ("a3", "carol")] {
            let leg = format!(
                "agent-leg?call=CA0001&amp;agent={agent}&amp;attempt=1\" \
                 statusCallbackEvent=\"answered completed\" statusCallbackMethod=\"POST\">\
                 <Identity>{identity}</Identity>"
            );
            assert!(xml.contains(&leg), "{agent}: {xml}");
        }
        // a one-agent offer is the contracted dial unchanged
        let one = inbound_twiml("https://q.example.com", &offer(CallKind::Inbound)).unwrap();
        assert_eq!(one.matches("<Client ").count(), 1);
    }

    #[test]
    fn inbound_twiml_is_the_contracted_dial() {
        let xml = inbound_twiml("https://q.example.com", &offer(CallKind::Inbound)).unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial \
             action=\"https://q.example.com/twilio/dial-result?call=CA0001&amp;agent=a1&amp;attempt=1\" \
             method=\"POST\" \
             timeout=\"15\" answerOnBridge=\"true\"><Client \
             statusCallback=\"https://q.example.com/twilio/agent-leg?call=CA0001&amp;agent=a1&amp;attempt=1\" \
             statusCallbackEvent=\"answered completed\" statusCallbackMethod=\"POST\">\
             <Identity>alice</Identity><Parameter name=\"callq_call\" value=\"CA0001\"/>\
             <Parameter name=\"callq_from\" value=\"+15550001111\"/>\
             <Parameter name=\"callq_queue\" value=\"sales\"/>\
             <Parameter name=\"callq_waited_ms\" value=\"42000\"/>\
             </Client></Dial></Response>"
        );
    }

    #[test]
    fn a_recording_queue_s_dial_records_and_reports_the_recording() {
        let mut o = offer(CallKind::Inbound);
        o.record = RecordMode::FromAnswerDual;
        let xml = inbound_twiml("https://q.example.com", &o).unwrap();
        assert!(
            xml.contains(
                "answerOnBridge=\"true\" record=\"record-from-answer-dual\" \
                 recordingStatusCallback=\"https://q.example.com/twilio/recording?call=CA0001\" \
                 recordingStatusCallbackMethod=\"POST\" recordingStatusCallbackEvent=\"completed\">"
            ),
            "{xml}"
        );
        // the rest of the document is the contracted dial of a queue that does not record
        let plain = inbound_twiml("https://q.example.com", &offer(CallKind::Inbound)).unwrap();
        assert!(!plain.contains("record"), "{plain}");
        let stripped = xml.replace(
            " record=\"record-from-answer-dual\" \
             recordingStatusCallback=\"https://q.example.com/twilio/recording?call=CA0001\" \
             recordingStatusCallbackMethod=\"POST\" recordingStatusCallbackEvent=\"completed\"",
            "",
        );
        assert_eq!(stripped, plain);
    }

    #[test]
    fn callback_twiml_dials_the_customer_from_the_called_number() {
        let xml = callback_twiml(
            "https://q.example.com",
            &offer(CallKind::Callback),
            "+15557654321",
        )
        .unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Calling back a customer \
             who kept their place in line.</Say><Dial \
             action=\"https://q.example.com/twilio/callback-result?call=CA0001&amp;agent=a1&amp;attempt=1\" \
             method=\"POST\" timeout=\"30\" callerId=\"+15005550001\"><Number>+15557654321</Number></Dial></Response>"
        );
    }

    #[test]
    fn a_recording_queue_s_callback_records_the_customer_dial() {
        let mut o = offer(CallKind::Callback);
        o.record = RecordMode::FromAnswer;
        let xml = callback_twiml("https://q.example.com", &o, "+15557654321").unwrap();
        assert!(
            xml.contains(
                "callerId=\"+15005550001\" record=\"record-from-answer\" \
                 recordingStatusCallback=\"https://q.example.com/twilio/recording?call=CA0001\""
            ),
            "{xml}"
        );
    }

    #[test]
    fn an_identity_too_long_for_inline_twiml_is_refused_locally() {
        let mut o = offer(CallKind::Inbound);
        o.identity = "x".repeat(5000);
        assert!(inbound_twiml("https://q.example.com", &o).is_err());
    }

    #[test]
    fn ring_seconds_round_up() {
        assert_eq!(ring_seconds(Duration::from_millis(20_000)), 20);
        assert_eq!(ring_seconds(Duration::from_millis(20_001)), 21);
        assert_eq!(ring_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn error_labels_prefer_twilio_codes() {
        let e = RestError::from_response(400, br#"{"code":21220,"message":"x","status":400}"#);
        assert_eq!(error_label(&e), "21220");
        assert_eq!(error_label(&RestError::from_response(502, b"")), "http_502");
        assert_eq!(error_label(&RestError::Timeout), "timeout");
    }
}
