//! Checks: when callq lost track of a call, ask Twilio before deciding. An offer whose lease
//! passed (the worker died between claim and Twilio, or the ring's callbacks never came) and a
//! connected call silent past its queue's `check_after` are taken by `take_checks`; the worker
//! reads the call from Twilio (`GET …/Calls/{Sid}.json`) with its child legs
//! (`GET …/Calls.json?ParentCallSid=`), and [`decide`] turns what Twilio says into the one
//! transition that matches it. Twilio's view of a live call wins.
//!
//! | callq holds | Twilio says | decision |
//! |---|---|---|
//! | offered (inbound) | the caller's call is over; the agent leg talked | `complete` |
//! | offered (inbound) | the caller's call is over otherwise | `abandon(call_gone)` |
//! | offered (inbound) | agent leg ringing / in progress / ended unanswered | extend / `answered` / that outcome |
//! | offered (inbound) | no agent leg since the offer | back in line, no miss |
//! | connected (inbound) | agent leg in progress | still talking: next check later |
//! | connected (inbound) | the agent leg or the caller's call is over | `complete` |
//! | connected (inbound) | the caller live but no leg to the agent | unknown: asked again later |
//! | offered (callback) | agent-first call ringing / in progress / unanswered | extend / `answered` / that outcome |
//! | offered (callback) | no agent-first call since the offer (SID never learnt) | never placed: back in line, no miss |
//! | offered or connected (callback) | agent-first call over; customer leg answered | `complete` |
//! | offered or connected (callback) | agent-first call over; customer not reached | `callback_result` (retry or failed) |
//! | connected (callback) | agent-first call in progress | still talking |
//!
//! When Twilio cannot be asked (it fails, or does not know the call) the check comes back
//! after its lease; after [`MAX_CHECKS`] tries in a row the call is settled from Redis alone,
//! so no agent is held forever: an offer goes back in line (no miss), a connected call ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::health::TwilioHealth;
use crate::store::{
    CallKind, CallState, Check, EndSource, OfferOutcome, OfferRef, Store, StoreError, Transition,
};
use crate::twilio::rest::{
    CallFilter, CallResource, CallStatus, FailureKind, RestError, TwilioRest,
};

/// Checks of one call in a row that found no answer from Twilio before it is settled from
/// Redis alone.
pub const MAX_CHECKS: u32 = 6;

/// A child leg may carry a creation time up to this much before the offer (Twilio's times are
/// whole seconds, and its clock is not Redis').
const CLOCK_SLACK_MS: i64 = 2_000;

/// What Twilio said about a call under check.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The call asked about: the caller's (inbound) or the agent-first call (callback). None
    /// when Twilio does not know it (or it could not be found).
    pub call: Option<CallResource>,
    /// The call's child legs (inbound: `<Dial>` legs to agents; callback: the customer leg).
    pub children: Vec<CallResource>,
}

/// The transition a check settles on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The agent's phone still rings: look again after the ring.
    StillRinging,
    /// The conversation goes on: look again after the queue's `check_after`.
    StillTalking,
    /// The agent answered (the callback was lost): `offer_result(answered)`.
    Answered { leg_sid: String },
    /// The ring ended unanswered (or never started: `Canceled`, no miss): `offer_result`.
    NotAnswered(OfferOutcome),
    /// The conversation is over: `complete`.
    Completed,
    /// The caller's call is over without a conversation: `abandon(call_gone)`.
    CallerGone,
    /// A callback's customer was not reached: `callback_result`.
    CustomerNotReached {
        outcome: OfferOutcome,
        reason: String,
    },
    /// Twilio could not tell: leave the call; its check comes back after the lease.
    Unknown,
}

/// What settles `check` given what Twilio said.
pub fn decide(check: &Check, seen: &Observed) -> Decision {
    match check.kind {
        CallKind::Inbound => decide_inbound(check, seen),
        CallKind::Callback => decide_callback(check, seen),
    }
}

