//! The one test harness every integration test uses: a private `redis-server` per test
//! binary (on a free port, in a temp dir, stopped when the binary exits), or a local Redis
//! Cluster ([`cluster`]), and a fresh centre per test so tests never see each other's keys.

#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod edge;
pub mod postgres;
pub mod worker;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use callq::lab::embedded_redis::EmbeddedRedis;
use callq::store::{
    AgentSpec, Arrival, CallKind, NewCall, QueueSettings, RecordMode, RequestedStatus, Store,
    StoreOptions, Strategy, UpsertMode,
};

static REDIS: OnceLock<EmbeddedRedis> = OnceLock::new();
static CENTRE: AtomicU32 = AtomicU32::new(0);

/// The URL of this test binary's own redis-server, started on first use.
pub fn redis_url() -> String {
    REDIS
        .get_or_init(|| match EmbeddedRedis::start() {
            Ok(r) => r,
            Err(e) => panic!("test harness: {e}"),
        })
        .url()
}

/// A store on a centre no other test uses. Replies may take long on a busy machine: the
/// tests assert outcomes, never speed, so the response timeout is generous. The scripts run
/// as Redis functions, or by SHA when `CALLQ_TEST_BY_SHA=1` (as on a Redis before 7.0).
pub fn fresh_store() -> Store {
    let n = CENTRE.fetch_add(1, Ordering::SeqCst);
    let centre = format!("t{}-{n}", std::process::id());
    let opts = StoreOptions {
        pool_size: 16,
        response_timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(30),
        functions: std::env::var("CALLQ_TEST_BY_SHA").as_deref() != Ok("1"),
    };
    Store::connect_with(&redis_url(), &centre, &opts).expect("store connects")
}

/// A call entering `queue` from `from`, offerable at once (the caller already on hold).
pub fn holding<'a>(sid: &'a str, queue: &'a str, from: &'a str) -> NewCall<'a> {
    NewCall {
        call_sid: sid,
        queue,
        from,
        to: "+15005550001",
        priority_boost: Duration::ZERO,
        kind: CallKind::Inbound,
        arrival: Arrival::Holding {
            waited: Duration::ZERO,
        },
        skills: Default::default(),
    }
}

pub fn queue(name: &str, strategy: Strategy) -> QueueSettings {
    QueueSettings {
        name: name.to_string(),
        strategy,
        ring_timeout: Duration::from_secs(20),
        wrapup: Duration::ZERO,
        max_no_answer: 3,
        no_answer_delay: Duration::ZERO,
        callback_retries: 2,
        callback_retry_delay: Duration::from_secs(300),
        check_after: Duration::from_secs(300),
        fallback: true,
        half_life: Duration::from_secs(3600),
        record: RecordMode::DoNotRecord,
        skills: Default::default(),
        widen: Vec::new(),
        calls_carry_skills: false,
        busy_delay: None,
        failed_delay: None,
        resume_within: None,
        transfer_keeps_rank: true,
    }
}

/// A store with the given queues configured.
pub async fn store_with(queues: &[QueueSettings]) -> Store {
    let store = fresh_store();
    for q in queues {
        store.configure_queue(q).await.expect("queue configured");
    }
    store
}

pub fn agent(id: &str, queues: &[(&str, u32)]) -> AgentSpec {
    AgentSpec {
        id: id.to_string(),
        identity: format!("client-{id}"),
        queues: queues.iter().map(|(q, t)| (q.to_string(), *t)).collect(),
        capacity: 1,
        skills: Default::default(),
        order: 0,
        weight: 1,
    }
}

/// Create an agent, give it a live heartbeat with a registered device, and make it available.
pub async fn online_agent(store: &Store, spec: &AgentSpec) {
    online_agent_for(store, spec, Duration::from_secs(30)).await;
}

/// The same with a heartbeat that lives `ttl` (a test of what happens when it lapses).
pub async fn online_agent_for(store: &Store, spec: &AgentSpec, ttl: Duration) {
    store
        .upsert_agent(spec, UpsertMode::Upsert)
        .await
        .expect("agent created");
    store
        .heartbeat(&spec.id, ttl, true)
        .await
        .expect("heartbeat");
    store
        .set_agent_status(&spec.id, RequestedStatus::Available, "")
        .await
        .expect("available");
}

use callq::store::read::Snapshot;
use callq::store::{AgentStatus, CallState};

