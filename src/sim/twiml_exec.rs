//! The TwiML interpreter: one simulated call, as Twilio runs it for callq.
//!
//! It requests a webhook, parses the TwiML with [`twiml::parse`] and follows it verb by verb:
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

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::twilio::twiml::{Dial, DialNoun, Enqueue, Gather, GatherChild, Record, Response, Verb};

/// Form parameters of one request, in order.
pub type Params = Vec<(String, String)>;

/// How long a `loop="0"` (repeat until the call moves on) plays, at most.
const FOREVER: u32 = 10_000;
/// Shortest time between two requests of the waitUrl (a document that takes no time would
/// otherwise be requested in a tight loop).
const MIN_WAIT_DOC: Duration = Duration::from_millis(500);

/// Who a `<Dial>` rings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A Voice SDK device registered with this identity.
    Client(String),
    /// A phone number (a customer called back).
    Number(String),
}

impl Target {
    /// The address as Twilio writes it in `To`: `client:alice` or `+15005550006`.
    pub fn address(&self) -> String {
        match self {
            Target::Client(identity) => format!("client:{identity}"),
            Target::Number(n) => n.clone(),
        }
    }
}

/// How a ringing device answered. A device that never answers keeps [`Env::ring`] pending;
/// the `<Dial>` timeout then ends it as `no-answer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingResult {
    /// Picked up. `talk`: the far end decides how long the conversation lasts (a customer
    /// called back); `None`: the caller's own talk time is used.
    Answered {
        talk: Option<Duration>,
    },
    Busy,
    Failed,
}

/// How a leg to a device ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEnd {
    /// Answered, talked, hung up.
    Completed,
    /// Rang out, refused or failed: callq counts a miss.
    NoAnswer,
    /// Torn down while ringing (the caller hung up, or the call was redirected).
    Canceled,
}

/// What happens to a live call from outside: Twilio's REST API, or the simulator itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// `Twiml=…`: run this document now.
    Twiml(Response),
    /// `Url=…`: request the document from this URL now.
    Url(String),
    /// `Status=completed|canceled`: Twilio ends the call.
    Hangup,
    /// The caller hangs up (used to end a run early).
    CallerHangup,
}

/// The call's identity, as sent in every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub sid: String,
    pub account_sid: String,
    pub from: String,
    pub to: String,
    /// `inbound` or `outbound-api`.
    pub direction: String,
}

impl CallInfo {
    /// The parameters Twilio sends with every voice request.
    pub fn params(&self, status: &str) -> Params {
        let mut p = vec![
            ("CallSid".to_string(), self.sid.clone()),
            ("AccountSid".to_string(), self.account_sid.clone()),
            ("From".to_string(), self.from.clone()),
            ("To".to_string(), self.to.clone()),
            ("Caller".to_string(), self.from.clone()),
            ("Called".to_string(), self.to.clone()),
            ("CallStatus".to_string(), status.to_string()),
            ("Direction".to_string(), self.direction.clone()),
            ("ApiVersion".to_string(), "2010-04-01".to_string()),
        ];
        p.shrink_to_fit();
        p
    }
}

/// What the simulated person on this call does.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerScript {
    /// Hangs up after this long (from the start of the call) unless connected by then.
    pub patience: Option<Duration>,
    /// How long the conversation lasts once someone answers.
    pub talk: Duration,
    /// The digit pressed at a menu (a `<Gather>` outside the queue).
    pub menu_digit: Option<String>,
    /// Presses the offered digit when a callback is offered while waiting.
    pub wants_callback: bool,
    /// Length of a voicemail message.
    pub message: Duration,
}

impl Default for CallerScript {
    fn default() -> Self {
        Self {
            patience: None,
            talk: Duration::from_secs(60),
            menu_digit: None,
            wants_callback: false,
            message: Duration::from_secs(10),
        }
    }
}

/// The status callback of the call itself (the number's, or `StatusCallback` of a created call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    pub url: String,
    /// Events asked for (`initiated ringing answered completed`); `completed` by default.
    pub events: Vec<String>,
}

/// Things the environment may want to measure, reported as they happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// callq answered with an `<Enqueue>`: the call is in line in callq.
    Waiting,
    /// The first waitUrl document arrived (the caller hears their position and wait).
    Announced { queue: String },
    /// A device was rung for this call.
    Ringing { target: Target },
    /// The call was connected to `target`.
    Connected { target: Target },
    /// The call ended.
    Ended,
}