/// When Twilio cannot be asked for the [`MAX_CHECKS`]th time: settle from Redis alone.
pub fn give_up(check: &Check) -> Decision {
    match check.state {
        CallState::Offered => Decision::NotAnswered(OfferOutcome::Canceled),
        _ => Decision::Completed,
    }
}

fn decide_inbound(check: &Check, seen: &Observed) -> Decision {
    let Some(caller) = &seen.call else {
        return Decision::Unknown;
    };
    let leg = agent_leg(check, &seen.children);
    let connected = check.state == CallState::Connected;
    if caller.status.is_final() {
        // the caller's call is over: a conversation with the agent completes, else gone
        return match leg.map(|l| l.status) {
            Some(CallStatus::Completed | CallStatus::InProgress) => Decision::Completed,
            _ if connected => Decision::Completed,
            _ => Decision::CallerGone,
        };
    }
    match leg {
        Some(l) => match l.status {
            CallStatus::InProgress if connected => Decision::StillTalking,
            CallStatus::InProgress => Decision::Answered {
                leg_sid: l.sid.clone(),
            },
            CallStatus::Queued | CallStatus::Initiated | CallStatus::Ringing if !connected => {
                Decision::StillRinging
            }
            CallStatus::Completed => Decision::Completed,
            status => match unanswered(status) {
                Some(outcome) if !connected => Decision::NotAnswered(outcome),
                _ if connected => Decision::Completed,
                _ => Decision::NotAnswered(OfferOutcome::Canceled),
            },
        },
        // connected, the caller live, yet no leg to the agent: Twilio's view does not add up
        // (yet); never free an agent who may be talking on that account (the check comes
        // back, and after MAX_CHECKS the call is settled from callq's record)
        None if connected => Decision::Unknown,
        // no ring since the offer: the redirect never reached the caller (or never started)
        None => Decision::NotAnswered(OfferOutcome::Canceled),
    }
}

fn decide_callback(check: &Check, seen: &Observed) -> Decision {
    let Some(leg) = &seen.call else {
        // no agent-first call: when callq never learnt its SID and Twilio lists no call to the
        // agent since the offer, it was never placed (the worker died first, or Twilio refused
        // the create); a SID Twilio does not know is a puzzle for the next check
        return if check.state == CallState::Offered && check.leg_sid.is_none() {
            Decision::NotAnswered(OfferOutcome::Canceled)
        } else {
            Decision::Unknown
        };
    };
    let connected = check.state == CallState::Connected;
    match leg.status {
        CallStatus::Queued | CallStatus::Initiated | CallStatus::Ringing if !connected => {
            Decision::StillRinging
        }
        CallStatus::InProgress if connected => Decision::StillTalking,
        CallStatus::InProgress => Decision::Answered {
            leg_sid: leg.sid.clone(),
        },
        CallStatus::Completed => {
            // the agent answered and the call is over: the customer leg tells the rest
            let customer = seen.children.first();
            match customer.map(|c| c.status) {
                Some(CallStatus::Completed) => Decision::Completed,
                Some(status) => Decision::CustomerNotReached {
                    outcome: unanswered(status).unwrap_or(OfferOutcome::Failed),
                    reason: format!("customer_{}", status.as_str()),
                },
                None => Decision::CustomerNotReached {
                    outcome: OfferOutcome::Failed,
                    reason: "customer_not_dialed".into(),
                },
            }
        }
        status => match unanswered(status) {
            Some(outcome) if !connected => Decision::NotAnswered(outcome),
            _ => Decision::CustomerNotReached {
                outcome: OfferOutcome::Failed,
                reason: format!("agent_leg_{}", status.as_str()),
            },
        },
    }
}

/// The child leg that tells most about this check's offer, and the agent it rings: the
/// newest leg to the agent's client that began with this offer; of a `ring_all` offer, the
/// most telling of the newest legs to each agent still ringing (answered before ringing
/// before ended unanswered).
fn agent_leg<'a>(check: &Check, children: &'a [CallResource]) -> Option<&'a CallResource> {
    offer_leg(check, children).map(|(leg, _)| leg)
}

