//! Every routing transition against a real Redis, happy and unhappy paths. Each test runs on
//! its own centre of the shared test redis-server (see `common`).

mod common;

use std::time::Duration;

use callq::store::*;
use common::*;

const LEASE: Duration = Duration::from_secs(30);

async fn enqueue(store: &Store, sid: &str, q: &str) -> Enqueued {
    store
        .enqueue(
            sid,
            q,
            "+15550001111",
            "+15005550001",
            Duration::ZERO,
            CallKind::Inbound,
        )
        .await
        .expect("enqueue")
}

async fn claim(store: &Store) -> Option<Offer> {
    match store.claim(LEASE, 7).await.expect("claim") {
        Claim::Offer(o) => Some(o),
        Claim::Idle { .. } => None,
    }
}

async fn state(store: &Store, sid: &str) -> CallState {
    store
        .call(sid)
        .await
        .expect("read")
        .expect("call exists")
        .state
}

async fn status(store: &Store, id: &str) -> AgentStatus {
    store
        .agent(id)
        .await
        .expect("read")
        .expect("agent exists")
        .status
}

fn sids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn enqueue_is_idempotent_per_call_sid() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    let first = enqueue(&store, "CA1", "sales").await;
    assert!(first.created);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = enqueue(&store, "CA1", "sales").await;
    assert!(!again.created, "a retried webhook makes no second entry");
    assert_eq!(again.rank, first.rank, "the retry keeps the original rank");
    let snap = store.snapshot(&sids(&["CA1"])).await.expect("snapshot");
    assert_eq!(snap.waiting["sales"], vec!["CA1".to_string()]);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn enqueue_to_an_unknown_queue_is_refused() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    let err = store
        .enqueue("CA1", "nope", "", "", Duration::ZERO, CallKind::Inbound)
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::UnknownQueue(q) if q == "nope"));
    let err = store
        .enqueue("CA,1", "sales", "", "", Duration::ZERO, CallKind::Inbound)
        .await
        .expect_err("bad sid refused");
    assert!(matches!(err, StoreError::Invalid { .. }));
}

