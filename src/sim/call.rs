//! A simulated call's life: the registry of calls (what Twilio's REST API finds), the
//! environment the interpreter runs calls in ([`SimEnv`]: webhooks, agents' devices,
//! customers called back, measurements), and the two ways a call starts: a caller dialling a
//! number ([`SimEnv::place_inbound`]) and a call created over REST ([`SimEnv::place_outbound`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::agents::Agents;
use super::clock::Clock;
use super::stats::Stats;
use super::twiml_exec::{
    new_sid, rfc2822_now, CallInfo, CallerScript, Control, Env, Interpreter, LegEnd, Observed,
    Params, RingResult, Start, StatusCallback, Target, TwilioQueues,
};
use super::webhook::Webhooks;
use crate::store::Store;
use crate::twilio::twiml::Response;

/// One call Twilio knows of.
#[derive(Debug)]
struct Entry {
    info: CallInfo,
    control: mpsc::UnboundedSender<Control>,
    /// `queued`, `ringing`, `in-progress` or a final status.
    status: &'static str,
    /// Since when callq has had the call in line (None: not waiting now).
    waiting_since: Option<Instant>,
}

/// Why a REST request about a call cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallGone {
    /// Twilio never had this call (20404).
    Unknown,
    /// The call has ended (21220).
    NotInProgress,
}

/// Every call, live or ended, by CallSid.
#[derive(Debug, Default)]
pub struct Registry {
    calls: Mutex<HashMap<String, Entry>>,
    live: std::sync::atomic::AtomicUsize,
    idle: Notify,
}

/// A call as the REST API shows it.
#[derive(Debug, Clone)]
pub struct CallView {
    pub info: CallInfo,
    pub status: &'static str,
    /// How long callq had it in line when the request came (inbound calls).
    pub waited: Option<Duration>,
}

impl Registry {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut g = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub(crate) fn insert(
        &self,
        info: CallInfo,
        control: mpsc::UnboundedSender<Control>,
        status: &'static str,
    ) {
        self.live.fetch_add(1, Ordering::SeqCst);
        self.with(|m| {
            m.insert(
                info.sid.clone(),
                Entry {
                    info,
                    control,
                    status,
                    waiting_since: None,
                },
            )
        });
    }

    fn set_status(&self, sid: &str, status: &'static str) {
        self.with(|m| {
            if let Some(e) = m.get_mut(sid) {
                e.status = status;
            }
        });
    }

    pub(crate) fn end(&self, sid: &str) {
        self.with(|m| {
            if let Some(e) = m.get_mut(sid) {
                e.status = "completed";
                e.waiting_since = None;
            }
        });
        if self.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    fn waiting(&self, sid: &str) {
        self.with(|m| {
            if let Some(e) = m.get_mut(sid) {
                e.waiting_since.get_or_insert_with(Instant::now);
            }
        });
    }

    /// Applies a REST update (`Twiml`, `Url`, `Status`) to a live call.
    pub fn control(&self, sid: &str, c: Control) -> Result<CallView, CallGone> {
        self.with(|m| {
            let e = m.get_mut(sid).ok_or(CallGone::Unknown)?;
            if !matches!(e.status, "in-progress" | "ringing" | "queued") {
                return Err(CallGone::NotInProgress);
            }
            let waited = e.waiting_since.take().map(|t| t.elapsed());
            e.control.send(c).map_err(|_| CallGone::NotInProgress)?;
            Ok(CallView {
                info: e.info.clone(),
                status: e.status,
                waited,
            })
        })
    }

    pub fn view(&self, sid: &str) -> Option<CallView> {
        self.with(|m| {
            m.get(sid).map(|e| CallView {
                info: e.info.clone(),
                status: e.status,
                waited: None,
            })
        })
    }

    /// Calls not yet ended.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Inbound calls not yet ended.
    pub fn live_inbound(&self) -> Vec<String> {
        self.with(|m| {
            m.values()
                .filter(|e| e.status != "completed" && e.info.direction == "inbound")
                .map(|e| e.info.sid.clone())
                .collect()
        })
    }

    /// Tells every live call that its caller hangs up.
    pub fn hang_up_all(&self) {
        self.with(|m| {
            for e in m.values().filter(|e| e.status != "completed") {
                let _ = e.control.send(Control::CallerHangup);
            }
        });
    }

    /// Waits until no call is live, or `timeout`; true when none is.
    pub async fn ended(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.live() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.live() == 0;
            }
        }
    }
}

/// A caller waiting for a callback: their number rings when callq calls them back.
#[derive(Debug, Clone)]
struct Customer {
    original_sid: String,
    talk: Duration,
}

