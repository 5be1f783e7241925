//! What the worker tests share: a local stand-in for Twilio's REST API (axum, on a free
//! loopback port) that answers the way Twilio does (status codes, error JSON, basic auth,
//! calls serialized as callq reads them), records every request, and keeps a small world of
//! calls a test sets up for `GET …/Calls/{Sid}.json` and `GET …/Calls.json`; and helpers to run
//! workers against the test Redis.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use tokio::sync::watch;
use tokio::time::Instant;

use callq::shutdown::ShutdownTrigger;
use callq::store::Store;
use callq::twilio::rest::{Backoff, CallResource, CallStatus, RestConfig, TwilioRest};
use callq::worker::{Settings, Worker};

pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "stand-in-auth-token";
pub const PUBLIC: &str = "https://callq.example.com";

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    /// `GET` (a read) or `POST` (an update or a create).
    pub method: String,
    pub path: String,
    /// The query string of a read.
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub form: Vec<(String, String)>,
    /// The CallSid in the path (update call), or None (create call).
    pub call_sid: Option<String>,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn params(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The offer a redirect or callback carries, read back from the `<Dial action>` URL in
    /// its TwiML.
    pub fn offer(&self) -> Option<callq::store::OfferRef> {
        let twiml = self.param("Twiml")?;
        let i = twiml
            .find("dial-result?")
            .or_else(|| twiml.find("callback-result?"))?;
        let rest = &twiml[i..];
        let q = &rest[rest.find('?')? + 1..];
        let q = &q[..q.find('"').unwrap_or(q.len())];
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(&q.replace("&amp;", "&")).ok()?;
        callq::contract::parse(&pairs).ok()
    }

    /// The agent a redirect rings, read back from its TwiML.
    pub fn agent(&self) -> Option<String> {
        self.offer().map(|o| o.agent_id)
    }
}

/// How the stand-in answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with the call (update) or 201 with a new call (create).
    Ok,
    /// Twilio's error JSON with this HTTP status and error code.
    Error {
        status: u16,
        code: u32,
        message: &'static str,
    },
    /// The inner reply, after a delay.
    After(Duration, Box<Reply>),
    /// A bare status and body, as something that is not Twilio would answer (a wrong API
    /// base: a web server's HTML 404).
    Raw(u16, &'static str),
    /// Never answers.
    Hang,
}

impl Reply {
    pub fn error(status: u16, code: u32, message: &'static str) -> Self {
        Reply::Error {
            status,
            code,
            message,
        }
    }
    pub fn call_gone() -> Self {
        Reply::error(400, 21220, "Call is not in-progress. Cannot redirect.")
    }
    pub fn server_error() -> Self {
        Reply::error(500, 20500, "Internal Server Error")
    }
    pub fn too_many() -> Self {
        Reply::error(429, 20429, "Too Many Requests")
    }
    pub fn after(ms: u64, r: Reply) -> Self {
        Reply::After(Duration::from_millis(ms), Box::new(r))
    }
}

type Script = Box<dyn FnMut(&Request, usize) -> Reply + Send>;

struct Inner {
    /// The calls Twilio knows, by SID, for reads.
    world: Mutex<std::collections::HashMap<String, CallResource>>,
    /// Reads received (kept apart: `requests` and `count` are the writes).
    reads: Mutex<Vec<Request>>,
    requests: Mutex<Vec<Request>>,
    count: watch::Sender<usize>,
    script: Mutex<Script>,
    feed: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Request>>>,
}

/// A running stand-in for `https://api.twilio.com`.
#[derive(Clone)]
pub struct StandIn {
    pub base: String,
    inner: Arc<Inner>,
}

impl StandIn {
    /// Answers every request with `Reply::Ok`.
    pub async fn ok() -> Self {
        Self::start(|_, _| Reply::Ok).await
    }

