//! The durable call archive against a real PostgreSQL (127.0.0.1:5432, user postgres, or
//! `CALLQ_TEST_PG`): calls driven through the store make real events, `callq archive`'s loop
//! copies them, and the tests read the rows back. Each test makes its own database and drops
//! it at the end. Without PostgreSQL the tests fail and say so; they never skip.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callq::archive::outbound::{signature, OutboundOptions};
use callq::archive::report::{render, report, ReportOptions};
use callq::archive::{ArchiveOptions, Health, StreamReader};
use callq::shutdown::{channel, ShutdownTrigger};
use callq::store::*;
use redis::AsyncCommands;
use support::postgres::*;
use support::*;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

/// Settings for a test: short block and claim times.
fn opts(db: &TestDb, consumer: &str) -> ArchiveOptions {
    let mut o = ArchiveOptions::new(&db.url());
    o.consumer = consumer.to_string();
    o.block = Duration::from_millis(200);
    o.claim_idle = Duration::from_millis(300);
    o.max_backoff = Duration::from_millis(500);
    o.batch = 7; // several batches even for a short scenario
    o
}

/// `callq archive`'s loop, running until stopped.
struct Running {
    trigger: ShutdownTrigger,
    task: JoinHandle<callq::archive::Result<()>>,
    health: Health,
}

fn start(store: &Store, o: ArchiveOptions) -> Running {
    let (trigger, shutdown) = channel();
    let health = Health::default();
    let (store, h) = (store.clone(), health.clone());
    let task = tokio::spawn(async move {
        let centre = store.centre().to_string();
        callq::archive::run(&store, &centre, &o, h, shutdown).await
    });
    Running {
        trigger,
        task,
        health,
    }
}

impl Running {
    async fn stop(self) {
        self.trigger.trigger();
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("the archive did not stop cleanly: {other:?}"),
        }
    }
}

async fn xlen(store: &Store) -> i64 {
    let mut c = store.conn().await.expect("conn");
    c.xlen(store.key("events")).await.expect("XLEN")
}

/// Entries of `group` read and not acknowledged (-1: no such group yet).
async fn pending(store: &Store, group: &str) -> i64 {
    let mut c = store.conn().await.expect("conn");
    let reply: redis::Value = match redis::cmd("XPENDING")
        .arg(store.key("events"))
        .arg(group)
        .query_async(&mut c)
        .await
    {
        Ok(r) => r,
        Err(e) if e.to_string().contains("NOGROUP") => return -1,
        Err(e) => panic!("XPENDING: {e}"),
    };
    match reply {
        redis::Value::Array(v) => v
            .first()
            .and_then(|n| redis::from_redis_value_ref::<i64>(n).ok())
            .unwrap_or(0),
        _ => 0,
    }
}

