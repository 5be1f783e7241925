//! `callq reconcile` against a real Redis (tests/support), a real PostgreSQL archive
//! (127.0.0.1:5432, user postgres, or `CALLQ_TEST_PG`; a database per test, dropped at the
//! end) filled by `callq archive`'s own loop, and the lab's REST recorder standing in for
//! Twilio (its calls and `<Enqueue>` queues set by the test). The centre's keys are deleted
//! as a FLUSHALL would; reconcile then finds what is missing and, with apply, restores it.

mod support;

use std::time::Duration;

use callq::archive::ArchiveOptions;
use callq::reconcile::{self, Options, Report};
use callq::shutdown::{channel, ShutdownTrigger};
use callq::sim::recorder::{call_resource, Recorder, Reply};
use callq::store::*;
use callq::twilio::rest::{CallStatus, QueueMember, RestConfig, TwilioRest};
use redis::AsyncCommands;
use support::postgres::*;
use support::*;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "reconcile-test-token";
const SALES_NUMBER: &str = "+15005550001";

/// `callq archive`'s loop, until stopped.
struct Archiver {
    trigger: ShutdownTrigger,
    task: JoinHandle<callq::archive::Result<()>>,
}

fn start_archive(store: &Store, db: &TestDb) -> Archiver {
    let mut o = ArchiveOptions::new(&db.url());
    o.consumer = "reconcile-test".into();
    o.block = Duration::from_millis(200);
    o.claim_idle = Duration::from_millis(300);
    o.max_backoff = Duration::from_millis(500);
    let (trigger, shutdown) = channel();
    let store = store.clone();
    let task = tokio::spawn(async move {
        let centre = store.centre().to_string();
        callq::archive::run(&store, &centre, &o, Default::default(), shutdown).await
    });
    Archiver { trigger, task }
}

