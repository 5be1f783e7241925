//! What the worker tests share: the lab's REST recorder ([`callq::sim::recorder`]) standing
//! in for Twilio's API (it answers as Twilio does, as each test scripts it, records every
//! request, and keeps a small world of calls a test sets up for `GET …/Calls/{Sid}.json` and
//! `GET …/Calls.json`), and helpers to run workers against the test Redis.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use callq::shutdown::ShutdownTrigger;
use callq::store::Store;
use callq::twilio::rest::{Backoff, CallResource, CallStatus, RestConfig, TwilioRest};
use callq::worker::{Settings, Worker};

pub use callq::sim::recorder::{Recorder, Reply, Request};

pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "stand-in-auth-token";
pub const PUBLIC: &str = "https://callq.example.com";

pub const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Twilio for a test: answers write number `n` (0-based) `req` with `script(req, n)`, accepts
/// [`ACCOUNT`] with [`TOKEN`], and waits with the slow-machine allowance.
pub async fn recorder(script: impl FnMut(&Request, usize) -> Reply + Send + 'static) -> Recorder {
    Recorder::start(ACCOUNT, TOKEN, script)
        .await
        .expect("the REST recorder starts")
        .patient(SLOW_MACHINE)
}

/// Twilio answering every request with `Reply::Ok`.
pub async fn recorder_ok() -> Recorder {
    recorder(|_, _| Reply::Ok).await
}

/// The `Authorization` header callq must send.
pub fn basic_auth() -> String {
    callq::sim::recorder::basic_auth(ACCOUNT, TOKEN)
}

/// A call as Twilio would describe it, created now.
pub fn twilio_call(sid: &str, to: &str, status: CallStatus, parent: Option<&str>) -> CallResource {
    callq::sim::recorder::call_resource(ACCOUNT, sid, to, status, parent)
}

/// A REST client for the recorder (the worker puts its circuit breaker in front of it).
pub fn rest_for(twilio: &Recorder, settings: &Settings) -> TwilioRest {
    let mut cfg = RestConfig::with_auth_token(ACCOUNT, TOKEN);
    cfg.api_base = twilio.base.clone();
    cfg.request_timeout = Duration::from_secs(2).min(settings.offer_lease);
    TwilioRest::new(cfg).expect("rest client")
}

/// The worker tests' usual start: a worker running with `settings` against `twilio`, then
/// agent `a1` online in `sales` and call `CA0001` entering it.
pub async fn worker_and_a_call(
    store: &Store,
    twilio: &Recorder,
    settings: Settings,
) -> RunningWorker {
    let worker = RunningWorker::start(store, rest_for(twilio, &settings), settings);
    super::online_agent(store, &super::agent("a1", &[("sales", 1)])).await;
    super::enqueue(store, "CA0001", "sales").await;
    worker
}

/// Quick settings for tests: a 2 s lease, fast backoff, a breaker that stays out of the way.
pub fn fast_settings() -> Settings {
    let mut s = Settings::new(PUBLIC);
    s.offer_lease = Duration::from_secs(2);
    s.lease_margin = Duration::from_millis(300);
    s.ring_grace = Duration::from_secs(5);
    s.wake_timeout = Duration::from_secs(1);
    s.concurrency = 16;
    s.shutdown_grace = Duration::from_secs(3);
    s.reap_interval = Duration::from_millis(500);
    s.backoff = Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
        max_attempts: 1000,
    };
    s.breaker_threshold = 1000;
    s.breaker_cool_down = Duration::from_millis(500);
    s
}

/// A worker running as a task of this test.
pub struct RunningWorker {
    trigger: ShutdownTrigger,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// What the worker's `/readyz` reports about Twilio.
    pub health: Arc<callq::worker::health::TwilioHealth>,
}

impl RunningWorker {
    pub fn start(store: &Store, rest: TwilioRest, settings: Settings) -> Self {
        let (trigger, shutdown) = callq::shutdown::channel();
        let worker = Worker::new(store.clone(), rest, settings);
        let health = worker.health();
        let handle = tokio::spawn(worker.run(shutdown));
        RunningWorker {
            trigger,
            handle,
            health,
        }
    }

    /// Trip shutdown and wait for `run` to return; returns how long that took.
    pub async fn stop(self, within: Duration) -> Duration {
        let t = Instant::now();
        self.trigger.trigger();
        match tokio::time::timeout(within, self.handle).await {
            Ok(Ok(Ok(()))) => t.elapsed(),
            other => panic!("worker did not stop cleanly within {within:?}: {other:?}"),
        }
    }
}

/// Let a test's logs show with `RUST_LOG=callq=debug cargo test …`.
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_test_writer()
        .try_init();
}

/// How much longer than on a quiet machine `eventually` waits: a test asserts what happens,
/// never how fast, and must pass on a busy 2-core machine.
const SLOW_MACHINE: u32 = 10;

/// Poll `check` every 10 ms until it returns Some, or panic after `within` (times
/// [`SLOW_MACHINE`]) naming `what`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let within = within * SLOW_MACHINE;
    let end = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The offer lease deadline of `sid` (Redis clock, ms), and Redis' clock now.
pub async fn lease_of(store: &Store, sid: &str) -> (Option<i64>, i64) {
    let mut c = store.conn().await.expect("conn");
    let (score, time): (Option<f64>, (i64, i64)) = redis::pipe()
        .zscore(store.key("offers"), sid)
        .cmd("TIME")
        .query_async(&mut c)
        .await
        .expect("zscore");
    (score.map(|s| s as i64), time.0 * 1000 + time.1 / 1000)
}

