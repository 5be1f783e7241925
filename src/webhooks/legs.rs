//! After the worker offered a call to an agent: the caller's `<Dial>` action
//! `/twilio/dial-result`, the agent leg's status callback `/twilio/agent-leg`, a callback's
//! customer `<Dial>` action `/twilio/callback-result`, and the caller's own status callback
//! `/twilio/status`.
//!
//! The first three carry the offer they report on in their query ([`crate::contract`]); every
//! transition they run checks it, so a late, repeated or reordered request about an earlier
//! offer of the same call changes nothing. Twilio does not promise the order of these
//! requests; each transition finds a call already moved on and changes nothing, so any order
//! ends in the same state. When Redis cannot record a result, the caller still gets TwiML that
//! keeps them somewhere sensible, and the offer's lease brings the call to a worker that asks
//! Twilio what happened.

use axum::http::StatusCode;
use tracing::Instrument;

use super::{enqueue_verb, within, ExitState, Hook, Reply};
use crate::app::AppState;
use crate::contract;
use crate::store::{
    CallState, CallbackRetry, Completion, EndSource, OfferOutcome, OfferRef, OfferResult,
    Transition,
};
use crate::twilio::twiml;

/// Twilio's statuses of a leg that ended without a conversation, as offer outcomes.
fn unanswered(status: &str) -> Option<OfferOutcome> {
    match status {
        "no-answer" => Some(OfferOutcome::NoAnswer),
        "busy" => Some(OfferOutcome::Busy),
        "failed" => Some(OfferOutcome::Failed),
        "canceled" => Some(OfferOutcome::Canceled),
        _ => None,
    }
}

/// The offer named in the request's query, or why there is none.
fn offer_of(h: &Hook) -> Result<OfferRef, contract::BadOffer> {
    contract::parse(&h.query.0)
}

/// `POST /twilio/dial-result?call=&agent=&attempt=`: the caller's `<Dial>` to an agent ended
/// (`DialCallStatus`). Answered: the conversation is over, `complete` and hang up, unless the
/// agent transferred the call, when the caller holds in its new queue; when Redis cannot say
/// which, the caller holds a moment and the request comes back
/// ([`contract::dial_retry_url`]), up to [`contract::DIAL_RETRIES`] times. Not answered:
/// `offer_result` puts the call back at its rank, and the caller back in `<Enqueue>`.
pub(crate) async fn dial_result(h: Hook) -> Reply {
    let app = &h.app;
    let sid = h.call_sid.as_str();
    let offer = match offer_of(&h) {
        Ok(o) if o.call_sid == sid => Some(o),
        Ok(o) => {
            tracing::warn!(offer_call = %o.call_sid, "dial result names another call; not recorded");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "dial result without a valid offer; not recorded");
            None
        }
    };
    let retry = contract::parse_retry(&h.query.0);
    // a retry (below) asks again about a `<Dial>` that ended with a conversation
    let status = if retry.is_some() {
        "completed"
    } else {
        h.param("DialCallStatus")
    };
    if matches!(status, "completed" | "answered") {
        let Some(offer) = &offer else {
            return Reply::twiml(twiml::Response::new().hangup(), "completed");
        };
        let settled = within(app, async {
            let done = app
                .store
                .complete(sid, Some(offer), EndSource::Dial)
                .await?;
            let call = match done {
                Completion::Completed(_) => None,
                _ => app.store.call(sid).await?,
            };
            Ok((done, call))
        })
        .await;
        match settled {
            Ok((Completion::Completed(agent), _)) => {
                tracing::info!(agent = %agent, "call completed");
            }
            // the agent transferred the call before hanging up: hold the caller in the
            // queue it went to
            Ok((_, Some(call)))
                if matches!(call.state, CallState::Waiting | CallState::Offered) =>
            {
                tracing::info!(queue = %call.queue, "agent transferred the call; caller on hold in its new queue");
                return Reply::twiml(transfer_doc(app, &call.queue), "transferred");
            }
            Ok((other, _)) => {
                tracing::debug!(result = ?other, "dial ended for a call already settled")
            }
            Err(e) => {
                // Redis cannot say whether the agent transferred the call: hanging up now
                // would lose a transferred caller, so hold them and ask again
                let asked = retry.unwrap_or(0);
                if asked < contract::DIAL_RETRIES {
                    tracing::warn!(call_sid = %sid, error = %e, retry = asked + 1, "redis unavailable at the end of a dial; caller holds and asks again");
                    let again = contract::dial_retry_url(&app.edge.public_url, offer, asked + 1);
                    return Reply::twiml(
                        twiml::Response::new()
                            .pause(contract::DIAL_RETRY_PAUSE_S)
                            .redirect(again),
                        "redis_retry",
                    );
                }
                tracing::warn!(call_sid = %sid, error = %e, "redis unavailable at the end of a dial after every retry; caller hung up (a check with Twilio settles the completion)");
            }
        }
        return Reply::twiml(twiml::Response::new().hangup(), "completed");
    }

    let outcome = unanswered(status).unwrap_or_else(|| {
        tracing::warn!(dial_call_status = %super::excerpt(status), "unexpected DialCallStatus; caller back in line, no miss counted");
        OfferOutcome::Canceled
    });
    let settled = within(app, async {
        if let Some(offer) = &offer {
            match app.store.offer_result(offer, outcome, "").await? {
                OfferResult::Requeued(status) => {
                    tracing::info!(agent = %offer.agent_id, attempt = offer.attempt, outcome = %outcome, agent_status = %status, "offer not answered; call back in line");
                }
                OfferResult::Missed(status) => {
                    tracing::info!(agent = %offer.agent_id, attempt = offer.attempt, outcome = %outcome, agent_status = %status, "offer not answered; one attempt only (fallback off): overflow action");
                }
                other => tracing::debug!(result = ?other, "offer result for an offer no longer current"),
            }
        }
        app.store.call(sid).await
    })
    .await;
    match settled {
        // one attempt only (the `fallback` feature off): the overflow action, at once
        Ok(Some(call)) if call.state == CallState::Overflowed => {
            Reply::twiml(super::hold::overflowed_twiml(app, &call), "overflow")
        }
        Ok(Some(call)) if call.state.is_final() || call.state == CallState::Callback => {
            Reply::twiml(twiml::Response::new().hangup(), "ended")
        }
        Ok(Some(call)) => Reply::twiml(requeue_doc(app, &call.queue), "requeued"),
        Ok(None) => {
            let queue = app.centre.queue_for_number(h.param("To")).to_owned();
            Reply::twiml(requeue_doc(app, &queue), "requeued")
        }
        Err(e) => {
            tracing::warn!(call_sid = %sid, error = %e, "redis unavailable; caller back in line (a check with Twilio settles the offer)");
            let queue = app.centre.queue_for_number(h.param("To")).to_owned();
            Reply::twiml(requeue_doc(app, &queue), "redis_error")
        }
    }
}