#[tokio::test]
async fn claim_reserves_agent_and_call_together() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    assert_eq!(claim(&store).await, None, "no call, no offer");
    enqueue(&store, "CA1", "sales").await;
    let offer = claim(&store).await.expect("offer");
    assert_eq!(
        (offer.call_sid.as_str(), offer.agent_id.as_str()),
        ("CA1", "a1")
    );
    assert_eq!(offer.identity, "client-a1");
    assert_eq!(offer.attempt, 1);
    assert_eq!(offer.ring_timeout, Duration::from_secs(20));
    assert_eq!(state(&store, "CA1").await, CallState::Offered);
    assert_eq!(status(&store, "a1").await, AgentStatus::Reserved);
    enqueue(&store, "CA2", "sales").await;
    assert_eq!(
        claim(&store).await,
        None,
        "a reserved agent gets no second call"
    );
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn answered_then_completed_goes_through_wrapup_to_available() {
    let mut q = queue("sales", Strategy::LongestIdle);
    q.wrapup = Duration::from_millis(300);
    let store = store_with(&[q]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    enqueue(&store, "CA2", "sales").await;
    claim(&store).await.expect("offer");
    let r = store
        .offer_result("CA1", "a1", OfferOutcome::Answered)
        .await
        .expect("answered");
    assert_eq!(r, OfferResult::Connected);
    assert_eq!(state(&store, "CA1").await, CallState::Connected);
    assert_eq!(status(&store, "a1").await, AgentStatus::Busy);
    let done = store.complete("CA1").await.expect("complete");
    assert_eq!(done, Transition::Done("a1".to_string()));
    assert_eq!(state(&store, "CA1").await, CallState::Completed);
    assert_eq!(status(&store, "a1").await, AgentStatus::Wrapup);
    match store.claim(LEASE, 0).await.expect("claim") {
        Claim::Idle { next_due_ms } => assert!(next_due_ms.is_some(), "wrap-up end is reported"),
        Claim::Offer(o) => panic!("offered {o:?} during wrap-up"),
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    let offer = claim(&store).await.expect("offered once wrap-up ended");
    assert_eq!(offer.call_sid, "CA2");
    let agent = store.agent("a1").await.expect("read").expect("agent");
    assert_eq!(agent.handled, 1);
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn no_answer_returns_call_to_its_original_rank_and_offers_next_agent() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    online_agent(&store, &agent("a2", &[("sales", 1)])).await;
    let first = enqueue(&store, "CA-old", "sales").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    enqueue(&store, "CA-new", "sales").await;
    let o1 = claim(&store).await.expect("offer");
    assert_eq!(
        (o1.call_sid.as_str(), o1.agent_id.as_str()),
        ("CA-old", "a1")
    );
    let o2 = claim(&store).await.expect("offer");
    assert_eq!(
        (o2.call_sid.as_str(), o2.agent_id.as_str()),
        ("CA-new", "a2")
    );
    let r = store
        .offer_result("CA-old", "a1", OfferOutcome::NoAnswer)
        .await
        .expect("no-answer");
    assert!(matches!(r, OfferResult::Requeued(_)));
    let call = store.call("CA-old").await.expect("read").expect("call");
    assert_eq!(call.state, CallState::Waiting);
    assert_eq!(call.rank, first.rank, "back at its original rank");
    assert_eq!(call.agent, None);
    // a2 misses CA-new too; both calls wait; CA-old must be ahead
    store
        .offer_result("CA-new", "a2", OfferOutcome::Busy)
        .await
        .expect("busy");
    let snap = store
        .snapshot(&sids(&["CA-old", "CA-new"]))
        .await
        .expect("snapshot");
    assert_eq!(snap.waiting["sales"], sids(&["CA-old", "CA-new"]));
    // CA-old is offered to a2 (not the agent it already rang), CA-new to a1
    let o3 = claim(&store).await.expect("offer");
    assert_eq!(
        (o3.call_sid.as_str(), o3.agent_id.as_str()),
        ("CA-old", "a2")
    );
    assert_eq!(o3.attempt, 2);
    let o4 = claim(&store).await.expect("offer");
    assert_eq!(
        (o4.call_sid.as_str(), o4.agent_id.as_str()),
        ("CA-new", "a1")
    );
    assert_invariants(&store, &sids(&["CA-old", "CA-new"])).await;
}

#[tokio::test]
async fn an_agent_already_rung_is_offered_again_when_nobody_else_is_left() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    claim(&store).await.expect("offer");
    store
        .offer_result("CA1", "a1", OfferOutcome::NoAnswer)
        .await
        .expect("no-answer");
    let again = claim(&store)
        .await
        .expect("offered again to the only agent");
    assert_eq!((again.agent_id.as_str(), again.attempt), ("a1", 2));
}

#[tokio::test]
async fn max_no_answer_in_a_row_pauses_the_agent() {
    let mut q = queue("sales", Strategy::LongestIdle);
    q.max_no_answer = 2;
    let store = store_with(&[q]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    claim(&store).await.expect("offer 1");
    store
        .offer_result("CA1", "a1", OfferOutcome::NoAnswer)
        .await
        .expect("miss 1");
    assert_eq!(status(&store, "a1").await, AgentStatus::Available);
    claim(&store).await.expect("offer 2");
    let r = store
        .offer_result("CA1", "a1", OfferOutcome::NoAnswer)
        .await
        .expect("miss 2");
    assert_eq!(r, OfferResult::Requeued(AgentStatus::Paused));
    let a = store.agent("a1").await.expect("read").expect("agent");
    assert_eq!(
        (a.status, a.reason.as_str()),
        (AgentStatus::Paused, "no_answer")
    );
    assert_eq!(
        claim(&store).await,
        None,
        "a paused agent is offered nothing"
    );
    assert_eq!(state(&store, "CA1").await, CallState::Waiting);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn no_answer_delay_rests_the_agent_then_it_is_offered_again() {
    let mut q = queue("sales", Strategy::LongestIdle);
    q.no_answer_delay = Duration::from_millis(250);
    let store = store_with(&[q]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    claim(&store).await.expect("offer");
    store
        .offer_result("CA1", "a1", OfferOutcome::NoAnswer)
        .await
        .expect("miss");
    assert_eq!(status(&store, "a1").await, AgentStatus::Wrapup);
    assert_eq!(claim(&store).await, None, "resting after a miss");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(claim(&store).await.is_some(), "offered after the delay");
}

#[tokio::test]
async fn abandon_while_offered_releases_the_agent() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    enqueue(&store, "CA2", "sales").await;
    claim(&store).await.expect("offer");
    let r = store.abandon("CA1", "hangup").await.expect("abandon");
    assert_eq!(r, Transition::Done(CallState::Offered));
    assert_eq!(state(&store, "CA1").await, CallState::Abandoned);
    assert_eq!(status(&store, "a1").await, AgentStatus::Available);
    let a = store.agent("a1").await.expect("read").expect("agent");
    assert_eq!(a.misses, 0, "a caller's hang-up is not the agent's miss");
    // late results for the abandoned offer change nothing
    let late = store
        .offer_result("CA1", "a1", OfferOutcome::NoAnswer)
        .await
        .expect("late");
    assert_eq!(late, OfferResult::Stale(Some(CallState::Abandoned)));
    let o = claim(&store).await.expect("the agent takes the next call");
    assert_eq!(o.call_sid, "CA2");
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn abandon_while_waiting_and_twice() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    enqueue(&store, "CA1", "sales").await;
    assert_eq!(
        store.abandon("CA1", "hangup").await.expect("abandon"),
        Transition::Done(CallState::Waiting)
    );
    assert_eq!(
        store.abandon("CA1", "hangup").await.expect("again"),
        Transition::Stale(Some(CallState::Abandoned))
    );
    assert_eq!(
        store
            .abandon("CA-unknown", "hangup")
            .await
            .expect("unknown"),
        Transition::Stale(None)
    );
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn offer_lease_expiry_puts_the_call_back_in_line_and_frees_the_agent() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    let entered = enqueue(&store, "CA1", "sales").await;
    let offer = store
        .claim(Duration::from_millis(100), 0)
        .await
        .expect("claim");
    assert!(matches!(offer, Claim::Offer(_)));
    assert_eq!(
        store.reap(100).await.expect("reap").expired_offers,
        0,
        "lease still valid"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    let reaped = store.reap(100).await.expect("reap");
    assert_eq!(reaped.expired_offers, 1);
    let call = store.call("CA1").await.expect("read").expect("call");
    assert_eq!((call.state, call.rank), (CallState::Waiting, entered.rank));
    assert_eq!(status(&store, "a1").await, AgentStatus::Available);
    assert_eq!(
        store.reap(100).await.expect("reap").expired_offers,
        0,
        "reaped once"
    );
    assert_invariants(&store, &sids(&["CA1"])).await;
    assert!(claim(&store).await.is_some(), "offered again");
}

#[tokio::test]
async fn extend_offer_keeps_a_ringing_offer_alive() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    store
        .claim(Duration::from_millis(50), 0)
        .await
        .expect("claim");
    let ext = store
        .extend_offer("CA1", "a1", Duration::from_secs(30))
        .await
        .expect("extend");
    assert_eq!(ext, Transition::Done(()));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(store.reap(100).await.expect("reap").expired_offers, 0);
    let wrong = store
        .extend_offer("CA1", "a2", Duration::from_secs(30))
        .await
        .expect("extend");
    assert_eq!(wrong, Transition::Stale(Some(CallState::Offered)));
}

#[tokio::test]
async fn an_agent_whose_heartbeat_expired_is_never_offered_and_returns_on_the_next() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    let spec = agent("a1", &[("sales", 1)]);
    store.upsert_agent(&spec).await.expect("agent");
    store
        .heartbeat("a1", Duration::from_millis(100), true)
        .await
        .expect("beat");
    store
        .set_agent_status("a1", RequestedStatus::Available, "")
        .await
        .expect("available");
    tokio::time::sleep(Duration::from_millis(150)).await;
    enqueue(&store, "CA1", "sales").await;
    assert_eq!(
        claim(&store).await,
        None,
        "no offer to an agent without a heartbeat"
    );
    let a = store.agent("a1").await.expect("read").expect("agent");
    assert_eq!(
        (a.status, a.reason.as_str()),
        (AgentStatus::Offline, "heartbeat")
    );
    assert_eq!(a.heartbeat, None);
    let back = store
        .heartbeat("a1", Duration::from_secs(30), true)
        .await
        .expect("beat");
    assert_eq!(
        back,
        AgentStatus::Available,
        "the next heartbeat brings the agent back"
    );
    assert_eq!(
        claim(&store).await.map(|o| o.agent_id),
        Some("a1".to_string())
    );
}

#[tokio::test]
async fn reap_takes_silent_agents_offline() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    let spec = agent("a1", &[("sales", 1)]);
    store.upsert_agent(&spec).await.expect("agent");
    store
        .heartbeat("a1", Duration::from_millis(50), true)
        .await
        .expect("beat");
    store
        .set_agent_status("a1", RequestedStatus::Available, "")
        .await
        .expect("available");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.reap(100).await.expect("reap").agents_lost, 1);
    assert_eq!(status(&store, "a1").await, AgentStatus::Offline);
    assert_invariants(&store, &[]).await;
}