    /// Answers request number `n` (0-based) of `req` with `script(req, n)`.
    pub async fn start(script: impl FnMut(&Request, usize) -> Reply + Send + 'static) -> Self {
        let (count, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            world: Mutex::default(),
            reads: Mutex::default(),
            requests: Mutex::new(Vec::new()),
            count,
            script: Mutex::new(Box::new(script)),
            feed: Mutex::new(None),
        });
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(create).get(list),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{file}",
                post(update).get(fetch),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stand-in");
        let addr = listener.local_addr().expect("stand-in addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn {
            base: format!("http://{addr}"),
            inner,
        }
    }

    /// Twilio now knows `call` (reads return it; a call with `parent_call_sid` is listed as
    /// that call's child leg).
    pub fn set_call(&self, call: CallResource) {
        self.inner
            .world
            .lock()
            .expect("world lock")
            .insert(call.sid.clone(), call);
    }

    /// The reads (`GET` a call, list calls) received so far.
    pub fn reads(&self) -> Vec<Request> {
        self.inner.reads.lock().expect("reads lock").clone()
    }

    /// Change how later requests are answered.
    pub fn set_script(&self, script: impl FnMut(&Request, usize) -> Reply + Send + 'static) {
        *self.inner.script.lock().expect("script lock") = Box::new(script);
    }

    /// Every request from now on is also sent here.
    pub fn feed(&self) -> tokio::sync::mpsc::UnboundedReceiver<Request> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.inner.feed.lock().expect("feed lock") = Some(tx);
        rx
    }

    /// The writes (updates and creates) received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.inner.requests.lock().expect("requests lock").clone()
    }

    pub fn count(&self) -> usize {
        *self.inner.count.borrow()
    }

    /// Wait until at least `n` requests arrived (panics after `within` times the slow-machine
    /// allowance).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Request> {
        let within = within * SLOW_MACHINE;
        let mut rx = self.inner.count.subscribe();
        let ok = tokio::time::timeout(within, rx.wait_for(|c| *c >= n)).await;
        assert!(
            matches!(ok, Ok(Ok(_))),
            "stand-in got {} requests within {within:?}, expected {n}: {:#?}",
            self.count(),
            self.requests()
        );
        self.requests()
    }
}

