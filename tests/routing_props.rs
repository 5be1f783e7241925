//! Property test of the routing invariants: random sequences of every transition (enqueue
//! arriving or holding, arrive, claim, each offer result for the current offer or an earlier
//! one, complete from every source, abandon, callback and its customer outcome, transfer of
//! a waiting call and of a connected one (to a queue or a named agent),
//! re-entry, operator end, checks, heartbeats, statuses, lease expiry and reaping) against a
//! real Redis, with skills in the mix (agents with levels, a queue that requires one and
//! widens after a wait, calls that bring their own) and a `ring_all` queue (one offer rings
//! every ready agent of its best tier; each agent's leg answers, ends or is canceled on its
//! own, in any order with the `<Dial>`'s result); after every step the routing invariants
//! (docs/design.md) must hold and no call may be lost, and every offer must go to agents with
//! the skills the call required at the level its wait had reached.

mod support;

use std::time::Duration;

use callq::store::{
    Arrival, EndSource, OfferOutcome, OfferRef, RequestedStatus, Skills, Store,
    Strategy as Routing, WidenStep,
};
use proptest::prelude::*;
use support::*;

const AGENTS: [&str; 4] = ["a0", "a1", "a2", "a3"];
const QUEUES: [&str; 3] = ["sales", "support", "service"];

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        queue: usize,
        boost_s: u64,
        arriving: bool,
        /// The call requires Spanish at level 2 of its own.
        spanish: bool,
    },
    Arrive {
        call: usize,
    },
    /// A claim of one offer (`batch` 1) or of up to `batch` offers in one step.
    Claim {
        seed: u32,
        short_lease: bool,
        batch: usize,
    },
    /// A result for the call's current offer, or (stale) for the one before it.
    Result {
        call: usize,
        outcome: usize,
        stale: bool,
    },
    /// One agent's own leg of the call's current offer (of a ring_all offer, any agent it
    /// rang) reports an outcome (or, `outcome` 6, that the leg completed).
    LegResult {
        call: usize,
        agent: usize,
        outcome: usize,
    },
    Complete {
        call: usize,
        source: usize,
        stale: bool,
    },
    CallbackResult {
        call: usize,
        outcome: usize,
    },
    Reenter {
        call: usize,
    },
    EndCall {
        call: usize,
    },
    /// Twilio reports a recording of the call (one of two SIDs, so repeats happen).
    Record {
        call: usize,
        which: u8,
    },
    /// Take due checks and settle each as a worker might after asking Twilio.
    Checks {
        verdict: usize,
    },
    Abandon {
        call: usize,
    },
    Callback {
        call: usize,
    },
    Transfer {
        call: usize,
        queue: usize,
    },
    /// The agent on the call (or, stale, another) transfers it, to a queue or a named agent.
    HandOver {
        call: usize,
        queue: usize,
        to_agent: Option<usize>,
        wrong_agent: bool,
    },
    Heartbeat {
        agent: usize,
        device: bool,
        short: bool,
    },
    Status {
        agent: usize,
        status: usize,
    },
    Sleep {
        ms: u64,
    },
    Reap,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..3u64, prop::bool::weighted(0.3), prop::bool::weighted(0.3))
            .prop_map(|(queue, boost_s, arriving, spanish)| Op::Enqueue { queue, boost_s, arriving, spanish }),
        1 => (0..12usize).prop_map(|call| Op::Arrive { call }),
        4 => (any::<u32>(), prop::bool::weighted(0.2), prop_oneof![3 => Just(1usize), 1 => 2..5usize])
            .prop_map(|(seed, short_lease, batch)| Op::Claim { seed, short_lease, batch }),
        3 => (0..12usize, 0..6usize, prop::bool::weighted(0.2))
            .prop_map(|(call, outcome, stale)| Op::Result { call, outcome, stale }),
        3 => (0..12usize, 0..4usize, 0..7usize)
            .prop_map(|(call, agent, outcome)| Op::LegResult { call, agent, outcome }),
        2 => (0..12usize, 0..4usize, prop::bool::weighted(0.2))
            .prop_map(|(call, source, stale)| Op::Complete { call, source, stale }),
        1 => (0..12usize, 0..5usize).prop_map(|(call, outcome)| Op::CallbackResult { call, outcome }),
        1 => (0..12usize).prop_map(|call| Op::Reenter { call }),
        1 => (0..12usize).prop_map(|call| Op::EndCall { call }),
        1 => (0..12usize, 0..2u8).prop_map(|(call, which)| Op::Record { call, which }),
        1 => (0..5usize).prop_map(|verdict| Op::Checks { verdict }),
        1 => (0..12usize).prop_map(|call| Op::Abandon { call }),
        1 => (0..12usize).prop_map(|call| Op::Callback { call }),
        1 => (0..12usize, 0..3usize).prop_map(|(call, queue)| Op::Transfer { call, queue }),
        1 => (0..12usize, 0..3usize, prop::option::of(0..4usize), prop::bool::weighted(0.2))
            .prop_map(|(call, queue, to_agent, wrong_agent)| Op::HandOver { call, queue, to_agent, wrong_agent }),
        2 => (0..4usize, prop::bool::weighted(0.8), prop::bool::weighted(0.2))
            .prop_map(|(agent, device, short)| Op::Heartbeat { agent, device, short }),
        2 => (0..4usize, 0..3usize).prop_map(|(agent, status)| Op::Status { agent, status }),
        1 => (1..40u64).prop_map(|ms| Op::Sleep { ms }),
        1 => Just(Op::Reap),
    ]
}

