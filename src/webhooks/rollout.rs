//! The rollout gate on `/twilio/voice`: a caller outside callq's share (see
//! [`crate::config::rollout`]) takes the centre's legacy path, exactly as before callq; a
//! caller inside it goes on to callq's queue. The share is the admin's run-time override when
//! one is set (read through the server's [`SwitchCache`](crate::app::SwitchCache)), else the
//! file's.

use super::Hook;
use crate::app::SWITCH_DEADLINE;
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
    Some(legacy_twiml(legacy))
}

/// What the centre did before callq: hand the call to its old webhook, or ring one phone
/// once (no answer is a missed call, as it was).
pub(crate) fn legacy_twiml(legacy: &LegacyPath) -> twiml::Response {
    match legacy {
        LegacyPath::Redirect { url } => twiml::Response::new().redirect(url.as_str()),
        LegacyPath::Dial { number, timeout_s } => twiml::Response::new()
            .verb(Dial {
                timeout: Some(*timeout_s),
                nouns: vec![DialNoun::Number(Number::new(number.trim()))],
                ..Dial::default()
            })
            .hangup(),
        LegacyPath::Client {
            identity,
            timeout_s,
        } => twiml::Response::new()
            .verb(Dial {
                timeout: Some(*timeout_s),
                nouns: vec![DialNoun::Client(Client::new(identity.trim()))],
                ..Dial::default()
            })
            .hangup(),
    }
}
