//! After the worker connected a caller to an agent: the `<Dial>` action `/twilio/dial-result`,
//! the agent leg's status callback `/twilio/agent-leg`, and the customer call's status callback
//! `/twilio/status`. Twilio does not promise the order of these; each transition finds a call
//! already moved on and changes nothing, so any order ends in the same state.

use axum::http::StatusCode;

use super::{enqueue_verb, within, ExitState, Hook, Reply};
use crate::app::AppState;
use crate::store::{check_name, CallState, OfferOutcome, OfferResult, Transition};
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

/// An agent id from our own query string, when it is a valid one.
fn agent_param(h: &Hook) -> Option<String> {
    h.query
        .get("agent")
        .filter(|a| check_name("agent id", a).is_ok())
        .map(str::to_owned)
}

/// `complete`, but only when the call is (still) with `agent`: a late "completed" of an agent
/// whose offer already went elsewhere must not end another agent's call.
async fn complete_for(
    app: &AppState,
    sid: &str,
    agent: Option<&str>,
) -> crate::store::Result<Transition<String>> {
    if let Some(agent) = agent {
        match app.store.call(sid).await? {
            None => return Ok(Transition::Stale(None)),
            Some(call)
                if matches!(call.state, CallState::Offered | CallState::Connected)
                    && call.agent.as_deref() != Some(agent) =>
            {
                return Ok(Transition::Stale(Some(call.state)));
            }
            Some(_) => {}
        }
    }
    app.store.complete(sid).await
}

/// `POST /twilio/dial-result?agent=<id>`: the `<Dial>` to an agent ended (`DialCallStatus`).
/// Answered: the conversation is over, `complete` and hang up. Not answered: `offer_result`
/// puts the call back at its rank, and the caller back in `<Enqueue>`.
pub(crate) async fn dial_result(h: Hook) -> Reply {
    let app = &h.app;
    let sid = h.call_sid.as_str();
    let agent = agent_param(&h);
    let status = h.param("DialCallStatus");
    if matches!(status, "completed" | "answered") {
        match within(app, complete_for(app, sid, agent.as_deref())).await {
            Ok(Transition::Done(agent)) => tracing::info!(agent = %agent, "call completed"),
            Ok(Transition::Stale(state)) => {
                tracing::debug!(state = ?state, "dial ended for a call already settled");
            }
            Err(e) => {
                tracing::warn!(call_sid = %sid, error = %e, "redis unavailable; completion not recorded (the status callback retries it)");
            }
        }
        return Reply::twiml(twiml::Response::new().hangup(), "completed");
    }

    let outcome = unanswered(status);
    if outcome.is_none() {
        tracing::warn!(dial_call_status = %super::excerpt(status), "unexpected DialCallStatus; caller back in line");
    }
    let settled = within(app, async {
        if let (Some(agent), Some(outcome)) = (agent.as_deref(), outcome) {
            match app.store.offer_result(sid, agent, outcome).await? {
                OfferResult::Requeued(status) => {
                    tracing::info!(agent, outcome = %outcome, agent_status = %status, "offer not answered; call back in line");
                }
                other => tracing::debug!(result = ?other, "offer result for an offer no longer current"),
            }
        }
        app.store.call(sid).await
    })
    .await;
    let queue = match settled {
        Ok(Some(call)) if call.state.is_final() || call.state == CallState::Callback => {
            return Reply::twiml(twiml::Response::new().hangup(), "ended");
        }
        Ok(Some(call)) => call.queue,
        Ok(None) => app.centre.queue_for_number(h.param("To")).to_owned(),
        Err(e) => {
            tracing::warn!(call_sid = %sid, error = %e, "redis unavailable; caller back in line (the offer lease returns the call)");
            let queue = app.centre.queue_for_number(h.param("To")).to_owned();
            return Reply::twiml(requeue_doc(app, &queue), "redis_error");
        }
    };
    Reply::twiml(requeue_doc(app, &queue), "requeued")
}

fn requeue_doc(app: &AppState, queue: &str) -> twiml::Response {
    twiml::Response::new()
        .say("All our agents are still busy. Please hold; you keep your place in line.")
        .verb(enqueue_verb(app, queue, ExitState::default()))
}

/// `POST /twilio/agent-leg?call=<CallSid>&agent=<id>`: the agent leg's status callback. The
/// request's own CallSid is the agent leg's; the customer's call is `call`.
pub(crate) async fn agent_leg(h: Hook) -> Reply {
    let app = &h.app;
    let (Some(call), Some(agent)) = (
        h.query
            .get("call")
            .filter(|c| check_name("CallSid", c).is_ok()),
        agent_param(&h),
    ) else {
        return Reply::plain(
            StatusCode::BAD_REQUEST,
            "missing or invalid call or agent\n",
            "bad_request",
        );
    };
    let status = h.param("CallStatus");
    let span = tracing::info_span!("agent_leg", call = %call, agent = %agent, status = %super::excerpt(status));
    let _entered = span.enter();
    let result = match status {
        "in-progress" | "answered" => within(
            app,
            app.store.offer_result(call, &agent, OfferOutcome::Answered),
        )
        .await
        .map(|r| format!("{r:?}")),
        "completed" => within(app, complete_for(app, call, Some(&agent)))
            .await
            .map(|r| format!("{r:?}")),
        other => match unanswered(other) {
            Some(outcome) => within(app, app.store.offer_result(call, &agent, outcome))
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
            tracing::warn!(call_sid = %call, error = %e, "redis unavailable; agent leg status not recorded");
            Reply::no_content("redis_error")
        }
    }
}

/// `POST /twilio/status`: the customer call's status callback. An ended call is abandoned
/// (released from its queue or its ringing agent), or completed when it was connected.
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
            Transition::Stale(Some(CallState::Connected)) => {
                Ok(format!("{:?}", app.store.complete(sid).await?))
            }
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
            tracing::warn!(call_sid = %sid, error = %e, "redis unavailable; call end not recorded");
            Reply::no_content("redis_error")
        }
    }
}