fn offer_leg<'a, 'c>(
    check: &'c Check,
    children: &'a [CallResource],
) -> Option<(&'a CallResource, &'c str)> {
    let newest = |identity: &str| {
        let client = format!("client:{identity}");
        children
            .iter()
            .filter(|c| c.to.as_deref() == Some(client.as_str()))
            .filter(|c| match (check.since_ms, created_ms(c)) {
                (Some(since), Some(created)) => created + CLOCK_SLACK_MS >= since,
                _ => true,
            })
            .max_by_key(|c| created_ms(c).unwrap_or(i64::MIN))
    };
    if check.ringing.is_empty() {
        return newest(&check.identity).map(|l| (l, check.offer.agent_id.as_str()));
    }
    let telling = |s: CallStatus| match s {
        CallStatus::InProgress | CallStatus::Completed => 0,
        CallStatus::Queued | CallStatus::Initiated | CallStatus::Ringing => 1,
        _ => 2,
    };
    check
        .ringing
        .iter()
        .filter_map(|(agent, identity)| newest(identity).map(|l| (l, agent.as_str())))
        .min_by_key(|(l, _)| telling(l.status))
}

/// The name of `check`'s offer to settle it under: of a `ring_all` offer whose leg to one
/// agent answered (Twilio's word), that agent's, so the call goes to the agent who took it;
/// else the offer as the check holds it.
pub fn settling_offer(check: &Check, seen: &Observed) -> crate::store::OfferRef {
    let mut named = check.offer.clone();
    if check.kind == CallKind::Inbound && !check.ringing.is_empty() {
        if let Some((leg, agent)) = offer_leg(check, &seen.children) {
            if matches!(leg.status, CallStatus::InProgress | CallStatus::Completed) {
                named.agent_id = agent.to_string();
            }
        }
    }
    named
}

/// A call's `date_created` (RFC 2822, as Twilio writes it) as unix ms.
pub fn created_ms(c: &CallResource) -> Option<i64> {
    let raw = c.date_created.as_deref()?;
    let ts = jiff::fmt::rfc2822::parse(raw).ok()?.timestamp();
    Some(ts.as_millisecond())
}

fn unanswered(status: CallStatus) -> Option<OfferOutcome> {
    match status {
        CallStatus::NoAnswer => Some(OfferOutcome::NoAnswer),
        CallStatus::Busy => Some(OfferOutcome::Busy),
        CallStatus::Failed => Some(OfferOutcome::Failed),
        CallStatus::Canceled => Some(OfferOutcome::Canceled),
        _ => None,
    }
}

/// How long a check holds its call before another worker may take it.
pub const CHECK_LEASE: Duration = Duration::from_secs(10);

/// Most calls one round takes.
const BATCH: u32 = 20;

/// Asks Twilio about the calls `take_checks` hands out, and settles them.
pub struct Checker {
    store: Store,
    rest: TwilioRest,
    /// How long a call found still ringing is left before the next check.
    ring_lease: Duration,
    health: Arc<TwilioHealth>,
}

impl Checker {
    pub fn new(
        store: Store,
        rest: TwilioRest,
        ring_lease: Duration,
        health: Arc<TwilioHealth>,
    ) -> Self {
        Self {
            store,
            rest,
            ring_lease,
            health,
        }
    }

    /// Take the calls due a check and settle each (concurrently); returns how many were
    /// taken. A call whose check fails comes back after [`CHECK_LEASE`].
    pub async fn run_round(self: &Arc<Self>) -> Result<usize, StoreError> {
        let checks = self.store.take_checks(BATCH, CHECK_LEASE).await?;
        let taken = checks.len();
        let mut tasks = JoinSet::new();
        for check in checks {
            let me = self.clone();
            tasks.spawn(async move { me.settle(check).await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "check task ended abnormally; the call comes back after its lease");
            }
        }
        Ok(taken)
    }

