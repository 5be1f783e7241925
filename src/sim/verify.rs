//! The end-of-run check: every call ended on the phone side, and callq's store holds a final
//! state for it that agrees with what the phone side saw. A call that fails either is *lost*.
//! Everything is judged from the phone side: a caller who asked for a callback and was never
//! reached (the customer did not answer, or callq gave up) is fine while callq still has the
//! callback in line or says `callback_failed`; a caller who left a voicemail after an
//! overflow is fine when callq says `overflowed` (or `abandoned`).

use std::collections::HashMap;

use tokio::time::Instant;

use super::twiml_exec::{CallLog, Outcome};
use crate::store::{CallRecord, CallState, Store};

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Calls whose final state is unknown or disagrees, with the reason.
    pub lost: Vec<(String, String)>,
    /// Callback requests not yet served when the run ended (in line, not lost).
    pub callbacks_pending: u64,
    /// Callback requests callq gave up on (`callback_failed`) whose customer was never
    /// reached: agreed on both sides, not lost.
    pub callbacks_failed: u64,
    /// Calls checked.
    pub checked: u64,
}

/// A call the phone side and callq agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agreed {
    Settled,
    /// A callback still to be made (in line, or being offered).
    CallbackPending,
    /// A callback callq gave up on, its customer never reached.
    CallbackFailed,
}

/// What callq's store says of a call: its state and agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Says<'a> {
    state: CallState,
    agent: Option<&'a str>,
}

impl<'a> From<&'a CallRecord> for Says<'a> {
    fn from(r: &'a CallRecord) -> Self {
        Says {
            state: r.state,
            agent: r.agent.as_deref(),
        }
    }
}

/// What the store should say about a call, given what the phone side saw.
fn judge(log: &CallLog, rec: Option<Says<'_>>, reached: bool) -> Result<Agreed, String> {
    let outcome = log.outcome();
    let Some(rec) = rec else {
        return match outcome {
            // never queued (closed, a failed first webhook): nothing to find
            Outcome::EndedByCallq | Outcome::Error if log.enqueued.is_none() => Ok(Agreed::Settled),
            // hung up in the IVR menu before choosing: no queue was ever asked for
            Outcome::Abandoned if log.enqueued.is_none() && log.pressed.is_empty() => {
                Ok(Agreed::Settled)
            }
            _ => Err(format!(
                "{outcome:?} on the phone (to {}, pressed {:?}, errors {:?}, {}) but unknown to callq",
                log.info.to,
                log.pressed,
                log.errors,
                if log.enqueued.is_some() { "held in a queue" } else { "never held" },
            )),
        };
    };
    let state = rec.state;
    let ok = match outcome {
        Outcome::Answered => {
            let agent = log.agent.as_deref().and_then(|a| a.strip_prefix("client:"));
            if state == CallState::Completed && rec.agent != agent {
                return Err(format!(
                    "answered by {agent:?} on the phone, callq says agent {:?}",
                    rec.agent
                ));
            }
            state == CallState::Completed
        }
        // pressed the callback key, then hung up before callq's answer played: Twilio still
        // sent the key, so callq may have taken the request (and called back) or not
        Outcome::Abandoned if log.callback_pressed => match state {
            CallState::Abandoned => true,
            CallState::Completed if reached => true,
            CallState::Callback | CallState::Offered | CallState::Connected => {
                return Ok(Agreed::CallbackPending)
            }
            CallState::CallbackFailed => return Ok(Agreed::CallbackFailed),
            _ => false,
        },
        Outcome::Abandoned => state == CallState::Abandoned,
        Outcome::Callback if reached => state == CallState::Completed,
        Outcome::Callback => {
            return match state {
                CallState::Callback | CallState::Offered => Ok(Agreed::CallbackPending),
                CallState::CallbackFailed => Ok(Agreed::CallbackFailed),
                CallState::Completed => Err("callback completed but nobody called".into()),
                s => Err(format!("callback requested, callq says {s}")),
            }
        }
        Outcome::Voicemail => matches!(state, CallState::Overflowed | CallState::Abandoned),
        Outcome::EndedByCallq | Outcome::Error => state.is_final(),
    };
    if ok {
        Ok(Agreed::Settled)
    } else {
        Err(format!("{outcome:?} on the phone, callq says {state}"))
    }
}