/// The caller of a call its agent transferred: on hold in the queue it went to.
fn transfer_doc(app: &AppState, queue: &str) -> twiml::Response {
    let sp = super::speech_of(app, queue);
    sp.spoken(
        twiml::Response::new()
            .say(sp.phrases().transferring)
            .verb(enqueue_verb(app, queue, ExitState::default())),
    )
}

fn requeue_doc(app: &AppState, queue: &str) -> twiml::Response {
    let sp = super::speech_of(app, queue);
    sp.spoken(
        twiml::Response::new()
            .say(sp.phrases().still_busy)
            .verb(enqueue_verb(app, queue, ExitState::default())),
    )
}

/// `POST /twilio/agent-leg?call=&agent=&attempt=`: the agent leg's status callback (of the
/// `<Client>` an inbound caller was redirected to, or of a callback's agent-first call). The
/// request's own CallSid is the agent leg's; the offer names the caller's call.
pub(crate) async fn agent_leg(h: Hook) -> Reply {
    let app = &h.app;
    let offer = match offer_of(&h) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "agent leg callback without a valid offer");
            return Reply::plain(
                StatusCode::BAD_REQUEST,
                "missing or invalid offer (call, agent, attempt)\n",
                "bad_request",
            );
        }
    };
    let status = h.param("CallStatus");
    let span = tracing::info_span!("agent_leg", call = %offer.call_sid, agent = %offer.agent_id, attempt = offer.attempt, status = %super::excerpt(status));
    agent_leg_status(app, &offer, status, h.call_sid.as_str())
        .instrument(span)
        .await
}

/// What the agent leg's `status` does to `offer`; `leg_sid` is the leg's own CallSid. Of a
/// `ring_all` offer each `<Client>` leg names its own agent: the first answered connects the
/// call to that agent (the others are released), an unanswered one releases its agent alone.
async fn agent_leg_status(app: &AppState, offer: &OfferRef, status: &str, leg_sid: &str) -> Reply {
    let result = match status {
        "in-progress" | "answered" => within(
            app,
            app.store
                .offer_result(offer, OfferOutcome::Answered, leg_sid),
        )
        .await
        .map(|r| format!("{r:?}")),
        "completed" => within(
            app,
            app.store
                .complete(&offer.call_sid, Some(offer), EndSource::Leg),
        )
        .await
        .map(|r| format!("{r:?}")),
        // this leg alone: of a ring_all offer, the others may still ring
        other => match unanswered(other) {
            Some(outcome) => within(app, app.store.leg_result(offer, outcome, ""))
                .await
                .map(|r| format!("{r:?}")),
            None => return Reply::no_content("ignored"),
        },
    };
    match result {
        Ok(r) => {
            tracing::info!(result = %r, "agent leg");
            Reply::no_content("ok")
        }
        Err(e) => {
            tracing::warn!(call_sid = %offer.call_sid, error = %e, "redis unavailable; agent leg status not recorded (a check with Twilio settles it)");
            Reply::no_content("redis_error")
        }
    }
}

