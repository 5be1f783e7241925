//! The rollout gate on `/twilio/voice`: a caller outside callq's share (see
//! [`crate::config::rollout`]) takes the centre's legacy path, exactly as before callq; a
//! caller inside it goes on to callq's queue. The share is the admin's run-time override when
//! one is set (read through the server's [`SwitchCache`](crate::app::SwitchCache)), else the
//! file's. The legacy `<Dial>` reports its result to `/twilio/legacy-result`, so the legacy
//! path's connected share is measured beside callq's (`callq_legacy_calls_total`).

use super::{Hook, Reply};
use crate::app::{AppState, SWITCH_DEADLINE};
use crate::config::rollout::{routed_by_callq, LegacyPath};
use crate::twilio::twiml::{self, Client, Dial, DialNoun, Number};

/// The legacy path's TwiML when this caller is outside callq's share; None when callq routes
/// the call (always, at 100 %).
pub(crate) async fn legacy_for(h: &Hook) -> Option<twiml::Response> {
    let app = &h.app;
    let rollout = &app.centre.rollout;
    let deadline = SWITCH_DEADLINE.min(app.edge.redis_deadline);
    let share = app
        .switches
        .rollout_share(&app.store, rollout.share_pct, deadline)
        .await;
    let callq = routed_by_callq(h.param("From"), share);
    let path = if callq { "callq" } else { "legacy" };
    metrics::counter!("callq_rollout_calls_total", "path" => path).increment(1);
    if callq {
        return None;
    }
    // a share below 100 without a legacy path is refused at start and by the admin API;
    // should one slip through, callq routes the call rather than drop it
    let legacy = rollout.legacy.as_ref()?;
    tracing::info!(
        share_pct = share,
        "caller outside callq's share: legacy path"
    );
    Some(legacy_twiml(app, legacy))
}

/// What the centre did before callq: hand the call to its old webhook, or ring one phone
/// once (no answer is a missed call, as it was). The ring's result comes back to
/// [`legacy_result`] to be counted; the caller is then hung up on, as before.
pub(crate) fn legacy_twiml(app: &AppState, legacy: &LegacyPath) -> twiml::Response {
    let dial = |timeout_s: u32, noun: DialNoun| Dial {
        action: Some(app.public("/twilio/legacy-result")),
        method: Some("POST".into()),
        timeout: Some(timeout_s),
        nouns: vec![noun],
        ..Dial::default()
    };
    match legacy {
        LegacyPath::Redirect { url } => twiml::Response::new().redirect(url.as_str()),
        LegacyPath::Dial { number, timeout_s } => twiml::Response::new()
            .verb(dial(
                *timeout_s,
                DialNoun::Number(Number::new(number.trim())),
            ))
            .hangup(),
        LegacyPath::Client {
            identity,
            timeout_s,
        } => twiml::Response::new()
            .verb(dial(
                *timeout_s,
                DialNoun::Client(Client::new(identity.trim())),
            ))
            .hangup(),
    }
}

/// `POST /twilio/legacy-result`: the legacy `<Dial>` ended (`DialCallStatus`). Counted in
/// `callq_legacy_calls_total` by outcome (`answered`, `no_answer`, `busy`, `failed`,
/// `canceled`: the caller hung up while it rang); the caller is hung up on, as the legacy
/// path always did after its one ring. Nothing is kept in Redis: a duplicated result counts
/// twice, as rare as Twilio repeating an action request.
pub(crate) async fn legacy_result(h: Hook) -> Reply {
    let outcome = legacy_outcome(h.param("DialCallStatus"));
    metrics::counter!("callq_legacy_calls_total", "outcome" => outcome).increment(1);
    tracing::info!(outcome, "legacy path's ring ended");
    Reply::twiml(twiml::Response::new().hangup(), outcome)
}

/// Twilio's `DialCallStatus` as the metric's outcome label.
fn legacy_outcome(status: &str) -> &'static str {
    match status.trim() {
        "completed" | "answered" => "answered",
        "no-answer" => "no_answer",
        "busy" => "busy",
        "canceled" => "canceled",
        _ => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::legacy_outcome;

    #[test]
    fn every_dial_status_has_an_outcome() {
        assert_eq!(legacy_outcome("completed"), "answered");
        assert_eq!(legacy_outcome("answered"), "answered");
        assert_eq!(legacy_outcome("no-answer"), "no_answer");
        assert_eq!(legacy_outcome("busy"), "busy");
        assert_eq!(legacy_outcome("canceled"), "canceled");
        assert_eq!(legacy_outcome("failed"), "failed");
        assert_eq!(legacy_outcome(""), "failed");
    }
}