/// Lengths of what the caller hears, in the caller's (simulated) time: a `<Say>` of 10 words
/// takes about 4 s, a hold-music file 20 s; both pass `compress` times faster in real time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaTimes {
    pub words_per_s: f64,
    /// One play of a hold-music file.
    pub play: Duration,
}

impl Default for MediaTimes {
    fn default() -> Self {
        Self {
            words_per_s: 2.5,
            play: Duration::from_secs(20),
        }
    }
}

/// Where the numbers' webhooks point, and as whom Twilio calls.
#[derive(Debug, Clone)]
pub struct Numbers {
    pub account_sid: String,
    /// The number's voice URL (`{public}/twilio/voice`).
    pub voice_url: String,
    /// The number's status callback (`{public}/twilio/status`).
    pub status_url: String,
    /// Base for relative URLs in inline TwiML.
    pub public_url: String,
}

/// The world the interpreter runs calls in.
pub struct SimEnv {
    pub hooks: Arc<Webhooks>,
    pub agents: Arc<Agents>,
    pub registry: Registry,
    pub stats: Arc<Stats>,
    pub numbers: Numbers,
    customers: Mutex<HashMap<String, Customer>>,
    queues: TwilioQueues,
    rng: Mutex<StdRng>,
    clock: Clock,
    media: MediaTimes,
    customer_answer_s: f64,
    store: Option<Store>,
}

