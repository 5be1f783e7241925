//! Property test of the routing invariants: random sequences of every transition (enqueue,
//! claim, each offer result, complete, abandon, callback, transfer, heartbeats, statuses,
//! lease expiry and reaping) against a real Redis; after every step the four invariants of
//! `docs/design.md` must hold and no call may be lost.

mod common;

use std::time::Duration;

use callq::store::{CallKind, OfferOutcome, RequestedStatus, Store, Strategy as Routing};
use common::*;
use proptest::prelude::*;

const AGENTS: [&str; 4] = ["a0", "a1", "a2", "a3"];
const QUEUES: [&str; 2] = ["sales", "support"];

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        queue: usize,
        boost_s: u64,
    },
    Claim {
        seed: u32,
        short_lease: bool,
    },
    Result {
        call: usize,
        outcome: usize,
    },
    Complete {
        call: usize,
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
        3 => (0..2usize, 0..3u64).prop_map(|(queue, boost_s)| Op::Enqueue { queue, boost_s }),
        4 => (any::<u32>(), prop::bool::weighted(0.2))
            .prop_map(|(seed, short_lease)| Op::Claim { seed, short_lease }),
        3 => (0..12usize, 0..5usize).prop_map(|(call, outcome)| Op::Result { call, outcome }),
        2 => (0..12usize).prop_map(|call| Op::Complete { call }),
        1 => (0..12usize).prop_map(|call| Op::Abandon { call }),
        1 => (0..12usize).prop_map(|call| Op::Callback { call }),
        1 => (0..12usize, 0..2usize).prop_map(|(call, queue)| Op::Transfer { call, queue }),
        2 => (0..4usize, prop::bool::weighted(0.8), prop::bool::weighted(0.2))
            .prop_map(|(agent, device, short)| Op::Heartbeat { agent, device, short }),
        2 => (0..4usize, 0..3usize).prop_map(|(agent, status)| Op::Status { agent, status }),
        1 => (1..40u64).prop_map(|ms| Op::Sleep { ms }),
        1 => Just(Op::Reap),
    ]
}

async fn setup() -> Store {
    let mut sales = queue("sales", Routing::LongestIdle);
    sales.wrapup = Duration::from_millis(15);
    sales.max_no_answer = 2;
    let mut support = queue("support", Routing::RoundRobin);
    support.no_answer_delay = Duration::from_millis(10);
    let store = store_with(&[sales, support]).await;
    let mut specs = vec![
        agent("a0", &[("sales", 1)]),
        agent("a1", &[("sales", 2), ("support", 1)]),
        agent("a2", &[("support", 1)]),
        agent("a3", &[("sales", 1), ("support", 2)]),
    ];
    specs[3].capacity = 2;
    for s in &specs {
        online_agent(&store, s).await;
    }
    store
}

async fn apply(store: &Store, calls: &mut Vec<String>, op: &Op) {
    let pick = |i: usize| calls.get(i % calls.len().max(1)).cloned();
    let outcomes = [
        OfferOutcome::Answered,
        OfferOutcome::NoAnswer,
        OfferOutcome::Busy,
        OfferOutcome::Failed,
        OfferOutcome::Canceled,
    ];
    let statuses = [
        RequestedStatus::Available,
        RequestedStatus::Paused,
        RequestedStatus::Offline,
    ];
    match op {
        Op::Enqueue { queue, boost_s } => {
            let sid = format!("CA{:04}", calls.len());
            let e = store
                .enqueue(
                    &sid,
                    QUEUES[*queue],
                    "+1",
                    "+2",
                    Duration::from_secs(*boost_s),
                    CallKind::Inbound,
                )
                .await
                .expect("enqueue");
            assert!(e.created);
            calls.push(sid);
        }
        Op::Claim { seed, short_lease } => {
            let lease = if *short_lease {
                Duration::from_millis(5)
            } else {
                Duration::from_secs(30)
            };
            store.claim(lease, *seed).await.expect("claim");
        }
        Op::Result { call, outcome } => {
            if let Some(sid) = pick(*call) {
                let c = store.call(&sid).await.expect("read").expect("exists");
                let agent = c.agent.unwrap_or_else(|| "a0".into());
                store
                    .offer_result(&sid, &agent, outcomes[*outcome])
                    .await
                    .expect("result");
            }
        }
        Op::Complete { call } => {
            if let Some(sid) = pick(*call) {
                store.complete(&sid).await.expect("complete");
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

    #[test]
    fn invariants_hold_after_every_transition(ops in prop::collection::vec(op(), 1..80)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let store = setup().await;
            let mut calls = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                apply(&store, &mut calls, op).await;
                let snap = store.snapshot(&calls).await.expect("snapshot");
                let v = invariant_violations(&snap, &calls, true);
                assert!(v.is_empty(), "after step {i} {op:?}: {v:#?}");
            }
        });
    }
}
