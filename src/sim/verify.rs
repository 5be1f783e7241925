//! The end-of-run check: every call ended on the phone side, and callq's store holds a final
//! state for it that agrees with what the phone side saw. A call that fails either is *lost*.

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
    /// Calls checked.
    pub checked: u64,
}

/// What the store should say about a call, given what the phone side saw.
fn judge(log: &CallLog, rec: Option<&CallRecord>, reached: bool) -> Result<bool, String> {
    let outcome = log.outcome();
    let Some(rec) = rec else {
        return match outcome {
            // never queued (closed, a failed first webhook): nothing to find
            Outcome::EndedByCallq | Outcome::Error if log.enqueued.is_none() => Ok(false),
            _ => Err(format!("{outcome:?} on the phone but unknown to callq")),
        };
    };
    let state = rec.state;
    let ok = match outcome {
        Outcome::Answered => {
            let agent = log.agent.as_deref().and_then(|a| a.strip_prefix("client:"));
            if state == CallState::Completed && rec.agent.as_deref() != agent {
                return Err(format!(
                    "answered by {agent:?} on the phone, callq says agent {:?}",
                    rec.agent
                ));
            }
            state == CallState::Completed
        }
        Outcome::Abandoned => state == CallState::Abandoned,
        Outcome::Callback if reached => state == CallState::Completed,
        Outcome::Callback => {
            return match state {
                CallState::Callback | CallState::Offered => Ok(true),
                CallState::Completed => Err("callback completed but nobody called".into()),
                s => Err(format!("callback requested, callq says {s}")),
            }
        }
        Outcome::Voicemail => matches!(state, CallState::Overflowed | CallState::Abandoned),
        Outcome::EndedByCallq | Outcome::Error => state.is_final(),
    };
    if ok {
        Ok(false)
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
            match judge(log, recs.get(log.info.sid.as_str()).copied(), reached) {
                Ok(true) => v.callbacks_pending += 1,
                Ok(false) => {}
                Err(why) => v.lost.push((log.info.sid.clone(), why)),
            }
        }
    }
    Ok(v)
}
