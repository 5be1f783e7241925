//! callq on a real Redis Cluster (three masters, three replicas: tests/support/cluster.rs):
//! centres spread over the masters and each runs its transitions whole on its slot's master
//! (scripts reloaded where the cache is gone); the worker claims and a caller is answered
//! through the edge; `callq inspect` reads a centre through either form of cluster URL; and a
//! `CLUSTER FAILOVER` of a centre's master while calls are routed, after which routing goes on
//! and nobody is double-booked.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use callq::config::CentreConfig;
use callq::lab::stack::{Stack, StackOptions};
use callq::sim::agents::{AgentBehaviour, AgentProfile};
use callq::sim::clock::Clock;
use callq::sim::twiml_exec::{CallerScript, Outcome};
use callq::sim::SimConfig;
use callq::store::{
    AgentStatus, CallState, Claim, Completion, EndSource, OfferOutcome, OfferResult, Store,
    Strategy,
};
use support::cluster::{self, LocalCluster};
use support::worker::{
    eventually, fast_settings, recorder_ok, rest_for, retrying, until_all_completed, AgentSim,
    RunningWorker, SECS,
};
use support::{agent, holding, online_agent, queue};

/// One call's whole life on `store`: in line, claimed, answered, completed, the agent free.
async fn a_call_lives_and_ends(store: &Store, sid: &str) {
    store
        .enqueue(&holding(sid, "sales", "+15550001111"))
        .await
        .expect("enqueue");
    let offer = match store.claim(SECS(30), 1).await.expect("claim") {
        Claim::Offer(o) => o,
        Claim::Idle { .. } => panic!("{sid}: nothing to claim"),
    };
    assert_eq!(offer.call_sid, sid);
    assert_eq!(offer.agent_id, "a1");
    let r = store
        .offer_result(&offer.offer_ref(), OfferOutcome::Answered, "")
        .await
        .expect("answered");
    assert_eq!(r, OfferResult::Connected);
    let c = store
        .complete(sid, Some(&offer.offer_ref()), EndSource::Dial)
        .await
        .expect("complete");
    assert_eq!(c, Completion::Completed("a1".into()));
    let rec = store.call(sid).await.expect("read").expect("known");
    assert_eq!(rec.state, CallState::Completed);
    support::assert_invariants(store, &[sid.to_string()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn centres_spread_over_the_masters_and_run_every_transition_on_theirs() {
    let cluster = cluster::shared();
    // centres until three land on three different masters
    let mut masters = HashSet::new();
    let mut stores = Vec::new();
    for _ in 0..64 {
        let store = cluster.fresh_store();
        let (master, _) = cluster.master_and_replica(store.prefix());
        if masters.insert(master) {
            stores.push((store, master));
        }
        if masters.len() == 3 {
            break;
        }
    }
    assert_eq!(masters.len(), 3, "centres on every master");
    for (i, (store, master)) in stores.iter().enumerate() {
        assert!(store.is_cluster());
        store
            .ping()
            .await
            .expect("ping reaches the centre's master");
        let (secs, _) = store.redis_time().await.expect("TIME");
        assert!(secs > 1_700_000_000, "a unix time: {secs}");
        store
            .configure_queue(&queue("sales", Strategy::LongestIdle))
            .await
            .expect("queue");
        online_agent(store, &agent("a1", &[("sales", 1)])).await;
        a_call_lives_and_ends(store, &format!("CA{i}a")).await;
        // every key of the centre is on its own master, none elsewhere
        let pattern = format!("{}*", store.prefix());
        let here = cluster.keys_on(*master, &pattern);
        assert!(
            here.iter().any(|k| k.ends_with(":queues")),
            "centre keys on {master}: {here:?}"
        );
        for p in cluster.ports() {
            if p != *master {
                let role = cluster::cli(p, &["ROLE"]);
                if role.starts_with("master") {
                    assert!(cluster.keys_on(p, &pattern).is_empty(), "keys on {p}");
                }
            }
        }
        // reads: pipelines (one with TIME first), an atomic snapshot, the event stream
        let agents = store.agents().await.expect("agents");
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].status, AgentStatus::Available);
        let stats = store.queue_stats("sales").await.expect("stats");
        assert_eq!(stats.waiting, 0);
        assert!(!store.recent_events(10).await.expect("events").is_empty());
    }
    // the routing library and the script cache are gone on every node (a restart, a new
    // master): FCALL finds no function, the library is loaded again on the masters and the
    // transitions go on
    cluster.flush_functions_and_scripts();
    for (_, master) in &stores {
        assert!(
            cluster.libraries_on(*master).is_empty(),
            "flushed on {master}"
        );
    }
    for (i, (store, master)) in stores.iter().enumerate() {
        a_call_lives_and_ends(store, &format!("CA{i}b")).await;
        let libraries = cluster.libraries_on(*master);
        assert!(
            libraries.iter().any(|l| l.starts_with("callq")),
            "the routing library loaded again on {master}: {libraries:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_claims_and_the_woken_call_is_offered() {
    let cluster = cluster::shared();
    let store = cluster.fresh_store();
    store
        .configure_queue(&queue("sales", Strategy::LongestIdle))
        .await
        .expect("queue");
    let twilio = recorder_ok().await;
    let settings = {
        let mut s = fast_settings();
        // the safety-net wake-up far away: only the wake marker (BLPOP on the slot's master)
        // brings the worker to the call in time
        s.wake_timeout = Duration::from_secs(600);
        s.reap_interval = Duration::from_secs(600);
        s
    };
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    // the worker waits in BLPOP on the master of the centre's slot
    let (master, _) = cluster.master_and_replica(store.prefix());
    let wake = store.key("wake");
    eventually(SECS(5), "the worker's BLPOP on the centre's master", || {
        let ok = cluster.blocked_on(master, &wake);
        async move { ok.then_some(()) }
    })
    .await;
    support::enqueue(&store, "CA0001", "sales").await;
    let req = eventually(SECS(5), "the offer reaches Twilio", || {
        let reqs = twilio.requests();
        async move { reqs.into_iter().next() }
    })
    .await;
    assert_eq!(req.call_sid.as_deref(), Some("CA0001"));
    let rec = store.call("CA0001").await.expect("read").expect("known");
    assert_eq!(rec.state, CallState::Offered);
    assert_eq!(rec.agent.as_deref(), Some("a1"));
    worker.stop(SECS(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_rings_in_through_the_edge_and_an_agent_answers() {
    let cluster = cluster::shared();
    let mut centre = CentreConfig::demo();
    centre.centre = format!("sim{}-{}", std::process::id(), rand::random::<u32>());
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
            ..AgentBehaviour::default()
        },
        wrapup: Duration::from_secs(5),
        no_answer_delay: Duration::from_secs(5),
        media: Default::default(),
        customer_answer_s: 0.2,
        faults: Default::default(),
        seed: 3,
        legacy: None,
    };
    let stack = Stack::start(StackOptions {
        redis_url: Some(cluster.url()),
        centre,
        queue_overrides: Vec::new(),
        workers: 1,
        heartbeat_ttl: Duration::from_secs(5),
        sim,
    })
    .await
    .expect("stack starts on the cluster");
    assert!(stack.store.is_cluster());
    stack
        .sim
        .agents
        .add(&AgentProfile {
            id: "alice".into(),
            queues: vec![("sales".into(), 1)],
            capacity: 1,
            skills: Default::default(),
        })
        .await
        .expect("agent created");
    tokio::spawn(stack.sim.agents.clone().run(stack.sim_shutdown()));
    let store = stack.store.clone();
    eventually(SECS(5), "alice available", || {
        let store = store.clone();
        async move {
            let a = store.agent("alice").await.ok()??;
            (a.status == AgentStatus::Available).then_some(())
        }
    })
    .await;
    let script = CallerScript {
        patience: Some(Duration::from_secs(60)),
        talk: Duration::from_millis(500),
        ..CallerScript::default()
    };
    let sid = stack
        .sim
        .env
        .place_inbound("+12025550001", "+15005550001", script);
    assert!(
        stack.sim.drain(Duration::from_secs(60)).await,
        "the call did not end"
    );
    let logs = stack.sim.stats.snapshot().logs;
    let log = logs.iter().find(|l| l.info.sid == sid).expect("logged");
    assert_eq!(log.outcome(), Outcome::Answered, "{log:?}");
    assert_eq!(log.agent.as_deref(), Some("client:alice"));
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

/// Enter `n` calls named `CA<i>`, one every 50 ms, retrying through a failover's moment of
/// errors; the calls that entered go to `entered` as they do.
async fn calls_enter(store: Store, n: usize, entered: tokio::sync::mpsc::UnboundedSender<String>) {
    for i in 0..n {
        let sid = format!("CA{i:04}");
        let call = holding(&sid, "sales", "+15550001111");
        let (store, call) = (&store, &call);
        retrying("enqueue", move || store.enqueue(call)).await;
        if entered.send(sid).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_goes_on_through_a_failover_of_the_centres_master() {
    support::worker::logs();
    // a cluster of its own: the failover must not disturb the other tests
    let cluster = tokio::task::spawn_blocking(LocalCluster::start)
        .await
        .map(std::sync::Arc::new)
        .expect("cluster starts");
    let store = cluster.fresh_store();
    store
        .configure_queue(&queue("sales", Strategy::LongestIdle))
        .await
        .expect("queue");
    for i in 0..4 {
        online_agent(&store, &agent(&format!("a{i}"), &[("sales", 1)])).await;
    }
    let twilio = recorder_ok().await;
    let settings = {
        let mut s = fast_settings();
        // long enough that no lease runs out while the cluster switches masters
        s.offer_lease = Duration::from_secs(20);
        // no safety-net wake-up: after the failover only the wake markers, read by a BLPOP
        // that must have found the new master, bring the worker to the new calls
        s.wake_timeout = Duration::from_secs(600);
        s
    };
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    let answering = AgentSim::start(&store, &twilio, 1.0);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let load = tokio::spawn(calls_enter(store.clone(), 40, tx));
    let mut calls = Vec::new();
    // the failover once a quarter of the calls are in, the rest entering meanwhile
    while calls.len() < 10 {
        calls.push(rx.recv().await.expect("calls entering"));
    }
    let key = store.prefix().to_string();
    let (old, new) = tokio::task::spawn_blocking({
        let (cluster, key) = (cluster.clone(), key.clone());
        move || cluster.fail_over(&key)
    })
    .await
    .expect("failover");
    assert_ne!(old, new);
    // the worker's wait moved to the new master
    let wake = store.key("wake");
    eventually(SECS(10), "the worker's BLPOP on the new master", || {
        let ok = cluster.blocked_on(new, &wake);
        async move { ok.then_some(()) }
    })
    .await;
    load.await.expect("every call entered");
    while let Some(sid) = rx.recv().await {
        calls.push(sid);
    }
    assert_eq!(calls.len(), 40);
    until_all_completed(&store, &calls, Duration::from_secs(120)).await;
    let double = answering.stop();
    assert!(double.is_empty(), "double offers: {double:#?}");
    for sid in &calls {
        let rec = store.call(sid).await.expect("read").expect("known");
        assert_eq!(rec.state, CallState::Completed, "{sid}");
    }
    support::assert_invariants(&store, &calls).await;
    // the centre is served by the new master now, and the worker reached it
    let (master, _) = cluster.master_and_replica(&key);
    assert_eq!(master, new);
    worker.stop(SECS(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reads_a_centre_through_either_form_of_cluster_url() {
    let cluster = cluster::shared();
    let store = cluster.fresh_store();
    store
        .configure_queue(&queue("sales", Strategy::LongestIdle))
        .await
        .expect("queue");
    online_agent(&store, &agent("alice", &[("sales", 1)])).await;
    store
        .enqueue(&holding("CAinspect1", "sales", "+15551112222"))
        .await
        .expect("enqueue");
    let centre = store.centre().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("callq.toml");
    std::fs::write(
        &cfg,
        format!("centre = \"{centre}\"\ndefault_queue = \"sales\"\n[queues.sales]\n"),
    )
    .expect("config");
    let listed = cluster
        .ports()
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    for url in [cluster.url(), listed] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_callq"))
            .args(["inspect", "--json"])
            .env("REDIS_URL", &url)
            .env("CALLQ_CONFIG", &cfg)
            .output()
            .expect("run callq inspect");
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(doc["queues"][0]["name"], "sales", "{url}");
        assert_eq!(doc["queues"][0]["waiting"], 1, "{url}");
        assert_eq!(doc["agents"][0]["id"], "alice", "{url}");
        assert_eq!(doc["waiting"][0]["sid"], "CAinspect1", "{url}");
    }
}
