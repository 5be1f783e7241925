//! Concurrent stress of the routing core: 8 claimers (workers that answer, miss, fail or die
//! holding an offer, with some results delivered twice, late), callers entering, hanging up
//! and asking for callbacks, agents flapping heartbeats, devices and statuses, 2 reapers and
//! 2 checkers settling expired offers as Twilio might, all at once against one real Redis for
//! thousands of steps. Snapshots taken while it runs and after it settles must satisfy the
//! routing invariants (docs/design.md): zero double-bookings, zero lost calls. Skills and
//! widening are in the mix (a queue requiring a skill that widens twice, calls bringing their
//! own skills, a queue widening by tiers), and so is `ring_all` (a queue whose offers ring
//! every ready agent of a tier at once, each agent's leg answering, ending or being canceled
//! concurrently with the others and with the `<Dial>`'s result, two agents sometimes
//! answering at once): no offer is ever connected twice.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callq::store::{
    CallState, Claim, EndSource, Offer, OfferOutcome, OfferRef, OfferResult, RequestedStatus,
    Skills, Store, Strategy, Transition, WidenStep,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::*;

const CLAIMERS: usize = 8;
const CALLS: usize = 1500;
const AGENTS: usize = 16;

struct Run {
    store: Store,
    calls: Mutex<Vec<String>>,
    stop: AtomicBool,
    steps: AtomicU64,
    offers: AtomicU64,
    /// Offers that rang several agents at once.
    group_offers: AtomicU64,
    /// How many times each offer (call, attempt) was connected: never more than once.
    connected: Mutex<HashMap<(String, u32), u32>>,
}