pub fn basic_auth() -> String {
    let raw = format!("{ACCOUNT}:{TOKEN}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A call as Twilio would describe it, created now.
pub fn twilio_call(sid: &str, to: &str, status: CallStatus, parent: Option<&str>) -> CallResource {
    let now = jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000");
    CallResource {
        sid: sid.to_string(),
        account_sid: ACCOUNT.to_string(),
        status,
        to: Some(to.to_string()),
        from: Some("+15550001111".to_string()),
        direction: Some(
            if parent.is_some() {
                "outbound-dial"
            } else {
                "inbound"
            }
            .to_string(),
        ),
        parent_call_sid: parent.map(str::to_string),
        answered_by: None,
        date_created: Some(now.to_string()),
        date_updated: Some(now.to_string()),
        start_time: Some(now.to_string()),
        end_time: None,
        duration: None,
        queue_time: Some("0".to_string()),
        uri: Some(format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json")),
    }
}

fn call_json(sid: &str, status: CallStatus) -> serde_json::Value {
    serde_json::to_value(twilio_call(sid, "+15005550001", status, None))
        .unwrap_or(serde_json::Value::Null)
}

fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

async fn update(
    State(inner): State<Arc<Inner>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sid = file.strip_suffix(".json").unwrap_or(&file).to_string();
    handle(inner, account, Some(sid), headers, body).await
}

async fn create(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(inner, account, None, headers, body).await
}

/// Records a read and checks its credentials; the error to answer when they are wrong.
fn record_read(
    inner: &Inner,
    account: &str,
    path: String,
    headers: &HeaderMap,
    query: Vec<(String, String)>,
) -> Option<Response> {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let req = Request {
        at: Instant::now(),
        method: "GET".into(),
        path,
        query,
        authorization: authorization.clone(),
        content_type: None,
        form: Vec::new(),
        call_sid: None,
    };
    inner.reads.lock().expect("reads lock").push(req);
    (account != ACCOUNT || authorization.as_deref() != Some(basic_auth().as_str()))
        .then(|| twilio_error(401, 20003, "Authenticate"))
}

async fn fetch(
    State(inner): State<Arc<Inner>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{file}");
    if let Some(refused) = record_read(&inner, &account, path, &headers, Vec::new()) {
        return refused;
    }
    let sid = file.strip_suffix(".json").unwrap_or(&file);
    match inner.world.lock().expect("world lock").get(sid) {
        Some(call) => axum::Json(call.clone()).into_response(),
        None => twilio_error(404, 20404, "The requested resource was not found"),
    }
}

async fn list(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    if let Some(refused) = record_read(&inner, &account, path, &headers, query.clone()) {
        return refused;
    }
    let want = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let (parent, to) = (want("ParentCallSid"), want("To"));
    let calls: Vec<CallResource> = inner
        .world
        .lock()
        .expect("world lock")
        .values()
        .filter(|c| parent.is_none() || c.parent_call_sid == parent)
        .filter(|c| to.is_none() || c.to == to)
        .cloned()
        .collect();
    axum::Json(serde_json::json!({ "calls": calls, "page": 0, "page_size": calls.len() }))
        .into_response()
}

async fn handle(
    inner: Arc<Inner>,
    account: String,
    call_sid: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let req = Request {
        at,
        method: "POST".into(),
        query: Vec::new(),
        path: match &call_sid {
            Some(sid) => format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
            None => format!("/2010-04-01/Accounts/{account}/Calls.json"),
        },
        authorization: header("authorization"),
        content_type: header("content-type"),
        form,
        call_sid: call_sid.clone(),
    };
    let n = {
        let mut all = inner.requests.lock().expect("requests lock");
        all.push(req.clone());
        all.len() - 1
    };
    if let Some(tx) = inner.feed.lock().expect("feed lock").as_ref() {
        let _ = tx.send(req.clone());
    }
    inner.count.send_modify(|c| *c += 1);
    if account != ACCOUNT || req.authorization.as_deref() != Some(basic_auth().as_str()) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let mut reply = {
        let mut script = inner.script.lock().expect("script lock");
        (script)(&req, n)
    };
    loop {
        match reply {
            Reply::Ok => {
                return match call_sid {
                    Some(sid) => (
                        StatusCode::OK,
                        axum::Json(call_json(&sid, CallStatus::InProgress)),
                    )
                        .into_response(),
                    None => (
                        StatusCode::CREATED,
                        axum::Json(call_json(&format!("CAnew{n:028}"), CallStatus::Queued)),
                    )
                        .into_response(),
                }
            }
            Reply::Error {
                status,
                code,
                message,
            } => return twilio_error(status, code, message),
            Reply::After(d, inner) => {
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            Reply::Raw(status, body) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
                return (status, body).into_response();
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return StatusCode::GATEWAY_TIMEOUT.into_response();
            }
        }
    }
}

/// A REST client for the stand-in (the worker puts its circuit breaker in front of it).
pub fn rest_for(standin: &StandIn, settings: &Settings) -> TwilioRest {
    let mut cfg = RestConfig::with_auth_token(ACCOUNT, TOKEN);
    cfg.api_base = standin.base.clone();
    cfg.request_timeout = Duration::from_secs(2).min(settings.offer_lease);
    TwilioRest::new(cfg).expect("rest client")
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
        let worker = Worker::new(store.clone(), rest, &crate::support::redis_url(), settings);
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
        .query_async(&mut *c)
        .await
        .expect("zscore");
    (score.map(|s| s as i64), time.0 * 1000 + time.1 / 1000)
}

/// The agents' side of Twilio for load tests: on every redirect the stand-in receives, the
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
    pub fn start(store: &Store, twilio: &StandIn, answer_rate: f64) -> Self {
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
                    if answer {
                        store
                            .offer_result(&offer, callq::store::OfferOutcome::Answered, "")
                            .await
                            .expect("answer");
                        tokio::time::sleep(pause()).await;
                        release();
                        store
                            .complete(&sid, Some(&offer), callq::store::EndSource::Dial)
                            .await
                            .expect("complete");
                    } else {
                        release();
                        store
                            .offer_result(&offer, callq::store::OfferOutcome::NoAnswer, "")
                            .await
                            .expect("no answer");
                    }
                });
            }
        });
        AgentSim { task, violations }
    }

    /// After the run: no double offer was seen, every claim reached Twilio exactly once
    /// (REST requests per call = the call's attempts), work was spread, invariants hold.
    pub async fn check(self, store: &Store, twilio: &StandIn, calls: &[String]) {
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
        crate::support::assert_invariants(store, calls).await;
    }
}

/// Wait until every call in `calls` is completed, checking the routing invariants on a
/// consistent snapshot every 20 ms on the way.
pub async fn until_all_completed(store: &Store, calls: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let snap = store.snapshot(calls).await.expect("snapshot");
        let v = crate::support::invariant_violations(&snap, calls, true);
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