async fn count(pg: &Client, sql: &str) -> i64 {
    pg.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Wait until every event in the stream is in `events` and the group holds none pending.
async fn until_archived(store: &Store, pg: &Client, group: &str) {
    let end = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (n, rows, p) = (
            xlen(store).await,
            // no table until the archive has migrated the schema
            match pg.query_one("SELECT count(*) FROM events", &[]).await {
                Ok(r) => r.get(0),
                Err(_) => -1,
            },
            pending(store, group).await,
        );
        if n > 0 && rows == n && p == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "not archived: {n} events in the stream, {rows} rows, {p} pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `sid` enters `q` having already waited `waited` (on Redis' clock).
async fn enter_after(store: &Store, sid: &str, q: &str, waited: Duration) {
    store
        .enqueue(&NewCall {
            arrival: Arrival::Holding { waited },
            ..holding(sid, q, "+15550001111")
        })
        .await
        .expect("enqueue");
}

async fn answer(store: &Store, o: &Offer) {
    let r = store
        .offer_result(&o.offer_ref(), OfferOutcome::Answered, "CAleg")
        .await
        .expect("answered");
    assert_eq!(r, OfferResult::Connected);
}

async fn ring_out(store: &Store, o: &Offer) {
    store
        .offer_result(&o.offer_ref(), OfferOutcome::NoAnswer, "")
        .await
        .expect("no answer");
}

/// A centre with queue `sales` and agent `a1`, and two calls: c1 answered on the first offer
/// and completed, c2 rung out once and then abandoned by its caller.
async fn two_calls() -> Store {
    let store = staffed(sales()).await;
    let o = enter_offered(&store, "c1", "sales").await;
    answer(&store, &o).await;
    complete(&store, "c1").await.expect("completed");
    let o = enter_offered(&store, "c2", "sales").await;
    ring_out(&store, &o).await;
    store.abandon("c2", "hangup").await.expect("abandoned");
    store
}

type CallRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i32,
    Option<i32>,
    Option<String>,
);

async fn calls(pg: &Client) -> BTreeMap<String, CallRow> {
    let centre: Option<String> = pg
        .query_opt("SELECT min(centre) FROM calls", &[])
        .await
        .expect("centre")
        .and_then(|r| r.get(0));
    calls_of(pg, &centre.unwrap_or_default()).await
}

async fn calls_of(pg: &Client, centre: &str) -> BTreeMap<String, CallRow> {
    pg.query(
        "SELECT sid, queue, outcome, agent, attempts, answer_attempt, from_number FROM calls
         WHERE centre = $1",
        &[&centre],
    )
    .await
    .expect("calls")
    .into_iter()
    .map(|r| {
        let sid: String = r.get(0);
        (
            sid.clone(),
            (
                sid,
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            ),
        )
    })
    .collect()
}

/// Every table's rows as text, for comparing two runs.
async fn dump(pg: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for t in ["events", "calls", "offers", "agent_changes"] {
        // the rows as text (the archive's own write time left out)
        let sql = if t == "events" {
            "SELECT (centre, id, type, at, call_sid, agent, queue, fields)::text FROM events"
                .to_string()
        } else {
            format!("SELECT x::text FROM {t} x")
        };
        for r in pg.query(&sql, &[]).await.expect("dump") {
            let row: String = r.get(0);
            out.push(format!("{t}: {row}"));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn every_event_and_the_calls_offers_and_agent_changes_they_make() {
    let db = TestDb::create().await;
    let store = two_calls().await;
    let run = start(&store, opts(&db, "one"));
    let pg = db.client().await;
    until_archived(&store, &pg, "archive").await;
    assert!(run.health.ok(), "ready once caught up");
    run.stop().await;

    let calls = calls(&pg).await;
    let c1 = &calls["c1"];
    assert_eq!(c1.1.as_deref(), Some("sales"));
    assert_eq!(c1.2.as_deref(), Some("completed"));
    assert_eq!(c1.3.as_deref(), Some("a1"));
    assert_eq!((c1.4, c1.5), (1, Some(1)));
    assert_eq!(
        c1.6.as_deref(),
        Some("+15550001111"),
        "the full number, from Redis"
    );
    let c2 = &calls["c2"];
    assert_eq!(c2.2.as_deref(), Some("abandoned"));
    assert_eq!((c2.4, c2.5), (1, None));

    let times = pg
        .query_one(
            "SELECT entered_at <= offered_at AND offered_at <= answered_at AND answered_at <= ended_at,
                    wait_s >= 0, talk_s >= 0
             FROM calls WHERE sid = 'c1'",
            &[],
        )
        .await
        .expect("c1 times");
    assert_eq!(
        (
            times.get::<_, bool>(0),
            times.get::<_, bool>(1),
            times.get::<_, bool>(2)
        ),
        (true, true, true)
    );
    let offers: Vec<(String, i32, String, Option<String>)> = pg
        .query(
            "SELECT call_sid, attempt, agent, result FROM offers ORDER BY call_sid, attempt",
            &[],
        )
        .await
        .expect("offers")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        offers,
        vec![
            ("c1".into(), 1, "a1".into(), Some("answered".into())),
            ("c2".into(), 1, "a1".into(), Some("no-answer".into())),
        ]
    );
    let statuses: Vec<String> = pg
        .query(
            "SELECT status FROM agent_changes WHERE agent = 'a1' AND kind = 'status' ORDER BY at, event_id",
            &[],
        )
        .await
        .expect("agent changes")
        .iter()
        .map(|r| r.get(0))
        .collect();
    // the settled statuses (reserved and busy are not events: the offers tell those)
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("offline"),
        "{statuses:?}"
    );
    assert!(
        statuses[1..].iter().all(|s| s == "available"),
        "{statuses:?}"
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM agent_changes WHERE kind = 'presence' AND status = 'registered'"
        )
        .await,
        1
    );
    // the raw events keep every field
    let fields: serde_json::Value = pg
        .query_one(
            "SELECT fields FROM events WHERE type = 'offer' AND call_sid = 'c1'",
            &[],
        )
        .await
        .expect("offer event")
        .get(0);
    assert_eq!(fields["agent"], "a1");
    assert_eq!(fields["attempt"], "1");
}

#[tokio::test]
async fn the_same_entries_delivered_twice_leave_the_same_rows() {
    let db = TestDb::create().await;
    let store = two_calls().await;
    let pg = db.client().await;
    let run = start(&store, opts(&db, "first"));
    until_archived(&store, &pg, "archive").await;
    run.stop().await;
    let before = dump(&pg).await;
    assert!(before.len() > 10, "{before:?}");

    // the group forgets what it acknowledged: every entry is delivered again
    {
        let mut c = store.conn().await.expect("conn");
        let _: i64 = c
            .xgroup_destroy(store.key("events"), "archive")
            .await
            .expect("XGROUP DESTROY");
    }
    let run = start(&store, opts(&db, "second"));
    until_archived(&store, &pg, "archive").await;
    run.stop().await;
    assert_eq!(dump(&pg).await, before);
}

#[tokio::test]
async fn entries_read_and_never_acknowledged_are_archived_after_a_restart() {
    let db = TestDb::create().await;
    let store = two_calls().await;
    let n = xlen(&store).await;
    let mut o = opts(&db, "crashed");
    o.batch = 5;

    // a consumer reads a batch and dies before writing it (nothing acknowledged) ...
    let mut dead = StreamReader::new(store.clone(), "archive", "crashed", &o);
    let taken = dead.next_batch(5).await.expect("read");
    assert_eq!(taken.len(), 5);
    // ... and another its batch, which it wrote but did not acknowledge
    let mut other = StreamReader::new(store.clone(), "archive", "other-dead", &o);
    let written = other.next_batch(5).await.expect("read");
    let centre = store.centre().to_string();
    callq::archive::migrate(&db.url()).await.expect("migrate");
    let mut w = callq::archive::Writer::connect(&db.url(), &centre)
        .await
        .expect("connect");
    assert_eq!(w.write(&written).await.expect("write"), 5);
    drop(w);
    assert_eq!(pending(&store, "archive").await, 10);

    // the same consumer restarts (its pending entries first) and a new one takes over the
    // other's after claim_idle
    let run = start(&store, o);
    let pg = db.client().await;
    until_archived(&store, &pg, "archive").await;
    run.stop().await;
    assert_eq!(count(&pg, "SELECT count(*) FROM events").await, n);
    let ids: Vec<String> = pg
        .query("SELECT id FROM events", &[])
        .await
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for e in taken.iter().chain(&written) {
        assert!(ids.contains(&e.id), "{} archived", e.id);
    }
    assert_eq!(calls(&pg).await["c1"].2.as_deref(), Some("completed"));
}

#[tokio::test]
async fn a_postgresql_outage_delays_the_archive_and_loses_nothing() {
    let db = TestDb::create().await;
    let store = staffed(sales()).await;
    let o = enter_offered(&store, "c1", "sales").await;
    answer(&store, &o).await;
    let run = start(&store, opts(&db, "one"));
    let pg = db.client().await;
    until_archived(&store, &pg, "archive").await;
    drop(pg);

    db.go_down().await;
    // idle, the archive still notices (its check every 10 s): not ready
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    while run.health.ok() {
        assert!(
            tokio::time::Instant::now() < end,
            "still ready with PostgreSQL down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    complete(&store, "c1").await.expect("completed");
    let o = enter_offered(&store, "c2", "sales").await;
    ring_out(&store, &o).await;
    store.abandon("c2", "hangup").await.expect("abandoned");
    // the archive reads the new entries, cannot write them, and holds them unacknowledged
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while pending(&store, "archive").await == 0 {
        assert!(
            tokio::time::Instant::now() < end,
            "the archive never noticed the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        pending(&store, "archive").await > 0,
        "nothing acknowledged unwritten"
    );

    db.come_back().await;
    let pg = db.client().await;
    until_archived(&store, &pg, "archive").await;
    assert!(run.health.ok(), "ready again");
    run.stop().await;
    let calls = calls(&pg).await;
    assert_eq!(calls["c1"].2.as_deref(), Some("completed"));
    assert_eq!(calls["c2"].2.as_deref(), Some("abandoned"));
}

#[tokio::test]
async fn the_report_on_a_scripted_day() {
    let db = TestDb::create().await;
    let store = staffed(sales()).await;
    // c1 and c2 answered on the first offer after 10 s and 20 s in line; c3 rung out once,
    // answered on the second offer after 30 s; c4 hangs up unoffered after 40 s
    for (sid, waited) in [("c1", 10), ("c2", 20)] {
        enter_after(&store, sid, "sales", Duration::from_secs(waited)).await;
        let o = claim(&store).await.expect("offer");
        answer(&store, &o).await;
        if sid == "c1" {
            tokio::time::sleep(Duration::from_secs(1)).await; // a second of talk
        }
        complete(&store, sid).await.expect("completed");
    }
    enter_after(&store, "c3", "sales", Duration::from_secs(30)).await;
    let o = claim(&store).await.expect("offer");
    ring_out(&store, &o).await;
    let o = claim(&store).await.expect("offered again");
    assert_eq!((o.call_sid.as_str(), o.attempt), ("c3", 2));
    answer(&store, &o).await;
    complete(&store, "c3").await.expect("completed");
    store
        .set_agent_status("a1", RequestedStatus::Paused, "lunch")
        .await
        .expect("paused");
    enter_after(&store, "c4", "sales", Duration::from_secs(40)).await;
    store.abandon("c4", "hangup").await.expect("abandoned");

    let run = start(&store, opts(&db, "one"));
    let pg = db.client().await;
    until_archived(&store, &pg, "archive").await;
    run.stop().await;

    let day: String = pg
        .query_one(
            "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            &[],
        )
        .await
        .expect("today")
        .get(0);
    let ropts = ReportOptions {
        centre: store.centre().to_string(),
        from: day.clone(),
        to: day.clone(),
        queue: None,
    };
    let r = report(&pg, &ropts).await.expect("report");
    assert_eq!(r.queues.len(), 1, "{r:?}");
    let q = &r.queues[0];
    assert_eq!((q.day.as_str(), q.queue.as_str()), (day.as_str(), "sales"));
    assert_eq!((q.calls, q.answered, q.abandoned, q.offered), (4, 3, 1, 3));
    assert_eq!(q.connected_share, Some(0.75));
    assert_eq!(q.abandon_rate, Some(0.25));
    let near = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < 1.0);
    assert!(
        near(q.avg_wait_s, 20.0),
        "mean of 10, 20, 30: {:?}",
        q.avg_wait_s
    );
    // percentile_cont(0.9) of 10, 20, 30: 20 + 0.8 * 10
    assert!(near(q.p90_wait_s, 28.0), "{:?}", q.p90_wait_s);
    assert_eq!(q.first_offer_success, Some(2.0 / 3.0));

    assert_eq!(r.agents.len(), 1, "{r:?}");
    let a = &r.agents[0];
    assert!(
        (a.talk_s - 1.0).abs() < 0.9,
        "about a second of talk: {a:?}"
    );
    assert!(a.logged_in_s >= a.talk_s, "{a:?}");
    assert!(a.utilisation.is_some_and(|u| u > 0.0 && u <= 1.0), "{a:?}");

    let text = render(&r);
    assert!(
        text.contains("75.0%") && text.contains("25.0%") && text.contains("66.7%"),
        "{text}"
    );

    let other = report(
        &pg,
        &ReportOptions {
            queue: Some("support".into()),
            ..ropts.clone()
        },
    )
    .await
    .expect("report");
    assert!(other.queues.is_empty());
    let bad = report(
        &pg,
        &ReportOptions {
            from: "30/11/2026".into(),
            ..ropts
        },
    )
    .await;
    assert!(bad.is_err());
}

/// What the receiver was sent: (event id header, signature header, body).
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

#[tokio::test]
async fn outbound_events_are_signed_and_retried_until_delivered() {
    use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
    let store = two_calls().await;
    let n = xlen(&store).await as usize;
    let got: Received = Arc::default();
    // the receiver fails its first three requests, then takes everything
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State(got): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    let mut g = got.lock().expect("lock");
                    g.push((h("x-callq-event-id"), h("x-callq-signature"), body.to_vec()));
                    if g.len() <= 3 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::NO_CONTENT
                    }
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let secret = "a-secret-of-32-bytes-for-the-test";
    let out = OutboundOptions {
        urls: vec![format!("http://{addr}/hook")],
        secret: secret.into(),
        timeout: Duration::from_secs(10),
    };
    let mut o = ArchiveOptions::new("");
    o.consumer = "relay".into();
    o.block = Duration::from_millis(200);
    o.max_backoff = Duration::from_millis(400);
    let (trigger, shutdown) = channel();
    let (s2, centre) = (store.clone(), store.centre().to_string());
    let task = tokio::spawn(async move {
        callq::archive::outbound::run(&s2, &centre, &out, &o, shutdown).await
    });

    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ids: std::collections::HashSet<String> = got
            .lock()
            .expect("lock")
            .iter()
            .skip(3)
            .map(|r| r.0.clone())
            .collect();
        if ids.len() == n {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{} of {n} delivered",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    trigger.trigger();
    let stopped = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the relay stops within 30 s of shutdown")
        .expect("the relay task");
    assert!(stopped.is_ok(), "the relay ends cleanly: {stopped:?}");

    let got = got.lock().expect("lock").clone();
    // the first event was tried four times: three failures, then delivered
    let first = &got[0].0;
    assert_eq!(got.iter().filter(|r| &r.0 == first).count(), 4, "{got:?}");
    let mut types: HashMap<String, usize> = HashMap::new();
    for (id, sig, body) in &got {
        assert_eq!(sig, &signature(secret.as_bytes(), body), "signed");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        let v: serde_json::Value = serde_json::from_slice(body).expect("JSON body");
        assert_eq!(v["id"].as_str(), Some(id.as_str()));
        assert_eq!(
            v["centre"].as_str(),
            Some(store.centre().to_string().as_str())
        );
        *types
            .entry(v["type"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert!(
        types.contains_key("offer") && types.contains_key("completed"),
        "{types:?}"
    );
    assert_eq!(
        pending(
            &store,
            &callq::archive::outbound::group_for(&format!("http://{addr}/hook"))
        )
        .await,
        0
    );
    // a known HMAC-SHA256 (RFC 4231, test case 2)
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[tokio::test]
async fn the_archive_reads_a_centre_on_a_redis_cluster() {
    let db = TestDb::create().await;
    let store = support::cluster::shared().fresh_store();
    store.configure_queue(&sales()).await.expect("queue");
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    let o = enter_offered(&store, "c1", "sales").await;
    answer(&store, &o).await;
    complete(&store, "c1").await.expect("completed");
    let run = start(&store, opts(&db, "one"));
    let pg = db.client().await;
    until_archived(&store, &pg, "archive").await;
    run.stop().await;
    let calls = calls(&pg).await;
    assert_eq!(calls["c1"].2.as_deref(), Some("completed"));
    assert_eq!(calls["c1"].6.as_deref(), Some("+15550001111"));
}

#[tokio::test]
async fn pending_entries_trimmed_from_the_stream_do_not_stop_the_archive() {
    let db = TestDb::create().await;
    let store = two_calls().await;
    let o = opts(&db, "crashed");
    // two consumers read and die; then their entries leave the stream (as the cap trims it)
    let mut same = StreamReader::new(store.clone(), "archive", "crashed", &o);
    let mut other = StreamReader::new(store.clone(), "archive", "other-dead", &o);
    let lost: Vec<String> = same
        .next_batch(3)
        .await
        .expect("read")
        .into_iter()
        .chain(other.next_batch(3).await.expect("read"))
        .map(|e| e.id)
        .collect();
    {
        let mut c = store.conn().await.expect("conn");
        let n: i64 = c.xdel(store.key("events"), &lost).await.expect("XDEL");
        assert_eq!(n, 6);
    }
    assert_eq!(pending(&store, "archive").await, 6);
    let run = start(&store, o);
    let pg = db.client().await;
    until_archived(&store, &pg, "archive").await;
    run.stop().await;
    assert_eq!(calls(&pg).await["c2"].2.as_deref(), Some("abandoned"));
}

/// The derived rows of `centre` as text (the centre and the bookkeeping of event times left out).
async fn derived(pg: &Client, centre: &str) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT (sid, queue, kind, from_number, to_number, entered_at, offered_at, answered_at,
                 ended_at, outcome, end_reason, agent, attempts, answer_attempt, wait_s, talk_s,
                 recording_sid)::text FROM calls WHERE centre = $1",
        "SELECT (call_sid, attempt, agent, queue, offered_at, result, result_at)::text
         FROM offers WHERE centre = $1",
        "SELECT (event_id, agent, kind, status, reason, at)::text FROM agent_changes WHERE centre = $1",
    ] {
        for r in pg.query(sql, &[&centre]).await.expect("derived rows") {
            out.push(r.get::<_, String>(0));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn events_written_out_of_order_derive_the_same_rows() {
    let db = TestDb::create().await;
    let store = staffed(sales()).await;
    // c1: rung out, answered on the second offer, completed; c2: transferred, abandoned,
    // back in line (reentered), answered
    let o = enter_offered(&store, "c1", "sales").await;
    ring_out(&store, &o).await;
    let o = claim(&store).await.expect("offered again");
    answer(&store, &o).await;
    complete(&store, "c1").await.expect("completed");
    store
        .configure_queue(&queue("support", Strategy::LongestIdle))
        .await
        .expect("queue");
    enqueue(&store, "c2", "sales").await;
    store.transfer("c2", "support").await.expect("transferred");
    store.abandon("c2", "call_gone").await.expect("abandoned");
    assert!(matches!(
        store.reenter("c2").await.expect("reentered"),
        Transition::Done(())
    ));

    // every entry, read once (a group of the test's own)
    let o = opts(&db, "reader");
    let mut r = StreamReader::new(store.clone(), "test", "reader", &o);
    let mut events = Vec::new();
    loop {
        let b = r.next_batch(100).await.expect("read");
        if b.is_empty() {
            break;
        }
        events.extend(b);
    }
    assert_eq!(events.len() as i64, xlen(&store).await);
    callq::archive::migrate(&db.url()).await.expect("migrate");
    let mut in_order = callq::archive::Writer::connect(&db.url(), "in-order")
        .await
        .expect("connect");
    assert_eq!(in_order.write(&events).await.expect("write"), events.len());
    // newest first, one event a transaction, as takeovers could deliver them
    let mut reversed = callq::archive::Writer::connect(&db.url(), "reversed")
        .await
        .expect("connect");
    for e in events.iter().rev() {
        reversed
            .write(std::slice::from_ref(e))
            .await
            .expect("write");
    }
    let pg = db.client().await;
    let want = derived(&pg, "in-order").await;
    assert_eq!(derived(&pg, "reversed").await, want);
    let c = calls_of(&pg, "in-order").await;
    assert_eq!(c["c1"].2.as_deref(), Some("completed"));
    assert_eq!((c["c1"].4, c["c1"].5), (2, Some(2)));
    // back in line: no outcome; in the queue it was transferred to
    assert_eq!(c["c2"].2, None);
    assert_eq!(c["c2"].1.as_deref(), Some("support"));
}

/// Stops the child process at the end of the test, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_archive_and_report_commands_end_to_end() {
    let db = TestDb::create().await;
    let store = two_calls().await;
    let centre = store.centre().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("callq.toml");
    std::fs::write(
        &config,
        callq::config::DEMO_TOML.replacen(
            "centre = \"main\"",
            &format!("centre = \"{centre}\""),
            1,
        ),
    )
    .expect("config written");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("addr").port()
    };
    let exe = env!("CARGO_BIN_EXE_callq");
    let mut archive = Child(
        std::process::Command::new(exe)
            .arg("archive")
            .env("REDIS_URL", redis_url())
            .env("CALLQ_CONFIG", &config)
            .env("DATABASE_URL", db.url())
            .env("CALLQ_ARCHIVE_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("CALLQ_OUTBOUND_URLS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("callq archive starts"),
    );
    let pg = db.client().await;
    until_archived(&store, &pg, "archive").await;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("/readyz answers");
    assert_eq!(ready.status(), 200);
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("text");
    let n = xlen(&store).await;
    assert!(
        metrics.contains(&format!("callq_archive_events_total {n}")),
        "{metrics}"
    );
    assert!(
        metrics.contains("callq_archive_lag_events{group=\"archive\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callq_archive_pending_events{group=\"archive\"} 0"),
        "{metrics}"
    );

    // SIGTERM: a clean stop
    let pid = archive.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let end = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = archive.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            std::time::Instant::now() < end,
            "callq archive did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");

    let day: String = pg
        .query_one(
            "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            &[],
        )
        .await
        .expect("today")
        .get(0);
    let out = std::process::Command::new(exe)
        .args(["report", "--json", "--from", &day, "--to", &day])
        .env("DATABASE_URL", db.url())
        .env("CALLQ_CONFIG", &config)
        .env_remove("CALLQ_CENTRE")
        .output()
        .expect("callq report runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(r["centre"].as_str(), Some(centre.as_str()));
    assert_eq!(r["queues"][0]["queue"], "sales");
    assert_eq!(r["queues"][0]["calls"], 2);
    assert_eq!(r["queues"][0]["answered"], 1);
    assert_eq!(r["queues"][0]["abandoned"], 1);
}

/// The machine's PostgreSQL serves TLS with Debian's self-signed "snakeoil" certificate, made
/// out to `localhost`: the roots a TLS test trusts.
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

#[tokio::test]
async fn with_sslmode_require_the_archive_speaks_tls_and_checks_the_certificate() {
    use callq::archive::writer::connect_with;
    let db = TestDb::create().await;
    let admin = db.client().await;
    let ssl: String = admin
        .query_one("SHOW ssl", &[])
        .await
        .expect("SHOW ssl")
        .get(0);
    assert_eq!(
        ssl, "on",
        "this test needs PostgreSQL with ssl = on (Debian's default, with {SNAKEOIL})"
    );
    let tls_url = |host: &str| {
        format!(
            "{}?sslmode=require",
            db.url().replacen("127.0.0.1", host, 1)
        )
    };
    let over_tls = |client: tokio_postgres::Client| async move {
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_ssl");
        row.get::<_, bool>(0)
    };

    // sslmode=require, the server's certificate trusted and made out to the host: TLS
    let (client, _conn) = connect_with(&tls_url("localhost"), Some(Path::new(SNAKEOIL)))
        .await
        .expect("a TLS connection");
    assert!(over_tls(client).await, "the session is encrypted");
    // no sslmode (libpq's default, prefer): in the clear, as before
    let (client, _conn) = connect_with(&db.url(), Some(Path::new(SNAKEOIL)))
        .await
        .expect("a plain connection");
    assert!(!over_tls(client).await, "the session is in the clear");
    // refused: a certificate no trusted root signed, or made out to another name (the
    // reason is in the error's chain, as `callq` prints it)
    let chain = |e: callq::archive::ArchiveError| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    };
    let public_roots = Path::new("/etc/ssl/certs/ca-certificates.crt");
    let e = connect_with(&tls_url("localhost"), Some(public_roots))
        .await
        .expect_err("the public roots do not trust a self-signed certificate");
    let e = chain(e);
    assert!(e.contains("UnknownIssuer"), "{e}");
    let e = connect_with(&tls_url("127.0.0.1"), Some(Path::new(SNAKEOIL)))
        .await
        .expect_err("the certificate names localhost, not 127.0.0.1");
    let e = chain(e);
    assert!(e.contains("not valid for name"), "{e}");

    // the commands read the roots from PGSSLROOTCERT: migrate, then report, over TLS
    let exe = env!("CARGO_BIN_EXE_callq");
    let run = |args: &[&str], roots: &str| {
        std::process::Command::new(exe)
            .args(args)
            .env("REDIS_URL", redis_url())
            .env("DATABASE_URL", tls_url("localhost"))
            .env("PGSSLROOTCERT", roots)
            .env("CALLQ_CENTRE", "tls")
            .env_remove("CALLQ_CONFIG")
            .output()
            .expect("callq runs")
    };
    let out = run(&["archive", "--migrate-only"], SNAKEOIL);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &["report", "--from", "2026-01-01", "--to", "2026-01-01"],
        SNAKEOIL,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &["report", "--from", "2026-01-01", "--to", "2026-01-01"],
        "/nonexistent.pem",
    );
    assert!(!out.status.success(), "no roots, no connection");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent.pem"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_ring_all_offer_is_one_offer_row_naming_the_agent_who_answered() {
    let db = TestDb::create().await;
    let store = store_with(&[queue("desk", Strategy::RingAll)]).await;
    for id in ["d1", "d2", "d3"] {
        online_agent(&store, &agent(id, &[("desk", 1)])).await;
    }
    let o = enter_offered(&store, "c1", "desk").await;
    assert_eq!(o.also.len(), 2);
    let r = store
        .leg_result(&o.offer_ref_for("d3"), OfferOutcome::Answered, "CAleg")
        .await
        .expect("answered");
    assert_eq!(r, OfferResult::Connected);
    complete(&store, "c1").await.expect("completed");
    let run = start(&store, opts(&db, "one"));
    let pg = db.client().await;
    until_archived(&store, &pg, "archive").await;
    run.stop().await;
    let offers: Vec<(String, i32, String, Option<String>)> = pg
        .query(
            "SELECT call_sid, attempt, agent, result FROM offers ORDER BY call_sid, attempt",
            &[],
        )
        .await
        .expect("offers")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        offers,
        vec![("c1".into(), 1, "d3".into(), Some("answered".into()))]
    );
    assert_eq!(calls(&pg).await["c1"].3.as_deref(), Some("d3"));
    // the offer event lists every agent it rang
    let fields: serde_json::Value = pg
        .query_one(
            "SELECT fields FROM events WHERE type = 'offer' AND call_sid = 'c1'",
            &[],
        )
        .await
        .expect("offer event")
        .get(0);
    let mut rang: Vec<&str> = fields["agents"]
        .as_str()
        .expect("agents")
        .split(',')
        .collect();
    rang.sort();
    assert_eq!(rang, ["d1", "d2", "d3"]);
}