/// Everything outside one call: HTTP towards callq, devices, media lengths, measurements.
pub trait Env: Send + Sync + 'static {
    /// Requests `url` with `params` (signed, form-encoded) and parses the TwiML answer.
    fn fetch(
        &self,
        url: &str,
        params: Params,
    ) -> impl Future<Output = Result<Response, String>> + Send;
    /// A request whose answer Twilio ignores (status callbacks, the Enqueue action after a
    /// redirect). Sent without waiting for it.
    fn notify(&self, url: &str, params: Params);
    /// Rings `target`; resolves when it answers or refuses, stays pending when nobody answers.
    fn ring(
        &self,
        target: &Target,
        leg_sid: &str,
        call: &CallInfo,
    ) -> impl Future<Output = RingResult> + Send;
    /// The leg `leg_sid` to `target` is over (after a ring, answered or not).
    fn leg_over(&self, target: &Target, leg_sid: &str, end: LegEnd);
    /// How long `<Say>` of this text takes (real time, as the caller's clock runs).
    fn speech(&self, text: &str) -> Duration;
    /// How long one `<Play>` of this URL takes (real time).
    fn media(&self, url: &str) -> Duration;
    /// The real time that `d` of the caller's time takes (`<Pause>`, `<Gather timeout>`,
    /// `<Record maxLength>`): the caller lives on the simulated clock.
    fn pace(&self, d: Duration) -> Duration;
    /// Twilio's queues (`<Enqueue>` bookkeeping).
    fn queues(&self) -> &TwilioQueues;
    /// A fresh CallSid.
    fn new_sid(&self) -> String;
    fn observe(&self, call: &CallInfo, what: Observed);
}

/// A new SID: `prefix` and 32 lowercase hex digits.
pub fn new_sid<R: rand::Rng + ?Sized>(prefix: &str, rng: &mut R) -> String {
    let n: u128 = rng.random();
    format!("{prefix}{n:032x}")
}

/// Twilio's view of its `<Enqueue>` queues: members in arrival order, for the waitUrl
/// parameters (`QueuePosition`, `CurrentQueueSize`, `AvgQueueTime`).
#[derive(Debug, Default)]
pub struct TwilioQueues {
    inner: Mutex<HashMap<String, QueueBook>>,
}

#[derive(Debug, Default)]
struct QueueBook {
    members: VecDeque<(String, Instant)>,
    left: u64,
    total_wait_s: f64,
}

/// A member's view of its queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueView {
    pub position: usize,
    pub size: usize,
    pub avg_wait_s: u64,
}

impl TwilioQueues {
    /// The QueueSid Twilio would give the queue named `name` (stable per name).
    pub fn sid_for(name: &str) -> String {
        let digest = Sha1::digest(name.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("QU{}", &hex[..32])
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, QueueBook>) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn join(&self, name: &str, sid: &str) {
        self.with(|m| {
            m.entry(name.to_string())
                .or_default()
                .members
                .push_back((sid.to_string(), Instant::now()))
        });
    }

    pub fn leave(&self, name: &str, sid: &str) {
        self.with(|m| {
            if let Some(q) = m.get_mut(name) {
                if let Some(i) = q.members.iter().position(|(s, _)| s == sid) {
                    if let Some((_, t)) = q.members.remove(i) {
                        q.left += 1;
                        q.total_wait_s += t.elapsed().as_secs_f64();
                    }
                }
            }
        });
    }

    pub fn view(&self, name: &str, sid: &str) -> QueueView {
        self.with(|m| match m.get(name) {
            Some(q) => QueueView {
                position: q
                    .members
                    .iter()
                    .position(|(s, _)| s == sid)
                    .map(|i| i + 1)
                    .unwrap_or(0),
                size: q.members.len(),
                avg_wait_s: if q.left == 0 {
                    0
                } else {
                    (q.total_wait_s / q.left as f64).round() as u64
                },
            },
            None => QueueView {
                position: 0,
                size: 0,
                avg_wait_s: 0,
            },
        })
    }

    /// Members of every queue.
    pub fn total(&self) -> usize {
        self.with(|m| m.values().map(|q| q.members.len()).sum())
    }
}

/// What became of a call, from the phone side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Talked to an agent.
    Answered,
    /// Hung up while waiting (patience ran out).
    Abandoned,
    /// Asked for a callback and hung up.
    Callback,
    /// Left a message.
    Voicemail,
    /// callq ended the call without an agent (closed, overflow hang-up, …).
    EndedByCallq,
    /// A webhook failed: the caller heard Twilio's application error.
    Error,
}

