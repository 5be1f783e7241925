//! A simulated call's life: the environment the interpreter runs calls in ([`SimEnv`]:
//! webhooks, agents' devices, customers called back, Twilio's record of calls in
//! [`Registry`], measurements), and the two ways a call starts: a caller dialling a number
//! ([`SimEnv::place_inbound`]) and a call created over REST ([`SimEnv::place_outbound`]).
//! Behind one number there may be the centre's old phone system ([`LegacyPhones`]): a
//! `<Dial>` of it rings one free agent of the legacy floor, once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::agents::Agents;
use super::clock::Clock;
use super::faults::{CustomerFaults, CustomerPick};
use super::registry::{CallView, Registry};
use super::stats::{Estimate, Stats};
use super::twiml_exec::{
    new_sid, rfc2822_now, CallInfo, CallerScript, Control, Env, Interpreter, LegEnd, Observed,
    Params, RingResult, Start, StatusCallback, Target, TwilioQueues, DEFAULT_REST_BASE,
};
use super::webhook::Webhooks;
use crate::store::read::estimate_wait;
use crate::store::Store;
use crate::twilio::twiml::Response;

/// Simulated seconds a busy customer's line takes to say so.
const BUSY_TONE_S: f64 = 2.0;

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

/// The centre's old phone system, reached by dialling `number` (callq's legacy path): a hunt
/// group that rings the one agent of the legacy floor free longest for `ring` (real time),
/// once. Nobody free: busy at once; no answer in time: `no-answer`. Either is a missed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyPhones {
    pub number: String,
    pub ring: Duration,
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
    customer_faults: CustomerFaults,
    store: Option<Store>,
    legacy: Option<LegacyPhones>,
    /// Inbound calls: CallSid → when the caller dialled (for processing time).
    placed: Mutex<HashMap<String, Instant>>,
    /// Legs the old phone system rang: leg sid → the agent it rang.
    hunted: Mutex<HashMap<String, String>>,
    /// The base URL the simulated REST API listens on (set by `Sim::serve_rest`): recording
    /// URLs point there, as Twilio's point at its API.
    rest_base: std::sync::OnceLock<String>,
}

impl SimEnv {
    /// Twilio's `<Enqueue>` queues (the REST API lists them and their members).
    pub fn twilio_queues(&self) -> &TwilioQueues {
        &self.queues
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hooks: Arc<Webhooks>,
        agents: Arc<Agents>,
        stats: Arc<Stats>,
        numbers: Numbers,
        clock: Clock,
        media: MediaTimes,
        customer_answer_s: f64,
        customer_faults: CustomerFaults,
        seed: u64,
        store: Option<Store>,
        legacy: Option<LegacyPhones>,
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
            customer_faults,
            store,
            legacy,
            placed: Mutex::new(HashMap::new()),
            hunted: Mutex::new(HashMap::new()),
            rest_base: std::sync::OnceLock::new(),
        }
    }

    /// Where the simulated REST API listens (recording URLs point there); the first one set
    /// stays.
    pub fn set_rest_base(&self, base: &str) {
        let _ = self.rest_base.set(base.trim_end_matches('/').to_string());
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
        // ringing until Twilio runs the first TwiML (the voice URL's answer)
        self.registry.insert(info.clone(), tx, "ringing");
        self.placed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(info.sid.clone(), Instant::now());
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
        let view = self.registry.insert(info.clone(), tx, "queued");
        let me = self.clone();
        tokio::spawn(async move { me.run_outbound(info, req, rx).await });
        view
    }

    async fn run_outbound(
        self: Arc<Self>,
        info: CallInfo,
        req: Outbound,
        mut rx: mpsc::UnboundedReceiver<Control>,
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
            self.hooks.status_callback(url, p);
        };
        report(&mut seq, "initiated", "initiated");
        self.registry.set_status(&info.sid, "ringing");
        report(&mut seq, "ringing", "ringing");
        let target = match req.to.strip_prefix("client:") {
            Some(identity) => Target::Client(identity.to_string()),
            None => Target::Number(req.to.clone()),
        };
        enum Rung {
            Ring(RingResult),
            RangOut,
            Canceled,
        }
        let rung = tokio::select! {
            r = self.ring(&target, &info.sid, &info) => Rung::Ring(r),
            _ = tokio::time::sleep(req.timeout) => Rung::RangOut,
            // only a hang-up reaches a call that is not in progress (`Status=canceled|completed`)
            Some(_) = rx.recv() => Rung::Canceled,
        };
        match rung {
            Rung::Ring(RingResult::Answered { .. }) => {
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
                self.registry.set_status(&info.sid, "completed");
            }
            other => {
                let (status, end) = match other {
                    Rung::Ring(RingResult::Busy) => ("busy", LegEnd::NoAnswer),
                    Rung::Ring(RingResult::Failed) => ("failed", LegEnd::NoAnswer),
                    Rung::Canceled => ("canceled", LegEnd::Canceled),
                    _ => ("no-answer", LegEnd::NoAnswer),
                };
                self.leg_over(&target, &info.sid, end);
                self.registry.set_status(&info.sid, status);
                report(&mut seq, "completed", status);
            }
        }
    }
}

