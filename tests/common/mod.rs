//! The one test harness every integration test uses: a private `redis-server` per test
//! binary (on a free port, in a temp dir, stopped when the binary exits), and a fresh centre
//! per test so tests never see each other's keys.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use callq::embedded_redis::EmbeddedRedis;
use callq::store::{AgentSpec, QueueSettings, RequestedStatus, Store, Strategy};

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

/// A store on a centre no other test uses.
pub fn fresh_store() -> Store {
    let n = CENTRE.fetch_add(1, Ordering::SeqCst);
    let centre = format!("t{}-{n}", std::process::id());
    Store::connect(&redis_url(), &centre, 16).expect("store connects")
}

pub fn queue(name: &str, strategy: Strategy) -> QueueSettings {
    QueueSettings {
        name: name.to_string(),
        strategy,
        ring_timeout: Duration::from_secs(20),
        wrapup: Duration::ZERO,
        max_no_answer: 3,
        no_answer_delay: Duration::ZERO,
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
    }
}

/// Create an agent, give it a live heartbeat with a registered device, and make it available.
pub async fn online_agent(store: &Store, spec: &AgentSpec) {
    store.upsert_agent(spec).await.expect("agent created");
    store
        .heartbeat(&spec.id, Duration::from_secs(30), true)
        .await
        .expect("heartbeat");
    store
        .set_agent_status(&spec.id, RequestedStatus::Available, "")
        .await
        .expect("available");
}

use callq::store::read::Snapshot;
use callq::store::{AgentStatus, CallState};

/// Check DESIGN.md's four routing invariants on a consistent snapshot that includes every
/// call in `entered`. Returns the violations found (empty when all hold).
pub fn invariant_violations(snap: &Snapshot, entered: &[String]) -> Vec<String> {
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
    // 1. reserved/busy agents are in no ready set and hold no more calls than capacity
    for a in &snap.agents {
        let held = snap
            .calls
            .iter()
            .filter(|c| matches!(c.state, CallState::Offered | CallState::Connected))
            .filter(|c| c.agent.as_deref() == Some(a.id.as_str()))
            .count() as u32;
        if held > a.capacity {
            v.push(format!(
                "agent {} holds {held} calls, capacity {}",
                a.id, a.capacity
            ));
        }
        if held != a.active && entered.len() == snap.calls.len() {
            v.push(format!(
                "agent {} active={} but holds {held}",
                a.id, a.active
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
    }
    // 2. a waiting call is in exactly one waiting set (its queue's) and has no agent
    for c in &snap.calls {
        let sets: Vec<&String> = snap
            .waiting
            .iter()
            .filter(|(_, m)| m.contains(&c.sid))
            .map(|(q, _)| q)
            .collect();
        let offered = snap.offers.iter().filter(|s| **s == c.sid).count();
        match c.state {
            CallState::Waiting | CallState::Callback => {
                if sets.len() != 1 || sets[0] != &c.queue {
                    v.push(format!(
                        "waiting call {} is in waiting sets {sets:?}",
                        c.sid
                    ));
                }
                if c.agent.is_some() {
                    v.push(format!("waiting call {} has agent {:?}", c.sid, c.agent));
                }
                if offered != 0 {
                    v.push(format!("waiting call {} has an offer lease", c.sid));
                }
            }
            // 4. an offered call is offered to one agent, under one lease, and not waiting
            CallState::Offered => {
                if c.agent.is_none() || offered != 1 || !sets.is_empty() {
                    v.push(format!(
                        "offered call {} agent {:?} leases {offered} waiting {sets:?}",
                        c.sid, c.agent
                    ));
                }
            }
            _ => {
                if !sets.is_empty() || offered != 0 {
                    v.push(format!("{} call {} still queued/offered", c.state, c.sid));
                }
            }
        }
    }
    v
}

/// Take a snapshot and assert the invariants hold.
pub async fn assert_invariants(store: &Store, entered: &[String]) {
    let snap = store.snapshot(entered).await.expect("snapshot");
    let v = invariant_violations(&snap, entered);
    assert!(v.is_empty(), "invariants violated: {v:#?}");
}
