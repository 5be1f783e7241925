//! The worker against a real Redis (see `support`) and the lab's REST recorder standing in for
//! Twilio's API, answering as Twilio does (see `support::worker`): what reaches Twilio, and what each of
//! Twilio's answers does to routing.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use callq::store::*;
use callq::twilio::rest::CallStatus;
use support::worker::*;
use support::*;

#[tokio::test]
async fn a_recording_queue_s_offer_asks_twilio_to_record_the_agent_leg() {
    logs();
    let store = store_with(&[QueueSettings {
        record: RecordMode::FromAnswerDual,
        ..sales()
    }])
    .await;
    let twilio = recorder_ok().await;
    let worker = worker_and_a_call(&store, &twilio, fast_settings()).await;
    let reqs = twilio.wait_for(1, SECS(5)).await;
    let twiml = reqs[0].param("Twiml").unwrap_or_default().to_string();
    let doc = callq::twilio::twiml::parse(&twiml).expect("valid TwiML");
    let Some(callq::twilio::twiml::Verb::Dial(dial)) = doc.verbs.first() else {
        panic!("a <Dial>: {twiml}");
    };
    assert_eq!(dial.record.as_deref(), Some("record-from-answer-dual"));
    assert_eq!(
        dial.recording_status_callback.as_deref(),
        Some("https://callq.example.com/twilio/recording?call=CA0001")
    );
    assert_eq!(
        dial.recording_status_callback_method.as_deref(),
        Some("POST")
    );
    assert_eq!(
        dial.recording_status_callback_event.as_deref(),
        Some("completed")
    );
    worker.stop(SECS(5)).await;

    // a queue that does not record: its offer's <Dial> has no recording attribute
    let store = store_with(&[sales()]).await;
    let twilio = recorder_ok().await;
    let worker = worker_and_a_call(&store, &twilio, fast_settings()).await;
    let reqs = twilio.wait_for(1, SECS(5)).await;
    let twiml = reqs[0].param("Twiml").unwrap_or_default();
    assert!(!twiml.contains("record"), "{twiml}");
    worker.stop(SECS(5)).await;
}

#[tokio::test]
async fn a_worker_looks_again_when_a_waiting_call_s_widening_step_falls_due() {
    logs();
    // only a tier-2 agent, whom the call reaches after 1.5 s of waiting; nothing else
    // happens then (no wake marker), and the worker's safety-net wait is ten minutes
    let store = store_with(&[QueueSettings {
        widen: vec![WidenStep {
            after: Duration::from_millis(1500),
            tiers: Some(2),
            ..WidenStep::default()
        }],
        ..sales()
    }])
    .await;
    let twilio = recorder_ok().await;
    let mut settings = fast_settings();
    settings.wake_timeout = SECS(600);
    online_agent(&store, &agent("a2", &[("sales", 2)])).await;
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    let t = Instant::now();
    enqueue(&store, "CA0001", "sales").await;
    let reqs = twilio.wait_for(1, SECS(40)).await;
    assert!(
        reqs[0].param("Twiml").is_some(),
        "the worker redirected the caller to the tier-2 agent"
    );
    let rung_after = t.elapsed();
    assert!(
        rung_after >= Duration::from_millis(1500),
        "not before the step: {rung_after:?}"
    );
    assert_eq!(call(&store, "CA0001").await.agent.as_deref(), Some("a2"));
    worker.stop(SECS(5)).await;
}