/// Check the routing invariants (docs/design.md) on a consistent snapshot that includes every
/// call in `entered`. Returns the violations found (empty when all hold).
///
/// When `all_calls` is true, `entered` is every call the centre has seen, so each agent's
/// `active` counter must equal the calls it holds; otherwise (a sample taken while other
/// tasks enqueue) it must be at least that.
pub fn invariant_violations(snap: &Snapshot, entered: &[String], all_calls: bool) -> Vec<String> {
    let mut v = Vec::new();
    let calls: std::collections::HashMap<&str, _> =
        snap.calls.iter().map(|c| (c.sid.as_str(), c)).collect();
    // 3. every call that entered is in exactly one known state
    for sid in entered {
        if !calls.contains_key(sid.as_str()) {
            v.push(format!("call {sid} disappeared"));
        }
    }
    let in_ready = |id: &str| {
        snap.ready
            .iter()
            .filter(|(_, members)| members.iter().any(|m| m == id))
            .map(|((q, t), _)| format!("{q}:{t}"))
            .collect::<Vec<_>>()
    };
    // the agents a call holds: a ring_all offer, every agent it still rings; any other
    // offered or connected call, its one agent
    let holders = |c: &callq::store::CallRecord| -> Vec<String> {
        match c.state {
            CallState::Offered if !c.ringing.is_empty() => c.ringing.clone(),
            CallState::Offered | CallState::Connected => c.agent.clone().into_iter().collect(),
            _ => Vec::new(),
        }
    };
    // 1. reserved/busy agents are in no ready set and hold no more calls than capacity; an
    // agent is reserved or busy only for calls whose current offer names it
    for a in &snap.agents {
        let held = snap
            .calls
            .iter()
            .filter(|c| holders(c).contains(&a.id))
            .count() as u32;
        if all_calls && matches!(a.status, AgentStatus::Reserved | AgentStatus::Busy) && held == 0 {
            v.push(format!("agent {} is {} for no call", a.id, a.status));
        }
        if held > a.capacity {
            v.push(format!(
                "agent {} holds {held} calls, capacity {}",
                a.id, a.capacity
            ));
        }
        if held > a.active || (all_calls && held != a.active) || a.active > a.capacity {
            v.push(format!(
                "agent {} active={} capacity={} but holds {held}",
                a.id, a.active, a.capacity
            ));
        }
        let sets = in_ready(&a.id);
        if matches!(a.status, AgentStatus::Reserved | AgentStatus::Busy) && !sets.is_empty() {
            v.push(format!(
                "agent {} is {} yet ready in {sets:?}",
                a.id, a.status
            ));
        }
        if a.status != AgentStatus::Available && !sets.is_empty() {
            v.push(format!(
                "agent {} is {} yet ready in {sets:?}",
                a.id, a.status
            ));
        }
        // presence: an agent whose device is not registered is in no ready set (one whose
        // heartbeat key just expired may still be, until the reaper or a claim sees it; a
        // claim never offers it: `the_agent_*` tests and the offers below check that)
        if a.heartbeat == Some(false) && !sets.is_empty() {
            v.push(format!(
                "agent {} has no device yet is ready in {sets:?}",
                a.id
            ));
        }
    }
    // 6. the skill index agrees with the ready sets: an agent ready for (queue, tier) is in
    // that tier's set of each skill it has, at its level, and in no other skill set there
    for ((q, t, skill, level), members) in &snap.ready_skills {
        let ready = snap.ready.get(&(q.clone(), *t));
        for m in members {
            let has = snap
                .agents
                .iter()
                .find(|a| &a.id == m)
                .and_then(|a| a.skills.0.get(skill).copied());
            if has != Some(*level) || !ready.is_some_and(|r| r.contains(m)) {
                v.push(format!(
                    "agent {m} indexed as {skill}={level} for {q}:{t}, has {has:?}, ready there: {}",
                    ready.is_some_and(|r| r.contains(m))
                ));
            }
        }
    }
    for ((q, t), members) in &snap.ready {
        for m in members {
            let Some(a) = snap.agents.iter().find(|a| &a.id == m) else {
                continue;
            };
            for (skill, level) in &a.skills.0 {
                let indexed = snap
                    .ready_skills
                    .get(&(q.clone(), *t, skill.clone(), *level))
                    .is_some_and(|set| set.contains(m));
                if !indexed {
                    v.push(format!(
                        "agent {m} ready for {q}:{t} but not indexed as {skill}={level}"
                    ));
                }
            }
        }
    }
    // the per-queue agent counters the queue views read agree with the agents
    for d in &snap.counter_drift {
        v.push(format!(
            "queue {} counts {} {} agents, the agents say {}",
            d.queue, d.stored, d.state, d.counted
        ));
    }
    // 2. a waiting call is in exactly one waiting set (its queue's) and has no agent
    for c in &snap.calls {
        let sets: Vec<&String> = snap
            .waiting
            .iter()
            .filter(|(_, m)| m.contains(&c.sid))
            .map(|(q, _)| q)
            .collect();
        let count = |set: &[String]| set.iter().filter(|s| **s == c.sid).count();
        let offered = count(&snap.offers);
        let connected = count(&snap.connected);
        let arriving = count(&snap.arriving);
        let retrying = count(&snap.retry);
        let elsewhere = |v: &mut Vec<String>, allowed: &str| {
            for (name, n) in [
                ("offers", offered),
                ("connected", connected),
                ("arriving", arriving),
                ("retry", retrying),
            ] {
                if name != allowed && n != 0 {
                    v.push(format!("{} call {} is in {name}", c.state, c.sid));
                }
            }
        };
        match c.state {
            CallState::Arriving => {
                if arriving != 1 || !sets.is_empty() {
                    v.push(format!(
                        "arriving call {} arriving={arriving} waiting {sets:?}",
                        c.sid
                    ));
                }
                elsewhere(&mut v, "arriving");
            }
            // a callback waiting out a retry delay is out of line, in the retry set
            CallState::Callback if retrying == 1 => {
                if !sets.is_empty() || c.agent.is_some() {
                    v.push(format!("retrying callback {} waiting {sets:?}", c.sid));
                }
                elsewhere(&mut v, "retry");
            }
            CallState::Waiting | CallState::Callback => {
                if sets.len() != 1 || sets[0] != &c.queue {
                    v.push(format!(
                        "waiting call {} is in waiting sets {sets:?}",
                        c.sid
                    ));
                }
                elsewhere(&mut v, "");
                if c.agent.is_some() {
                    v.push(format!("waiting call {} has agent {:?}", c.sid, c.agent));
                }
            }
            // 4. an offered call is offered under one lease, not waiting, to one agent or (a
            // ring_all offer) to agents of its group, each named by the offer; a connected
            // call has one agent and nobody else still ringing for it
            CallState::Offered => {
                if c.agent.is_none() || offered != 1 || !sets.is_empty() {
                    v.push(format!(
                        "offered call {} agent {:?} leases {offered} waiting {sets:?}",
                        c.sid, c.agent
                    ));
                }
                let named = |id: &String| c.group.contains(id);
                if !c.group.is_empty()
                    && (!c.agent.as_ref().is_some_and(named) || !c.ringing.iter().all(named))
                {
                    v.push(format!(
                        "ring_all call {} agent {:?} ringing {:?} outside its group {:?}",
                        c.sid, c.agent, c.ringing, c.group
                    ));
                }
                if c.group.is_empty() && !c.ringing.is_empty() {
                    v.push(format!(
                        "call {} rings {:?} without a group",
                        c.sid, c.ringing
                    ));
                }
                elsewhere(&mut v, "offers");
            }
            CallState::Connected => {
                if c.agent.is_none() || connected != 1 || !sets.is_empty() || !c.ringing.is_empty()
                {
                    v.push(format!(
                        "connected call {} agent {:?} ringing {:?} checks {connected} waiting {sets:?}",
                        c.sid, c.agent, c.ringing
                    ));
                }
                if !c.group.is_empty() && !c.agent.as_ref().is_some_and(|a| c.group.contains(a)) {
                    v.push(format!(
                        "ring_all call {} connected to {:?}, not of its group {:?}",
                        c.sid, c.agent, c.group
                    ));
                }
                elsewhere(&mut v, "connected");
            }
            _ => {
                if !sets.is_empty() {
                    v.push(format!("{} call {} still in line", c.state, c.sid));
                }
                elsewhere(&mut v, "");
            }
        }
    }
    v
}