/// Support's one widening step: from this wait on, billing at level 1 will do.
const WIDEN_AFTER: Duration = Duration::from_millis(30);

/// Invariant 7: the agent offered the call has the skills it required at the level its wait
/// had reached (`waited`, as claim measured it), unless an agent transferred the call to
/// this one by name (`pins`: the (call, agent) pairs named so far).
async fn offer_meets_skills(store: &Store, o: &callq::store::Offer, pins: &[(String, String)]) {
    if pins.contains(&(o.call_sid.clone(), o.agent_id.clone())) {
        // transferred by name to this agent: the agent who named them chose them
        return;
    }
    let c = store
        .call(&o.call_sid)
        .await
        .expect("read")
        .expect("exists");
    // a ring_all offer: every agent it rings, all of one tier, in the call's own queue
    if !o.also.is_empty() {
        assert_eq!(c.queue, "service", "{o:?}");
        let tiers: std::collections::BTreeSet<u32> = {
            let mut t = std::collections::BTreeSet::new();
            for (id, _) in o.agents() {
                let a = store.agent(&id).await.expect("read").expect("exists");
                t.extend(
                    a.queues
                        .iter()
                        .filter(|(q, _)| q == "service")
                        .map(|(_, t)| *t),
                );
            }
            t
        };
        assert_eq!(tiers.len(), 1, "{o:?} rings agents of tiers {tiers:?}");
    }
    for (id, _) in o.agents() {
        agent_meets_skills(store, o, &c, &id).await;
    }
}

async fn agent_meets_skills(
    store: &Store,
    o: &callq::store::Offer,
    c: &callq::store::CallRecord,
    id: &str,
) {
    let a = store.agent(id).await.expect("read").expect("exists");
    let mut need = if c.skills.is_empty() && c.queue == "support" {
        Skills::new([("billing", 2)])
    } else {
        c.skills.clone()
    };
    if c.queue == "support" && o.waited >= WIDEN_AFTER {
        for level in need.0.values_mut() {
            *level = (*level).min(1);
        }
    }
    assert!(
        a.skills.meet(&need),
        "{} offered to {} with {:?}, needing {need:?} after {:?}",
        o.call_sid,
        id,
        a.skills,
        o.waited
    );
}