/// Checks `logs` against the store. `unfinished` are calls still live on the phone side.
pub async fn verify(
    store: &Store,
    logs: &[CallLog],
    unfinished: &[String],
    callbacks_reached: &HashMap<String, Instant>,
) -> anyhow::Result<Verdict> {
    let mut v = Verdict::default();
    for sid in unfinished {
        v.lost
            .push((sid.clone(), "still live on the phone side".to_string()));
    }
    for chunk in logs.chunks(500) {
        let sids: Vec<String> = chunk.iter().map(|l| l.info.sid.clone()).collect();
        let snap = store.snapshot(&sids).await?;
        let recs: HashMap<&str, &CallRecord> =
            snap.calls.iter().map(|c| (c.sid.as_str(), c)).collect();
        for log in chunk {
            v.checked += 1;
            let reached = callbacks_reached.contains_key(&log.info.sid);
            let says = recs.get(log.info.sid.as_str()).map(|r| Says::from(*r));
            match judge(log, says, reached) {
                Ok(Agreed::CallbackPending) => v.callbacks_pending += 1,
                Ok(Agreed::CallbackFailed) => v.callbacks_failed += 1,
                Ok(Agreed::Settled) => {}
                Err(why) => v.lost.push((log.info.sid.clone(), why)),
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::twiml_exec::CallInfo;

    fn log() -> CallLog {
        let mut l = CallLog::new(CallInfo {
            sid: "CA1".into(),
            account_sid: "AC1".into(),
            from: "+15550001111".into(),
            to: "+15005550001".into(),
            direction: "inbound".into(),
        });
        l.enqueued = Some(Instant::now());
        l
    }

    fn says(state: CallState, agent: Option<&str>) -> Option<Says<'_>> {
        Some(Says { state, agent })
    }

    #[test]
    fn a_callback_never_reached_agrees_with_callback_failed_or_still_in_line() {
        let mut l = log();
        l.callback_asked = true;
        assert_eq!(
            judge(&l, says(CallState::CallbackFailed, None), false),
            Ok(Agreed::CallbackFailed)
        );
        for state in [CallState::Callback, CallState::Offered] {
            assert_eq!(
                judge(&l, says(state, None), false),
                Ok(Agreed::CallbackPending)
            );
        }
        assert!(judge(&l, says(CallState::Completed, Some("a1")), false).is_err());
        assert!(judge(&l, says(CallState::Abandoned, None), false).is_err());
        // reached: only completed agrees
        assert_eq!(
            judge(&l, says(CallState::Completed, Some("a1")), true),
            Ok(Agreed::Settled)
        );
        assert!(judge(&l, says(CallState::CallbackFailed, None), true).is_err());
    }

    #[test]
    fn a_caller_who_pressed_for_a_callback_and_hung_up_agrees_with_either_answer() {
        let mut l = log();
        l.callback_pressed = true;
        l.caller_hung_up = true;
        struct Case {
            /// What callq's record says.
            state: CallState,
            /// Whether the customer was reached on a call back.
            reached: bool,
            want: Agreed,
        }
        for c in [
            Case {
                state: CallState::Abandoned,
                reached: false,
                want: Agreed::Settled,
            },
            Case {
                state: CallState::Callback,
                reached: false,
                want: Agreed::CallbackPending,
            },
            Case {
                state: CallState::CallbackFailed,
                reached: false,
                want: Agreed::CallbackFailed,
            },
            Case {
                state: CallState::Completed,
                reached: true,
                want: Agreed::Settled,
            },
        ] {
            let got = judge(&l, says(c.state, None), c.reached);
            assert_eq!(got, Ok(c.want), "{}", c.state);
        }
        assert!(
            judge(&l, says(CallState::Completed, Some("a1")), false).is_err(),
            "completed but nobody called back"
        );
        assert!(judge(&l, says(CallState::Waiting, None), false).is_err());
    }

    #[test]
    fn the_phone_side_decides_what_agrees() {
        let mut l = log();
        l.answered = Some(Instant::now());
        l.agent = Some("client:alice".into());
        let ok = judge(&l, says(CallState::Completed, Some("alice")), false);
        assert_eq!(ok, Ok(Agreed::Settled));
        assert!(judge(&l, says(CallState::Completed, Some("bob")), false).is_err());
        assert!(judge(&l, says(CallState::Connected, Some("alice")), false).is_err());
        assert!(
            judge(&l, None, false).is_err(),
            "a call that ended with no record is lost"
        );
        // a caller who hung up in the IVR menu, before choosing, was never callq's to record;
        // one who chose (the menu's answer enqueues) or was held in a queue was
        let mut menu = CallLog::new(l.info.clone());
        menu.gave_up = true;
        assert_eq!(judge(&menu, None, false), Ok(Agreed::Settled));
        menu.pressed.push("1".into());
        assert!(judge(&menu, None, false).is_err());
        let mut held = log();
        held.gave_up = true;
        assert!(judge(&held, None, false).is_err());
        let mut v = log();
        v.voicemail = true;
        assert_eq!(
            judge(&v, says(CallState::Overflowed, None), false),
            Ok(Agreed::Settled)
        );
        assert!(judge(&v, says(CallState::Waiting, None), false).is_err());
        let mut gone = log();
        gone.gave_up = true;
        assert!(judge(&gone, says(CallState::Waiting, None), false).is_err());
        assert_eq!(
            judge(&gone, says(CallState::Abandoned, None), false),
            Ok(Agreed::Settled)
        );
    }
}