/// The phone side's record of one call.
#[derive(Debug, Clone)]
pub struct CallLog {
    pub info: CallInfo,
    pub started: Instant,
    pub ended: Option<Instant>,
    /// First moment callq had the call in line (its answer held an `<Enqueue>`).
    pub enqueued: Option<Instant>,
    /// First moment it was connected to someone.
    pub answered: Option<Instant>,
    /// Who answered (`client:…` or a number).
    pub agent: Option<String>,
    pub rings: u32,
    pub missed: u32,
    /// REST updates applied to the call.
    pub redirects: u32,
    pub pressed: Vec<String>,
    pub callback_asked: bool,
    pub voicemail: bool,
    pub gave_up: bool,
    pub errors: Vec<String>,
    /// `QueueResult` values sent to the Enqueue action, in order.
    pub queue_results: Vec<String>,
    /// `DialCallStatus` values sent to the Dial action, in order.
    pub dial_results: Vec<String>,
    pub caller_hung_up: bool,
    /// When the device that answered started ringing.
    pub rang_at: Option<Instant>,
    /// How long the conversation was to last (the caller's talk time).
    pub talk: Duration,
}

impl CallLog {
    pub fn new(info: CallInfo) -> Self {
        Self {
            info,
            started: Instant::now(),
            ended: None,
            enqueued: None,
            answered: None,
            agent: None,
            rings: 0,
            missed: 0,
            redirects: 0,
            pressed: Vec::new(),
            callback_asked: false,
            voicemail: false,
            gave_up: false,
            errors: Vec::new(),
            queue_results: Vec::new(),
            dial_results: Vec::new(),
            caller_hung_up: false,
            rang_at: None,
            talk: Duration::ZERO,
        }
    }

    pub fn outcome(&self) -> Outcome {
        if self.answered.is_some() {
            Outcome::Answered
        } else if self.callback_asked {
            Outcome::Callback
        } else if self.voicemail {
            Outcome::Voicemail
        } else if self.gave_up || self.caller_hung_up {
            Outcome::Abandoned
        } else if !self.errors.is_empty() {
            Outcome::Error
        } else {
            Outcome::EndedByCallq
        }
    }

    /// Time from entering callq's line to being answered.
    pub fn wait(&self) -> Option<Duration> {
        Some(self.answered?.saturating_duration_since(self.enqueued?))
    }
}