impl SimEnv {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hooks: Arc<Webhooks>,
        agents: Arc<Agents>,
        stats: Arc<Stats>,
        numbers: Numbers,
        clock: Clock,
        media: MediaTimes,
        customer_answer_s: f64,
        seed: u64,
        store: Option<Store>,
    ) -> Self {
        Self {
            hooks,
            agents,
            registry: Registry::default(),
            stats,
            numbers,
            customers: Mutex::new(HashMap::new()),
            queues: TwilioQueues::default(),
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0xca11)),
            clock,
            media,
            customer_answer_s,
            store,
        }
    }

    fn sid(&self, prefix: &str) -> String {
        let mut g = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        new_sid(prefix, &mut *g)
    }

    /// A caller dials `to` from `from`: Twilio requests the number's voice URL and follows
    /// callq's TwiML until the call ends. Returns the CallSid.
    pub fn place_inbound(self: &Arc<Self>, from: &str, to: &str, script: CallerScript) -> String {
        let info = CallInfo {
            sid: self.sid("CA"),
            account_sid: self.numbers.account_sid.clone(),
            from: from.to_string(),
            to: to.to_string(),
            direction: "inbound".into(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.registry.insert(info.clone(), tx, "in-progress");
        self.customers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                from.to_string(),
                Customer {
                    original_sid: info.sid.clone(),
                    talk: script.talk,
                },
            );
        self.stats.offered.fetch_add(1, Ordering::Relaxed);
        let sc = StatusCallback {
            url: self.numbers.status_url.clone(),
            events: vec!["completed".into()],
        };
        let interp = Interpreter::new(self.clone(), info.clone(), script, rx, Some(sc));
        let me = self.clone();
        let voice = self.numbers.voice_url.clone();
        let sid = info.sid.clone();
        tokio::spawn(async move {
            let log = interp.run(Start::Fetch(voice)).await;
            me.stats.finished(log);
            me.registry.end(&sid);
        });
        info.sid
    }

    /// `POST …/Calls.json`: rings `to` (an agent's `client:` or a number); once answered runs
    /// `start`, reporting to `status_callback` as asked. Returns the new call.
    pub fn place_outbound(self: &Arc<Self>, req: Outbound) -> CallView {
        let info = CallInfo {
            sid: self.sid("CA"),
            account_sid: self.numbers.account_sid.clone(),
            from: req.from.clone(),
            to: req.to.clone(),
            direction: "outbound-api".into(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.registry.insert(info.clone(), tx, "queued");
        let me = self.clone();
        let view = CallView {
            info: info.clone(),
            status: "queued",
            waited: None,
        };
        tokio::spawn(async move { me.run_outbound(info, req, rx).await });
        view
    }

    async fn run_outbound(
        self: Arc<Self>,
        info: CallInfo,
        req: Outbound,
        rx: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut seq = 0u32;
        let report = |seq: &mut u32, event: &str, status: &str| {
            let Some(url) = &req.status_callback else {
                return;
            };
            if !req.events.iter().any(|e| e == event) {
                return;
            }
            let mut p = info.params(status);
            p.push(("Timestamp".into(), rfc2822_now()));
            p.push(("SequenceNumber".into(), seq.to_string()));
            p.push(("CallbackSource".into(), "call-progress-events".into()));
            *seq += 1;
            self.hooks.post_detached(url, p);
        };
        report(&mut seq, "initiated", "initiated");
        self.registry.set_status(&info.sid, "ringing");
        report(&mut seq, "ringing", "ringing");
        let target = match req.to.strip_prefix("client:") {
            Some(identity) => Target::Client(identity.to_string()),
            None => Target::Number(req.to.clone()),
        };
        let rung = tokio::select! {
            r = self.ring(&target, &info.sid, &info) => Some(r),
            _ = tokio::time::sleep(req.timeout) => None,
        };
        match rung {
            Some(RingResult::Answered { .. }) => {
                self.registry.set_status(&info.sid, "in-progress");
                report(&mut seq, "answered", "in-progress");
                let sc = req.status_callback.clone().map(|url| StatusCallback {
                    url,
                    events: req.events.clone(),
                });
                let script = CallerScript {
                    patience: None,
                    ..CallerScript::default()
                };
                let interp = Interpreter::new(self.clone(), info.clone(), script, rx, sc)
                    .starting_sequence(seq);
                let start = match req.start {
                    OutboundStart::Twiml(doc) => Start::Doc {
                        doc,
                        base: self.numbers.public_url.clone(),
                    },
                    OutboundStart::Url(url) => Start::Fetch(url),
                };
                interp.run(start).await;
                self.leg_over(&target, &info.sid, LegEnd::Completed);
            }
            other => {
                self.leg_over(&target, &info.sid, LegEnd::NoAnswer);
                let status = match other {
                    Some(RingResult::Busy) => "busy",
                    Some(RingResult::Failed) => "failed",
                    _ => "no-answer",
                };
                report(&mut seq, "completed", status);
            }
        }
        self.registry.end(&info.sid);
    }
}

/// What a created call runs once answered.
#[derive(Debug, Clone)]
pub enum OutboundStart {
    Twiml(Response),
    Url(String),
}

/// A `POST …/Calls.json` request.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub to: String,
    pub from: String,
    pub start: OutboundStart,
    pub status_callback: Option<String>,
    pub events: Vec<String>,
    pub timeout: Duration,
}

impl Env for SimEnv {
    async fn fetch(&self, url: &str, params: Params) -> Result<Response, String> {
        self.hooks.fetch(url, &params).await
    }

    fn notify(&self, url: &str, params: Params) {
        self.hooks.post_detached(url, params);
    }

    async fn ring(&self, target: &Target, leg_sid: &str, _call: &CallInfo) -> RingResult {
        match target {
            Target::Client(identity) => self.agents.ring(identity, leg_sid).await,
            Target::Number(n) => {
                let customer = self
                    .customers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(n)
                    .cloned();
                let Some(c) = customer else {
                    return RingResult::Failed;
                };
                let delay = {
                    let mut g = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                    self.clock.exp(&mut *g, self.customer_answer_s)
                };
                tokio::time::sleep(delay).await;
                self.stats.callback_reached(&c.original_sid);
                RingResult::Answered { talk: Some(c.talk) }
            }
        }
    }

    fn leg_over(&self, target: &Target, leg_sid: &str, end: LegEnd) {
        if let Target::Client(identity) = target {
            self.agents.leg_over(identity, leg_sid, end);
        }
    }

    fn speech(&self, text: &str) -> Duration {
        let words = text.split_whitespace().count().max(1) as f64;
        self.clock.real(words / self.media.words_per_s.max(0.1))
    }

    fn media(&self, _url: &str) -> Duration {
        self.clock.real(self.media.play.as_secs_f64())
    }

    fn pace(&self, d: Duration) -> Duration {
        self.clock.real(d.as_secs_f64())
    }

    fn queues(&self) -> &TwilioQueues {
        &self.queues
    }

    fn new_sid(&self) -> String {
        self.sid("CA")
    }

    fn observe(&self, call: &CallInfo, what: Observed) {
        match what {
            Observed::Waiting => {
                self.registry.waiting(&call.sid);
                // the wait callq would announce, read where it is computed, as the call
                // enters the line (the first time only)
                let Some(store) = self.store.clone() else {
                    return;
                };
                if !self.stats.first_estimate(&call.sid) {
                    return;
                }
                let stats = self.stats.clone();
                let sid = call.sid.clone();
                let at = Instant::now();
                tokio::spawn(async move {
                    let Ok(Some(rec)) = store.call(&sid).await else {
                        return;
                    };
                    if let Ok(Some(pos)) = store.position(&sid, &rec.queue).await {
                        stats.announced(&sid, at, pos.estimated_wait_s);
                    }
                });
            }
            Observed::Announced { .. } => {}
            Observed::Ringing { .. } | Observed::Connected { .. } | Observed::Ended => {}
        }
    }
}
