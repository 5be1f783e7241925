//! The Twilio simulator against the real callq (server, worker, Redis): single calls whose
//! every step can be checked, from the phone side and in the store.

mod support;

use std::time::Duration;

use callq::config::CentreConfig;
use callq::lab::stack::{Stack, StackOptions};
use callq::sim::agents::{AgentBehaviour, AgentProfile};
use callq::sim::clock::Clock;
use callq::sim::twiml_exec::{CallLog, CallerScript, Outcome};
use callq::sim::SimConfig;
use callq::store::CallState;

async fn stack(agents: &[(&str, &[(&str, u32)])]) -> Stack {
    stack_with(CentreConfig::demo(), agents).await
}

async fn stack_with(centre: CentreConfig, agents: &[(&str, &[(&str, u32)])]) -> Stack {
    let behaviour = AgentBehaviour {
        answer_delay_s: 0.2,
        heartbeat_every: Duration::from_millis(500),
        ..AgentBehaviour::default()
    };
    stack_behaving(centre, agents, behaviour).await
}

async fn stack_behaving(
    mut centre: CentreConfig,
    agents: &[(&str, &[(&str, u32)])],
    behaviour: AgentBehaviour,
) -> Stack {
    centre.centre = format!("sim{}-{}", std::process::id(), rand::random::<u32>());
    let sim = SimConfig {
        account_sid: String::new(),
        auth_token: String::new(),
        public_url: String::new(),
        callq_url: String::new(),
        admin_token: String::new(),
        // announcements pass ten times faster; the callers' own times below are real
        clock: Clock::new(10.0),
        agents: behaviour,
        wrapup: Duration::from_secs(5),
        no_answer_delay: Duration::from_secs(5),
        media: Default::default(),
        customer_answer_s: 0.2,
        faults: Default::default(),
        seed: 3,
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
    for (id, queues) in agents {
        stack
            .sim
            .agents
            .add(&AgentProfile {
                id: id.to_string(),
                queues: queues.iter().map(|(q, t)| (q.to_string(), *t)).collect(),
                capacity: 1,
                skills: Default::default(),
            })
            .await
            .expect("agent created");
    }
    tokio::spawn(stack.sim.agents.clone().run(stack.sim_shutdown()));
    // logged in
    for _ in 0..100 {
        let n = stack
            .store
            .agents()
            .await
            .expect("agents")
            .iter()
            .filter(|a| a.status == callq::store::AgentStatus::Available)
            .count();
        if n == agents.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack
}

async fn finish(stack: &Stack) {
    assert!(
        stack.sim.drain(Duration::from_secs(20)).await,
        "calls did not end"
    );
}

/// A caller rings sales' number from `from`, holds up to 30 s and talks half a second with
/// whoever answers; returns the call and its log once every call has ended.
async fn talk_briefly(stack: &Stack, from: &str) -> (String, CallLog) {
    let script = CallerScript {
        patience: Some(Duration::from_secs(30)),
        talk: Duration::from_millis(500),
        ..CallerScript::default()
    };
    let sid = stack.sim.env.place_inbound(from, "+15005550001", script);
    finish(stack).await;
    let logs = stack.sim.stats.snapshot().logs;
    let log = logs
        .into_iter()
        .find(|l| l.info.sid == sid)
        .expect("logged");
    (sid, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_queue_number_reaches_the_agent_and_completes() {
    let stack = stack(&[("alice", &[("sales", 1)])]).await;
    let (sid, log) = talk_briefly(&stack, "+12025550001").await;
    assert_eq!(log.outcome(), Outcome::Answered, "{log:?}");
    assert_eq!(log.agent.as_deref(), Some("client:alice"));
    assert_eq!(log.dial_results, vec!["completed"]);
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    let rec = stack.store.call(&sid).await.expect("read").expect("known");
    assert_eq!(rec.state, CallState::Completed);
    assert_eq!(rec.agent.as_deref(), Some("alice"));
    assert_eq!(
        stack
            .sim
            .stats
            .double_bookings
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_of_a_recording_queue_ends_with_its_recording_stored() {
    let toml = callq::config::DEMO_TOML.replace(
        "# record = \"record-from-answer\"",
        "record = \"record-from-answer\"",
    );
    let centre = support::centre_from(&toml);
    assert_eq!(centre.queues["sales"].record, "record-from-answer");
    let stack = stack_with(centre, &[("alice", &[("sales", 1)])]).await;
    let script = CallerScript {
        patience: Some(Duration::from_secs(30)),
        talk: Duration::from_millis(1500),
        ..CallerScript::default()
    };
    let sid = stack
        .sim
        .env
        .place_inbound("+12025550011", "+15005550001", script);
    finish(&stack).await;
    let logs = stack.sim.stats.snapshot().logs;
    let log = logs.iter().find(|l| l.info.sid == sid).expect("logged");
    assert_eq!(log.outcome(), Outcome::Answered, "{log:?}");
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    // the recording's callback goes out as the bridge ends, not waited for: give it time
    let mut recording = None;
    for _ in 0..100 {
        let rec = stack.store.call(&sid).await.expect("read").expect("known");
        assert_eq!(rec.state, CallState::Completed);
        if rec.recording.is_some() {
            recording = rec.recording;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recording = recording.expect("the recording was stored with the call");
    assert!(
        recording.sid.starts_with("RE") && recording.sid.len() == 34,
        "{recording:?}"
    );
    assert_eq!(
        recording.url,
        format!(
            "{}/2010-04-01/Accounts/{}/Recordings/{}",
            stack.rest_url, stack.sim.config.account_sid, recording.sid
        )
    );
    let events = stack.store.call_events(&sid).await.expect("history");
    assert!(
        events
            .iter()
            .any(|(_, f)| f.get("type").map(String::as_str) == Some("recorded")),
        "{events:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_gives_up_is_abandoned_in_the_store() {
    // nobody serves support
    let stack = stack(&[("bob", &[("sales", 1)])]).await;
    let script = CallerScript {
        patience: Some(Duration::from_secs(2)), // after the welcome (0.44 s)
        ..CallerScript::default()
    };
    let sid = stack
        .sim
        .env
        .place_inbound("+12025550002", "+15005550002", script);
    finish(&stack).await;
    let logs = stack.sim.stats.snapshot().logs;
    let log = logs.iter().find(|l| l.info.sid == sid).expect("logged");
    assert_eq!(log.outcome(), Outcome::Abandoned);
    assert_eq!(log.queue_results, vec!["hangup"]);
    let rec = stack.store.call(&sid).await.expect("read").expect("known");
    assert_eq!(rec.state, CallState::Abandoned);
    assert_eq!(rec.queue, "support");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_menu_digit_picks_the_queue() {
    let stack = stack(&[("carol", &[("support", 1)])]).await;
    let script = CallerScript {
        patience: Some(Duration::from_secs(30)),
        talk: Duration::from_millis(300),
        menu_digit: Some("2".into()),
        ..CallerScript::default()
    };
    let sid = stack
        .sim
        .env
        .place_inbound("+12025550003", "+15005550000", script);
    finish(&stack).await;
    let logs = stack.sim.stats.snapshot().logs;
    let log = logs.iter().find(|l| l.info.sid == sid).expect("logged");
    assert_eq!(log.pressed, vec!["2"]);
    assert_eq!(log.outcome(), Outcome::Answered, "{log:?}");
    let rec = stack.store.call(&sid).await.expect("read").expect("known");
    assert_eq!(rec.queue, "support");
    assert_eq!(rec.state, CallState::Completed);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_takes_the_callback_is_called_back_when_an_agent_is_free() {
    // sales records: the agent's call to the customer is recorded too
    let toml = callq::config::DEMO_TOML
        .replace("callback_after_s = 60", "callback_after_s = 1")
        .replace(
            "# record = \"record-from-answer\"",
            "record = \"record-from-answer\"",
        );
    let centre = support::centre_from(&toml);
    // dave serves support only: nobody answers sales until erin logs in
    let stack = stack_with(centre, &[("dave", &[("support", 1)])]).await;
    let script = CallerScript {
        patience: Some(Duration::from_secs(60)),
        talk: Duration::from_millis(300),
        wants_callback: true,
        ..CallerScript::default()
    };
    let sid = stack
        .sim
        .env
        .place_inbound("+12025550004", "+15005550001", script);
    // the caller asks for the callback and hangs up
    assert!(stack.sim.env.registry.ended(Duration::from_secs(30)).await);
    let logs = stack.sim.stats.snapshot().logs;
    let log = logs
        .iter()
        .find(|l| l.info.sid == sid)
        .expect("logged")
        .clone();
    assert_eq!(log.outcome(), Outcome::Callback, "{log:?}");
    assert_eq!(log.pressed, vec!["1"]);
    let rec = stack.store.call(&sid).await.expect("read").expect("known");
    assert_eq!(rec.state, CallState::Callback);
    // an agent for sales: callq calls the agent, then the customer
    stack
        .sim
        .agents
        .add(&AgentProfile {
            id: "erin".into(),
            queues: vec![("sales".into(), 1)],
            capacity: 1,
            skills: Default::default(),
        })
        .await
        .expect("agent");
    tokio::spawn(stack.sim.agents.clone().run(stack.sim_shutdown()));
    for _ in 0..200 {
        if stack.sim.stats.callbacks_unserved() == 0 && stack.sim.env.registry.live() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    finish(&stack).await;
    let m = stack.sim.stats.snapshot();
    assert!(
        m.callbacks_reached.contains_key(&sid),
        "customer never called back"
    );
    let rec = stack.store.call(&sid).await.expect("read").expect("known");
    assert_eq!(rec.state, CallState::Completed);
    assert_eq!(rec.agent.as_deref(), Some("erin"));
    // the recording of agent and customer, reported for the callback's call
    let mut recording = rec.recording;
    for _ in 0..100 {
        if recording.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        recording = stack
            .store
            .call(&sid)
            .await
            .expect("read")
            .expect("known")
            .recording;
    }
    let recording = recording.expect("the callback's recording was stored");
    assert!(recording.sid.starts_with("RE"), "{recording:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_all_queue_rings_every_agent_and_exactly_one_gets_the_call() {
    let toml = callq::config::DEMO_TOML.replacen(
        "strategy = \"longest_idle\"",
        "strategy = \"ring_all\"",
        1,
    );
    let centre = support::centre_from(&toml);
    assert_eq!(
        centre.queues["sales"].strategy,
        callq::store::Strategy::RingAll
    );
    let team: [(&str, &[(&str, u32)]); 3] = [
        ("alice", &[("sales", 1)]),
        ("bob", &[("sales", 1)]),
        ("carol", &[("sales", 1)]),
    ];
    let stack = stack_with(centre, &team).await;
    let (sid, log) = talk_briefly(&stack, "+12025550021").await;
    assert_eq!(log.outcome(), Outcome::Answered, "{log:?}");
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    // one <Dial> rang the three phones at once: one leg talked, the other two were canceled
    assert_eq!(log.rings, 1, "{log:?}");
    let mut legs = log.dial_results.clone();
    legs.sort();
    assert_eq!(legs, vec!["canceled", "canceled", "completed"], "{log:?}");
    let rec = stack.store.call(&sid).await.expect("read").expect("known");
    assert_eq!(rec.state, CallState::Completed);
    assert_eq!(rec.attempts, 1);
    let mut group = rec.group.clone();
    group.sort();
    assert_eq!(group, vec!["alice", "bob", "carol"]);
    let winner = rec.agent.clone().expect("the agent who took the call");
    assert_eq!(log.agent, Some(format!("client:{winner}")));
    // exactly one agent was connected, and handled the call; nobody was double-booked
    let events = stack.store.call_events(&sid).await.expect("history");
    let connected = events
        .iter()
        .filter(|(_, f)| f.get("type").map(String::as_str) == Some("connected"))
        .count();
    assert_eq!(connected, 1, "{events:?}");
    for id in ["alice", "bob", "carol"] {
        let a = support::agent_rec(&stack.store, id).await;
        assert_eq!(a.handled, u64::from(id == winner), "{id}");
        assert_eq!(a.misses, 0, "{id}: rang for nothing, no miss");
        assert_eq!(a.active, 0, "{id}");
    }
    assert_eq!(
        stack
            .sim
            .stats
            .double_bookings
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    support::assert_invariants(&stack.store, &[sid]).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_all_offer_nobody_answers_puts_the_caller_back_in_line() {
    let toml = callq::config::DEMO_TOML
        .replacen("strategy = \"longest_idle\"", "strategy = \"ring_all\"", 1)
        .replacen("ring_timeout_s = 15", "ring_timeout_s = 2", 1);
    let centre = support::centre_from(&toml);
    assert_eq!(centre.queues["sales"].ring_timeout_s, 2);
    let team: [(&str, &[(&str, u32)]); 3] = [
        ("alice", &[("sales", 1)]),
        ("bob", &[("sales", 1)]),
        ("carol", &[("sales", 1)]),
    ];
    // every phone rings out
    let behaviour = AgentBehaviour {
        answer_delay_s: 0.2,
        no_answer: 1.0,
        heartbeat_every: Duration::from_millis(500),
        ..AgentBehaviour::default()
    };
    let stack = stack_behaving(centre, &team, behaviour).await;
    let script = CallerScript {
        patience: Some(Duration::from_secs(6)),
        ..CallerScript::default()
    };
    let sid = stack
        .sim
        .env
        .place_inbound("+12025550022", "+15005550001", script);
    finish(&stack).await;
    let logs = stack.sim.stats.snapshot().logs;
    let log = logs.iter().find(|l| l.info.sid == sid).expect("logged");
    assert_eq!(log.outcome(), Outcome::Abandoned, "{log:?}");
    assert!(log.rings >= 1, "{log:?}");
    // each <Dial> rang the three phones; every leg rang out
    assert_eq!(log.dial_results.len() as u32, 3 * log.rings, "{log:?}");
    assert!(log.dial_results.iter().all(|r| r == "no-answer"), "{log:?}");
    // the caller went back in line after the ring (and hung up there)
    assert!(log.queue_results.len() >= 2, "{log:?}");
    let rec = stack.store.call(&sid).await.expect("read").expect("known");
    assert_eq!(rec.state, CallState::Abandoned);
    assert_eq!(rec.attempts, log.rings);
    let events = stack.store.call_events(&sid).await.expect("history");
    let requeued = events
        .iter()
        .filter(|(_, f)| f.get("type").map(String::as_str) == Some("requeued"))
        .count() as u32;
    assert_eq!(requeued, log.rings, "{events:?}");
    for id in ["alice", "bob", "carol"] {
        let a = support::agent_rec(&stack.store, id).await;
        assert_eq!(a.misses, log.rings, "{id}: a no-answer for each ring");
        assert_eq!(a.handled, 0, "{id}");
        assert_eq!(a.active, 0, "{id}");
    }
    support::assert_invariants(&stack.store, &[sid]).await;
    stack.stop().await;
}