/// Where a call starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// Request this URL (the number's voice URL).
    Fetch(String),
    /// Run this document (inline TwiML of a created call), relative URLs resolved on `base`.
    Doc { doc: Response, base: String },
}

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
                self.env.notify(&sc.url, p);
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
        let status = if self.requests == 0 && self.call.direction == "inbound" {
            "ringing"
        } else {
            "in-progress"
        };
        self.requests += 1;
        let mut params = self.call.params(status);
        params.extend(extra);
        let doc = self.env.fetch(&url, params).await?;
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
                Verb::Leave if in_queue => Some(Flow::Leave),
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

    async fn enqueue(&mut self, e: Enqueue) -> Flow {
        let queue_sid = TwilioQueues::sid_for(&e.name);
        let joined = Instant::now();
        self.env.queues().join(&e.name, &self.call.sid);
        let wait_url = e.wait_url.as_deref().map(|u| self.resolve(u));
        let action = e.action.as_deref().map(|u| self.resolve(u));
        let mut first = true;
        let (result, flow) = loop {
            let started = Instant::now();
            let doc = match &wait_url {
                Some(url) => {
                    let v = self.env.queues().view(&e.name, &self.call.sid);
                    let params = vec![
                        ("QueueSid".to_string(), queue_sid.clone()),
                        ("QueuePosition".to_string(), v.position.to_string()),
                        (
                            "QueueTime".to_string(),
                            joined.elapsed().as_secs().to_string(),
                        ),
                        ("AvgQueueTime".to_string(), v.avg_wait_s.to_string()),
                        ("CurrentQueueSize".to_string(), v.size.to_string()),
                        (
                            "MaxQueueSize".to_string(),
                            e.max_queue_size.unwrap_or(1000).to_string(),
                        ),
                    ];
                    match self.fetch(url, params).await {
                        Ok(doc) => doc,
                        Err(err) => {
                            // Twilio plays its default hold music when the waitUrl fails
                            self.log.errors.push(err);
                            Response::new().pause(5)
                        }
                    }
                }
                None => Response::new().pause(30),
            };
            if first {
                first = false;
                self.env.observe(
                    &self.call,
                    Observed::Announced {
                        queue: e.name.clone(),
                    },
                );
            }
            match self.exec_wait(doc).await {
                Flow::End | Flow::Goto(..) => {
                    let spent = started.elapsed();
                    if spent < MIN_WAIT_DOC {
                        if let Some(f) = self.pause(MIN_WAIT_DOC - spent).await {
                            break self.queue_exit(f);
                        }
                    }
                }
                f => break self.queue_exit(f),
            }
        };
        self.env.queues().leave(&e.name, &self.call.sid);
        self.log.queue_results.push(result.to_string());
        let params = vec![
            ("QueueResult".to_string(), result.to_string()),
            ("QueueSid".to_string(), queue_sid),
            (
                "QueueTime".to_string(),
                joined.elapsed().as_secs().to_string(),
            ),
        ];
        match (result, action) {
            ("leave", Some(action)) => Flow::Goto(action, params),
            ("leave", None) => Flow::End,
            (_, Some(action)) => {
                let mut p = self.call.params("in-progress");
                p.extend(params);
                self.env.notify(&action, p);
                flow
            }
            (_, None) => flow,
        }
    }

    /// The `QueueResult` for how the caller left the queue.
    fn queue_exit(&self, f: Flow) -> (&'static str, Flow) {
        let result = match &f {
            Flow::Leave => "leave",
            Flow::Control(Control::Twiml(_) | Control::Url(_)) => "redirected",
            _ => "hangup",
        };
        (result, f)
    }

    async fn gather(&mut self, g: Gather, in_queue: bool) -> Flow {
        // what this caller would press here: the menu choice, or the callback offer's digit
        let wants = if in_queue {
            self.script.wants_callback && !self.log.callback_asked
        } else {
            self.script.menu_digit.is_some()
        };
        let mut prompt = String::new();
        let mut digits = None;
        for child in g.children {
            let d = match &child {
                GatherChild::Say(s) => {
                    prompt.push_str(&s.text);
                    prompt.push(' ');
                    self.env.speech(&s.text).saturating_mul(times(s.loop_))
                }
                GatherChild::Play(p) => self.env.media(&p.url).saturating_mul(times(p.loop_)),
                GatherChild::Pause { length } => self.env.pace(secs(*length)),
            };
            if let Some(f) = self.pause(d).await {
                return f;
            }
            // a caller who knows what to press presses once they have heard which key
            if wants && matches!(child, GatherChild::Say(_)) {
                if let Some(key) = offered_digit(&prompt) {
                    digits = Some(if in_queue {
                        key.to_string()
                    } else {
                        self.script.menu_digit.clone().unwrap_or_default()
                    });
                    break;
                }
            }
        }
        if wants && digits.is_none() {
            // the prompt never named a key: the usual one
            digits = Some(if in_queue {
                "1".to_string()
            } else {
                self.script.menu_digit.clone().unwrap_or_default()
            });
        }
        match digits {
            Some(d) => {
                if in_queue {
                    self.log.callback_asked = true;
                }
                self.log.pressed.push(d.clone());
                let url = g.action.unwrap_or_else(|| self.doc_url.clone());
                Flow::Goto(
                    url,
                    vec![
                        ("Digits".to_string(), d),
                        ("FinishedOnKey".to_string(), String::new()),
                    ],
                )
            }
            None => match self
                .pause(self.env.pace(secs(g.timeout.unwrap_or(5))))
                .await
            {
                Some(f) => f,
                None => Flow::End,
            },
        }
    }

    async fn record(&mut self, r: Record) -> Flow {
        self.log.voicemail = true;
        let mut d = self.script.message;
        if let Some(max) = r.max_length {
            d = d.min(self.env.pace(secs(max)));
        }
        if let Some(f) = self.pause(d).await {
            return f;
        }
        if let Some(action) = r.action {
            let url = self.resolve(&action);
            let mut p = self.call.params("completed");
            p.extend([
                (
                    "RecordingSid".to_string(),
                    self.env.new_sid().replacen("CA", "RE", 1),
                ),
                (
                    "RecordingUrl".to_string(),
                    "https://api.twilio.com/recording".to_string(),
                ),
                ("RecordingDuration".to_string(), d.as_secs().to_string()),
            ]);
            self.env.notify(&url, p);
        }
        self.log.caller_hung_up = true;
        Flow::Hangup
    }

    async fn dial(&mut self, d: Dial) -> Flow {
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

/// The digit a prompt offers ("… press 1 …"), if it names one.
fn offered_digit(prompt: &str) -> Option<char> {
    let lower = prompt.to_ascii_lowercase();
    let i = lower.find("press")?;
    lower[i..].chars().find(|c| c.is_ascii_digit())
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
    jiff::Timestamp::now()
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A scripted environment: answers per URL path (in turn, the last one repeating), devices
    /// that answer after a delay or never, and a log of every request.
    #[derive(Default)]
    struct Fake {
        answers: Mutex<HashMap<String, VecDeque<String>>>,
        requests: Mutex<Vec<(String, Params, bool)>>,
        devices: Mutex<HashMap<String, Option<Duration>>>,
        legs_over: Mutex<Vec<(String, bool)>>,
        queues: TwilioQueues,
        sids: AtomicU32,
    }

    impl Fake {
        fn answer(&self, path: &str, xml: &str) {
            self.answers
                .lock()
                .unwrap()
                .entry(path.to_string())
                .or_default()
                .push_back(xml.to_string());
        }
        fn device(&self, identity: &str, answer_after: Option<Duration>) {
            self.devices
                .lock()
                .unwrap()
                .insert(identity.to_string(), answer_after);
        }
        fn requests_to(&self, path: &str) -> Vec<Params> {
            self.requests
                .lock()
                .unwrap()
                .iter()
                .filter(|(u, _, _)| u.ends_with(path) || u.contains(&format!("{path}?")))
                .map(|(_, p, _)| p.clone())
                .collect()
        }
        fn paths(&self) -> Vec<String> {
            self.requests
                .lock()
                .unwrap()
                .iter()
                .map(|(u, _, _)| {
                    u.trim_start_matches("https://callq.example.com")
                        .to_string()
                })
                .collect()
        }
    }

    fn get<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
        p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    impl Env for Fake {
        async fn fetch(&self, url: &str, params: Params) -> Result<Response, String> {
            self.requests
                .lock()
                .unwrap()
                .push((url.to_string(), params, true));
            let path = url
                .trim_start_matches("https://callq.example.com")
                .split('?')
                .next()
                .unwrap_or("")
                .to_string();
            let xml = {
                let mut a = self.answers.lock().unwrap();
                let q = a.get_mut(&path).ok_or(format!("no answer for {path}"))?;
                if q.len() > 1 {
                    q.pop_front().unwrap()
                } else {
                    q.front().cloned().unwrap()
                }
            };
            crate::twilio::twiml::parse(&xml).map_err(|e| e.to_string())
        }
        fn notify(&self, url: &str, params: Params) {
            self.requests
                .lock()
                .unwrap()
                .push((url.to_string(), params, false));
        }
        async fn ring(&self, target: &Target, _leg: &str, _call: &CallInfo) -> RingResult {
            let after = match target {
                Target::Client(id) => self.devices.lock().unwrap().get(id).cloned().flatten(),
                Target::Number(_) => Some(Duration::from_secs(1)),
            };
            match after {
                Some(d) => {
                    tokio::time::sleep(d).await;
                    RingResult::Answered { talk: None }
                }
                None => std::future::pending().await,
            }
        }
        fn leg_over(&self, target: &Target, _leg: &str, end: LegEnd) {
            self.legs_over
                .lock()
                .unwrap()
                .push((target.address(), end == LegEnd::Completed));
        }
        fn speech(&self, _text: &str) -> Duration {
            Duration::from_secs(2)
        }
        fn media(&self, _url: &str) -> Duration {
            Duration::from_secs(10)
        }
        fn pace(&self, d: Duration) -> Duration {
            d
        }
        fn queues(&self) -> &TwilioQueues {
            &self.queues
        }
        fn new_sid(&self) -> String {
            format!("CA{:032x}", self.sids.fetch_add(1, Ordering::SeqCst) + 1000)
        }
        fn observe(&self, _call: &CallInfo, _what: Observed) {}
    }

    const BASE: &str = "https://callq.example.com";

    fn call() -> CallInfo {
        CallInfo {
            sid: format!("CA{:032x}", 1),
            account_sid: format!("AC{:032x}", 2),
            from: "+15550001111".into(),
            to: "+15005550001".into(),
            direction: "inbound".into(),
        }
    }

    fn start(
        env: &Arc<Fake>,
        script: CallerScript,
    ) -> (
        mpsc::UnboundedSender<Control>,
        tokio::task::JoinHandle<CallLog>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let interp = Interpreter::new(
            env.clone(),
            call(),
            script,
            rx,
            Some(StatusCallback {
                url: format!("{BASE}/twilio/status"),
                events: vec!["completed".into()],
            }),
        );
        let h = tokio::spawn(interp.run(Start::Fetch(format!("{BASE}/twilio/voice"))));
        (tx, h)
    }

    const ENQUEUE: &str = r#"<Response><Say>Welcome</Say><Enqueue waitUrl="/twilio/wait" action="/twilio/queue-exit">sales</Enqueue></Response>"#;
    const WAIT: &str =
        r#"<Response><Say>You are next in line.</Say><Pause length="5"/></Response>"#;

    fn dial_doc(timeout: u32) -> Response {
        crate::twilio::twiml::parse(&format!(
            r#"<Response><Dial action="{BASE}/twilio/dial-result?agent=a1" timeout="{timeout}" answerOnBridge="true"><Client statusCallback="{BASE}/twilio/agent-leg?call=CA1&amp;agent=a1" statusCallbackEvent="answered completed"><Identity>alice</Identity></Client></Dial></Response>"#
        ))
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn enqueue_requests_the_wait_url_each_time_its_document_ends() {
        let env = Arc::new(Fake::default());
        env.answer("/twilio/voice", ENQUEUE);
        env.answer("/twilio/wait", WAIT);
        env.answer("/twilio/queue-exit", "<Response/>");
        let script = CallerScript {
            patience: Some(Duration::from_secs(30)),
            ..CallerScript::default()
        };
        let (_tx, h) = start(&env, script);
        let log = h.await.unwrap();
        // welcome 2 s, then wait documents of 7 s at 2, 9, 16, 23; patience ends at 30
        let waits = env.requests_to("/twilio/wait");
        assert_eq!(waits.len(), 4, "{:?}", env.paths());
        assert_eq!(get(&waits[0], "QueuePosition"), Some("1"));
        assert_eq!(get(&waits[0], "CurrentQueueSize"), Some("1"));
        assert_eq!(get(&waits[2], "QueueTime"), Some("14"));
        assert!(get(&waits[0], "QueueSid").unwrap().starts_with("QU"));
        assert_eq!(get(&waits[0], "CallStatus"), Some("in-progress"));
        let voice = env.requests_to("/twilio/voice");
        assert_eq!(get(&voice[0], "CallStatus"), Some("ringing"));
        assert_eq!(get(&voice[0], "Direction"), Some("inbound"));
        let exit = env.requests_to("/twilio/queue-exit");
        assert_eq!(exit.len(), 1);
        assert_eq!(get(&exit[0], "QueueResult"), Some("hangup"));
        let status = env.requests_to("/twilio/status");
        assert_eq!(get(&status[0], "CallStatus"), Some("completed"));
        assert_eq!(log.outcome(), Outcome::Abandoned);
        assert_eq!(env.queues.total(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rest_update_interrupts_the_queue_and_the_dial_connects() {
        let env = Arc::new(Fake::default());
        env.answer("/twilio/voice", ENQUEUE);
        env.answer("/twilio/wait", WAIT);
        env.answer("/twilio/queue-exit", "<Response/>");
        env.answer("/twilio/dial-result", "<Response><Hangup/></Response>");
        env.device("alice", Some(Duration::from_secs(3)));
        let script = CallerScript {
            patience: Some(Duration::from_secs(300)),
            talk: Duration::from_secs(40),
            ..CallerScript::default()
        };
        let (tx, h) = start(&env, script);
        tokio::time::sleep(Duration::from_secs(5)).await;
        tx.send(Control::Twiml(dial_doc(20))).unwrap();
        let log = h.await.unwrap();
        assert_eq!(log.queue_results, vec!["redirected"]);
        let exit = env.requests_to("/twilio/queue-exit");
        assert_eq!(get(&exit[0], "QueueResult"), Some("redirected"));
        let legs = env.requests_to("/twilio/agent-leg");
        let statuses: Vec<_> = legs.iter().map(|p| get(p, "CallStatus").unwrap()).collect();
        assert_eq!(statuses, vec!["in-progress", "completed"]);
        assert_eq!(get(&legs[0], "ParentCallSid"), Some(call().sid.as_str()));
        assert_eq!(get(&legs[1], "SequenceNumber"), Some("1"));
        assert_eq!(get(&legs[1], "To"), Some("client:alice"));
        let dial = env.requests_to("/twilio/dial-result");
        assert_eq!(dial.len(), 1);
        assert_eq!(get(&dial[0], "DialCallStatus"), Some("completed"));
        assert_eq!(get(&dial[0], "DialCallDuration"), Some("40"));
        assert_eq!(log.outcome(), Outcome::Answered);
        assert_eq!(log.wait(), Some(Duration::from_secs(8)));
        assert_eq!(
            *env.legs_over.lock().unwrap(),
            vec![("client:alice".to_string(), true)]
        );
        // patience (300 s) never applied after the answer: the call ended after the talk
        assert_eq!(log.ended.unwrap() - log.started, Duration::from_secs(48));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_dial_reports_no_answer_after_its_timeout() {
        let env = Arc::new(Fake::default());
        env.answer("/twilio/voice", ENQUEUE);
        env.answer("/twilio/wait", WAIT);
        env.answer("/twilio/queue-exit", "<Response/>");
        // back in line after the miss
        env.answer("/twilio/dial-result", ENQUEUE);
        env.device("alice", None);
        let script = CallerScript {
            patience: Some(Duration::from_secs(60)),
            ..CallerScript::default()
        };
        let (tx, h) = start(&env, script);
        tokio::time::sleep(Duration::from_secs(5)).await;
        tx.send(Control::Twiml(dial_doc(15))).unwrap();
        let log = h.await.unwrap();
        let dial = env.requests_to("/twilio/dial-result");
        assert_eq!(get(&dial[0], "DialCallStatus"), Some("no-answer"));
        assert_eq!(get(&dial[0], "DialCallDuration"), Some("0"));
        assert_eq!(get(&dial[0], "DialBridged"), Some("false"));
        // only the completed event was asked with the answered one; no-answer reports completed
        let legs = env.requests_to("/twilio/agent-leg");
        assert_eq!(legs.len(), 1);
        assert_eq!(get(&legs[0], "CallStatus"), Some("no-answer"));
        assert_eq!(log.missed, 1);
        // requeued, then patience ran out in the queue
        assert_eq!(log.queue_results, vec!["redirected", "hangup"]);
        assert_eq!(log.outcome(), Outcome::Abandoned);
        assert_eq!(log.ended.unwrap() - log.started, Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn patience_ending_while_ringing_cancels_the_leg() {
        let env = Arc::new(Fake::default());
        env.answer("/twilio/voice", ENQUEUE);
        env.answer("/twilio/wait", WAIT);
        env.answer("/twilio/queue-exit", "<Response/>");
        env.answer("/twilio/dial-result", "<Response/>");
        env.device("alice", None);
        let script = CallerScript {
            patience: Some(Duration::from_secs(10)),
            ..CallerScript::default()
        };
        let (tx, h) = start(&env, script);
        tokio::time::sleep(Duration::from_secs(5)).await;
        tx.send(Control::Twiml(dial_doc(20))).unwrap();
        let log = h.await.unwrap();
        let dial = env.requests_to("/twilio/dial-result");
        assert_eq!(get(&dial[0], "DialCallStatus"), Some("canceled"));
        assert_eq!(log.outcome(), Outcome::Abandoned);
        assert_eq!(log.ended.unwrap() - log.started, Duration::from_secs(10));
        assert_eq!(
            *env.legs_over.lock().unwrap(),
            vec![("client:alice".to_string(), false)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gather_presses_the_menu_digit_and_the_offered_callback_digit() {
        let env = Arc::new(Fake::default());
        env.answer(
            "/twilio/voice",
            r#"<Response><Gather numDigits="1" action="/twilio/voice/menu"><Say>For sales, press 1. For support, press 2.</Say></Gather><Redirect>/twilio/voice</Redirect></Response>"#,
        );
        env.answer("/twilio/voice/menu", ENQUEUE);
        env.answer(
            "/twilio/wait",
            r#"<Response><Gather numDigits="1" action="/twilio/wait/gather"><Say>To be called back, press 3.</Say></Gather></Response>"#,
        );
        env.answer(
            "/twilio/wait/gather",
            "<Response><Say>We will call you back.</Say><Hangup/></Response>",
        );
        env.answer("/twilio/queue-exit", "<Response/>");
        let script = CallerScript {
            patience: Some(Duration::from_secs(600)),
            menu_digit: Some("2".into()),
            wants_callback: true,
            ..CallerScript::default()
        };
        let (_tx, h) = start(&env, script);
        let log = h.await.unwrap();
        assert_eq!(log.pressed, vec!["2", "3"]);
        let menu = env.requests_to("/twilio/voice/menu");
        assert_eq!(get(&menu[0], "Digits"), Some("2"));
        let cb = env.requests_to("/twilio/wait/gather");
        assert_eq!(get(&cb[0], "Digits"), Some("3"));
        assert_eq!(log.queue_results, vec!["hangup"]);
        assert_eq!(log.outcome(), Outcome::Callback);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_who_presses_nothing_falls_through_to_the_next_verb() {
        let env = Arc::new(Fake::default());
        env.answer(
            "/twilio/voice",
            r#"<Response><Gather numDigits="1" timeout="4" action="/twilio/voice/menu"><Say>Press 1.</Say></Gather><Redirect>/twilio/fallthrough</Redirect></Response>"#,
        );
        env.answer("/twilio/fallthrough", "<Response><Hangup/></Response>");
        let (_tx, h) = start(&env, CallerScript::default());
        let log = h.await.unwrap();
        assert!(log.pressed.is_empty());
        assert_eq!(
            env.paths(),
            vec!["/twilio/voice", "/twilio/fallthrough", "/twilio/status"]
        );
        assert_eq!(log.ended.unwrap() - log.started, Duration::from_secs(6));
        assert_eq!(log.outcome(), Outcome::EndedByCallq);
    }

    #[tokio::test(start_paused = true)]
    async fn leave_requests_the_action_and_runs_its_answer() {
        let env = Arc::new(Fake::default());
        env.answer("/twilio/voice", ENQUEUE);
        env.answer("/twilio/wait", "<Response><Leave/></Response>");
        env.answer(
            "/twilio/queue-exit",
            r#"<Response><Record maxLength="30" action="/twilio/voicemail"/></Response>"#,
        );
        let script = CallerScript {
            message: Duration::from_secs(12),
            ..CallerScript::default()
        };
        let (_tx, h) = start(&env, script);
        let log = h.await.unwrap();
        let exit = env.requests_to("/twilio/queue-exit");
        assert_eq!(get(&exit[0], "QueueResult"), Some("leave"));
        let vm = env.requests_to("/twilio/voicemail");
        assert_eq!(get(&vm[0], "RecordingDuration"), Some("12"));
        assert_eq!(log.outcome(), Outcome::Voicemail);
    }

    #[tokio::test(start_paused = true)]
    async fn a_redirect_while_bridged_reports_the_dial_then_runs_the_new_document() {
        let env = Arc::new(Fake::default());
        env.device("alice", Some(Duration::from_secs(1)));
        env.answer("/twilio/dial-result", "<Response/>");
        env.answer("/twilio/next", "<Response><Hangup/></Response>");
        let (tx, rx) = mpsc::unbounded_channel();
        let interp = Interpreter::new(env.clone(), call(), CallerScript::default(), rx, None);
        let h = tokio::spawn(interp.run(Start::Doc {
            doc: dial_doc(20),
            base: BASE.into(),
        }));
        tokio::time::sleep(Duration::from_secs(10)).await;
        tx.send(Control::Url(format!("{BASE}/twilio/next")))
            .unwrap();
        let log = h.await.unwrap();
        assert_eq!(
            env.paths(),
            vec![
                "/twilio/agent-leg?call=CA1&agent=a1",
                "/twilio/agent-leg?call=CA1&agent=a1",
                "/twilio/dial-result?agent=a1",
                "/twilio/next"
            ]
        );
        assert_eq!(log.redirects, 1);
        assert_eq!(log.outcome(), Outcome::Answered);
    }

    #[test]
    fn offered_digits_are_read_from_the_prompt() {
        assert_eq!(offered_digit("To be called back, press 3."), Some('3'));
        assert_eq!(offered_digit("Please hold"), None);
        assert_eq!(
            resolve_url("https://h.example/twilio/voice", "/twilio/wait"),
            "https://h.example/twilio/wait"
        );
        assert_eq!(
            TwilioQueues::sid_for("sales"),
            TwilioQueues::sid_for("sales")
        );
        assert_eq!(TwilioQueues::sid_for("sales").len(), 34);
    }
}