/// `POST /twilio/callback-result?call=&agent=&attempt=`: a callback's `<Dial>` to the
/// customer ended; the request comes from the agent's leg. Answered: the callback is done.
/// Not answered: `callback_result` schedules a retry or ends the callback, and the agent
/// hears one sentence before the call ends. The agent's call never joins a customer queue.
pub(crate) async fn callback_result(h: Hook) -> Reply {
    let app = &h.app;
    let offer = match offer_of(&h) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "callback result without a valid offer; not recorded");
            return Reply::twiml(twiml::Response::new().hangup(), "bad_offer");
        }
    };
    let status = h.param("DialCallStatus");
    if matches!(status, "completed" | "answered") {
        let done = within(
            app,
            app.store
                .complete(&offer.call_sid, Some(&offer), EndSource::Dial),
        )
        .await;
        match done {
            Ok(r) => tracing::info!(result = ?r, "callback conversation over"),
            Err(e) => {
                tracing::warn!(call_sid = %offer.call_sid, error = %e, "redis unavailable; callback completion not recorded (a check with Twilio settles it)");
            }
        }
        return Reply::twiml(twiml::Response::new().hangup(), "completed");
    }
    let outcome = unanswered(status).unwrap_or(OfferOutcome::Failed);
    let reason = format!("customer_{}", super::excerpt(status).replace(' ', "_"));
    // the words depend on the outcome, which the store decides; the agent's leg plays at most
    // the longest of them before it ends
    let still_playing = speaking_time(CUSTOMER_NOT_REACHED_FINAL);
    let recorded = within(
        app,
        app.store
            .callback_result(&offer, outcome, &reason, still_playing),
    )
    .await;
    let words = match recorded {
        Ok(CallbackRetry::Retry { .. }) => {
            tracing::info!(outcome = %outcome, "callback customer not reached; retry scheduled");
            CUSTOMER_NOT_REACHED_RETRY
        }
        Ok(CallbackRetry::Failed) => {
            tracing::info!(outcome = %outcome, "callback customer not reached; no retries left");
            CUSTOMER_NOT_REACHED_FINAL
        }
        Ok(CallbackRetry::Stale(state)) => {
            tracing::debug!(state = ?state, "callback result for an offer no longer current");
            "Goodbye."
        }
        Err(e) => {
            tracing::warn!(call_sid = %offer.call_sid, error = %e, "redis unavailable; callback result not recorded (a check with Twilio settles it)");
            "The customer did not answer. Goodbye."
        }
    };
    Reply::twiml(
        twiml::Response::new().say(words).hangup(),
        "customer_not_reached",
    )
}

const CUSTOMER_NOT_REACHED_RETRY: &str =
    "The customer did not answer. We will try again later. Goodbye.";
const CUSTOMER_NOT_REACHED_FINAL: &str =
    "The customer could not be reached, and this callback is now closed. Goodbye.";

/// How long Twilio takes to say `words` (about 2.5 words a second) and hang up, with room.
fn speaking_time(words: &str) -> std::time::Duration {
    let n = words.split_whitespace().count() as u64;
    std::time::Duration::from_millis(n * 400 + 2_000)
}

/// `POST /twilio/status`: the caller's call status callback. An ended call is abandoned
/// (released from its line or its ringing agent), or completed when it was connected. A
/// callback's caller hanging up changes nothing (the callback goes on by its own legs).
pub(crate) async fn status(h: Hook) -> Reply {
    let app = &h.app;
    let sid = h.call_sid.as_str();
    if !matches!(
        h.param("CallStatus"),
        "completed" | "busy" | "failed" | "no-answer" | "canceled"
    ) {
        return Reply::no_content("ignored");
    }
    let result = within(app, async {
        match app.store.abandon(sid, "hangup").await? {
            Transition::Stale(Some(CallState::Connected)) => Ok(format!(
                "{:?}",
                app.store.complete(sid, None, EndSource::Status).await?
            )),
            other => Ok(format!("{other:?}")),
        }
    })
    .await;
    match result {
        Ok(r) => {
            tracing::info!(result = %r, "call ended");
            Reply::no_content("ok")
        }
        Err(e) => {
            tracing::warn!(call_sid = %sid, error = %e, "redis unavailable; call end not recorded (a check with Twilio settles it)");
            Reply::no_content("redis_error")
        }
    }
}