impl Run {
    fn entered(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Note what an answer for `named` did.
    fn answered(&self, named: &OfferRef, r: &OfferResult) {
        if *r == OfferResult::Connected {
            if let Ok(mut m) = self.connected.lock() {
                *m.entry((named.call_sid.clone(), named.attempt))
                    .or_default() += 1;
            }
        }
    }
}

/// A ring_all offer as Twilio reports it: every agent's leg on its own, concurrently with the
/// others and the `<Dial>`'s result. `roll` picks what happens; `winner` (and, racing it,
/// `rival`) answer; the others' legs are canceled, or ring out.
async fn ring_all(
    run: Arc<Run>,
    offer: Offer,
    roll: f64,
    winner: usize,
    rival: usize,
    talk: Duration,
) {
    let store = run.store.clone();
    let agents: Vec<String> = offer.agents().into_iter().map(|(a, _)| a).collect();
    let sid = offer.call_sid.clone();
    let mut legs = Vec::new();
    if roll < 0.5 {
        for (i, id) in agents.iter().enumerate() {
            let (run, store, named) = (run.clone(), store.clone(), offer.offer_ref_for(id));
            let answers = i == winner || i == rival;
            legs.push(tokio::spawn(async move {
                if answers {
                    let r = store
                        .leg_result(&named, OfferOutcome::Answered, "CAleg")
                        .await
                        .expect("answered");
                    run.answered(&named, &r);
                } else {
                    store
                        .leg_result(&named, OfferOutcome::Canceled, "")
                        .await
                        .expect("canceled");
                }
            }));
        }
        for l in legs {
            l.await.expect("leg");
        }
        tokio::time::sleep(talk).await;
        store
            .complete(
                &sid,
                Some(&offer.offer_ref_for(&agents[winner])),
                EndSource::Leg,
            )
            .await
            .expect("leg completed");
        store
            .complete(&sid, Some(&offer.offer_ref()), EndSource::Dial)
            .await
            .expect("dial completed");
    } else if roll < 0.85 {
        let outcomes = [
            OfferOutcome::NoAnswer,
            OfferOutcome::Busy,
            OfferOutcome::Failed,
            OfferOutcome::Canceled,
        ];
        for (i, id) in agents.iter().enumerate() {
            let (store, named) = (store.clone(), offer.offer_ref_for(id));
            let outcome = outcomes[(i + winner) % 4];
            legs.push(tokio::spawn(async move {
                store
                    .leg_result(&named, outcome, "")
                    .await
                    .expect("leg unanswered");
            }));
        }
        let (store2, named) = (store.clone(), offer.offer_ref());
        legs.push(tokio::spawn(async move {
            store2
                .offer_result(&named, OfferOutcome::NoAnswer, "")
                .await
                .expect("dial unanswered");
        }));
        for l in legs {
            l.await.expect("leg");
        }
    }
    // else the worker died holding the offer: only a check brings it back
}

async fn claimer(run: Arc<Run>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    while !run.stop.load(Ordering::Relaxed) {
        run.steps.fetch_add(1, Ordering::Relaxed);
        let lease = Duration::from_millis(rng.random_range(20..200));
        let offer = match run.store.claim(lease, rng.random()).await.expect("claim") {
            Claim::Offer(o) => o,
            Claim::Idle { .. } => {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..3))).await;
                continue;
            }
        };
        run.offers.fetch_add(1, Ordering::Relaxed);
        let store = run.store.clone();
        let roll: f64 = rng.random();
        let talk = Duration::from_millis(rng.random_range(0..15));
        let replay = rng.random_bool(0.2);
        if !offer.also.is_empty() {
            run.group_offers.fetch_add(1, Ordering::Relaxed);
            let n = offer.also.len() + 1;
            let (winner, rival) = (rng.random_range(0..n), rng.random_range(0..n));
            tokio::spawn(ring_all(run.clone(), offer, roll, winner, rival, talk));
            continue;
        }
        let run2 = run.clone();
        tokio::spawn(async move {
            let (sid, named) = (offer.call_sid.as_str(), offer.offer_ref());
            let result = |outcome| {
                let (store, named, run) = (store.clone(), named.clone(), run2.clone());
                async move {
                    let r = store
                        .offer_result(&named, outcome, "")
                        .await
                        .expect("offer result");
                    if outcome == OfferOutcome::Answered {
                        run.answered(&named, &r);
                    }
                }
            };
            let outcome = if roll < 0.45 {
                result(OfferOutcome::Answered).await;
                tokio::time::sleep(talk).await;
                store
                    .complete(sid, Some(&named), EndSource::Dial)
                    .await
                    .expect("complete");
                Some(OfferOutcome::Answered)
            } else if roll < 0.80 {
                let outcome = [
                    OfferOutcome::NoAnswer,
                    OfferOutcome::Busy,
                    OfferOutcome::Failed,
                    OfferOutcome::Canceled,
                ][((roll - 0.45) / 0.0875) as usize % 4];
                result(outcome).await;
                Some(outcome)
            } else if roll < 0.88 {
                store
                    .complete(sid, Some(&named), EndSource::Dial)
                    .await
                    .expect("complete before answer");
                None
            } else {
                // the worker died holding the offer: only a check brings it back
                None
            };
            // Twilio delivers some results twice, late: they must change nothing
            if let (true, Some(outcome)) = (replay, outcome) {
                tokio::time::sleep(talk).await;
                result(outcome).await;
            }
        });
    }
}