#[tokio::test]
async fn one_worker_process_serves_several_centres() {
    logs();
    let twilio = recorder_ok().await;
    let (east, west) = (store_with(&[sales()]).await, store_with(&[sales()]).await);
    for (store, sid) in [(&east, "CAeast"), (&west, "CAwest")] {
        online_agent(store, &agent("a1", &[("sales", 1)])).await;
        enqueue(store, sid, "sales").await;
    }
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let listen = probe.local_addr().expect("its address");
    drop(probe);
    let config = callq::worker::WorkerConfig {
        redis_url: redis_url(),
        redis_pool: 4,
        twilio: callq::worker::TwilioAccount {
            api_base: twilio.base.clone(),
            account_sid: ACCOUNT.into(),
            auth_token: TOKEN.into(),
            api_key: None,
            api_secret: None,
        },
        settings: fast_settings(),
        listen: Some(listen),
    };
    let centres = vec![east.centre().to_string(), west.centre().to_string()];
    let (trigger, shutdown) = callq::shutdown::channel();
    let run =
        tokio::spawn(async move { callq::worker::run_centres(&config, &centres, shutdown).await });
    // each centre's caller is redirected to its own agent
    let reqs = twilio.wait_for(2, SECS(20)).await;
    let mut rung: Vec<String> = reqs.iter().filter_map(|r| r.call_sid.clone()).collect();
    rung.sort();
    assert_eq!(rung, ["CAeast", "CAwest"], "{reqs:#?}");
    assert_eq!(call(&east, "CAeast").await.state, CallState::Offered);
    assert_eq!(call(&west, "CAwest").await.state, CallState::Offered);
    // one /readyz for both
    let ready = eventually(SECS(10), "the worker's /readyz answers", || async {
        reqwest::get(format!("http://{listen}/readyz")).await.ok()
    })
    .await;
    assert_eq!(ready.status(), 200);
    trigger.trigger();
    let ended = tokio::time::timeout(SECS(10), run)
        .await
        .expect("stops within 10 s")
        .expect("task");
    assert!(ended.is_ok(), "{ended:?}");
}

/// The `/metrics` sample `name` (no labels) of a worker's probe listener over `stores`.
async fn worker_metric(stores: Vec<Store>, name: &str) -> Option<f64> {
    use tower::ServiceExt;
    let app = callq::worker::probes::router(stores, Vec::new());
    let req = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .expect("a request");
    let res = tokio::time::timeout(SECS(30), app.oneshot(req))
        .await
        .expect("/metrics within 30 s")
        .expect("infallible");
    assert_eq!(res.status(), 200);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("a body");
    sample(&String::from_utf8_lossy(&body), name, &[])
}

/// A worker serving several centres exports no queue gauges (they carry no centre), yet says
/// whether Redis answers, so the Redis-down alert watches it too: `callq_redis_up` is 1 while
/// every centre's Redis answers and 0 while one does not.
#[tokio::test]
async fn a_worker_of_several_centres_reports_whether_redis_answers() {
    logs();
    let (east, west) = (fresh_store(), fresh_store());
    // nothing listens on port 1: connections are refused (the store connects lazily)
    let gone = Store::connect("redis://127.0.0.1:1/", "gone", 1).expect("a store");
    assert_eq!(
        worker_metric(vec![east.clone(), west], "callq_redis_up").await,
        Some(1.0)
    );
    assert_eq!(
        worker_metric(vec![east, gone], "callq_redis_up").await,
        Some(0.0)
    );
}