/// The agents' side of Twilio for load tests: on every redirect the recorder receives, the
/// agent answers (with probability `answer_rate`) and talks a little, or does not answer. It
/// records a violation whenever a call is rung at a second agent while still with the first,
/// or an agent is offered a call while holding another.
pub struct AgentSim {
    task: tokio::task::JoinHandle<()>,
    violations: Arc<Mutex<Vec<String>>>,
}

type Holding = (
    std::collections::HashMap<String, String>,
    std::collections::HashMap<String, String>,
);

impl AgentSim {
    pub fn start(store: &Store, twilio: &Recorder, answer_rate: f64) -> Self {
        let mut feed = twilio.feed();
        // (call -> agent ringing or talking), (agent -> call): filled on each REST request,
        // emptied just before the transition that frees them
        let holding: Arc<Mutex<Holding>> = Arc::default();
        let violations: Arc<Mutex<Vec<String>>> = Arc::default();
        let (store, seen) = (store.clone(), violations.clone());
        let task = tokio::spawn(async move {
            while let Some(req) = feed.recv().await {
                let (Some(sid), Some(offer)) = (req.call_sid.clone(), req.offer()) else {
                    seen.lock()
                        .expect("lock")
                        .push(format!("odd request {req:?}"));
                    continue;
                };
                let agent = offer.agent_id.clone();
                {
                    let mut h = holding.lock().expect("lock");
                    if let Some(other) = h.0.get(&sid) {
                        let v = format!("{sid} rung at {agent} while with {other}");
                        seen.lock().expect("lock").push(v);
                    }
                    if let Some(other) = h.1.get(&agent) {
                        let v = format!("{agent} offered {sid} while holding {other}");
                        seen.lock().expect("lock").push(v);
                    }
                    h.0.insert(sid.clone(), agent.clone());
                    h.1.insert(agent.clone(), sid.clone());
                }
                let (store, holding) = (store.clone(), holding.clone());
                tokio::spawn(async move {
                    let answer = rand::random::<f64>() < answer_rate;
                    let pause = || Duration::from_millis(5 + rand::random::<u64>() % 20);
                    tokio::time::sleep(pause()).await;
                    let release = || {
                        let mut h = holding.lock().expect("lock");
                        h.0.remove(&sid);
                        h.1.remove(&agent);
                    };
                    let (st, of) = (&store, &offer);
                    if answer {
                        retrying("answer", move || {
                            st.offer_result(of, callq::store::OfferOutcome::Answered, "")
                        })
                        .await;
                        tokio::time::sleep(pause()).await;
                        release();
                        let sid = &sid;
                        retrying("complete", move || {
                            st.complete(sid, Some(of), callq::store::EndSource::Dial)
                        })
                        .await;
                    } else {
                        release();
                        retrying("no answer", move || {
                            st.offer_result(of, callq::store::OfferOutcome::NoAnswer, "")
                        })
                        .await;
                    }
                });
            }
        });
        AgentSim { task, violations }
    }

    /// Stop answering; the double offers seen (each call rung at a second agent while with
    /// the first, or an agent offered a call while holding another).
    pub fn stop(self) -> Vec<String> {
        self.task.abort();
        let v = self.violations.lock().expect("lock").clone();
        v
    }

    /// After the run: no double offer was seen, every claim reached Twilio exactly once
    /// (REST requests per call = the call's attempts), work was spread, invariants hold.
    pub async fn check(self, store: &Store, twilio: &Recorder, calls: &[String]) {
        self.task.abort();
        let v = self.violations.lock().expect("lock").clone();
        assert!(v.is_empty(), "double offers: {v:#?}");
        let mut per_call: std::collections::HashMap<String, u32> = Default::default();
        for r in twilio.requests() {
            *per_call.entry(r.call_sid.unwrap_or_default()).or_default() += 1;
        }
        let mut agents_used = std::collections::HashSet::new();
        for sid in calls {
            let c = store.call(sid).await.expect("read").expect("call");
            assert_eq!(
                per_call.get(sid).copied().unwrap_or(0),
                c.attempts,
                "{sid}: REST requests vs claims"
            );
            agents_used.insert(c.agent.unwrap_or_default());
        }
        assert!(agents_used.len() > 1, "work was spread over agents");
        super::assert_invariants(store, calls).await;
    }
}

/// `op` until Redis answers it: a cluster failing over answers errors for a moment; a
/// retried transition whose first try did apply answers `stale`, which is an answer. Panics
/// after 100 errors in a row.
pub async fn retrying<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = callq::store::Result<T>>,
{
    let mut errors = 0;
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) => {
                errors += 1;
                assert!(errors < 100, "{what}: Redis kept failing: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Wait until every call in `calls` is completed, checking the routing invariants on a
/// consistent snapshot every 20 ms on the way.
pub async fn until_all_completed(store: &Store, calls: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let snap = store.snapshot(calls).await.expect("snapshot");
        let v = super::invariant_violations(&snap, calls, true);
        assert!(v.is_empty(), "invariants violated mid-run: {v:#?}");
        if snap
            .calls
            .iter()
            .all(|c| c.state == callq::store::CallState::Completed)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every call was answered within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
