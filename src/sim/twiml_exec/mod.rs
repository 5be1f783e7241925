//! The TwiML interpreter: one simulated call, as Twilio runs it for callq.
//!
//! It requests a webhook, parses the TwiML with [`parse`](crate::twilio::twiml::parse) and follows it verb by verb:
//! `<Say>`, `<Play>` and `<Pause>` take time; `<Enqueue>` puts the caller in a (Twilio) queue
//! and requests the `waitUrl` again each time its document ends; a REST update of the call
//! ([`Control`]) interrupts whatever it is doing (inside `<Enqueue>` the action is then requested
//! with `QueueResult=redirected`, its answer ignored) and runs the new TwiML; `<Gather>` presses
//! the caller's digits; `<Redirect>`, `<Leave/>`, `<Hangup/>`; `<Dial><Client>` rings a device
//! and reports to the `<Client>` status callback and the `<Dial>` action with Twilio's
//! parameters. The caller hangs up when their patience runs out while not yet connected.
//!
//! Everything outside the call (HTTP, devices, media lengths, measurements) goes through
//! [`Env`], so the interpreter is tested here with a scripted environment and paused time.
//!
//! Laid out as `types` (what a call is, what its caller does, the [`Env`] trait and the
//! [`CallLog`]), `queue` (Twilio's `<Enqueue>` queues and the interpreter inside one), `verbs`
//! (`<Gather>`, `<Record>`), `dial` (`<Dial>` and its child leg) and, here, the interpreter's
//! loop and the plain verbs.

mod dial;
mod queue;
mod types;
mod verbs;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::twilio::twiml::{Response, Verb};

pub use queue::{QueueView, TwilioQueues};
pub use types::{
    new_sid, CallInfo, CallLog, CallerScript, Control, Env, LegEnd, Observed, Outcome, Params,
    RingResult, Start, StatusCallback, Target, DEFAULT_REST_BASE,
};

/// How long a `loop="0"` (repeat until the call moves on) plays, at most.
const FOREVER: u32 = 10_000;

/// How a document (or a part of one) ended.
#[derive(Debug)]
enum Flow {
    /// Ran out of verbs.
    End,
    /// Request this URL with these extra parameters and run its answer.
    Goto(String, Params),
    /// `<Hangup/>`, `<Reject/>`, or the caller hung up after a message.
    Hangup,
    /// `<Leave/>` inside a queue.
    Leave,
    /// The caller's patience ran out.
    GaveUp,
    Control(Control),
}

enum Wake {
    Elapsed,
    Control(Control),
    GaveUp,
}

/// One call being run. Build with [`Interpreter::new`], then [`Interpreter::run`].
pub struct Interpreter<E: Env> {
    env: Arc<E>,
    call: CallInfo,
    script: CallerScript,
    control: mpsc::UnboundedReceiver<Control>,
    status_callback: Option<StatusCallback>,
    /// The URL of the document being run (relative URLs resolve against it).
    doc_url: String,
    requests: u32,
    /// Connected (or an outbound call): patience no longer applies.
    served: bool,
    sequence: u32,
    log: CallLog,
}

impl<E: Env> Interpreter<E> {
    pub fn new(
        env: Arc<E>,
        call: CallInfo,
        script: CallerScript,
        control: mpsc::UnboundedReceiver<Control>,
        status_callback: Option<StatusCallback>,
    ) -> Self {
        let outbound = call.direction != "inbound";
        Self {
            env,
            log: CallLog::new(call.clone()),
            call,
            script,
            control,
            status_callback,
            doc_url: String::new(),
            requests: 0,
            served: outbound,
            sequence: 0,
        }
    }

    /// Status callbacks of the call continue numbering from `n` (some were sent before the
    /// call was answered).
    pub fn starting_sequence(mut self, n: u32) -> Self {
        self.sequence = n;
        self
    }

    /// Runs the call to its end and returns what happened.
    pub async fn run(mut self, start: Start) -> CallLog {
        enum Step {
            Fetch(String, Params),
            Doc(Response),
            End,
        }
        let mut step = match start {
            Start::Fetch(url) => Step::Fetch(url, Vec::new()),
            Start::Doc { doc, base } => {
                self.doc_url = base;
                Step::Doc(doc)
            }
        };
        loop {
            let doc = match step {
                Step::Fetch(url, extra) => match self.fetch(&url, extra).await {
                    Ok(doc) => doc,
                    Err(e) => {
                        self.log.errors.push(e);
                        break;
                    }
                },
                Step::Doc(doc) => doc,
                Step::End => break,
            };
            step = match self.exec(doc, false).await {
                Flow::End | Flow::Hangup | Flow::GaveUp | Flow::Leave => Step::End,
                Flow::Goto(url, params) => Step::Fetch(url, params),
                Flow::Control(c) => match c {
                    Control::Twiml(doc) => {
                        self.log.redirects += 1;
                        Step::Doc(doc)
                    }
                    Control::Url(url) => {
                        self.log.redirects += 1;
                        Step::Fetch(url, Vec::new())
                    }
                    Control::Hangup => Step::End,
                    Control::CallerHangup => {
                        self.log.caller_hung_up = true;
                        Step::End
                    }
                },
            };
        }
        self.finish()
    }

    fn finish(mut self) -> CallLog {
        self.log.ended = Some(Instant::now());
        if let Some(sc) = self.status_callback.clone() {
            if sc.events.iter().any(|e| e == "completed") {
                let mut p = self.call.params("completed");
                p.push((
                    "CallDuration".into(),
                    self.log.started.elapsed().as_secs().to_string(),
                ));
                p.extend(self.sequence_params());
                self.env.status_callback(&sc.url, p);
            }
        }
        self.env.observe(&self.call, Observed::Ended);
        self.log
    }

