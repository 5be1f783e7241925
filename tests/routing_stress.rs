//! Concurrent stress of the routing core: 8 claimers (workers that answer, miss, fail or die
//! holding an offer), callers entering, hanging up and asking for callbacks, agents flapping
//! heartbeats, devices and statuses, and 2 reapers, all at once against one real Redis for
//! thousands of steps. Snapshots taken while it runs and after it settles must satisfy the
//! four invariants of `docs/design.md`: zero double-bookings, zero lost calls.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callq::store::{
    CallKind, CallState, Claim, OfferOutcome, RequestedStatus, Store, Strategy, Transition,
};
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CLAIMERS: usize = 8;
const CALLS: usize = 1500;
const AGENTS: usize = 16;

struct Run {
    store: Store,
    calls: Mutex<Vec<String>>,
    stop: AtomicBool,
    steps: AtomicU64,
    offers: AtomicU64,
}

impl Run {
    fn entered(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
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
        tokio::spawn(async move {
            let (sid, agent) = (offer.call_sid.as_str(), offer.agent_id.as_str());
            if roll < 0.45 {
                store
                    .offer_result(sid, agent, OfferOutcome::Answered)
                    .await
                    .expect("answer");
                tokio::time::sleep(talk).await;
                store.complete(sid).await.expect("complete");
            } else if roll < 0.60 {
                store
                    .offer_result(sid, agent, OfferOutcome::NoAnswer)
                    .await
                    .expect("miss");
            } else if roll < 0.67 {
                store
                    .offer_result(sid, agent, OfferOutcome::Busy)
                    .await
                    .expect("busy");
            } else if roll < 0.74 {
                store
                    .offer_result(sid, agent, OfferOutcome::Failed)
                    .await
                    .expect("failed");
            } else if roll < 0.80 {
                store
                    .offer_result(sid, agent, OfferOutcome::Canceled)
                    .await
                    .expect("cancel");
            } else if roll < 0.88 {
                store.complete(sid).await.expect("complete before answer");
            } else {
                // the worker died holding the offer: only the lease brings it back
            }
        });
    }
}

async fn callers(run: Arc<Run>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..CALLS {
        run.steps.fetch_add(1, Ordering::Relaxed);
        let sid = format!("CA{i:05}");
        let q = ["sales", "support", "vip"][rng.random_range(0..3)];
        let boost = Duration::from_millis(rng.random_range(0..2000));
        run.store
            .enqueue(&sid, q, "+1555", "+1800", boost, CallKind::Inbound)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_double_book_or_lose_a_call() {
    let mut sales = queue("sales", Strategy::LongestIdle);
    sales.wrapup = Duration::from_millis(10);
    sales.max_no_answer = 4;
    let mut support = queue("support", Strategy::FewestCalls);
    support.no_answer_delay = Duration::from_millis(5);
    let vip = queue("vip", Strategy::Random);
    let store = store_with(&[sales, support, vip]).await;
    for i in 0..AGENTS {
        let mut spec = agent(
            &format!("ag{i}"),
            &[
                ("sales", 1 + (i % 2) as u32),
                ("support", 1),
                ("vip", 1 + (i % 3) as u32),
            ],
        );
        spec.capacity = if i % 5 == 0 { 2 } else { 1 };
        online_agent(&store, &spec).await;
    }
    let run = Arc::new(Run {
        store: store.clone(),
        calls: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        steps: AtomicU64::new(0),
        offers: AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    for i in 0..CLAIMERS {
        tasks.push(tokio::spawn(claimer(run.clone(), 100 + i as u64)));
    }
    tasks.push(tokio::spawn(agents_flapping(run.clone(), 7)));
    tasks.push(tokio::spawn(agents_flapping(run.clone(), 8)));
    tasks.push(tokio::spawn(reaper(run.clone())));
    tasks.push(tokio::spawn(reaper(run.clone())));
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

    // settle: let leases run out, then every non-final call must still be accounted for,
    // and hanging everyone up must leave every agent free and every call final
    tokio::time::sleep(Duration::from_millis(250)).await;
    store.reap(10_000).await.expect("reap");
    for sid in &entered {
        match store.abandon(sid, "end of test").await.expect("abandon") {
            Transition::Done(_) => {}
            Transition::Stale(Some(CallState::Connected)) => {
                store.complete(sid).await.expect("complete");
            }
            Transition::Stale(Some(CallState::Callback)) => {}
            Transition::Stale(Some(s)) => assert!(s.is_final(), "{sid} left in {s}"),
            Transition::Stale(None) => panic!("{sid} lost"),
        }
    }
    let snap = store.snapshot(&entered).await.expect("snapshot");
    let v = invariant_violations(&snap, &entered, true);
    assert!(v.is_empty(), "after settling: {v:#?}");
    let states: HashSet<CallState> = snap.calls.iter().map(|c| c.state).collect();
    assert!(
        states
            .iter()
            .all(|s| s.is_final() || *s == CallState::Callback),
        "{states:?}"
    );
    assert!(
        snap.agents.iter().all(|a| a.active == 0),
        "every agent is free"
    );
    assert!(snap.offers.is_empty());
}
