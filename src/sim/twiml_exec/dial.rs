//! `<Dial>`: ring one device or number, report the child leg to its status callback, and
//! the outcome to the `<Dial>` action, as Twilio does (a REST update while bridged first
//! requests the action with `completed`).

use std::time::Duration;

use tokio::time::Instant;

use super::{
    recv_or_pending, rfc2822_now, secs, until, CallInfo, Control, Env, Flow, Interpreter, LegEnd,
    Observed, Params, RingResult, Target, Wake,
};
use crate::twilio::twiml::{Dial, DialNoun};

impl<E: Env> Interpreter<E> {
    pub(super) async fn dial(&mut self, d: Dial) -> Flow {
        let Some(noun) = d.nouns.first() else {
            return Flow::End;
        };
        let (target, callback, events) = match noun {
            DialNoun::Client(c) => (
                Target::Client(c.identity.clone()),
                c.status_callback.clone(),
                c.status_callback_event.clone(),
            ),
            DialNoun::Number(n) => (
                Target::Number(n.number.clone()),
                n.status_callback.clone(),
                n.status_callback_event.clone(),
            ),
            DialNoun::Queue { .. } => return Flow::End,
        };
        let mut leg = Leg {
            sid: self.env.new_sid(),
            parent: self.call.clone(),
            to: target.address(),
            callback: callback.map(|u| self.resolve(&u)),
            events: events
                .unwrap_or_else(|| "completed".to_string())
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            sequence: 0,
            answered_at: None,
        };
        let action = d.action.as_deref().map(|u| self.resolve(u));
        self.log.rings += 1;
        self.env.observe(
            &self.call,
            Observed::Ringing {
                target: target.clone(),
            },
        );
        leg.report(&*self.env, "initiated", "initiated");
        leg.report(&*self.env, "ringing", "ringing");
        let timeout = secs(d.timeout.unwrap_or(30));
        let patience = self.patience_deadline();
        let rang_at = Instant::now();
        enum End {
            Answered(Option<Duration>),
            NotAnswered(&'static str),
            Control(Control),
            GaveUp,
        }
        let end = {
            let ring = self.env.ring(&target, &leg.sid, &self.call);
            tokio::select! {
                biased;
                c = recv_or_pending(&mut self.control) => End::Control(c),
                _ = until(patience) => End::GaveUp,
                r = ring => match r {
                    RingResult::Answered { talk } => End::Answered(talk),
                    RingResult::Busy => End::NotAnswered("busy"),
                    RingResult::Failed => End::NotAnswered("failed"),
                },
                _ = tokio::time::sleep(timeout) => End::NotAnswered("no-answer"),
            }
        };
        let dial_params = |status: &str, leg: &Leg| {
            vec![
                ("DialCallStatus".to_string(), status.to_string()),
                ("DialCallSid".to_string(), leg.sid.clone()),
                ("DialCallDuration".to_string(), leg.duration_s().to_string()),
                (
                    "DialBridged".to_string(),
                    leg.answered_at.is_some().to_string(),
                ),
            ]
        };
        match end {
            End::Answered(far_talk) => {
                let talk = far_talk.unwrap_or(self.script.talk);
                if self.log.answered.is_none() {
                    self.log.rang_at = Some(rang_at);
                    self.log.talk = talk;
                }
                self.served = true;
                self.log.answered.get_or_insert_with(Instant::now);
                self.log.agent = Some(target.address());
                leg.answered_at = Some(Instant::now());
                self.env.observe(
                    &self.call,
                    Observed::Connected {
                        target: target.clone(),
                    },
                );
                leg.report(&*self.env, "answered", "in-progress");
                let wake = self.wait(talk).await;
                self.env.leg_over(&target, &leg.sid, LegEnd::Completed);
                leg.report(&*self.env, "completed", "completed");
                self.log.dial_results.push("completed".into());
                let params = dial_params("completed", &leg);
                match (wake, action) {
                    (Wake::Control(c), action) => {
                        // a REST update while bridged: Twilio first requests the Dial action
                        // with `completed`, then runs the new document
                        if let Some(url) = action {
                            self.notify_with(&url, params);
                        }
                        Flow::Control(c)
                    }
                    (_, Some(url)) => Flow::Goto(url, params),
                    (_, None) => Flow::End,
                }
            }
            End::NotAnswered(status) => {
                self.env.leg_over(&target, &leg.sid, LegEnd::NoAnswer);
                self.log.missed += 1;
                leg.report(&*self.env, "completed", status);
                self.log.dial_results.push(status.into());
                match action {
                    Some(url) => Flow::Goto(url, dial_params(status, &leg)),
                    None => Flow::End,
                }
            }
            End::Control(c) => {
                self.env.leg_over(&target, &leg.sid, LegEnd::Canceled);
                leg.report(&*self.env, "completed", "canceled");
                self.log.dial_results.push("canceled".into());
                if let Some(url) = action {
                    self.notify_with(&url, dial_params("canceled", &leg));
                }
                Flow::Control(c)
            }
            End::GaveUp => {
                self.log.gave_up = true;
                self.env.leg_over(&target, &leg.sid, LegEnd::Canceled);
                leg.report(&*self.env, "completed", "canceled");
                self.log.dial_results.push("canceled".into());
                if let Some(url) = action {
                    let mut p = self.call.params("completed");
                    p.extend(dial_params("canceled", &leg));
                    self.env.notify(&url, p);
                }
                Flow::GaveUp
            }
        }
    }

    fn notify_with(&self, url: &str, extra: Params) {
        let mut p = self.call.params("in-progress");
        p.extend(extra);
        self.env.notify(url, p);
    }
}

/// The child leg of a `<Dial>`, for its status callbacks.
struct Leg {
    sid: String,
    parent: CallInfo,
    to: String,
    callback: Option<String>,
    events: Vec<String>,
    sequence: u32,
    answered_at: Option<Instant>,
}

impl Leg {
    fn duration_s(&self) -> u64 {
        self.answered_at.map(|t| t.elapsed().as_secs()).unwrap_or(0)
    }

    /// Sends the leg's status callback for `event` (if asked for) with `CallStatus=status`.
    fn report<E: Env>(&mut self, env: &E, event: &str, status: &str) {
        let Some(url) = &self.callback else { return };
        if !self.events.iter().any(|e| e == event) {
            return;
        }
        let mut p = vec![
            ("CallSid".to_string(), self.sid.clone()),
            ("ParentCallSid".to_string(), self.parent.sid.clone()),
            ("AccountSid".to_string(), self.parent.account_sid.clone()),
            ("From".to_string(), self.parent.from.clone()),
            ("To".to_string(), self.to.clone()),
            ("CallStatus".to_string(), status.to_string()),
            ("Direction".to_string(), "outbound-dial".to_string()),
            ("ApiVersion".to_string(), "2010-04-01".to_string()),
            ("Timestamp".to_string(), rfc2822_now()),
            ("SequenceNumber".to_string(), self.sequence.to_string()),
            (
                "CallbackSource".to_string(),
                "call-progress-events".to_string(),
            ),
        ];
        if event == "completed" {
            p.push(("CallDuration".to_string(), self.duration_s().to_string()));
        }
        self.sequence += 1;
        env.notify(url, p);
    }
}