#[tokio::test]
async fn an_offer_redirects_the_caller_to_the_agent_and_extends_the_lease() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder_ok().await;
    let settings = fast_settings();
    let ring_grace = settings.ring_grace;
    let worker = worker_and_a_call(&store, &twilio, settings).await;

    let reqs = twilio.wait_for(1, SECS(5)).await;
    let r = &reqs[0];
    assert_eq!(
        r.path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/CA0001.json")
    );
    assert_eq!(r.authorization.as_deref(), Some(basic_auth().as_str()));
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.form.len(), 1, "only Twiml is sent: {:?}", r.form);
    // the caller's wait at the claim, for the agent's screen: a few milliseconds here
    let twiml = r.param("Twiml").unwrap_or_default();
    let waited = regex::Regex::new(r#"name="callq_waited_ms" value="(\d+)""#)
        .expect("regex")
        .captures(twiml)
        .and_then(|c| c[1].parse::<u64>().ok())
        .expect("the wait is a parameter");
    assert!(waited < 60_000, "{waited}");
    assert_eq!(
        twiml,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial \
             action=\"https://callq.example.com/twilio/dial-result?call=CA0001&amp;agent=a1&amp;\
             attempt=1\" method=\"POST\" timeout=\"20\" answerOnBridge=\"true\"><Client \
             statusCallback=\"https://callq.example.com/twilio/agent-leg?call=CA0001&amp;\
             agent=a1&amp;attempt=1\" \
             statusCallbackEvent=\"answered completed\" statusCallbackMethod=\"POST\">\
             <Identity>client-a1</Identity><Parameter name=\"callq_call\" value=\"CA0001\"/>\
             <Parameter name=\"callq_from\" value=\"+15550001111\"/>\
             <Parameter name=\"callq_queue\" value=\"sales\"/>\
             <Parameter name=\"callq_waited_ms\" value=\"{waited}\"/>\
             </Client></Dial></Response>"
        )
    );
    // the TwiML is valid by the model the webhooks and simulator read
    assert!(callq::twilio::twiml::parse(r.param("Twiml").unwrap_or_default()).is_ok());

    // the lease now covers ring timeout (20 s) + ring grace, not the 2 s offer lease
    let lease = eventually(SECS(2), "lease extended", || async {
        let (score, now) = lease_of(&store, "CA0001").await;
        score.filter(|s| s - now > 10_000).map(|s| s - now)
    })
    .await;
    let want = (Duration::from_secs(20) + ring_grace).as_millis() as i64;
    assert!(
        (10_000..=want).contains(&lease),
        "lease {lease} ms: the ring, not the offer lease (at most {want})"
    );
    assert_eq!(call(&store, "CA0001").await.state, CallState::Offered);
    assert_eq!(agent_rec(&store, "a1").await.status, AgentStatus::Reserved);
    assert_eq!(twilio.count(), 1, "one claim, one request");
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn an_agent_becoming_ready_gets_the_waiting_call_without_waiting_for_the_safety_net() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder_ok().await;
    let mut settings = fast_settings();
    settings.wake_timeout = SECS(30);
    settings.reap_interval = SECS(30);
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    enqueue(&store, "CA0001", "sales").await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the worker is blocked now
    assert_eq!(twilio.count(), 0, "no agent yet");
    let ready = Instant::now();
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    let reqs = twilio.wait_for(1, SECS(5)).await;
    let latency = reqs[0].at - ready;
    assert!(
        latency < Duration::from_millis(300),
        "offered {latency:?} after the agent became ready"
    );
    worker.stop(SECS(5)).await;
}

