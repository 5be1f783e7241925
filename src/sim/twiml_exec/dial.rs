//! `<Dial>`: ring one device or number as a child leg (`outbound-dial`, recorded with the
//! dialling call as its parent and its status as it goes), report the leg to its status
//! callback and the outcome to the `<Dial>` action, as Twilio does (a REST update while
//! bridged first requests the action with `completed`). A REST update of the leg itself takes
//! it out of the bridge: ringing, the `<Dial>` ends `canceled`; bridged, it ends `completed`
//! (the leg does not run the new TwiML here; callq never sends any to a leg).
//! `<Dial record>` (any mode but `do-not-record`) on an answered dial: once the bridge ends,
//! the recording status callback gets a `completed` recording (`RE…` SID, a URL under the
//! REST API, the bridged seconds), as Twilio reports it after the call's own callbacks.

use std::time::Duration;

use tokio::sync::mpsc;
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
        let info = CallInfo {
            sid: self.env.new_sid(),
            account_sid: self.call.account_sid.clone(),
            from: d
                .caller_id
                .clone()
                .filter(|c| !c.trim().is_empty())
                .unwrap_or_else(|| self.call.from.clone()),
            to: target.address(),
            direction: "outbound-dial".into(),
        };
        // the leg's own REST updates: a hang-up (or new TwiML) takes it out of the bridge
        let mut leg_control = self.env.leg_created(&info, &self.call.sid);
        let mut leg = Leg {
            info,
            parent: self.call.sid.clone(),
            target: target.clone(),
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
        let recording = Recording::asked(&d).map(|url| self.resolve(&url));
        self.log.rings += 1;
        self.env.observe(
            &self.call,
            Observed::Ringing {
                target: target.clone(),
            },
        );
        leg.report(&*self.env, "initiated", "initiated");
        self.env.status_changed(&leg.info.sid, "ringing");
        leg.report(&*self.env, "ringing", "ringing");
        let timeout = secs(d.timeout.unwrap_or(30));
        let patience = self.patience_deadline();
        let rang_at = Instant::now();
        enum End {
            Answered(Option<Duration>),
            NotAnswered(&'static str),
            LegCanceled,
            Control(Control),
            GaveUp,
        }
        let end = {
            let ring = self.env.ring(&target, &leg.info.sid, &self.call);
            tokio::select! {
                biased;
                c = recv_or_pending(&mut self.control) => End::Control(c),
                _ = until(patience) => End::GaveUp,
                _ = leg_update(&mut leg_control) => End::LegCanceled,
                r = ring => match r {
                    RingResult::Answered { talk } => End::Answered(talk),
                    RingResult::Busy => End::NotAnswered("busy"),
                    RingResult::Failed => End::NotAnswered("failed"),
                    RingResult::NoAnswer => End::NotAnswered("no-answer"),
                },
                _ = tokio::time::sleep(timeout) => End::NotAnswered("no-answer"),
            }
        };
        let dial_params = |status: &str, leg: &Leg| {
            vec![
                ("DialCallStatus".to_string(), status.to_string()),
                ("DialCallSid".to_string(), leg.info.sid.clone()),
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
                self.env.status_changed(&leg.info.sid, "in-progress");
                leg.report(&*self.env, "answered", "in-progress");
                let wake = tokio::select! {
                    w = self.wait(talk) => w,
                    // the leg hung up over REST: the bridge ends as if the talk had
                    _ = leg_update(&mut leg_control) => Wake::Elapsed,
                };
                self.leg_end(&mut leg, LegEnd::Completed, "completed");
                if let Some(url) = &recording {
                    self.report_recording(url, &leg);
                }
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
                self.log.missed += 1;
                self.leg_end(&mut leg, LegEnd::NoAnswer, status);
                match action {
                    Some(url) => Flow::Goto(url, dial_params(status, &leg)),
                    None => Flow::End,
                }
            }
            End::LegCanceled => {
                self.leg_end(&mut leg, LegEnd::Canceled, "canceled");
                match action {
                    Some(url) => Flow::Goto(url, dial_params("canceled", &leg)),
                    None => Flow::End,
                }
            }
            End::Control(c) => {
                self.leg_end(&mut leg, LegEnd::Canceled, "canceled");
                if let Some(url) = action {
                    self.notify_with(&url, dial_params("canceled", &leg));
                }
                Flow::Control(c)
            }
            End::GaveUp => {
                self.log.gave_up = true;
                self.leg_end(&mut leg, LegEnd::Canceled, "canceled");
                if let Some(url) = action {
                    let mut p = self.call.params("completed");
                    p.extend(dial_params("canceled", &leg));
                    self.env.notify(&url, p);
                }
                Flow::GaveUp
            }
        }
    }

    /// The leg is over with `status`: the device is told, the leg's `completed` status
    /// callback goes out, Twilio's record ends it, and the call's log notes the result.
    fn leg_end(&mut self, leg: &mut Leg, end: LegEnd, status: &'static str) {
        self.env.leg_over(&leg.target, &leg.info.sid, end);
        leg.report(&*self.env, "completed", status);
        self.env.status_changed(&leg.info.sid, status);
        self.log.dial_results.push(status.into());
    }

    /// The recording of the bridged `leg` is done: its status callback, as Twilio sends it
    /// (the dialling call's SID, a fresh `RE…` SID, a URL under the REST API, whole seconds).
    fn report_recording(&self, url: &str, leg: &Leg) {
        let rec_sid = self.env.new_recording_sid();
        let account = &self.call.account_sid;
        let media = format!(
            "{}/2010-04-01/Accounts/{account}/Recordings/{rec_sid}",
            self.env.rest_base()
        );
        let p = vec![
            ("AccountSid".to_string(), account.clone()),
            ("CallSid".to_string(), self.call.sid.clone()),
            ("RecordingSid".to_string(), rec_sid),
            ("RecordingUrl".to_string(), media),
            ("RecordingStatus".to_string(), "completed".to_string()),
            (
                "RecordingDuration".to_string(),
                leg.duration_s().to_string(),
            ),
            ("RecordingChannels".to_string(), "1".to_string()),
            ("RecordingSource".to_string(), "DialVerb".to_string()),
            ("RecordingStartTime".to_string(), rfc2822_now()),
        ];
        self.env.status_callback(url, p);
    }

    fn notify_with(&self, url: &str, extra: Params) {
        let mut p = self.call.params("in-progress");
        p.extend(extra);
        self.env.notify(url, p);
    }
}