/// Take a snapshot and assert the invariants hold; `entered` is every call of the centre.
/// The value of the sample of `name` whose labels include every one of `labels`, in the
/// Prometheus text `text`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = match series.split_once('{') {
            Some((m, rest)) => (m, rest),
            None => (series, ""),
        };
        if metric != name {
            return None;
        }
        labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.parse().ok())
            .flatten()
    })
}

pub async fn assert_invariants(store: &Store, entered: &[String]) {
    let snap = store.snapshot(entered).await.expect("snapshot");
    let v = invariant_violations(&snap, entered, true);
    assert!(v.is_empty(), "invariants violated: {v:#?}");
}

use std::net::SocketAddr;
use std::sync::Arc;

use callq::app::{AgentSettings, AppState, EdgeSettings, OpsSettings};
use callq::config::CentreConfig;
use callq::shutdown::ShutdownTrigger;

pub const AUTH_TOKEN: &str = "test-twilio-auth-token";
pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const VIEWER_TOKEN: &str = "test-viewer-token-0123456789";
pub const AGENT_SECRET: &[u8] = b"test-agent-secret-at-least-32-bytes-long";

/// A running `callq serve` on a free loopback port, on a centre of its own.
pub struct TestServer {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`: also the public URL webhooks are signed against.
    pub base: String,
    pub state: AppState,
    trigger: ShutdownTrigger,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.trigger.trigger();
    }
}

/// The centre `toml` describes; a test's own configuration must be valid.
pub fn centre_from(toml: &str) -> CentreConfig {
    match CentreConfig::from_toml(toml, "test centre") {
        Ok(c) => c,
        Err(e) => panic!("test centre: {e}\n{toml}"),
    }
}

/// Start `callq serve` for `centre` (its `centre` name is replaced by a fresh one).
pub async fn spawn_server(centre: CentreConfig) -> TestServer {
    spawn_server_on(fresh_store(), centre).await
}

/// Start `callq serve` on an existing store (e.g. one pointing at an unreachable Redis).
pub async fn spawn_server_on(store: Store, centre: CentreConfig) -> TestServer {
    spawn_server_on_with(store, centre, |_| {}).await
}

/// Start `callq serve` for `centre` with its state adjusted by `tune` first (a short
/// heartbeat TTL, another admin token, ...).
pub async fn spawn_server_with(
    centre: CentreConfig,
    tune: impl FnOnce(&mut AppState),
) -> TestServer {
    spawn_server_on_with(fresh_store(), centre, tune).await
}

async fn spawn_server_on_with(
    store: Store,
    centre: CentreConfig,
    tune: impl FnOnce(&mut AppState),
) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    for q in centre.queue_settings() {
        // an unreachable store is allowed here: the server must cope on its own
        let _ = tokio::time::timeout(Duration::from_secs(2), store.configure_queue(&q)).await;
    }
    let mut state = AppState {
        store,
        centre: Arc::new(centre),
        edge: Arc::new(EdgeSettings {
            public_url: base.clone(),
            auth_token: AUTH_TOKEN.to_string(),
            redis_deadline: Duration::from_millis(300),
            log_caller_numbers: false,
        }),
        agents: Arc::new(AgentSettings {
            voice: None,
            admin_token: ADMIN_TOKEN.to_string(),
            agent_secret: AGENT_SECRET.to_vec(),
            heartbeat_ttl: Duration::from_secs(15),
            voice_sdk_url: String::new(),
        }),
        ops: Arc::new(OpsSettings {
            viewer_token: VIEWER_TOKEN.to_string(),
            metrics_token: String::new(),
            // no chart samples unless a test asks (they would add Redis commands to others)
            history_every: Duration::ZERO,
        }),
        stats_cache: Default::default(),
        switches: Default::default(),
    };
    tune(&mut state);
    let (trigger, shutdown) = callq::shutdown::channel();
    let served = state.clone();
    tokio::spawn(async move {
        let _ = callq::server::serve(listener, served, 64 * 1024, shutdown).await;
    });
    TestServer {
        addr,
        base,
        state,
        trigger,
    }
}

// ---------------------------------------------------------------------------------------------
// Routing scenario helpers: short names for the steps every routing test takes.
// ---------------------------------------------------------------------------------------------

use callq::store::{
    AgentRecord, CallRecord, Claim, Completion, EndSource, Enqueued, Offer, OfferOutcome, OfferRef,
    OfferResult,
};

/// The offer lease the helpers claim with (long: tests settle offers themselves).
pub const LEASE: Duration = Duration::from_secs(30);

/// `sid` enters `q` from a plain number, offerable at once.
pub async fn enqueue(store: &Store, sid: &str, q: &str) -> Enqueued {
    store
        .enqueue(&holding(sid, q, "+15550001111"))
        .await
        .expect("enqueue")
}

/// Claim once; None when there is nothing to offer.
pub async fn claim(store: &Store) -> Option<Offer> {
    match store.claim(LEASE, 7).await.expect("claim") {
        Claim::Offer(o) => Some(o),
        Claim::Idle { .. } => None,
    }
}

/// Claim once under a lease of `lease` (a short one, for tests of what happens when it
/// passes); there must be an offer.
pub async fn claim_leased(store: &Store, lease: Duration) -> Offer {
    match store.claim(lease, 0).await.expect("claim") {
        Claim::Offer(o) => o,
        Claim::Idle { .. } => panic!("nothing to claim"),
    }
}

/// Claim once: the call and the agent offered, or None when there is nothing to offer.
pub async fn claimed(store: &Store) -> Option<(String, String)> {
    claim(store).await.map(|o| (o.call_sid, o.agent_id))
}

/// Claim until an offer comes (something becomes due on Redis' clock), or None after `within`.
pub async fn claim_within(store: &Store, within: Duration) -> Option<Offer> {
    let end = tokio::time::Instant::now() + within;
    loop {
        if let Some(o) = claim(store).await {
            return Some(o);
        }
        if tokio::time::Instant::now() > end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn call(store: &Store, sid: &str) -> CallRecord {
    store.call(sid).await.expect("read").expect("call exists")
}

pub async fn state(store: &Store, sid: &str) -> CallState {
    call(store, sid).await.state
}

pub async fn status(store: &Store, id: &str) -> AgentStatus {
    store
        .agent(id)
        .await
        .expect("read")
        .expect("agent exists")
        .status
}

pub fn sids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The call's latest offer (its agent and attempt), as the worker's URLs would name it.
pub async fn current(store: &Store, sid: &str) -> OfferRef {
    let c = call(store, sid).await;
    OfferRef {
        call_sid: sid.to_string(),
        agent_id: c.agent.expect("the call has (had) an agent"),
        attempt: c.attempts,
    }
}

/// The `<Dial>` of the call's current offer ended after a conversation.
pub async fn complete(store: &Store, sid: &str) -> callq::store::Result<Completion> {
    let offer = current(store, sid).await;
    store.complete(sid, Some(&offer), EndSource::Dial).await
}

/// `sid` enters `q` and is claimed; the claim must offer exactly that call.
pub async fn enter_offered(store: &Store, sid: &str, q: &str) -> Offer {
    enqueue(store, sid, q).await;
    let o = claim(store).await.expect("an offer");
    assert_eq!(o.call_sid, sid, "the claim offers the call just entered");
    o
}

/// `sid` enters `q`, is claimed, and the agent answers.
pub async fn enter_connected(store: &Store, sid: &str, q: &str) -> Offer {
    let o = enter_offered(store, sid, q).await;
    let r = store
        .offer_result(&o.offer_ref(), OfferOutcome::Answered, "CAleg")
        .await
        .expect("answered");
    assert_eq!(r, OfferResult::Connected);
    o
}

/// Queue `sales`, longest idle first, as [`queue`] sets it up.
pub fn sales() -> QueueSettings {
    queue("sales", Strategy::LongestIdle)
}

/// A centre with queue `q` and agent `a1` online in it at tier 1: where most routing tests
/// start.
pub async fn staffed(q: QueueSettings) -> Store {
    let name = q.name.clone();
    let store = store_with(&[q]).await;
    online_agent(&store, &agent("a1", &[(name.as_str(), 1)])).await;
    store
}

/// A [`staffed`] centre where `sid` entered `q` and was offered to `a1`.
pub async fn offered(q: QueueSettings, sid: &str) -> (Store, Offer) {
    let name = q.name.clone();
    let store = staffed(q).await;
    let o = enter_offered(&store, sid, &name).await;
    assert_eq!(o.agent_id, "a1");
    (store, o)
}

/// A [`staffed`] centre where `sid` entered `q`, was offered to `a1`, and `a1` answered.
pub async fn connected(q: QueueSettings, sid: &str) -> (Store, Offer) {
    let name = q.name.clone();
    let store = staffed(q).await;
    let o = enter_connected(&store, sid, &name).await;
    assert_eq!(o.agent_id, "a1");
    (store, o)
}

/// The agent's record; it must exist.
pub async fn agent_rec(store: &Store, id: &str) -> AgentRecord {
    store.agent(id).await.expect("read").expect("agent exists")
}

/// `Some` once the call is in state `want`: a condition to wait for.
pub async fn state_is(store: &Store, sid: &str, want: CallState) -> Option<()> {
    (call(store, sid).await.state == want).then_some(())
}