impl Archiver {
    async fn stop(self) {
        self.trigger.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

async fn xlen(store: &Store) -> i64 {
    let mut c = store.conn().await.expect("conn");
    c.xlen(store.key("events")).await.expect("XLEN")
}

/// Wait until every event of the stream is a row of `events`.
async fn until_archived(store: &Store, pg: &Client) {
    let end = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let n = xlen(store).await;
        let rows: i64 = match pg.query_one("SELECT count(*) FROM events", &[]).await {
            Ok(r) => r.get(0),
            Err(_) => -1,
        };
        if n > 0 && rows == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "not archived: {n} events in the stream, {rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The centre's keys.
async fn centre_keys(store: &Store) -> Vec<String> {
    let mut c = store.conn().await.expect("conn");
    c.keys(format!("{}*", store.prefix())).await.expect("KEYS")
}

/// Every key of the centre deleted at one instant (one `DEL`), as a FLUSHALL would (the
/// script functions stay loaded, as FLUSHALL leaves them). Under a running load new keys
/// appear right after, as they would after a real FLUSHALL.
async fn flush_centre(store: &Store) {
    let keys = centre_keys(store).await;
    assert!(!keys.is_empty(), "a centre to flush");
    let mut c = store.conn().await.expect("conn");
    // (a key the load itself removed in between, e.g. a wake marker taken, is not counted)
    let deleted: usize = c.del(&keys).await.expect("DEL");
    assert!(
        deleted > 0 && deleted <= keys.len(),
        "the centre flushed: {deleted} of {}",
        keys.len()
    );
}

/// Deletes every key of the centre in one step, as [`flush_centre`] does, but only at an
/// instant when the archive has copied every event (its group has read the stream's last
/// entry and holds none unacknowledged): a FLUSHALL then loses nothing the archive lacks, so
/// the archive can be checked for every call that ended. Under a running load that instant
/// comes between bursts of events; tried until it does.
async fn flush_centre_once_archived(store: &Store) {
    const SCRIPT: &str = r#"
        local function map(flat)
          local t = {}
          for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
          return t
        end
        local stream = map(redis.call('XINFO', 'STREAM', KEYS[1]))
        for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
          g = map(g)
          if g.name == ARGV[1] then
            if g.pending ~= 0 or g['last-delivered-id'] ~= stream['last-generated-id'] then
              return -1
            end
            return redis.call('DEL', unpack(KEYS))
          end
        end
        return -2
    "#;
    let end = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut keys = centre_keys(store).await;
        let events = store.key("events");
        keys.retain(|k| *k != events);
        keys.insert(0, events);
        let mut c = store.conn().await.expect("conn");
        let deleted: i64 = redis::Script::new(SCRIPT)
            .key(keys)
            .arg("archive")
            .invoke_async(&mut c)
            .await
            .expect("flush script");
        if deleted > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "the archive never caught up with the stream ({deleted})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn centre_toml(name: &str) -> String {
    format!(
        r#"centre = "{name}"
default_queue = "sales"

[queues.sales]
numbers = ["{SALES_NUMBER}"]

[queues.support]
numbers = ["+15005550002"]
"#
    )
}

async fn twilio() -> (Recorder, TwilioRest) {
    let rec = Recorder::start(ACCOUNT, TOKEN, |_, _| Reply::Ok)
        .await
        .expect("recorder");
    let mut cfg = RestConfig::with_auth_token(ACCOUNT, TOKEN);
    cfg.api_base = rec.base.clone();
    cfg.request_timeout = Duration::from_secs(30);
    let rest = TwilioRest::new(cfg).expect("client");
    (rec, rest)
}

/// A caller Twilio holds in `callq-<queue>` since `waited_s`.
fn hold_in_twilio(rec: &Recorder, queue: &str, sid: &str, from: &str, waited_s: u64) {
    let mut call = call_resource(ACCOUNT, sid, SALES_NUMBER, CallStatus::InProgress, None);
    call.from = Some(from.to_string());
    call.direction = Some("inbound".into());
    rec.set_call(call);
    rec.set_queue_member(
        &format!("callq-{queue}"),
        QueueMember {
            call_sid: sid.to_string(),
            queue_sid: None,
            position: None,
            wait_time: Some(waited_s),
            date_enqueued: Some("Mon, 30 Nov 2026 08:00:00 +0000".into()),
        },
    );
}

async fn entered_after(store: &Store, sid: &str, q: &str, from: &str, waited: Duration) {
    store
        .enqueue(&NewCall {
            call_sid: sid,
            queue: q,
            from,
            to: SALES_NUMBER,
            priority_boost: Duration::ZERO,
            kind: CallKind::Inbound,
            arrival: Arrival::Holding { waited },
            skills: Default::default(),
        })
        .await
        .expect("enqueue");
}

async fn run(
    store: &Store,
    centre: &callq::config::CentreConfig,
    rest: &TwilioRest,
    pg: &Client,
    apply: bool,
) -> Report {
    let opts = Options {
        apply,
        ..Options::default()
    };
    let r = reconcile::run(store, centre, rest, pg, &opts)
        .await
        .expect("reconcile runs");
    println!("{}", reconcile::render(&r));
    assert!(r.errors.is_empty(), "errors: {:?}", r.errors);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing_and_apply_restores_queues_agents_callers_and_callbacks() {
    let store = fresh_store();
    let centre = support::centre_from(&centre_toml(store.centre()));
    for q in centre.queue_settings() {
        store.configure_queue(&q).await.expect("queue");
    }
    let db = TestDb::create().await;
    let archiver = start_archive(&store, &db);
    let (rec, rest) = twilio().await;

    // the centre's day so far: two agents answer a call each, a third is deleted
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    // a2's profile is richer, and its tokens were revoked once: all of it on record
    let mut a2 = agent("a2", &[("support", 2)]);
    a2.identity = "desk-a2".into();
    a2.capacity = 2;
    a2.skills = callq::store::Skills::new([("billing", 3)]);
    a2.order = 5;
    a2.weight = 4;
    online_agent(&store, &a2).await;
    store.revoke_tokens("a2").await.expect("revoked");
    let generations = [
        store.token_generation("a1").await.expect("read"),
        store.token_generation("a2").await.expect("read"),
    ];
    store
        .upsert_agent(&agent("a3", &[("sales", 1)]), UpsertMode::Create)
        .await
        .expect("a3");
    store.delete_agent("a3").await.expect("a3 deleted");
    for (sid, q, who) in [("CAdone1", "sales", "a1"), ("CAdone2", "support", "a2")] {
        let o = enter_connected(&store, sid, q).await;
        assert_eq!(o.agent_id, who);
        complete(&store, sid).await.expect("completed");
    }
    for id in ["a1", "a2"] {
        store
            .set_agent_status(id, RequestedStatus::Offline, "")
            .await
            .expect("offline");
    }
    // two callers waiting in sales (the first for longer), one callback pending in support
    entered_after(
        &store,
        "CAwait1",
        "sales",
        "+15550001001",
        Duration::from_secs(120),
    )
    .await;
    entered_after(
        &store,
        "CAwait2",
        "sales",
        "+15550001002",
        Duration::from_secs(30),
    )
    .await;
    hold_in_twilio(&rec, "sales", "CAwait1", "+15550001001", 120);
    hold_in_twilio(&rec, "sales", "CAwait2", "+15550001002", 30);
    entered_after(
        &store,
        "CAcb1",
        "support",
        "+15550002002",
        Duration::from_secs(200),
    )
    .await;
    store
        .request_callback("CAcb1", "+15550002002")
        .await
        .expect("callback");
    let cb_entered = call(&store, "CAcb1").await.entered_ms;
    // a call in progress to the centre in no Twilio queue (talking to someone)
    rec.set_call(call_resource(
        ACCOUNT,
        "CAtalking",
        SALES_NUMBER,
        CallStatus::InProgress,
        None,
    ));

    let pg = pg_connect(&db.url()).await;
    until_archived(&store, &pg).await;
    archiver.stop().await;

    // nothing lost yet: nothing to restore
    let r = run(&store, &centre, &rest, &pg, false).await;
    assert!(r.queues_missing.is_empty());
    assert!(r.agents_restore.is_empty(), "{:?}", r.agents_restore);
    assert!(r.callers_restore.is_empty());
    assert!(r.callbacks_restore.is_empty());
    assert_eq!(r.calls_unqueued, vec!["CAtalking".to_string()]);
    assert_eq!(r.callers_known.len(), 2);

    flush_centre(&store).await;

    // (a) a dry run finds everything and writes nothing
    let r = run(&store, &centre, &rest, &pg, false).await;
    assert!(!r.applied);
    assert_eq!(r.queues_missing, vec!["sales", "support"]);
    let agents: Vec<(String, Vec<String>)> = r
        .agents_restore
        .iter()
        .map(|a| (a.id.clone(), a.queues.clone()))
        .collect();
    assert_eq!(
        agents,
        vec![
            ("a1".to_string(), vec!["sales".to_string()]),
            ("a2".to_string(), vec!["support".to_string()])
        ]
    );
    assert_eq!(r.agents_deleted, vec!["a3".to_string()]);
    let callers: Vec<(&str, &str, u64)> = r
        .callers_restore
        .iter()
        .map(|c| (c.sid.as_str(), c.queue.as_str(), c.waited_s))
        .collect();
    assert_eq!(
        callers,
        vec![("CAwait1", "sales", 120), ("CAwait2", "sales", 30)]
    );
    assert_eq!(r.callbacks_restore.len(), 1);
    assert_eq!(r.callbacks_restore[0].sid, "CAcb1");
    assert_eq!(r.callbacks_restore[0].number, "+15550002002");
    assert!(
        centre_keys(&store).await.is_empty(),
        "a dry run writes nothing"
    );

    // (b) apply restores them
    let r = run(&store, &centre, &rest, &pg, true).await;
    assert!(r.applied);
    let mut queues = store.queue_names().await.expect("queues");
    queues.sort();
    assert_eq!(queues, vec!["sales", "support"]);
    for (id, q, tier) in [("a1", "sales", 1), ("a2", "support", 2)] {
        let a = agent_rec(&store, id).await;
        assert_eq!(a.status, AgentStatus::Offline, "{id} comes back offline");
        assert_eq!(a.queues, vec![(q.to_string(), tier)]);
    }
    // the profile as it was, and the tokens the desktops hold still good
    let back = agent_rec(&store, "a2").await;
    assert_eq!(
        (
            back.identity.as_str(),
            back.capacity,
            back.order,
            back.weight
        ),
        ("desk-a2", 2, 5, 4)
    );
    assert_eq!(back.skills, callq::store::Skills::new([("billing", 3)]));
    assert_eq!(
        [
            store.token_generation("a1").await.expect("read"),
            store.token_generation("a2").await.expect("read"),
        ],
        generations,
        "token generations restored"
    );
    assert!(r.agents_restore.iter().all(|a| a.tokens_kept));
    assert!(store.agent("a3").await.expect("read").is_none());
    let (w1, w2) = (call(&store, "CAwait1").await, call(&store, "CAwait2").await);
    assert_eq!(w1.state, CallState::Waiting);
    assert_eq!(w2.state, CallState::Waiting);
    assert!(
        w1.rank < w2.rank,
        "the caller who waited longer is ahead again"
    );
    let (s, us) = store.redis_time().await.expect("time");
    let now = s * 1000 + us / 1000;
    assert!(
        (now - w1.entered_ms - 120_000).abs() < 60_000,
        "entered at its original arrival (waited 120 s)"
    );
    let cb = call(&store, "CAcb1").await;
    assert_eq!(cb.state, CallState::Callback);
    assert_eq!(cb.kind, CallKind::Callback);
    assert_eq!(cb.callback_to.as_deref(), Some("+15550002002"));
    assert!(
        (cb.entered_ms - cb_entered).abs() <= 2_000,
        "the callback keeps its original time ({} vs {cb_entered})",
        cb.entered_ms
    );
    assert_invariants(&store, &sids(&["CAwait1", "CAwait2", "CAcb1"])).await;

    // a second run finds nothing more to do
    let r = run(&store, &centre, &rest, &pg, true).await;
    assert!(r.queues_missing.is_empty());
    assert!(r.agents_restore.is_empty());
    assert!(r.callers_restore.is_empty());
    assert!(r.callbacks_restore.is_empty());
    assert_eq!(r.agents_known, vec!["a1".to_string(), "a2".to_string()]);
}

#[tokio::test]
async fn lists_follow_next_page_uri_to_the_last_page() {
    let (rec, rest) = twilio().await;
    for i in 0..2105u32 {
        rec.set_queue_member(
            "callq-sales",
            QueueMember {
                call_sid: format!("CA{i:05}"),
                queue_sid: None,
                position: None,
                wait_time: Some(u64::from(i)),
                date_enqueued: None,
            },
        );
    }
    let queues = rest.list_queues(10).await.expect("queues");
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0].friendly_name.as_deref(), Some("callq-sales"));
    let members = rest
        .list_queue_members(&queues[0].sid, 10)
        .await
        .expect("members");
    assert_eq!(members.len(), 2105, "three pages of at most 1000");
    assert_eq!(members[0].call_sid, "CA00000");
    assert_eq!(members[2104].position, Some(2105));
}

/// (c) Under a running floor (the lab: simulated Twilio, callq's server and worker, agents
/// on their desks, the archive copying events): Redis loses the centre while callers wait
/// and agents talk, reconcile restores it, every caller still on the line is answered by an
/// agent, the calls that were connected are connected again (their agents offered nothing
/// else meanwhile), and the archive holds every call that ended, with its outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_flush_under_load_every_caller_still_on_the_line_is_answered() {
    use callq::config::CentreConfig;
    use callq::lab::stack::{Stack, StackOptions};
    use callq::sim::agents::{AgentBehaviour, AgentProfile};
    use callq::sim::clock::Clock;
    use callq::sim::twiml_exec::{CallerScript, Outcome};
    use callq::sim::SimConfig;

    let mut centre = CentreConfig::demo();
    centre.centre = format!("rc{}-{}", std::process::id(), rand::random::<u32>());
    let sim = SimConfig {
        account_sid: String::new(),
        auth_token: String::new(),
        public_url: String::new(),
        callq_url: String::new(),
        admin_token: String::new(),
        clock: Clock::new(10.0),
        agents: AgentBehaviour {
            answer_delay_s: 0.2,
            heartbeat_every: Duration::from_millis(500),
            back_after_pause_s: 0.5,
            ..AgentBehaviour::default()
        },
        wrapup: Duration::from_secs(1),
        no_answer_delay: Duration::from_secs(1),
        media: Default::default(),
        customer_answer_s: 0.2,
        faults: Default::default(),
        seed: 5,
        legacy: None,
    };
    let stack = Stack::start(StackOptions {
        redis_url: Some(support::redis_url()),
        centre,
        queue_overrides: Vec::new(),
        workers: 1,
        heartbeat_ttl: Duration::from_secs(5),
        sim,
    })
    .await
    .expect("stack starts");
    let db = TestDb::create().await;
    let archiver = start_archive(&stack.store, &db);
    let agents = ["alice", "bob"];
    for id in agents {
        stack
            .sim
            .agents
            .add(&AgentProfile {
                id: id.to_string(),
                queues: vec![("sales".to_string(), 1)],
                capacity: 1,
                skills: Default::default(),
            })
            .await
            .expect("agent created");
    }
    tokio::spawn(stack.sim.agents.clone().run(stack.sim_shutdown()));
    let available = |store: Store| async move {
        store
            .agents()
            .await
            .map(|a| {
                a.iter()
                    .filter(|a| a.status == AgentStatus::Available)
                    .count()
            })
            .unwrap_or(0)
    };
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    while available(stack.store.clone()).await < agents.len() {
        assert!(tokio::time::Instant::now() < end, "agents log in");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // a first call each, so the archive knows both agents and their queue
    let quick = CallerScript {
        patience: Some(Duration::from_secs(120)),
        talk: Duration::from_millis(300),
        ..CallerScript::default()
    };
    let mut sids = Vec::new();
    for i in 0..2 {
        sids.push(stack.sim.env.place_inbound(
            &format!("+1202555010{i}"),
            SALES_NUMBER,
            quick.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        stack.sim.drain(Duration::from_secs(60)).await,
        "first calls end"
    );
    // then more callers than agents: some talk (long enough to outlast the reconcile), the
    // others wait in line
    let long = CallerScript {
        patience: Some(Duration::from_secs(600)),
        talk: Duration::from_secs(5),
        ..CallerScript::default()
    };
    for i in 0..6 {
        sids.push(stack.sim.env.place_inbound(
            &format!("+1202555020{i}"),
            SALES_NUMBER,
            long.clone(),
        ));
    }
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = stack
            .store
            .queue_stats("sales")
            .await
            .map(|s| s.waiting)
            .unwrap_or(0);
        if waiting >= 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "callers wait in line");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pg = pg_connect(&db.url()).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let offered: i64 = pg
            .query_one("SELECT count(DISTINCT agent) FROM offers", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        if offered == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "archived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // both agents talking, callers waiting
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let busy = stack
            .store
            .agents()
            .await
            .map(|a| a.iter().filter(|a| a.status == AgentStatus::Busy).count())
            .unwrap_or(0);
        if busy == agents.len() {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "both agents talk");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Redis loses the centre (at an instant the archive has every event)
    flush_centre_once_archived(&stack.store).await;
    let env: std::collections::HashMap<_, _> = stack.worker_env().into_iter().collect();
    let mut cfg = RestConfig::with_auth_token(
        env["TWILIO_ACCOUNT_SID"].clone(),
        env["TWILIO_AUTH_TOKEN"].clone(),
    );
    cfg.api_base = stack.rest_url.clone();
    cfg.request_timeout = Duration::from_secs(30);
    let rest = TwilioRest::new(cfg).expect("client");
    let r = run(&stack.store, &stack.centre, &rest, &pg, true).await;
    assert_eq!(r.agents_restore.len(), 2, "both agents restored");
    let mut talking: Vec<&str> = r
        .calls_connected_restore
        .iter()
        .map(|c| c.agent.as_str())
        .collect();
    talking.sort_unstable();
    assert_eq!(talking, agents, "both conversations connected again: {r:?}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    // the agents come back (their tokens still good), and every caller still on the line is answered
    if !stack.sim.drain(Duration::from_secs(120)).await {
        let agents = stack.store.agents().await;
        let mut calls = Vec::new();
        for sid in &sids {
            calls.push((sid.clone(), stack.store.call(sid).await));
        }
        let logs = stack.sim.stats.snapshot().logs;
        panic!(
            "every call ends: agents {agents:#?}\ncalls {calls:#?}\nlogs {logs:#?}\nreport {r:#?}"
        );
    }
    let logs = stack.sim.stats.snapshot().logs;
    for sid in &sids {
        let log = logs.iter().find(|l| &l.info.sid == sid).expect("logged");
        assert_eq!(log.outcome(), Outcome::Answered, "{log:?}");
    }
    assert_eq!(
        stack
            .sim
            .stats
            .double_bookings
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "no agent had two callers at once"
    );
    let mut restored: Vec<String> = r.callers_restore.iter().map(|c| c.sid.clone()).collect();
    restored.extend(r.calls_connected_restore.iter().map(|c| c.sid.clone()));
    assert_invariants(&stack.store, &restored).await;

    // the archive holds every call that ended, each completed by the agent who answered it
    let end = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let rows = pg
            .query(
                "SELECT sid, coalesce(outcome, ''), coalesce(agent, '') FROM calls WHERE centre = $1",
                &[&stack.centre.centre],
            )
            .await
            .expect("calls");
        let done: std::collections::HashMap<String, (String, String)> = rows
            .iter()
            .map(|row| (row.get(0), (row.get(1), row.get(2))))
            .collect();
        let missing: Vec<&String> = sids
            .iter()
            .filter(|sid| {
                done.get(*sid)
                    .is_none_or(|(outcome, agent)| outcome != "completed" || agent.is_empty())
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "calls that ended but are not archived as completed: {missing:?} in {done:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    archiver.stop().await;
    stack.stop().await;
}