    /// Ask Twilio about one call and apply the decision.
    async fn settle(&self, check: Check) {
        let mut named = check.offer.clone();
        let decision = match self.observe(&check).await {
            Ok(seen) => {
                self.health.accepted();
                named = settling_offer(&check, &seen);
                decide(&check, &seen)
            }
            Err(e) => {
                if e.kind() == FailureKind::Misconfigured {
                    self.health.misconfigured(&e);
                }
                tracing::warn!(call_sid = %check.offer.call_sid, checks = check.checks, error = %e,
                    "cannot ask Twilio about a call callq lost track of");
                Decision::Unknown
            }
        };
        let decision = match decision {
            Decision::Unknown if check.checks >= MAX_CHECKS => {
                let fallback = give_up(&check);
                tracing::warn!(call_sid = %check.offer.call_sid, agent = %check.offer.agent_id,
                    checks = check.checks, decision = ?fallback,
                    "Twilio could not tell what became of the call; settling it from callq's own record");
                fallback
            }
            d => d,
        };
        metrics::counter!("callq_checks_total", "decision" => decision.label()).increment(1);
        match self.apply(&named, &decision).await {
            Ok(result) => tracing::info!(call_sid = %check.offer.call_sid,
                agent = %check.offer.agent_id, attempt = check.offer.attempt,
                state = %check.state, decision = ?decision, result = %result,
                "checked with Twilio"),
            Err(e) => tracing::warn!(call_sid = %check.offer.call_sid, error = %e,
                "cannot record a check's decision; the call comes back after its lease"),
        }
    }

    /// What Twilio says of the call under check and its child legs.
    async fn observe(&self, check: &Check) -> Result<Observed, RestError> {
        let call = match (check.kind, &check.leg_sid) {
            (CallKind::Inbound, _) => self.fetch(&check.offer.call_sid).await?,
            (CallKind::Callback, Some(leg)) => self.fetch(leg).await?,
            (CallKind::Callback, None) => self.find_agent_call(check).await?,
        };
        let children = match &call {
            Some(c) => {
                let filter = CallFilter {
                    parent_call_sid: Some(c.sid.clone()),
                    page_size: 50,
                    ..CallFilter::default()
                };
                self.rest.list_calls(&filter).await?
            }
            None => Vec::new(),
        };
        Ok(Observed { call, children })
    }