    fn sequence_params(&mut self) -> Params {
        let seq = self.sequence;
        self.sequence += 1;
        vec![
            ("Timestamp".into(), rfc2822_now()),
            ("SequenceNumber".into(), seq.to_string()),
            ("CallbackSource".into(), "call-progress-events".into()),
        ]
    }

    fn resolve(&self, url: &str) -> String {
        resolve_url(&self.doc_url, url)
    }

    async fn fetch(&mut self, url: &str, extra: Params) -> Result<Response, String> {
        let url = self.resolve(url);
        let answering = self.requests == 0 && self.call.direction == "inbound";
        let status = if answering { "ringing" } else { "in-progress" };
        self.requests += 1;
        let mut params = self.call.params(status);
        params.extend(extra);
        let doc = self.env.fetch(&url, params).await?;
        if answering {
            // Twilio answers an inbound call as it runs its first TwiML
            self.env.status_changed(&self.call.sid, "in-progress");
        }
        self.doc_url = url;
        if doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))) {
            self.log.enqueued.get_or_insert_with(Instant::now);
            self.env.observe(&self.call, Observed::Waiting);
        }
        Ok(doc)
    }

    fn patience_deadline(&self) -> Option<Instant> {
        // a caller promised a callback who is still kept holding hangs up as anyone would
        if self.served {
            return None;
        }
        self.script.patience.map(|p| self.log.started + p)
    }

    async fn wait(&mut self, d: Duration) -> Wake {
        let patience = self.patience_deadline();
        tokio::select! {
            biased;
            c = recv_or_pending(&mut self.control) => Wake::Control(c),
            _ = until(patience) => Wake::GaveUp,
            _ = tokio::time::sleep(d) => Wake::Elapsed,
        }
    }

    /// Waits `d`; `Some(flow)` when something ended the wait early.
    async fn pause(&mut self, d: Duration) -> Option<Flow> {
        match self.wait(d).await {
            Wake::Elapsed => None,
            Wake::Control(c) => Some(Flow::Control(c)),
            Wake::GaveUp => {
                self.log.gave_up = true;
                Some(Flow::GaveUp)
            }
        }
    }

    async fn exec(&mut self, doc: Response, in_queue: bool) -> Flow {
        for verb in doc.verbs {
            let flow = match verb {
                Verb::Say(s) => {
                    let d = self.env.speech(&s.text).saturating_mul(times(s.loop_));
                    self.pause(d).await
                }
                Verb::Play(p) => {
                    let d = self.env.media(&p.url).saturating_mul(times(p.loop_));
                    self.pause(d).await
                }
                Verb::Pause { length } => self.pause(self.env.pace(secs(length))).await,
                Verb::Enqueue(e) if !in_queue => match Box::pin(self.enqueue(e)).await {
                    Flow::End => None,
                    f => Some(f),
                },
                Verb::Dial(d) if !in_queue => match self.dial(d).await {
                    Flow::End => None,
                    f => Some(f),
                },
                Verb::Gather(g) => match self.gather(g, in_queue).await {
                    Flow::End => None,
                    f => Some(f),
                },
                Verb::Redirect { url, .. } => Some(Flow::Goto(url, Vec::new())),
                Verb::Leave if in_queue => {
                    // leaving after pressing the callback key: callq took the request
                    if self.log.callback_pressed {
                        self.log.callback_asked = true;
                    }
                    Some(Flow::Leave)
                }
                Verb::Hangup | Verb::Reject => Some(Flow::Hangup),
                Verb::Record(r) => Some(self.record(r).await),
                // verbs not allowed here (Enqueue/Dial in a wait document, Leave outside a
                // queue) are skipped, as Twilio does
                _ => None,
            };
            if let Some(f) = flow {
                return f;
            }
        }
        Flow::End
    }

    /// Runs a waitUrl document, following `<Redirect>` and `<Gather>` actions (the caller
    /// stays in the queue meanwhile).
    async fn exec_wait(&mut self, mut doc: Response) -> Flow {
        loop {
            match self.exec(doc, true).await {
                Flow::Goto(url, params) => match self.fetch(&url, params).await {
                    Ok(d) => doc = d,
                    Err(e) => {
                        self.log.errors.push(e);
                        return Flow::End;
                    }
                },
                f => return f,
            }
        }
    }
}

async fn recv_or_pending(rx: &mut mpsc::UnboundedReceiver<Control>) -> Control {
    match rx.recv().await {
        Some(c) => c,
        None => std::future::pending().await,
    }
}

async fn until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

fn times(loop_: Option<u32>) -> u32 {
    match loop_ {
        Some(0) => FOREVER,
        Some(n) => n,
        None => 1,
    }
}

/// `url` resolved against the document it appeared in, as Twilio does for relative URLs.
pub fn resolve_url(base: &str, url: &str) -> String {
    match reqwest::Url::parse(base).and_then(|b| b.join(url)) {
        Ok(u) => u.to_string(),
        Err(_) => url.to_string(),
    }
}

/// Now, as Twilio writes `Timestamp` (RFC 2822).
pub fn rfc2822_now() -> String {
    rfc2822(jiff::Timestamp::now())
}

/// A time as Twilio writes it (RFC 2822, UTC): `Fri, 18 Oct 2019 17:00:00 +0000`.
pub fn rfc2822(t: jiff::Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}