async fn callers(run: Arc<Run>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..CALLS {
        run.steps.fetch_add(1, Ordering::Relaxed);
        let sid = format!("CA{i:05}");
        let q = ["sales", "support", "vip", "desk"][rng.random_range(0..4)];
        let boost = Duration::from_millis(rng.random_range(0..2000));
        run.store
            .enqueue(&{
                let mut c = holding(&sid, q, "+1555");
                c.priority_boost = boost;
                if q == "sales" && rng.random_bool(0.3) {
                    c.skills = Skills::new([("spanish", 1)]);
                }
                c
            })
            .await
            .expect("enqueue");
        if let Ok(mut c) = run.calls.lock() {
            c.push(sid);
        }
        // a few earlier callers hang up, ask for a callback, or move queue
        let earlier = format!("CA{:05}", rng.random_range(0..=i));
        match rng.random_range(0..20) {
            0..=2 => {
                run.store
                    .abandon(&earlier, "hangup")
                    .await
                    .expect("abandon");
            }
            3 => {
                run.store
                    .request_callback(&earlier, "+15550000")
                    .await
                    .expect("cb");
            }
            4 => {
                run.store
                    .transfer(&earlier, "sales")
                    .await
                    .expect("transfer");
            }
            _ => {}
        }
        if i % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn agents_flapping(run: Arc<Run>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    while !run.stop.load(Ordering::Relaxed) {
        run.steps.fetch_add(1, Ordering::Relaxed);
        let id = format!("ag{}", rng.random_range(0..AGENTS));
        match rng.random_range(0..10) {
            0..=5 => {
                let ttl = Duration::from_millis(rng.random_range(5..400));
                let device = rng.random_bool(0.9);
                run.store
                    .heartbeat(&id, ttl, device)
                    .await
                    .expect("heartbeat");
            }
            6 | 7 => {
                run.store
                    .set_agent_status(&id, RequestedStatus::Available, "")
                    .await
                    .expect("available");
            }
            8 => {
                run.store
                    .set_agent_status(&id, RequestedStatus::Paused, "break")
                    .await
                    .expect("paused");
            }
            _ => {
                run.store
                    .set_agent_status(&id, RequestedStatus::Offline, "")
                    .await
                    .expect("offline");
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..3))).await;
    }
}

async fn reaper(run: Arc<Run>) {
    while !run.stop.load(Ordering::Relaxed) {
        run.store.reap(50).await.expect("reap");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Takes the calls whose lease passed and settles each the way a worker would after asking
/// Twilio: the phone never rang (back in line), it was answered, or the caller is gone.
async fn checker(run: Arc<Run>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    while !run.stop.load(Ordering::Relaxed) {
        let checks = run
            .store
            .take_checks(20, Duration::from_millis(50))
            .await
            .expect("take checks");
        for c in checks {
            let store = &run.store;
            let sid = c.offer.call_sid.as_str();
            match (c.state, rng.random_range(0..3)) {
                (CallState::Offered, 0) => {
                    store
                        .offer_result(&c.offer, OfferOutcome::Canceled, "")
                        .await
                        .expect("requeue");
                }
                (CallState::Offered, 1) => {
                    // Twilio says one leg talks: of a ring_all offer, any agent it rings
                    let mut named = c.offer.clone();
                    if let Some((agent, _)) = c.ringing.first() {
                        named.agent_id = agent.clone();
                    }
                    let r = store
                        .offer_result(&named, OfferOutcome::Answered, "CAleg")
                        .await
                        .expect("answered");
                    run.answered(&named, &r);
                }
                (CallState::Offered, _) => {
                    store.abandon(sid, "call_gone").await.expect("gone");
                }
                _ => {
                    store
                        .complete(sid, Some(&c.offer), EndSource::Check)
                        .await
                        .expect("complete");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_double_book_or_lose_a_call() {
    let mut sales = queue("sales", Strategy::LongestIdle);
    sales.wrapup = Duration::from_millis(10);
    sales.max_no_answer = 4;
    sales.calls_carry_skills = true;
    let mut support = queue("support", Strategy::FewestCalls);
    support.no_answer_delay = Duration::from_millis(5);
    // skills and widening in the mix: support requires billing 3, then 1, then nothing
    support.skills = Skills::new([("billing", 3)]);
    support.widen = vec![
        WidenStep {
            after: Duration::from_millis(50),
            min_level: Some(1),
            ..WidenStep::default()
        },
        WidenStep {
            after: Duration::from_millis(200),
            any_skill: true,
            ..WidenStep::default()
        },
    ];
    // vip offers tier 1 only, then every tier
    let mut vip = queue("vip", Strategy::Random);
    vip.widen = vec![WidenStep {
        after: Duration::from_millis(100),
        tiers: Some(3),
        ..WidenStep::default()
    }];
    // desk rings every ready agent of its best tier at once
    let mut desk = queue("desk", Strategy::RingAll);
    desk.no_answer_delay = Duration::from_millis(5);
    desk.max_no_answer = 6;
    let store = store_with(&[sales, support, vip, desk]).await;
    for i in 0..AGENTS {
        let mut spec = agent(
            &format!("ag{i}"),
            &[
                ("sales", 1 + (i % 2) as u32),
                ("support", 1),
                ("vip", 1 + (i % 3) as u32),
                ("desk", 1),
            ],
        );
        spec.capacity = if i % 5 == 0 { 2 } else { 1 };
        let mut skills = Vec::new();
        if i % 2 == 0 {
            skills.push(("billing", 1 + (i % 5) as u8));
        }
        if i % 3 == 0 {
            skills.push(("spanish", 2));
        }
        spec.skills = Skills::new(skills);
        online_agent(&store, &spec).await;
    }
    // and a few of desk's own, whom no other queue takes one at a time
    for i in 0..4 {
        online_agent(&store, &agent(&format!("dk{i}"), &[("desk", 1)])).await;
    }
    let run = Arc::new(Run {
        store: store.clone(),
        calls: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        steps: AtomicU64::new(0),
        offers: AtomicU64::new(0),
        group_offers: AtomicU64::new(0),
        connected: Mutex::new(HashMap::new()),
    });
    let mut tasks = Vec::new();
    for i in 0..CLAIMERS {
        tasks.push(tokio::spawn(claimer(run.clone(), 100 + i as u64)));
    }
    tasks.push(tokio::spawn(agents_flapping(run.clone(), 7)));
    tasks.push(tokio::spawn(agents_flapping(run.clone(), 8)));
    tasks.push(tokio::spawn(reaper(run.clone())));
    tasks.push(tokio::spawn(reaper(run.clone())));
    tasks.push(tokio::spawn(checker(run.clone(), 9)));
    tasks.push(tokio::spawn(checker(run.clone(), 10)));
    let calls = tokio::spawn(callers(run.clone(), 42));

    // sampled checks while everything runs
    let mut samples = 0;
    while !calls.is_finished() {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let entered = run.entered();
        let snap = store.snapshot(&entered).await.expect("snapshot");
        let v = invariant_violations(&snap, &entered, false);
        assert!(v.is_empty(), "sample {samples}: {v:#?}");
        samples += 1;
    }
    calls.await.expect("callers");
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("task");
    }
    tokio::time::sleep(Duration::from_millis(50)).await; // in-flight outcomes land

    let entered = run.entered();
    assert_eq!(entered.len(), CALLS);
    let snap = store.snapshot(&entered).await.expect("snapshot");
    let v = invariant_violations(&snap, &entered, true);
    assert!(v.is_empty(), "after the run: {v:#?}");
    assert!(samples >= 5, "only {samples} samples taken");
    let steps = run.steps.load(Ordering::Relaxed);
    let offers = run.offers.load(Ordering::Relaxed);
    assert!(steps > 3000, "only {steps} random steps");
    assert!(offers > 300, "only {offers} offers made");
    let group_offers = run.group_offers.load(Ordering::Relaxed);
    assert!(
        group_offers >= 10,
        "only {group_offers} ring_all offers rang several agents"
    );
    let twice: Vec<_> = run
        .connected
        .lock()
        .map(|m| {
            m.iter()
                .filter(|(_, n)| **n > 1)
                .map(|(k, n)| (k.clone(), *n))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        twice.is_empty(),
        "offers connected more than once: {twice:?}"
    );

    // settle: every call must still be accounted for, and an operator ending every call
    // must leave every agent free and every call final
    tokio::time::sleep(Duration::from_millis(250)).await;
    store.reap(10_000).await.expect("reap");
    for sid in &entered {
        match store.end_call(sid, "end of test").await.expect("end") {
            Transition::Done(_) => {}
            Transition::Stale(Some(s)) => assert!(s.is_final(), "{sid} left in {s}"),
            Transition::Stale(None) => panic!("{sid} lost"),
        }
    }
    let snap = store.snapshot(&entered).await.expect("snapshot");
    let v = invariant_violations(&snap, &entered, true);
    assert!(v.is_empty(), "after settling: {v:#?}");
    let states: HashSet<CallState> = snap.calls.iter().map(|c| c.state).collect();
    assert!(states.iter().all(|s| s.is_final()), "{states:?}");
    assert!(
        snap.agents.iter().all(|a| a.active == 0),
        "every agent is free"
    );
    assert!(snap.offers.is_empty());
}