#[tokio::test]
async fn a_429_is_retried_and_the_agent_rings() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder(|_, n| if n == 0 { Reply::too_many() } else { Reply::Ok }).await;
    let settings = fast_settings();
    let worker = worker_and_a_call(&store, &twilio, settings).await;
    let reqs = twilio.wait_for(2, SECS(5)).await;
    assert_eq!(
        reqs[0].param("Twiml"),
        reqs[1].param("Twiml"),
        "the same redirect again"
    );
    eventually(SECS(2), "lease extended", || async {
        let (score, now) = lease_of(&store, "CA0001").await;
        score.filter(|s| s - now > 10_000)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(twilio.count(), 2, "no retry after the success");
    let a = agent_rec(&store, "a1").await;
    assert_eq!((a.status, a.misses), (AgentStatus::Reserved, 0));
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn twilio_failing_until_the_lease_ends_returns_the_call_to_line_without_a_miss() {
    logs();
    let store = store_with(&[sales()]).await;
    let mut settings = fast_settings();
    settings.offer_lease = Duration::from_millis(1500);
    let lease = settings.offer_lease;
    // 500 for everything about a1; a2 rings fine
    let twilio = recorder(|r, _| {
        if r.agent().as_deref() == Some("a1") {
            Reply::server_error()
        } else {
            Reply::Ok
        }
    })
    .await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    online_agent(&store, &agent("a2", &[("sales", 1)])).await;
    enqueue(&store, "CA0001", "sales").await;
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);

    let reqs = eventually(SECS(6), "the call offered to a2", || async {
        let reqs = twilio.requests();
        reqs.iter()
            .any(|r| r.agent().as_deref() == Some("a2"))
            .then_some(reqs)
    })
    .await;
    let to_a1: Vec<_> = reqs
        .iter()
        .filter(|r| r.agent().as_deref() == Some("a1"))
        .collect();
    assert!(to_a1.len() >= 3, "500s are retried: {} tries", to_a1.len());
    let first = to_a1[0].at;
    let last = to_a1[to_a1.len() - 1].at;
    assert!(
        last - first < lease,
        "no retry past the lease ({:?})",
        last - first
    );
    let to_a2 = reqs
        .iter()
        .position(|r| r.agent().as_deref() == Some("a2"))
        .expect("a2 rung");
    assert!(
        reqs[..to_a2]
            .iter()
            .all(|r| r.agent().as_deref() == Some("a1")),
        "a2 rung only once a1's offer was over"
    );
    eventually(SECS(2), "a2's lease extended", || async {
        let (score, now) = lease_of(&store, "CA0001").await;
        score.filter(|s| s - now > 10_000)
    })
    .await;

    let c = call(&store, "CA0001").await;
    assert_eq!(
        (c.state, c.agent.as_deref(), c.attempts),
        (CallState::Offered, Some("a2"), 2)
    );
    let a1 = agent_rec(&store, "a1").await;
    assert_eq!(
        (a1.status, a1.misses, a1.active),
        (AgentStatus::Available, 0, 0),
        "a1 released at once, and Twilio's outage is not a miss"
    );
    let events = store.call_events("CA0001").await.expect("events");
    assert!(
        events.iter().any(
            |(_, f)| f.get("type").map(String::as_str) == Some("requeued")
                && f.get("outcome").map(String::as_str) == Some("canceled")
        ),
        "returned to line as canceled: {events:?}"
    );
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn a_caller_twilio_confirms_gone_is_abandoned_and_frees_the_agent() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder(|_, _| Reply::call_gone()).await;
    twilio.set_call(twilio_call(
        "CA0001",
        "+15005550001",
        CallStatus::Completed,
        None,
    ));
    let settings = fast_settings();
    let worker = worker_and_a_call(&store, &twilio, settings).await;
    twilio.wait_for(1, SECS(5)).await;
    eventually(SECS(2), "call abandoned", || {
        state_is(&store, "CA0001", CallState::Abandoned)
    })
    .await;
    assert_eq!(twilio.count(), 1, "21220 is not retried");
    assert!(
        twilio
            .reads()
            .iter()
            .any(|r| r.path.ends_with("/Calls/CA0001.json")),
        "21220 is confirmed with Twilio's view of the call"
    );
    assert_eq!(
        call(&store, "CA0001").await.end_reason.as_deref(),
        Some("call_gone")
    );
    let a = agent_rec(&store, "a1").await;
    assert_eq!(
        (a.status, a.active, a.misses),
        (AgentStatus::Available, 0, 0)
    );
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn a_call_twilio_cannot_redirect_yet_is_offered_again_not_abandoned() {
    logs();
    let store = store_with(&[sales()]).await;
    // Twilio has not run the caller's first TwiML yet: 21220 once, then it accepts
    let twilio = recorder(|_, n| {
        if n == 0 {
            Reply::call_gone()
        } else {
            Reply::Ok
        }
    })
    .await;
    twilio.set_call(twilio_call(
        "CA0001",
        "+15005550001",
        CallStatus::Ringing,
        None,
    ));
    let settings = fast_settings();
    let worker = worker_and_a_call(&store, &twilio, settings).await;
    let reqs = twilio.wait_for(2, SECS(5)).await;
    assert_eq!(reqs[1].offer().map(|o| o.attempt), Some(2));
    eventually(SECS(2), "the second offer rings", || async {
        let c = call(&store, "CA0001").await;
        (c.state == CallState::Offered && c.phase.as_deref() == Some("ringing")).then_some(())
    })
    .await;
    let a = agent_rec(&store, "a1").await;
    assert_eq!((a.misses, a.status), (0, AgentStatus::Reserved));
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn a_wrong_api_base_never_abandons_a_caller_and_makes_the_worker_unready() {
    logs();
    let store = store_with(&[sales()]).await;
    // not Twilio at all: a web server's 404 page
    let twilio = recorder(|_, _| Reply::Raw(404, "<html>Not Found</html>")).await;
    let settings = fast_settings();
    let worker = worker_and_a_call(&store, &twilio, settings).await;
    twilio.wait_for(1, SECS(5)).await;
    eventually(SECS(2), "the worker reports it is not ready", || async {
        worker.health.problem()
    })
    .await;
    eventually(SECS(2), "the call back in line", || {
        state_is(&store, "CA0001", CallState::Waiting)
    })
    .await;
    let a = agent_rec(&store, "a1").await;
    assert_eq!((a.misses, a.status), (0, AgentStatus::Available));
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn a_slow_answer_within_the_request_timeout_still_rings() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder(|_, _| Reply::after(700, Reply::Ok)).await;
    let settings = fast_settings();
    let worker = worker_and_a_call(&store, &twilio, settings).await;
    let first = twilio.wait_for(1, SECS(5)).await[0].at;
    eventually(SECS(3), "lease extended", || async {
        let (score, now) = lease_of(&store, "CA0001").await;
        score.filter(|s| s - now > 10_000)
    })
    .await;
    assert!(first.elapsed() >= Duration::from_millis(650));
    assert_eq!(twilio.count(), 1);
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn twilio_not_answering_times_out_and_the_call_goes_back_in_line() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder(|_, _| Reply::Hang).await;
    let mut settings = fast_settings();
    settings.offer_lease = Duration::from_millis(1500);
    let mut rest_cfg = callq::twilio::rest::RestConfig::with_auth_token(ACCOUNT, TOKEN);
    rest_cfg.api_base = twilio.base.clone();
    rest_cfg.request_timeout = Duration::from_millis(300);
    let rest = callq::twilio::rest::TwilioRest::new(rest_cfg).expect("client");
    let worker = RunningWorker::start(&store, rest, settings);
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA0001", "sales").await;
    let first = twilio.wait_for(1, SECS(5)).await[0].at;
    // each 300 ms attempt times out and is retried until the lease (less its margin) ends,
    // then the call goes back in line (and, with only a1 left, to a1 again)
    eventually(SECS(5), "a second offer", || async {
        (call(&store, "CA0001").await.attempts >= 2).then_some(())
    })
    .await;
    let reqs = twilio.requests();
    let first_offer: Vec<_> = reqs
        .iter()
        .filter(|r| r.at - first < Duration::from_millis(1200))
        .collect();
    assert!(
        first_offer.len() >= 2,
        "timeouts are retried: {}",
        first_offer.len()
    );
    let a = agent_rec(&store, "a1").await;
    assert_eq!(a.misses, 0, "a hung Twilio is not the agent's miss");
    let events = store.call_events("CA0001").await.expect("events");
    assert!(events
        .iter()
        .any(|(_, f)| f.get("outcome").map(String::as_str) == Some("canceled")));
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn a_wrapup_ending_wakes_the_worker_at_its_end() {
    logs();
    let mut q = sales();
    q.wrapup = Duration::from_millis(1200);
    let store = store_with(&[q]).await;
    let twilio = recorder_ok().await;
    let mut settings = fast_settings();
    // neither the safety net nor the reaper's timer may be what wakes the worker
    settings.wake_timeout = SECS(30);
    settings.reap_interval = SECS(30);
    let worker = worker_and_a_call(&store, &twilio, settings).await;
    twilio.wait_for(1, SECS(5)).await;
    eventually(SECS(2), "lease extended", || async {
        let (score, now) = lease_of(&store, "CA0001").await;
        score.filter(|s| s - now > 10_000)
    })
    .await;
    let r = store
        .offer_result(&current(&store, "CA0001").await, OfferOutcome::Answered, "")
        .await
        .expect("answered");
    assert_eq!(r, OfferResult::Connected);
    enqueue(&store, "CA0002", "sales").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(twilio.count(), 1, "a1 is on a call");

    let before = Instant::now();
    complete(&store, "CA0001").await.expect("completed");
    let after = Instant::now();
    let reqs = twilio.wait_for(2, SECS(5)).await;
    assert_eq!(reqs[1].call_sid.as_deref(), Some("CA0002"));
    let wrapup = Duration::from_millis(1200);
    assert!(
        reqs[1].at - before >= wrapup - Duration::from_millis(5),
        "offered during wrap-up: {:?}",
        reqs[1].at - before
    );
    assert!(
        reqs[1].at - after <= wrapup + Duration::from_millis(150),
        "offered {:?} after the wrap-up began; it ended at {wrapup:?}",
        reqs[1].at - after
    );
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001", "CA0002"])).await;
}

#[tokio::test]
async fn a_lapsed_heartbeat_is_never_offered_a_call_and_the_reaper_counts_it_offline() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder_ok().await;
    let mut settings = fast_settings();
    // the worker does not reap when it wakes (nor wake at heartbeat deadlines): the reaper's
    // timer is what counts the agent offline; the safety-net wake-up stays out of it
    settings.wake_timeout = SECS(600);
    settings.reap_interval = Duration::from_millis(300);
    online_agent_for(&store, &agent("a1", &[("sales", 1)]), SECS(1)).await;
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    let before = store.queue_stats("sales").await.expect("stats");
    assert_eq!(before.count(AgentStatus::Available), 1);
    eventually(SECS(20), "counted offline after the lapse", || async {
        let q = store.queue_stats("sales").await.expect("stats");
        (q.count(AgentStatus::Offline) == 1 && q.count(AgentStatus::Available) == 0).then_some(())
    })
    .await;
    let a = agent_rec(&store, "a1").await;
    assert_eq!(
        a.status,
        AgentStatus::Available,
        "what the agent chose is kept"
    );
    assert!(!a.online());
    enqueue(&store, "CA0001", "sales").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        twilio.count(),
        0,
        "no offer to an agent without a heartbeat"
    );
    // back with the next heartbeat, and offered the waiting call
    store.heartbeat("a1", SECS(30), true).await.expect("beat");
    let reqs = twilio.wait_for(1, SECS(10)).await;
    assert_eq!(reqs[0].call_sid.as_deref(), Some("CA0001"));
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_rest_calls_finish() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder(|_, _| Reply::after(700, Reply::Ok)).await;
    let settings = fast_settings();
    let grace = settings.shutdown_grace;
    let worker = worker_and_a_call(&store, &twilio, settings).await;
    let first = twilio.wait_for(1, SECS(5)).await[0].at;
    enqueue(&store, "CA0002", "sales").await; // waits: a1 is reserved
    let took = worker.stop(grace + SECS(1)).await;
    assert!(
        first.elapsed() >= Duration::from_millis(690),
        "returned before the in-flight request finished"
    );
    assert!(took < grace, "stopping took {took:?}");
    // the in-flight offer completed its work: the agent rings under the extended lease
    let (score, now) = lease_of(&store, "CA0001").await;
    assert!(
        score.is_some_and(|s| s - now > 10_000),
        "lease extended before exit"
    );
    assert_eq!(twilio.count(), 1, "nothing claimed after shutdown");
    assert_eq!(call(&store, "CA0002").await.state, CallState::Waiting);
    assert_invariants(&store, &sids(&["CA0001", "CA0002"])).await;
}

#[tokio::test]
async fn shutdown_is_bounded_when_twilio_hangs_and_a_check_returns_the_call() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder(|_, _| Reply::Hang).await;
    let mut settings = fast_settings();
    settings.shutdown_grace = Duration::from_millis(300);
    settings.offer_lease = Duration::from_millis(1500);
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings.clone()), settings);
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA0001", "sales").await;
    twilio.wait_for(1, SECS(5)).await;
    // bounded by the grace, not by Twilio: generous for a busy machine, far below "forever"
    let took = worker.stop(SECS(3)).await;
    assert!(took < SECS(3), "stopping took {took:?}");
    assert_eq!(call(&store, "CA0001").await.state, CallState::Offered);
    // nobody is left to settle it; the next worker asks Twilio once the lease passes: the
    // caller's call is live and no leg rings the agent, so the call goes back in line
    let twilio = recorder(|_, _| Reply::Hang).await;
    twilio.set_call(twilio_call(
        "CA0001",
        "+15005550001",
        CallStatus::InProgress,
        None,
    ));
    let mut settings = fast_settings();
    settings.concurrency = 1;
    let next = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    let req = twilio.wait_for(1, SECS(5)).await;
    assert_eq!(req[0].offer().map(|o| o.attempt), Some(2), "offered again");
    let a = agent_rec(&store, "a1").await;
    assert_eq!(
        a.misses, 0,
        "the dead worker's offer is not the agent's miss"
    );
    next.stop(SECS(5)).await;
}