impl SimEnv {
    /// A `<Dial>` of the old phone system: its hunt group rings one free legacy agent for its
    /// own ring time, once.
    async fn ring_legacy(&self, leg_sid: &str, call: &CallInfo) -> RingResult {
        let ring = self.legacy.as_ref().map_or(Duration::ZERO, |l| l.ring);
        let Some((agent, free_since)) = self.agents.hunt(leg_sid) else {
            self.stats
                .legacy_nobody_free
                .fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.clock.real(BUSY_TONE_S)).await;
            return RingResult::Busy;
        };
        self.hunted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(leg_sid.to_string(), agent.id.clone());
        self.processed(call, Some(free_since));
        tokio::select! {
            r = self.agents.pick_up(&agent, leg_sid) => r,
            _ = tokio::time::sleep(ring) => {
                self.stats.legacy_rang_out.fetch_add(1, Ordering::Relaxed);
                RingResult::NoAnswer
            }
        }
    }

    /// An agent's phone rings for the inbound `call`, which the agent has been free for since
    /// `free_since` (None: not known to be free): the call's processing time is counted once,
    /// from the later of the caller dialling and the agent being free.
    fn processed(&self, call: &CallInfo, free_since: Option<Instant>) {
        let placed = self
            .placed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&call.sid)
            .copied();
        let Some(placed) = placed else {
            return;
        };
        let since = free_since.map_or(placed, |f| f.max(placed));
        let ms = Instant::now()
            .saturating_duration_since(since)
            .as_secs_f64()
            * 1000.0;
        self.stats.first_ring(&call.sid, ms);
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

    fn status_callback(&self, url: &str, params: Params) {
        self.hooks.status_callback(url, params);
    }

    fn rest_base(&self) -> String {
        self.rest_base
            .get()
            .cloned()
            .unwrap_or_else(|| DEFAULT_REST_BASE.to_string())
    }

    fn new_recording_sid(&self) -> String {
        self.sid("RE")
    }

    fn leg_created(
        &self,
        leg: &CallInfo,
        parent: &str,
    ) -> Option<mpsc::UnboundedReceiver<Control>> {
        Some(self.registry.insert_leg(leg.clone(), parent))
    }

    fn status_changed(&self, sid: &str, status: &'static str) {
        self.registry.set_status(sid, status);
    }

    async fn ring(&self, target: &Target, leg_sid: &str, call: &CallInfo) -> RingResult {
        match target {
            Target::Client(identity) => self.agents.ring(identity, leg_sid).await,
            Target::Number(n) if self.legacy.as_ref().is_some_and(|l| &l.number == n) => {
                self.ring_legacy(leg_sid, call).await
            }
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
                let (pick, delay) = {
                    let mut g = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                    let pick = self.customer_faults.pick(&mut *g);
                    (pick, self.clock.exp(&mut *g, self.customer_answer_s))
                };
                match pick {
                    CustomerPick::Answers => {}
                    CustomerPick::RingsOut => {
                        self.stats
                            .customers_no_answer
                            .fetch_add(1, Ordering::Relaxed);
                        // the <Dial> timeout ends the ring
                        return std::future::pending().await;
                    }
                    CustomerPick::Busy => {
                        self.stats.customers_busy.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(self.clock.real(BUSY_TONE_S)).await;
                        return RingResult::Busy;
                    }
                }
                tokio::time::sleep(delay).await;
                self.stats.callback_reached(&c.original_sid);
                RingResult::Answered { talk: Some(c.talk) }
            }
        }
    }

    fn leg_over(&self, target: &Target, leg_sid: &str, end: LegEnd) {
        match target {
            Target::Client(identity) => self.agents.leg_over(identity, leg_sid, end),
            Target::Number(_) => {
                let hunted = self
                    .hunted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(leg_sid);
                if let Some(identity) = hunted {
                    self.agents.leg_over(&identity, leg_sid, end);
                }
            }
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
            Observed::Waiting => {}
            Observed::Announced { .. } => {
                // on hold now: from here on, callq may offer the call (assignment latency
                // counts from here, not from the welcome before the <Enqueue>)
                self.registry.waiting(&call.sid);
                // the wait callq would announce, read where it is computed, as the caller
                // hears their first announcement (they are in callq's line from then on);
                // beside it, the naive estimate from the same numbers
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
                    let (Ok(Some(place)), Ok(line)) = (
                        store.place_in_line(&sid, &rec.queue).await,
                        store.queue_stats(&rec.queue).await,
                    ) else {
                        return;
                    };
                    let staffed = line.staffed();
                    stats.announced(
                        &sid,
                        Estimate {
                            at,
                            callq_s: estimate_wait(place, &line),
                            naive_s: (staffed > 0)
                                .then(|| place as f64 * line.aht_s / staffed as f64),
                        },
                    );
                });
            }
            Observed::Ringing {
                target: Target::Client(identity),
            } => {
                // callq rings an agent: processing ran from the later of the caller dialling
                // and the agent being free
                let ready = self.agents.ready_at(&identity);
                self.processed(call, ready);
            }
            Observed::Ended => {
                self.placed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&call.sid);
            }
            Observed::Ringing { .. } | Observed::Connected { .. } => {}
        }
    }
}