async fn setup() -> Store {
    let mut sales = queue("sales", Routing::LongestIdle);
    sales.wrapup = Duration::from_millis(15);
    sales.max_no_answer = 2;
    sales.callback_retries = 1;
    sales.callback_retry_delay = Duration::from_millis(10);
    sales.check_after = Duration::from_millis(20);
    sales.calls_carry_skills = true;
    let mut support = queue("support", Routing::RoundRobin);
    support.no_answer_delay = Duration::from_millis(10);
    support.skills = Skills::new([("billing", 2)]);
    support.widen = vec![WidenStep {
        after: WIDEN_AFTER,
        min_level: Some(1),
        ..WidenStep::default()
    }];
    let mut service = queue("service", Routing::RingAll);
    service.no_answer_delay = Duration::from_millis(10);
    service.max_no_answer = 2;
    let store = store_with(&[sales, support, service]).await;
    let mut specs = vec![
        agent("a0", &[("sales", 1), ("service", 1)]),
        agent("a1", &[("sales", 2), ("support", 1), ("service", 2)]),
        agent("a2", &[("support", 1), ("service", 1)]),
        agent("a3", &[("sales", 1), ("support", 2), ("service", 1)]),
    ];
    specs[3].capacity = 2;
    specs[0].skills = Skills::new([("spanish", 3)]);
    specs[1].skills = Skills::new([("billing", 2)]);
    specs[2].skills = Skills::new([("billing", 1), ("spanish", 2)]);
    specs[3].skills = Skills::new([("billing", 3), ("spanish", 1)]);
    for s in &specs {
        online_agent(&store, s).await;
    }
    store
}