#[tokio::test]
async fn an_open_circuit_breaker_leaves_calls_waiting_until_twilio_recovers() {
    logs();
    let store = store_with(&[sales()]).await;
    let down = Arc::new(AtomicBool::new(true));
    let is_down = down.clone();
    let twilio = recorder(move |_, _| {
        if is_down.load(Ordering::SeqCst) {
            Reply::error(503, 20503, "Service Unavailable")
        } else {
            Reply::Ok
        }
    })
    .await;
    let mut settings = fast_settings();
    settings.breaker_threshold = 3;
    settings.breaker_cool_down = Duration::from_millis(600);
    let mut calls = Vec::new();
    for i in 0..5 {
        online_agent(&store, &agent(&format!("a{i}"), &[("sales", 1)])).await;
        let sid = format!("CA000{i}");
        enqueue(&store, &sid, "sales").await;
        calls.push(sid);
    }
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    twilio.wait_for(3, SECS(5)).await;
    // open: in-flight offers give up at once and nothing more is claimed
    eventually(SECS(3), "every call back in line", || async {
        let snap = store.snapshot(&calls).await.expect("snapshot");
        snap.calls
            .iter()
            .all(|c| c.state == CallState::Waiting)
            .then_some(())
    })
    .await;
    let during = twilio.count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let probes = twilio.count() - during;
    assert!(
        probes <= 4,
        "while open only one probe per cool-down reaches Twilio, got {probes}"
    );
    for a in store.agents().await.expect("agents") {
        assert_eq!(a.misses, 0, "agent {} charged for Twilio's outage", a.id);
        assert_ne!(a.status, AgentStatus::Paused);
    }
    down.store(false, Ordering::SeqCst);
    eventually(
        SECS(5),
        "every call offered once Twilio is back",
        || async {
            let snap = store.snapshot(&calls).await.expect("snapshot");
            snap.calls
                .iter()
                .all(|c| c.state == CallState::Offered)
                .then_some(())
        },
    )
    .await;
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &calls).await;
}