#[tokio::test]
async fn an_agent_without_a_registered_device_is_never_offered() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    store
        .upsert_agent(&agent("a1", &[("sales", 1)]))
        .await
        .expect("agent");
    store
        .heartbeat("a1", Duration::from_secs(30), false)
        .await
        .expect("beat");
    store
        .set_agent_status("a1", RequestedStatus::Available, "")
        .await
        .expect("available");
    enqueue(&store, "CA1", "sales").await;
    assert_eq!(claim(&store).await, None);
    store
        .heartbeat("a1", Duration::from_secs(30), true)
        .await
        .expect("beat");
    assert!(
        claim(&store).await.is_some(),
        "offered once the device registers"
    );
}

#[tokio::test]
async fn tier_two_is_offered_only_when_tier_one_has_nobody_ready() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("backup", &[("sales", 2)])).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    online_agent(&store, &agent("first", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    enqueue(&store, "CA2", "sales").await;
    let o1 = claim(&store).await.expect("offer");
    assert_eq!(
        o1.agent_id, "first",
        "tier 1 first even though tier 2 waited longer"
    );
    let o2 = claim(&store).await.expect("offer");
    assert_eq!(o2.agent_id, "backup", "tier 2 once tier 1 is busy");
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn capacity_bounds_how_many_calls_an_agent_holds() {
    let store = store_with(&[queue("chat", Strategy::LongestIdle)]).await;
    let mut spec = agent("multi", &[("chat", 1)]);
    spec.capacity = 2;
    online_agent(&store, &spec).await;
    for sid in ["CA1", "CA2", "CA3"] {
        enqueue(&store, sid, "chat").await;
    }
    assert_eq!(claim(&store).await.map(|o| o.call_sid), Some("CA1".into()));
    assert_eq!(
        status(&store, "multi").await,
        AgentStatus::Available,
        "one of two held"
    );
    assert_eq!(claim(&store).await.map(|o| o.call_sid), Some("CA2".into()));
    assert_eq!(status(&store, "multi").await, AgentStatus::Reserved);
    assert_eq!(claim(&store).await, None, "at capacity");
    assert_invariants(&store, &sids(&["CA1", "CA2", "CA3"])).await;
    store
        .offer_result("CA1", "multi", OfferOutcome::Answered)
        .await
        .expect("answer");
    store.complete("CA1").await.expect("complete");
    assert_eq!(claim(&store).await.map(|o| o.call_sid), Some("CA3".into()));
    assert_invariants(&store, &sids(&["CA1", "CA2", "CA3"])).await;
}

#[tokio::test]
async fn the_best_call_across_an_agents_queues_is_offered_first() {
    let store = store_with(&[
        queue("sales", Strategy::LongestIdle),
        queue("support", Strategy::LongestIdle),
    ])
    .await;
    enqueue(&store, "CA-support-old", "support").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    enqueue(&store, "CA-sales-new", "sales").await;
    online_agent(&store, &agent("a1", &[("sales", 1), ("support", 1)])).await;
    assert_eq!(
        claim(&store).await.map(|o| o.call_sid),
        Some("CA-support-old".into())
    );
}

#[tokio::test]
async fn a_priority_boost_moves_a_caller_ahead_by_a_bounded_time() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    enqueue(&store, "CA-plain", "sales").await;
    store
        .enqueue(
            "CA-vip",
            "sales",
            "+1",
            "+2",
            Duration::from_secs(60),
            CallKind::Inbound,
        )
        .await
        .expect("enqueue");
    let snap = store
        .snapshot(&sids(&["CA-plain", "CA-vip"]))
        .await
        .expect("snap");
    assert_eq!(snap.waiting["sales"], sids(&["CA-vip", "CA-plain"]));
    let pos = store
        .position("CA-plain", "sales")
        .await
        .expect("pos")
        .expect("waiting");
    assert_eq!(pos.position, 2);
}

#[tokio::test]
async fn fewest_calls_strategy_prefers_the_agent_with_fewer_answered_calls() {
    let store = store_with(&[queue("q", Strategy::FewestCalls)]).await;
    online_agent(&store, &agent("busy-bee", &[("q", 1)])).await;
    enqueue(&store, "CA1", "q").await;
    claim(&store).await.expect("offer");
    store
        .offer_result("CA1", "busy-bee", OfferOutcome::Answered)
        .await
        .expect("answer");
    store.complete("CA1").await.expect("complete");
    online_agent(&store, &agent("fresh", &[("q", 1)])).await;
    enqueue(&store, "CA2", "q").await;
    assert_eq!(
        claim(&store).await.map(|o| o.agent_id),
        Some("fresh".into())
    );
}

#[tokio::test]
async fn round_robin_strategy_rotates_through_agents() {
    let store = store_with(&[queue("q", Strategy::RoundRobin)]).await;
    for id in ["a", "b", "c"] {
        online_agent(&store, &agent(id, &[("q", 1)])).await;
    }
    let mut order = Vec::new();
    for i in 0..6 {
        let sid = format!("CA{i}");
        enqueue(&store, &sid, "q").await;
        let o = claim(&store).await.expect("offer");
        order.push(o.agent_id.clone());
        store
            .offer_result(&sid, &o.agent_id, OfferOutcome::Answered)
            .await
            .expect("ans");
        store.complete(&sid).await.expect("complete");
    }
    assert_eq!(
        order[0..3]
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3
    );
    assert_eq!(order[0..3], order[3..6], "same rotation again: {order:?}");
}

#[tokio::test]
async fn random_strategy_picks_any_ready_agent() {
    let store = store_with(&[queue("q", Strategy::Random)]).await;
    for id in ["a", "b", "c"] {
        online_agent(&store, &agent(id, &[("q", 1)])).await;
    }
    let mut picked = std::collections::HashSet::new();
    for seed in 0..3u32 {
        let sid = format!("CA{seed}");
        enqueue(&store, &sid, "q").await;
        let Claim::Offer(o) = store.claim(LEASE, seed).await.expect("claim") else {
            panic!("no offer");
        };
        store.abandon(&sid, "test").await.expect("abandon");
        picked.insert(o.agent_id);
    }
    assert_eq!(picked.len(), 3, "different draws pick different agents");
}

#[tokio::test]
async fn going_offline_on_a_call_is_applied_when_the_call_ends() {
    let mut q = queue("sales", Strategy::LongestIdle);
    q.wrapup = Duration::from_secs(60);
    let store = store_with(&[q]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    claim(&store).await.expect("offer");
    store
        .offer_result("CA1", "a1", OfferOutcome::Answered)
        .await
        .expect("answer");
    let change = store
        .set_agent_status("a1", RequestedStatus::Offline, "end of shift")
        .await
        .expect("status");
    assert_eq!(change, StatusChange::Deferred(RequestedStatus::Offline));
    assert_eq!(
        status(&store, "a1").await,
        AgentStatus::Busy,
        "still on the call"
    );
    store.complete("CA1").await.expect("complete");
    let a = store.agent("a1").await.expect("read").expect("agent");
    assert_eq!(
        (a.status, a.reason.as_str()),
        (AgentStatus::Offline, "end of shift")
    );
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn going_available_during_wrapup_ends_it_early() {
    let mut q = queue("sales", Strategy::LongestIdle);
    q.wrapup = Duration::from_secs(60);
    let store = store_with(&[q]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    claim(&store).await.expect("offer");
    store
        .offer_result("CA1", "a1", OfferOutcome::Answered)
        .await
        .expect("answer");
    store.complete("CA1").await.expect("complete");
    assert_eq!(status(&store, "a1").await, AgentStatus::Wrapup);
    store
        .set_agent_status("a1", RequestedStatus::Available, "")
        .await
        .expect("available");
    enqueue(&store, "CA2", "sales").await;
    assert_eq!(claim(&store).await.map(|o| o.call_sid), Some("CA2".into()));
}

#[tokio::test]
async fn completion_reported_before_answer_still_completes() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    claim(&store).await.expect("offer");
    assert_eq!(
        store.complete("CA1").await.expect("complete"),
        Transition::Done("a1".to_string())
    );
    let late = store
        .offer_result("CA1", "a1", OfferOutcome::Answered)
        .await
        .expect("late");
    assert_eq!(late, OfferResult::Stale(Some(CallState::Completed)));
    assert_eq!(
        store.complete("CA1").await.expect("again"),
        Transition::Stale(Some(CallState::Completed))
    );
    assert_eq!(status(&store, "a1").await, AgentStatus::Available);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn a_callback_keeps_its_rank_and_is_offered_as_a_callback() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    enqueue(&store, "CA-cb", "sales").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    enqueue(&store, "CA-later", "sales").await;
    let r = store
        .request_callback("CA-cb", "+15551234567")
        .await
        .expect("callback");
    assert_eq!(r, Transition::Done(()));
    assert_eq!(state(&store, "CA-cb").await, CallState::Callback);
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    let o = claim(&store).await.expect("offer");
    assert_eq!((o.call_sid.as_str(), o.kind), ("CA-cb", CallKind::Callback));
    let call = store.call("CA-cb").await.expect("read").expect("call");
    assert_eq!(call.callback_to.as_deref(), Some("+15551234567"));
    assert_invariants(&store, &sids(&["CA-cb", "CA-later"])).await;
}

#[tokio::test]
async fn a_callback_enqueued_on_arrival_calls_back_the_caller() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    store
        .enqueue(
            "CA1",
            "sales",
            "+15557654321",
            "+15005550001",
            Duration::ZERO,
            CallKind::Callback,
        )
        .await
        .expect("enqueue");
    let call = store.call("CA1").await.expect("read").expect("call");
    assert_eq!(call.state, CallState::Callback);
    assert_eq!(call.callback_to.as_deref(), Some("+15557654321"));
}

#[tokio::test]
async fn overflow_takes_a_waiting_call_out_of_line() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    enqueue(&store, "CA1", "sales").await;
    assert_eq!(
        store.overflow("CA1", "voicemail").await.expect("overflow"),
        Transition::Done(())
    );
    assert_eq!(state(&store, "CA1").await, CallState::Overflowed);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn a_transfer_moves_a_waiting_call_and_keeps_its_rank() {
    let store = store_with(&[
        queue("sales", Strategy::LongestIdle),
        queue("support", Strategy::LongestIdle),
    ])
    .await;
    let first = enqueue(&store, "CA-old", "support").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    enqueue(&store, "CA-sales", "sales").await;
    let r = store.transfer("CA-old", "sales").await.expect("transfer");
    assert_eq!(r, Transition::Done("support".to_string()));
    let call = store.call("CA-old").await.expect("read").expect("call");
    assert_eq!((call.queue.as_str(), call.rank), ("sales", first.rank));
    let snap = store
        .snapshot(&sids(&["CA-old", "CA-sales"]))
        .await
        .expect("snap");
    assert_eq!(snap.waiting["sales"], sids(&["CA-old", "CA-sales"]));
    assert!(matches!(
        store.transfer("CA-old", "nope").await,
        Err(StoreError::UnknownQueue(_))
    ));
    assert_invariants(&store, &sids(&["CA-old", "CA-sales"])).await;
}

#[tokio::test]
async fn a_callback_request_survives_the_callers_hangup() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    enqueue(&store, "CA1", "sales").await;
    store
        .request_callback("CA1", "+15551234567")
        .await
        .expect("callback");
    let r = store.abandon("CA1", "hangup").await.expect("abandon");
    assert_eq!(r, Transition::Stale(Some(CallState::Callback)));
    assert_invariants(&store, &sids(&["CA1"])).await;
    // once offered (the agent's phone rings for the callback), the caller's own leg ending
    // must not release the agent either
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    claim(&store).await.expect("offer");
    let r = store.abandon("CA1", "hangup").await.expect("abandon");
    assert_eq!(r, Transition::Stale(Some(CallState::Callback)));
    assert_eq!(state(&store, "CA1").await, CallState::Offered);
    assert_eq!(status(&store, "a1").await, AgentStatus::Reserved);
    // a worker that finds the callback impossible can still abandon it
    let r = store
        .abandon("CA1", "callback_invalid")
        .await
        .expect("abandon");
    assert_eq!(r, Transition::Done(CallState::Offered));
    assert_eq!(status(&store, "a1").await, AgentStatus::Available);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn an_agent_on_a_call_cannot_be_deleted() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    claim(&store).await.expect("offer");
    assert!(matches!(
        store.delete_agent("a1").await,
        Err(StoreError::AgentBusy(_))
    ));
    store.abandon("CA1", "hangup").await.expect("abandon");
    store.delete_agent("a1").await.expect("deleted");
    assert!(matches!(
        store.delete_agent("a1").await,
        Err(StoreError::UnknownAgent(_))
    ));
    assert!(store.agent("a1").await.expect("read").is_none());
}

#[tokio::test]
async fn agents_need_configured_queues_and_sane_profiles() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    let err = store
        .upsert_agent(&agent("a1", &[("nope", 1)]))
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::UnknownQueue(q) if q == "nope"));
    let mut spec = agent("a1", &[("sales", 1)]);
    spec.capacity = 0;
    assert!(matches!(
        store.upsert_agent(&spec).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.heartbeat("ghost", Duration::from_secs(1), true).await,
        Err(StoreError::UnknownAgent(_))
    ));
}

