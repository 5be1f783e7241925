//! The data of one simulated call: who it is ([`CallInfo`]), what its caller does
//! ([`CallerScript`]), what may happen to it from outside ([`Control`]), everything outside it
//! ([`Env`]), and the phone side's record of it ([`CallLog`], [`Outcome`]).

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::queue::TwilioQueues;
use crate::twilio::twiml::Response;

/// Form parameters of one request, in order.
pub type Params = Vec<(String, String)>;

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
    /// Rang out on the far end's own limit before the `<Dial>` timeout (a phone system
    /// behind a number that gives up ringing its extension).
    NoAnswer,
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
    /// `inbound`, `outbound-api` or `outbound-dial`.
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

/// Twilio's REST API, where recording URLs point unless the environment says otherwise.
pub const DEFAULT_REST_BASE: &str = "https://api.twilio.com";

/// Everything outside one call: HTTP towards callq, devices, media lengths, measurements.
pub trait Env: Send + Sync + 'static {
    /// Requests `url` with `params` (signed, form-encoded) and parses the TwiML answer.
    fn fetch(
        &self,
        url: &str,
        params: Params,
    ) -> impl Future<Output = Result<Response, String>> + Send;
    /// A request whose answer Twilio ignores (the Enqueue action after a redirect, the Dial
    /// action after an update). Sent without waiting for it.
    fn notify(&self, url: &str, params: Params);
    /// A status callback (the call's own, or a dialled leg's): sent once, never retried, not
    /// waited for. By default the same as [`Env::notify`].
    fn status_callback(&self, url: &str, params: Params) {
        self.notify(url, params);
    }
    /// The base URL of the REST API (recording URLs point under it).
    fn rest_base(&self) -> String {
        DEFAULT_REST_BASE.to_string()
    }
    /// A fresh RecordingSid (`RE…`).
    fn new_recording_sid(&self) -> String {
        format!("RE{}", self.new_sid().trim_start_matches("CA"))
    }
    /// Twilio's record of calls: `<Dial>` created the leg `leg` of the call `parent`
    /// (`queued`). Returns the leg's own control channel (REST updates of the leg), if any.
    fn leg_created(
        &self,
        _leg: &CallInfo,
        _parent: &str,
    ) -> Option<mpsc::UnboundedReceiver<Control>> {
        None
    }
    /// Twilio's record of calls: the call or leg `sid` is now `status` (`ringing`,
    /// `in-progress`, or a final status, which ends it).
    fn status_changed(&self, _sid: &str, _status: &'static str) {}
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
    /// The caller pressed the callback offer's key in the wait document playing now (callq
    /// may or may not take the request: a caller who hangs up before hearing the answer
    /// leaves both possible).
    pub callback_pressed: bool,
    /// callq took the callback request: the caller pressed the key and then left the queue on
    /// callq's `<Leave/>`.
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
    /// How long the conversation lasted, from the answer to the end of the agent's leg (the
    /// drawn talk time while it goes on).
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
            callback_pressed: false,
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