#[tokio::test]
async fn refused_credentials_requeue_without_a_miss_and_pause_claiming() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder_ok().await;
    let settings = fast_settings();
    // wrong credentials: Twilio answers 401 / 20003 to everything
    let mut cfg = callq::twilio::rest::RestConfig::with_auth_token(ACCOUNT, "wrong-token");
    cfg.api_base = twilio.base.clone();
    let rest = callq::twilio::rest::TwilioRest::new(cfg).expect("client");
    let worker = RunningWorker::start(&store, rest, settings);
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA0001", "sales").await;
    let reqs = twilio.wait_for(2, SECS(5)).await;
    // the pause after a refusal: 1 s before the next claim (a busy machine only adds to it)
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_millis(900),
        "next request after {gap:?}"
    );
    assert!(worker.health.problem().is_some(), "/readyz fails");
    let a = agent_rec(&store, "a1").await;
    assert_eq!(a.misses, 0);
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn a_callback_twilio_refuses_for_good_fails_alone() {
    logs();
    let store = store_with(&[sales()]).await;
    // creating a call to this customer is refused for good; redirects are fine
    let twilio = recorder(|req, _| {
        if req.call_sid.is_none() {
            Reply::error(400, 21211, "Invalid 'To' Phone Number")
        } else {
            Reply::Ok
        }
    })
    .await;
    let settings = fast_settings();
    enqueue(&store, "CA0001", "sales").await;
    store
        .request_callback("CA0001", "+15557654321")
        .await
        .expect("callback");
    enqueue(&store, "CA0002", "sales").await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    eventually(SECS(2), "the callback ends", || {
        state_is(&store, "CA0001", CallState::CallbackFailed)
    })
    .await;
    assert_eq!(
        call(&store, "CA0001").await.end_reason.as_deref(),
        Some("twilio_21211")
    );
    eventually(SECS(2), "the next call rings the agent", || async {
        let c = call(&store, "CA0002").await;
        (c.phase.as_deref() == Some("ringing")).then_some(())
    })
    .await;
    let creates = twilio
        .requests()
        .iter()
        .filter(|r| r.call_sid.is_none())
        .count();
    assert_eq!(creates, 1, "a refused callback is not retried");
    assert_eq!(
        worker.health.problem(),
        None,
        "one caller's error is not the worker's"
    );
    assert_eq!(agent_rec(&store, "a1").await.misses, 0);
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001", "CA0002"])).await;
}