#[tokio::test]
async fn moving_an_agent_between_queues_reindexes_its_ready_sets() {
    let store = store_with(&[
        queue("sales", Strategy::LongestIdle),
        queue("support", Strategy::LongestIdle),
    ])
    .await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    store
        .upsert_agent(&agent("a1", &[("support", 2)]))
        .await
        .expect("moved");
    let snap = store.snapshot(&[]).await.expect("snap");
    assert!(snap.ready[&("sales".to_string(), 1)].is_empty());
    assert_eq!(
        snap.ready[&("support".to_string(), 2)],
        vec!["a1".to_string()]
    );
    enqueue(&store, "CA1", "sales").await;
    assert_eq!(claim(&store).await, None);
}

#[tokio::test]
async fn scripts_survive_a_script_flush() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    enqueue(&store, "CA1", "sales").await;
    let mut conn = store.conn().await.expect("conn");
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut *conn)
        .await
        .expect("flush");
    enqueue(&store, "CA2", "sales").await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    assert_eq!(claim(&store).await.map(|o| o.call_sid), Some("CA1".into()));
}

#[tokio::test]
async fn a_call_history_is_read_from_the_event_stream() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    claim(&store).await.expect("offer");
    store
        .offer_result("CA1", "a1", OfferOutcome::Answered)
        .await
        .expect("answer");
    store.complete("CA1").await.expect("complete");
    let kinds: Vec<String> = store
        .call_events("CA1")
        .await
        .expect("events")
        .into_iter()
        .map(|(_, f)| f["type"].clone())
        .collect();
    assert_eq!(kinds, vec!["enqueue", "offer", "connected", "completed"]);
}

#[tokio::test]
async fn queue_stats_count_agents_and_estimate_the_wait() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    enqueue(&store, "CA2", "sales").await;
    claim(&store).await.expect("offer");
    let stats = store.queue_stats("sales").await.expect("stats");
    assert_eq!(stats.waiting, 1);
    assert_eq!(stats.agents["reserved"], 1);
    let pos = store
        .position("CA2", "sales")
        .await
        .expect("pos")
        .expect("waiting");
    assert_eq!(pos.position, 1);
    assert!(
        pos.estimated_wait_s > 0.0,
        "a caller with nobody ready waits"
    );
    assert!(
        store.position("CA1", "sales").await.expect("pos").is_none(),
        "CA1 is offered"
    );
}
