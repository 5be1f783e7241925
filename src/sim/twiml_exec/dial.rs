//! `<Dial>`: ring each device or number it names as a child leg (`outbound-dial`, recorded with
//! the dialling call as its parent and its status as it goes), all at once, as Twilio does
//! with several nouns: the first leg to answer is bridged and every other leg still ringing
//! ends `canceled`; a leg that ends unanswered (busy, failed, no-answer) leaves the others
//! ringing, and the `<Dial>` ends unanswered once none rings (at its timeout, `no-answer`).
//! Each leg reports to its own status callback, the outcome goes to the `<Dial>` action, as
//! Twilio does (a REST update while bridged first requests the action with `completed`). A
//! REST update of a leg itself takes it out of the bridge: ringing, that leg ends `canceled`
//! (the `<Dial>` too when it was the last ringing); bridged, it ends `completed` (the leg does
//! not run the new TwiML here; callq never sends any to a leg).
//! `<Dial record>` (any mode but `do-not-record`) on an answered dial: once the bridge ends,
//! the recording status callback gets a `completed` recording (`RE…` SID, a URL under the
//! REST API, the bridged seconds), as Twilio reports it after the call's own callbacks.

use std::future::Future;
use std::task::Poll;
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
        // every device or number the <Dial> names rings at once (a <Queue> noun is not run)
        let targets: Vec<(Target, Option<String>, Option<String>)> = d
            .nouns
            .iter()
            .filter_map(|noun| match noun {
                DialNoun::Client(c) => Some((
                    Target::Client(c.identity.clone()),
                    c.status_callback.clone(),
                    c.status_callback_event.clone(),
                )),
                DialNoun::Number(n) => Some((
                    Target::Number(n.number.clone()),
                    n.status_callback.clone(),
                    n.status_callback_event.clone(),
                )),
                DialNoun::Queue { .. } => None,
            })
            .collect();
        if targets.is_empty() {
            return Flow::End;
        }
        let caller_id = d
            .caller_id
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| self.call.from.clone());
        let mut legs = Vec::with_capacity(targets.len());
        // each leg's own REST updates: a hang-up (or new TwiML) takes it out of the bridge
        let mut controls = Vec::with_capacity(targets.len());
        for (target, callback, events) in targets {
            let info = CallInfo {
                sid: self.env.new_sid(),
                account_sid: self.call.account_sid.clone(),
                from: caller_id.clone(),
                to: target.address(),
                direction: "outbound-dial".into(),
            };
            controls.push(self.env.leg_created(&info, &self.call.sid));
            legs.push(Leg {
                info,
                parent: self.call.sid.clone(),
                target,
                callback: callback.map(|u| self.resolve(&u)),
                events: events
                    .unwrap_or_else(|| "completed".to_string())
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                sequence: 0,
                answered_at: None,
            });
        }
        let action = d.action.as_deref().map(|u| self.resolve(u));
        let recording = Recording::asked(&d).map(|url| self.resolve(&url));
        self.log.rings += 1;
        self.env.observe(
            &self.call,
            Observed::Ringing {
                target: legs[0].target.clone(),
            },
        );
        for leg in &mut legs {
            leg.report(&*self.env, "initiated", "initiated");
            self.env.status_changed(&leg.info.sid, "ringing");
            leg.report(&*self.env, "ringing", "ringing");
        }
        let timeout = secs(d.timeout.unwrap_or(30));
        let patience = self.patience_deadline();
        let rang_at = Instant::now();
        let ring_deadline = rang_at + timeout;
        enum End {
            /// Leg `usize` answered first.
            Answered(usize, Option<Duration>),
            /// Every leg ended unanswered; the `<Dial>`'s status, and the leg that ended last.
            NotAnswered(&'static str, usize),
            Control(Control),
            GaveUp,
        }
        // what ends one leg while the others may still ring
        enum Event {
            Rang(usize, RingResult),
            LegUpdate(usize),
        }
        let env = self.env.clone();
        let call = self.call.clone();
        let ring_of: Vec<(Target, String)> = legs
            .iter()
            .map(|l| (l.target.clone(), l.info.sid.clone()))
            .collect();
        let mut rings: Vec<
            Option<std::pin::Pin<Box<dyn Future<Output = RingResult> + Send + '_>>>,
        > = ring_of
            .iter()
            .map(|(target, sid)| {
                Some(Box::pin(env.ring(target, sid, &call))
                    as std::pin::Pin<
                        Box<dyn Future<Output = RingResult> + Send + '_>,
                    >)
            })
            .collect();
        let mut ringing = vec![true; legs.len()];
        let end = loop {
            let next = std::future::poll_fn(|cx| {
                for i in 0..rings.len() {
                    if !ringing[i] {
                        continue;
                    }
                    if let Some(rx) = controls[i].as_mut() {
                        match rx.poll_recv(cx) {
                            Poll::Ready(Some(_)) => return Poll::Ready(Event::LegUpdate(i)),
                            Poll::Ready(None) => controls[i] = None,
                            Poll::Pending => {}
                        }
                    }
                    if let Some(ring) = rings[i].as_mut() {
                        if let Poll::Ready(r) = ring.as_mut().poll(cx) {
                            rings[i] = None;
                            return Poll::Ready(Event::Rang(i, r));
                        }
                    }
                }
                Poll::Pending
            });
            let event = tokio::select! {
                biased;
                c = recv_or_pending(&mut self.control) => Err(Some(c)),
                _ = until(patience) => Err(None),
                e = next => Ok(Some(e)),
                _ = tokio::time::sleep_until(ring_deadline) => Ok(None),
            };
            let event = match event {
                Err(Some(c)) => break End::Control(c),
                Err(None) => break End::GaveUp,
                Ok(Some(e)) => e,
                Ok(None) => {
                    // the <Dial> timeout: every leg still ringing ends unanswered
                    let mut last = 0;
                    for i in 0..legs.len() {
                        if ringing[i] {
                            ringing[i] = false;
                            rings[i] = None;
                            self.leg_end(&mut legs[i], LegEnd::NoAnswer, "no-answer");
                            last = i;
                        }
                    }
                    break End::NotAnswered("no-answer", last);
                }
            };
            let (i, status, how) = match event {
                Event::Rang(i, RingResult::Answered { talk }) => break End::Answered(i, talk),
                Event::Rang(i, RingResult::Busy) => (i, "busy", LegEnd::NoAnswer),
                Event::Rang(i, RingResult::Failed) => (i, "failed", LegEnd::NoAnswer),
                Event::Rang(i, RingResult::NoAnswer) => (i, "no-answer", LegEnd::NoAnswer),
                // a REST update of a ringing leg cancels it
                Event::LegUpdate(i) => (i, "canceled", LegEnd::Canceled),
            };
            // this leg is over; the <Dial> goes on while another rings
            ringing[i] = false;
            rings[i] = None;
            self.leg_end(&mut legs[i], how, status);
            if !ringing.contains(&true) {
                break End::NotAnswered(status, i);
            }
        };
        // every ring still going is over: the first answer bridges, the others are canceled
        let winner = match end {
            End::Answered(i, _) => Some(i),
            _ => None,
        };
        drop(rings);
        for i in 0..legs.len() {
            if ringing[i] && Some(i) != winner {
                ringing[i] = false;
                self.leg_end(&mut legs[i], LegEnd::Canceled, "canceled");
            }
        }
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
            End::Answered(i, far_talk) => {
                let mut leg = legs.swap_remove(i);
                let mut leg_control = controls.swap_remove(i);
                let target = leg.target.clone();
                let talk = far_talk.unwrap_or(self.script.talk);
                let first_answer = self.log.answered.is_none();
                if first_answer {
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
                if first_answer {
                    // as it happened (the timer's own lateness included): what the agent
                    // spent, which the bench's ideal replay counts
                    if let Some(at) = leg.answered_at {
                        self.log.talk = at.elapsed();
                    }
                }
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
            End::NotAnswered(status, last) => {
                if status != "canceled" {
                    self.log.missed += 1;
                }
                match action {
                    Some(url) => Flow::Goto(url, dial_params(status, &legs[last])),
                    None => Flow::End,
                }
            }
            End::Control(c) => {
                if let Some(url) = action {
                    self.notify_with(&url, dial_params("canceled", &legs[0]));
                }
                Flow::Control(c)
            }
            End::GaveUp => {
                self.log.gave_up = true;
                if let Some(url) = action {
                    let mut p = self.call.params("completed");
                    p.extend(dial_params("canceled", &legs[0]));
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