#[tokio::test]
async fn a_callback_rings_the_agent_first_with_a_new_call() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder_ok().await;
    let settings = fast_settings();
    enqueue(&store, "CA0001", "sales").await;
    store
        .request_callback("CA0001", "+15557654321")
        .await
        .expect("callback");
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    let reqs = twilio.wait_for(1, SECS(5)).await;
    let r = &reqs[0];
    assert_eq!(r.path, format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json"));
    assert_eq!(r.authorization.as_deref(), Some(basic_auth().as_str()));
    assert_eq!(r.param("To"), Some("client:client-a1"));
    assert_eq!(r.param("From"), Some("+15005550001"));
    assert_eq!(
        r.param("Twiml"),
        Some(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Calling back a customer \
             who kept their place in line.</Say><Dial \
             action=\"https://callq.example.com/twilio/callback-result?call=CA0001&amp;agent=a1&amp;\
             attempt=1\" method=\"POST\" timeout=\"40\" callerId=\"+15005550001\">\
             <Number>+15557654321</Number>\
             </Dial></Response>"
        )
    );
    assert_eq!(
        r.param("StatusCallback"),
        Some("https://callq.example.com/twilio/agent-leg?call=CA0001&agent=a1&attempt=1")
    );
    assert_eq!(
        r.params("StatusCallbackEvent"),
        vec!["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(r.param("Timeout"), Some("20"));
    eventually(SECS(2), "lease extended", || async {
        let (score, now) = lease_of(&store, "CA0001").await;
        score.filter(|s| s - now > 10_000)
    })
    .await;
    assert_eq!(
        call(&store, "CA0001").await.leg_sid.as_deref(),
        Some(format!("CAnew{:028}", 0).as_str()),
        "the agent-first call Twilio created is recorded for later checks"
    );
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn a_callback_whose_creation_timed_out_is_never_placed_twice() {
    logs();
    let store = store_with(&[sales()]).await;
    let twilio = recorder(|_, _| Reply::Hang).await;
    let settings = fast_settings();
    enqueue(&store, "CA0001", "sales").await;
    store
        .request_callback("CA0001", "+15557654321")
        .await
        .expect("callback");
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    twilio.wait_for(1, SECS(5)).await;
    // the attempt hits the REST deadline; Twilio may have placed the call, so the offer is
    // held for the ring rather than offered again
    eventually(SECS(4), "lease extended over the ring", || async {
        let (score, now) = lease_of(&store, "CA0001").await;
        score.filter(|s| s - now > 10_000)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        twilio.count(),
        1,
        "creating a call is not retried after a timeout"
    );
    assert_eq!(call(&store, "CA0001").await.state, CallState::Offered);
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

/// Several workers, many calls and agents; the recorder plays Twilio and the agents (most
/// answer, some do not). Every call ends up answered; each claim reaches Twilio once; a call
/// is never rung at two agents at once and an agent never holds two calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_offer_every_call_to_one_agent_at_a_time() {
    logs();
    let mut q = sales();
    q.max_no_answer = 100;
    let store = store_with(&[q]).await;
    let twilio = recorder_ok().await;
    let calls: Vec<String> = (0..80).map(|i| format!("CA{i:04}")).collect();
    for i in 0..10 {
        online_agent(&store, &agent(&format!("a{i}"), &[("sales", 1)])).await;
    }
    for sid in &calls {
        enqueue(&store, sid, "sales").await;
    }

    let agents = AgentSim::start(&store, &twilio, 0.85);

    let mut settings = fast_settings();
    settings.concurrency = 4;
    let workers: Vec<RunningWorker> = (0..4)
        .map(|_| RunningWorker::start(&store, rest_for(&twilio, &settings), settings.clone()))
        .collect();

    until_all_completed(&store, &calls, SECS(30)).await;
    for w in workers {
        w.stop(SECS(5)).await;
    }
    agents.check(&store, &twilio, &calls).await;
}