async fn apply(store: &Store, calls: &mut Vec<String>, pins: &mut Vec<(String, String)>, op: &Op) {
    let pick = |i: usize| calls.get(i % calls.len().max(1)).cloned();
    let outcomes = [
        OfferOutcome::Answered,
        OfferOutcome::NoAnswer,
        OfferOutcome::Busy,
        OfferOutcome::Failed,
        OfferOutcome::Canceled,
        OfferOutcome::Refused,
    ];
    let sources = [
        EndSource::Dial,
        EndSource::Leg,
        EndSource::Status,
        EndSource::Check,
    ];
    // the call's current offer, or the one before it (a late result)
    let offer_of = |sid: &str, c: &callq::store::CallRecord, stale: bool| OfferRef {
        call_sid: sid.to_string(),
        agent_id: c.agent.clone().unwrap_or_else(|| "a0".into()),
        attempt: if stale {
            c.attempts.saturating_sub(1)
        } else {
            c.attempts
        },
    };
    let statuses = [
        RequestedStatus::Available,
        RequestedStatus::Paused,
        RequestedStatus::Offline,
    ];
    match op {
        Op::Enqueue {
            queue,
            boost_s,
            arriving,
            spanish,
        } => {
            let sid = format!("CA{:04}", calls.len());
            let mut call = holding(&sid, QUEUES[*queue], "+1");
            call.priority_boost = Duration::from_secs(*boost_s);
            if *spanish {
                call.skills = Skills::new([("spanish", 2)]);
            }
            if *arriving {
                call.arrival = Arrival::Arriving;
            }
            let e = store.enqueue(&call).await.expect("enqueue");
            assert!(e.created);
            calls.push(sid);
        }
        Op::Arrive { call } => {
            if let Some(sid) = pick(*call) {
                store.arrive(&sid).await.expect("arrive");
            }
        }
        Op::Claim {
            seed,
            short_lease,
            batch,
        } => {
            let lease = if *short_lease {
                Duration::from_millis(5)
            } else {
                Duration::from_secs(30)
            };
            if *batch == 1 {
                if let callq::store::Claim::Offer(o) =
                    store.claim(lease, *seed).await.expect("claim")
                {
                    offer_meets_skills(store, &o, pins).await;
                }
            } else {
                let got = store
                    .claim_many(lease, *seed, *batch)
                    .await
                    .expect("claim many");
                assert!(
                    got.offers.len() <= *batch,
                    "at most {batch} offers: {got:?}"
                );
                if got.offers.len() < *batch {
                    assert!(
                        got.idle.is_some(),
                        "fewer offers than asked means idle: {got:?}"
                    );
                }
                let mut calls: Vec<&str> = got.offers.iter().map(|o| o.call_sid.as_str()).collect();
                calls.sort_unstable();
                calls.dedup();
                assert_eq!(
                    calls.len(),
                    got.offers.len(),
                    "a call offered twice in one claim: {got:?}"
                );
                for o in &got.offers {
                    offer_meets_skills(store, o, pins).await;
                }
            }
        }
        Op::Result {
            call,
            outcome,
            stale,
        } => {
            if let Some(sid) = pick(*call) {
                let c = store.call(&sid).await.expect("read").expect("exists");
                store
                    .offer_result(&offer_of(&sid, &c, *stale), outcomes[*outcome], "")
                    .await
                    .expect("result");
            }
        }
        Op::LegResult {
            call,
            agent,
            outcome,
        } => {
            if let Some(sid) = pick(*call) {
                let c = store.call(&sid).await.expect("read").expect("exists");
                // any agent a ring_all offer rang (or, now and then, one it did not)
                let agent_id = if c.group.is_empty() || *agent == 3 {
                    c.agent.clone().unwrap_or_else(|| AGENTS[*agent].into())
                } else {
                    c.group[*agent % c.group.len()].clone()
                };
                let named = OfferRef {
                    call_sid: sid.clone(),
                    agent_id,
                    attempt: c.attempts,
                };
                if *outcome == 6 {
                    store
                        .complete(&sid, Some(&named), EndSource::Leg)
                        .await
                        .expect("leg completed");
                } else {
                    store
                        .leg_result(&named, outcomes[*outcome], "CAleg")
                        .await
                        .expect("leg result");
                }
            }
        }
        Op::Complete {
            call,
            source,
            stale,
        } => {
            if let Some(sid) = pick(*call) {
                let c = store.call(&sid).await.expect("read").expect("exists");
                let source = sources[*source];
                let offer = offer_of(&sid, &c, *stale);
                let named = (source != EndSource::Status).then_some(&offer);
                store.complete(&sid, named, source).await.expect("complete");
            }
        }
        Op::CallbackResult { call, outcome } => {
            if let Some(sid) = pick(*call) {
                let c = store.call(&sid).await.expect("read").expect("exists");
                let outcome = outcomes[1 + *outcome % 5];
                store
                    .callback_result(&offer_of(&sid, &c, false), outcome, "prop", Duration::ZERO)
                    .await
                    .expect("callback result");
            }
        }
        Op::Reenter { call } => {
            if let Some(sid) = pick(*call) {
                store.reenter(&sid).await.expect("reenter");
            }
        }
        Op::EndCall { call } => {
            if let Some(sid) = pick(*call) {
                store.end_call(&sid, "prop").await.expect("end");
            }
        }
        Op::Record { call, which } => {
            if let Some(sid) = pick(*call) {
                let recording = callq::store::Recording {
                    sid: format!("RE{which:032x}"),
                    url: format!(
                        "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE{which}"
                    ),
                    duration_s: 3,
                };
                let before = store.call(&sid).await.expect("read").map(|c| c.state);
                store.record(&sid, &recording).await.expect("record");
                let after = store.call(&sid).await.expect("read").map(|c| c.state);
                assert_eq!(before, after, "a recording never moves a call");
            }
        }
        Op::Checks { verdict } => {
            for check in store
                .take_checks(5, Duration::from_millis(20))
                .await
                .expect("checks")
            {
                // Twilio may say any agent of a ring_all offer answered
                let mut named = check.offer.clone();
                if let Some((agent, _)) = check.ringing.last() {
                    named.agent_id = agent.clone();
                }
                let offer = &named;
                let sid = offer.call_sid.as_str();
                match verdict {
                    0 => {
                        store
                            .offer_result(offer, OfferOutcome::Answered, "CAleg")
                            .await
                            .expect("answered");
                    }
                    1 => {
                        store
                            .offer_result(offer, OfferOutcome::Canceled, "")
                            .await
                            .expect("canceled");
                    }
                    2 => {
                        store
                            .complete(sid, Some(offer), EndSource::Check)
                            .await
                            .expect("complete");
                    }
                    3 => {
                        store.abandon(sid, "call_gone").await.expect("abandon");
                    }
                    _ => {
                        store.extend_offer(offer, None, None).await.expect("extend");
                    }
                }
            }
        }
        Op::Abandon { call } => {
            if let Some(sid) = pick(*call) {
                store.abandon(&sid, "hangup").await.expect("abandon");
            }
        }
        Op::Callback { call } => {
            if let Some(sid) = pick(*call) {
                store
                    .request_callback(&sid, "+15551230000")
                    .await
                    .expect("callback");
            }
        }
        Op::Transfer { call, queue } => {
            if let Some(sid) = pick(*call) {
                store
                    .transfer(&sid, QUEUES[*queue])
                    .await
                    .expect("transfer");
            }
        }
        Op::HandOver {
            call,
            queue,
            to_agent,
            wrong_agent,
        } => {
            if let Some(sid) = pick(*call) {
                let c = store.call(&sid).await.expect("read").expect("exists");
                let holder = c.agent.clone().unwrap_or_else(|| "a0".into());
                let asking = if *wrong_agent { "a2" } else { holder.as_str() };
                let named = to_agent.map(|a| AGENTS[a]);
                let r = store
                    .transfer_connected(&sid, asking, QUEUES[*queue], named)
                    .await
                    .expect("hand over");
                if let (callq::store::HandOver::Transferred { .. }, Some(a)) = (r, named) {
                    pins.push((sid.clone(), a.to_string()));
                }
            }
        }
        Op::Heartbeat {
            agent,
            device,
            short,
        } => {
            let ttl = if *short {
                Duration::from_millis(5)
            } else {
                Duration::from_secs(30)
            };
            store
                .heartbeat(AGENTS[*agent], ttl, *device)
                .await
                .expect("heartbeat");
        }
        Op::Status { agent, status } => {
            store
                .set_agent_status(AGENTS[*agent], statuses[*status], "prop")
                .await
                .expect("status");
        }
        Op::Sleep { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
        Op::Reap => {
            store.reap(100).await.expect("reap");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]

    /// The same, every call entering (or moved to) the ring_all queue: offers that ring
    /// several agents at once, each agent's leg reporting on its own, all the time.
    #[test]
    fn invariants_hold_with_ring_all_offers(ops in prop::collection::vec(op(), 1..80)) {
        let ops: Vec<Op> = ops.into_iter().map(|op| match op {
            Op::Enqueue { boost_s, arriving, spanish, .. } =>
                Op::Enqueue { queue: 2, boost_s, arriving, spanish },
            Op::Transfer { call, .. } => Op::Transfer { call, queue: 2 },
            Op::HandOver { call, to_agent, wrong_agent, .. } =>
                Op::HandOver { call, queue: 2, to_agent, wrong_agent },
            op => op,
        }).collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let store = setup().await;
            let mut calls = Vec::new();
            let mut pins = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                apply(&store, &mut calls, &mut pins, op).await;
                let snap = store.snapshot(&calls).await.expect("snapshot");
                let v = invariant_violations(&snap, &calls, true);
                assert!(v.is_empty(), "after step {i} {op:?}: {v:#?}");
            }
        });
    }

    #[test]
    fn invariants_hold_after_every_transition(ops in prop::collection::vec(op(), 1..80)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let store = setup().await;
            let mut calls = Vec::new();
            let mut pins = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                apply(&store, &mut calls, &mut pins, op).await;
                let snap = store.snapshot(&calls).await.expect("snapshot");
                let v = invariant_violations(&snap, &calls, true);
                assert!(v.is_empty(), "after step {i} {op:?}: {v:#?}");
            }
        });
    }
}