/// What a `<Dial>` asks about recording.
struct Recording;

impl Recording {
    /// The recording status callback to report a recording to, when the `<Dial>` records
    /// and asks for `completed` (Twilio's default event).
    fn asked(d: &Dial) -> Option<String> {
        let records = d
            .record
            .as_deref()
            .is_some_and(|r| r.starts_with("record-from-"));
        let completed = d
            .recording_status_callback_event
            .as_deref()
            .is_none_or(|e| e.split_whitespace().any(|e| e == "completed"));
        (records && completed)
            .then(|| d.recording_status_callback.clone())
            .flatten()
    }
}

/// Waits for a REST update of a dialled leg (pending when there is no channel, or it closed).
async fn leg_update(rx: &mut Option<mpsc::UnboundedReceiver<Control>>) {
    match rx {
        Some(rx) => {
            recv_or_pending(rx).await;
        }
        None => std::future::pending().await,
    }
}

/// The child leg of a `<Dial>`, for its status callbacks.
struct Leg {
    info: CallInfo,
    parent: String,
    target: Target,
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
            ("CallSid".to_string(), self.info.sid.clone()),
            ("ParentCallSid".to_string(), self.parent.clone()),
            ("AccountSid".to_string(), self.info.account_sid.clone()),
            ("From".to_string(), self.info.from.clone()),
            ("To".to_string(), self.info.to.clone()),
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
        env.status_callback(url, p);
    }
}