    /// A call by SID; None when Twilio does not know it.
    async fn fetch(&self, sid: &str) -> Result<Option<CallResource>, RestError> {
        match self.rest.fetch_call(sid).await {
            Ok(c) => Ok(Some(c)),
            Err(RestError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A callback's agent-first call when its SID never reached callq (the worker died
    /// between creating it and recording it): the first call to the agent's client created
    /// since the offer.
    async fn find_agent_call(&self, check: &Check) -> Result<Option<CallResource>, RestError> {
        let Some(since) = check.since_ms else {
            return Ok(None);
        };
        let day = jiff::Timestamp::from_millisecond(since - CLOCK_SLACK_MS)
            .map(|t| t.strftime("%Y-%m-%d").to_string())
            .ok();
        let filter = CallFilter {
            to: Some(format!("client:{}", check.identity)),
            started_on_or_after: day,
            page_size: 50,
            ..CallFilter::default()
        };
        let calls = self.rest.list_calls(&filter).await?;
        Ok(calls
            .into_iter()
            .filter(|c| created_ms(c).is_some_and(|t| t + CLOCK_SLACK_MS >= since))
            .min_by_key(|c| created_ms(c).unwrap_or(i64::MAX)))
    }

    /// Run the transition `decision` names for `offer`; returns what it did, for the log.
    async fn apply(&self, offer: &OfferRef, decision: &Decision) -> Result<String, StoreError> {
        let sid = offer.call_sid.as_str();
        let store = &self.store;
        let done = match decision {
            Decision::StillRinging => {
                format!(
                    "{:?}",
                    store
                        .extend_offer(offer, Some(self.ring_lease), None)
                        .await?
                )
            }
            Decision::StillTalking => format!("{:?}", store.extend_offer(offer, None, None).await?),
            Decision::Answered { leg_sid } => format!(
                "{:?}",
                store
                    .offer_result(offer, OfferOutcome::Answered, leg_sid)
                    .await?
            ),
            Decision::NotAnswered(outcome) => {
                format!("{:?}", store.offer_result(offer, *outcome, "").await?)
            }
            Decision::Completed => format!(
                "{:?}",
                store.complete(sid, Some(offer), EndSource::Check).await?
            ),
            Decision::CallerGone => match store.abandon(sid, "call_gone").await? {
                Transition::Done(prior) => format!("abandoned from {prior}"),
                stale => format!("{stale:?}"),
            },
            Decision::CustomerNotReached { outcome, reason } => format!(
                "{:?}",
                store
                    .callback_result(offer, *outcome, reason, Duration::ZERO)
                    .await?
            ),
            Decision::Unknown => "left for the next check".to_string(),
        };
        Ok(done)
    }
}

impl Decision {
    /// The `decision` label of `callq_checks_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Decision::StillRinging => "still_ringing",
            Decision::StillTalking => "still_talking",
            Decision::Answered { .. } => "answered",
            Decision::NotAnswered(_) => "not_answered",
            Decision::Completed => "completed",
            Decision::CallerGone => "caller_gone",
            Decision::CustomerNotReached { .. } => "customer_not_reached",
            Decision::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFERED_MS: i64 = 1_764_460_800_000; // Sun, 30 Nov 2025 00:00:00 +0000

    fn check(kind: CallKind, state: CallState, phase: &str) -> Check {
        Check {
            offer: OfferRef {
                call_sid: "CAcaller".into(),
                agent_id: "a1".into(),
                attempt: 3,
            },
            state,
            kind,
            phase: phase.into(),
            leg_sid: None,
            identity: "alice".into(),
            since_ms: Some(OFFERED_MS),
            checks: 1,
            ringing: Vec::new(),
        }
    }

    fn call(sid: &str, to: &str, status: CallStatus, created: &str) -> CallResource {
        CallResource {
            sid: sid.into(),
            account_sid: "AC1".into(),
            status,
            to: Some(to.into()),
            from: None,
            direction: None,
            parent_call_sid: None,
            answered_by: None,
            date_created: Some(created.into()),
            date_updated: None,
            start_time: None,
            end_time: None,
            duration: None,
            queue_time: None,
            uri: None,
        }
    }

    const AT_OFFER: &str = "Sun, 30 Nov 2025 00:00:01 +0000";
    const BEFORE_OFFER: &str = "Sat, 29 Nov 2025 23:59:00 +0000";

    fn caller(status: CallStatus) -> Option<CallResource> {
        Some(call("CAcaller", "+15005550001", status, BEFORE_OFFER))
    }

    fn leg(status: CallStatus, created: &str) -> CallResource {
        call("CAleg", "client:alice", status, created)
    }

    /// A named case: what callq holds, what Twilio says, what must follow.
    struct Case {
        name: &'static str,
        check: Check,
        seen: Observed,
        want: Decision,
    }

    #[test]
    fn every_disagreement_settles_on_twilios_view() {
        use CallKind::{Callback, Inbound};
        use CallState::{Connected, Offered};
        use CallStatus as S;
        let seen =
            |call: Option<CallResource>, children: Vec<CallResource>| Observed { call, children };
        let cases = vec![
            Case {
                name: "inbound offer, agent leg still ringing",
                check: check(Inbound, Offered, "ringing"),
                seen: seen(caller(S::InProgress), vec![leg(S::Ringing, AT_OFFER)]),
                want: Decision::StillRinging,
            },
            Case {
                name: "inbound offer, the answered callback was lost",
                check: check(Inbound, Offered, "ringing"),
                seen: seen(caller(S::InProgress), vec![leg(S::InProgress, AT_OFFER)]),
                want: Decision::Answered {
                    leg_sid: "CAleg".into(),
                },
            },
            Case {
                name: "inbound offer, the ring ended unanswered",
                check: check(Inbound, Offered, "ringing"),
                seen: seen(caller(S::InProgress), vec![leg(S::NoAnswer, AT_OFFER)]),
                want: Decision::NotAnswered(OfferOutcome::NoAnswer),
            },
            Case {
                name: "inbound offer, the worker died before Twilio: no leg since the offer",
                check: check(Inbound, Offered, "claimed"),
                seen: seen(caller(S::InProgress), vec![leg(S::NoAnswer, BEFORE_OFFER)]),
                want: Decision::NotAnswered(OfferOutcome::Canceled),
            },
            Case {
                name: "inbound offer, the caller hung up during the ring",
                check: check(Inbound, Offered, "ringing"),
                seen: seen(caller(S::Completed), vec![leg(S::Canceled, AT_OFFER)]),
                want: Decision::CallerGone,
            },
            Case {
                name: "inbound offer, answered and over, every callback lost",
                check: check(Inbound, Offered, "ringing"),
                seen: seen(caller(S::Completed), vec![leg(S::Completed, AT_OFFER)]),
                want: Decision::Completed,
            },
            Case {
                name: "inbound connected, still talking",
                check: check(Inbound, Connected, ""),
                seen: seen(caller(S::InProgress), vec![leg(S::InProgress, AT_OFFER)]),
                want: Decision::StillTalking,
            },
            Case {
                name: "inbound connected, the end callbacks were lost",
                check: check(Inbound, Connected, ""),
                seen: seen(caller(S::Completed), vec![leg(S::Completed, AT_OFFER)]),
                want: Decision::Completed,
            },
            Case {
                name: "inbound connected, the caller live but no leg found: never free the agent on that",
                check: check(Inbound, Connected, ""),
                seen: seen(caller(S::InProgress), vec![]),
                want: Decision::Unknown,
            },
            Case {
                name: "inbound connected, the agent leg made long before the answer still counts",
                check: check(Inbound, Connected, ""),
                seen: seen(caller(S::InProgress), vec![leg(S::InProgress, AT_OFFER)]),
                want: Decision::StillTalking,
            },
            Case {
                name: "inbound, Twilio does not know the call",
                check: check(Inbound, Offered, "ringing"),
                seen: seen(None, vec![]),
                want: Decision::Unknown,
            },
            Case {
                name: "callback offer, the agent-first call still rings",
                check: check(Callback, Offered, "ringing"),
                seen: seen(Some(leg(S::Ringing, AT_OFFER)), vec![]),
                want: Decision::StillRinging,
            },
            Case {
                name: "callback offer, the agent did not answer",
                check: check(Callback, Offered, "ringing"),
                seen: seen(Some(leg(S::NoAnswer, AT_OFFER)), vec![]),
                want: Decision::NotAnswered(OfferOutcome::NoAnswer),
            },
            Case {
                name: "callback offer, never created before the worker died",
                check: check(Callback, Offered, "claimed"),
                seen: seen(None, vec![]),
                want: Decision::NotAnswered(OfferOutcome::Canceled),
            },
            Case {
                name: "callback offer whose create timed out and was never placed",
                check: check(Callback, Offered, "ringing"),
                seen: seen(None, vec![]),
                want: Decision::NotAnswered(OfferOutcome::Canceled),
            },
            Case {
                name: "callback offer whose recorded agent-first call Twilio does not know",
                check: Check {
                    leg_sid: Some("CAagent".into()),
                    ..check(Callback, Offered, "ringing")
                },
                seen: seen(None, vec![]),
                want: Decision::Unknown,
            },
            Case {
                name: "callback connected, customer talked, callbacks lost",
                check: check(Callback, Connected, ""),
                seen: seen(
                    Some(leg(S::Completed, AT_OFFER)),
                    vec![call("CAcust", "+15557654321", S::Completed, AT_OFFER)],
                ),
                want: Decision::Completed,
            },
            Case {
                name: "callback connected, customer did not answer, dial result lost",
                check: check(Callback, Connected, ""),
                seen: seen(
                    Some(leg(S::Completed, AT_OFFER)),
                    vec![call("CAcust", "+15557654321", S::NoAnswer, AT_OFFER)],
                ),
                want: Decision::CustomerNotReached {
                    outcome: OfferOutcome::NoAnswer,
                    reason: "customer_no-answer".into(),
                },
            },
            Case {
                name: "callback connected, the agent hung up before the customer was dialled",
                check: check(Callback, Connected, ""),
                seen: seen(Some(leg(S::Completed, AT_OFFER)), vec![]),
                want: Decision::CustomerNotReached {
                    outcome: OfferOutcome::Failed,
                    reason: "customer_not_dialed".into(),
                },
            },
            Case {
                name: "callback connected, still on the line",
                check: check(Callback, Connected, ""),
                seen: seen(Some(leg(S::InProgress, AT_OFFER)), vec![]),
                want: Decision::StillTalking,
            },
        ];
        for case in cases {
            assert_eq!(decide(&case.check, &case.seen), case.want, "{}", case.name);
        }
    }

    #[test]
    fn a_ring_all_offer_settles_on_the_agent_whose_leg_answered() {
        use CallStatus as S;
        let ring_all = Check {
            ringing: vec![("a1".into(), "alice".into()), ("a2".into(), "bob".into())],
            ..check(CallKind::Inbound, CallState::Offered, "ringing")
        };
        let seen = |alice: S, bob: S| Observed {
            call: caller(S::InProgress),
            children: vec![
                call("CAalice", "client:alice", alice, AT_OFFER),
                call("CAbob", "client:bob", bob, AT_OFFER),
            ],
        };
        // bob answered (the callbacks lost): the call is bob's, under bob's name of the offer
        let s = seen(S::Canceled, S::InProgress);
        assert_eq!(
            decide(&ring_all, &s),
            Decision::Answered {
                leg_sid: "CAbob".into()
            }
        );
        assert_eq!(settling_offer(&ring_all, &s).agent_id, "a2");
        // one declined, the other still rings: still ringing, under the offer's own name
        let s = seen(S::Busy, S::Ringing);
        assert_eq!(decide(&ring_all, &s), Decision::StillRinging);
        assert_eq!(settling_offer(&ring_all, &s).agent_id, "a1");
        // nobody answered: the whole offer, back in line
        let s = seen(S::NoAnswer, S::NoAnswer);
        assert_eq!(
            decide(&ring_all, &s),
            Decision::NotAnswered(OfferOutcome::NoAnswer)
        );
        // a one-agent offer looks at its own agent's leg only
        let one = check(CallKind::Inbound, CallState::Offered, "ringing");
        let s = seen(S::Ringing, S::InProgress);
        assert_eq!(decide(&one, &s), Decision::StillRinging);
        assert_eq!(settling_offer(&one, &s).agent_id, "a1");
    }

    #[test]
    fn giving_up_frees_the_agent_either_way() {
        assert_eq!(
            give_up(&check(CallKind::Inbound, CallState::Offered, "ringing")),
            Decision::NotAnswered(OfferOutcome::Canceled)
        );
        assert_eq!(
            give_up(&check(CallKind::Callback, CallState::Connected, "")),
            Decision::Completed
        );
    }

    #[test]
    fn twilio_dates_parse() {
        let c = leg(CallStatus::Ringing, AT_OFFER);
        assert_eq!(created_ms(&c), Some(OFFERED_MS + 1_000));
        let mut bad = c.clone();
        bad.date_created = Some("yesterday".into());
        assert_eq!(created_ms(&bad), None);
    }
}
