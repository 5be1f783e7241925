//! Every routing transition against a real Redis, happy and unhappy paths. Each test runs on
//! its own centre of the shared test redis-server (see `support`).

mod support;

use std::time::Duration;

use callq::store::*;
use support::*;

#[tokio::test]
async fn enqueue_is_idempotent_per_call_sid() {
    let store = store_with(&[sales()]).await;
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
    let store = store_with(&[sales()]).await;
    let err = store
        .enqueue(&holding("CA1", "nope", ""))
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::UnknownQueue(q) if q == "nope"));
    let err = store
        .enqueue(&holding("CA,1", "sales", ""))
        .await
        .expect_err("bad sid refused");
    assert!(matches!(err, StoreError::Invalid { .. }));
}

#[tokio::test]
async fn claim_reserves_agent_and_call_together() {
    let store = staffed(sales()).await;
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
    let mut q = sales();
    q.wrapup = Duration::from_millis(300);
    let (store, _) = connected(q, "CA1").await;
    enqueue(&store, "CA2", "sales").await;
    assert_eq!(state(&store, "CA1").await, CallState::Connected);
    assert_eq!(status(&store, "a1").await, AgentStatus::Busy);
    let done = complete(&store, "CA1").await.expect("complete");
    assert_eq!(done, Completion::Completed("a1".to_string()));
    assert_eq!(state(&store, "CA1").await, CallState::Completed);
    assert_eq!(status(&store, "a1").await, AgentStatus::Wrapup);
    match store.claim(LEASE, 0).await.expect("claim") {
        Claim::Idle { next_due_ms } => assert!(next_due_ms.is_some(), "wrap-up end is reported"),
        Claim::Offer(o) => panic!("offered {o:?} during wrap-up"),
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    let offer = claim(&store).await.expect("offered once wrap-up ended");
    assert_eq!(offer.call_sid, "CA2");
    let agent = agent_rec(&store, "a1").await;
    assert_eq!(agent.handled, 1);
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

/// Redis' clock, unix ms.
async fn redis_ms(store: &Store) -> i64 {
    let (secs, micros) = store.redis_time().await.expect("TIME");
    secs * 1000 + micros / 1000
}

/// The wake list, newest marker first.
async fn wake_markers(store: &Store) -> Vec<String> {
    let mut c = store.conn().await.expect("conn");
    redis::cmd("LRANGE")
        .arg(store.key("wake"))
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .expect("LRANGE")
}

/// Empty the wake list (so a test sees only the markers that follow).
async fn clear_wake_markers(store: &Store) {
    let mut c = store.conn().await.expect("conn");
    redis::cmd("DEL")
        .arg(store.key("wake"))
        .query_async::<()>(&mut c)
        .await
        .expect("DEL");
}

#[tokio::test]
async fn a_wrap_up_wakes_a_worker_for_its_end_and_the_claim_that_ends_it_wakes_nobody() {
    // A wrap-up makes no work until it ends: its marker carries the end, so the worker that
    // takes it sets its timer instead of claiming for nothing. The claim at the end promotes
    // the agent and offers the waiting call itself: a marker from it would only send another
    // worker to claim for nothing.
    let mut q = sales();
    q.wrapup = Duration::from_millis(300);
    let (store, _) = connected(q, "CA1").await;
    enqueue(&store, "CA2", "sales").await;
    clear_wake_markers(&store).await;
    let before = redis_ms(&store).await;
    complete(&store, "CA1").await.expect("complete");
    let after = redis_ms(&store).await;
    let markers = wake_markers(&store).await;
    assert_eq!(markers.len(), 1, "one marker: {markers:?}");
    let at: i64 = markers[0].parse().expect("a time");
    assert!(
        (before + 300..=after + 300).contains(&at),
        "the marker {at} is the wrap-up end, between {} and {}",
        before + 300,
        after + 300
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let offer = claim(&store).await.expect("offered once the wrap-up ended");
    assert_eq!(
        (offer.call_sid.as_str(), offer.agent_id.as_str()),
        ("CA2", "a1")
    );
    assert_eq!(
        wake_markers(&store).await,
        markers,
        "the claim pushed no marker of its own"
    );
    // the reaper, which offers nothing, still wakes a worker for what it promotes
    complete(&store, "CA2").await.expect("complete");
    enqueue(&store, "CA3", "sales").await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let n = wake_markers(&store).await.len();
    store.reap(100).await.expect("reap");
    assert_eq!(
        wake_markers(&store).await.len(),
        n + 1,
        "the reap woke a worker"
    );
    assert_eq!(claim(&store).await.expect("offered").call_sid, "CA3");
    assert_invariants(&store, &sids(&["CA1", "CA2", "CA3"])).await;
}

#[tokio::test]
async fn a_call_joining_a_line_wakes_a_worker_only_when_a_claim_could_offer_it() {
    // Every agent busy: nothing a claim could do for the new call (an agent becoming ready
    // wakes a worker itself), so it wakes nobody.
    let (store, _) = connected(sales(), "CA1").await;
    clear_wake_markers(&store).await;
    enqueue(&store, "CA2", "sales").await;
    assert_eq!(
        wake_markers(&store).await,
        Vec::<String>::new(),
        "nobody could take it"
    );
    // the agent freeing up wakes a worker, and the call is offered
    complete(&store, "CA1").await.expect("complete");
    assert_eq!(
        wake_markers(&store).await.len(),
        1,
        "the agent woke a worker"
    );
    assert_eq!(claim(&store).await.expect("offered").call_sid, "CA2");

    // an agent ready: the call wakes a worker
    online_agent(&store, &agent("a2", &[("sales", 1)])).await;
    clear_wake_markers(&store).await;
    enqueue(&store, "CA3", "sales").await;
    assert_eq!(wake_markers(&store).await.len(), 1, "a2 could take it");
    assert_eq!(claim(&store).await.expect("offered").agent_id, "a2");

    // a wrap-up that ended and is not promoted yet: a claim would promote it and offer
    let mut q = sales();
    q.wrapup = Duration::from_millis(100);
    let (store, _) = connected(q, "CA1").await;
    complete(&store, "CA1").await.expect("complete");
    tokio::time::sleep(Duration::from_millis(150)).await;
    clear_wake_markers(&store).await;
    enqueue(&store, "CA2", "sales").await;
    assert_eq!(
        wake_markers(&store).await.len(),
        1,
        "a1's wrap-up has ended"
    );
    assert_eq!(claim(&store).await.expect("offered").call_sid, "CA2");

    // a queue that widens to others: the claim decides, so the call wakes a worker
    let mut q = sales();
    q.widen = vec![WidenStep {
        after: Duration::from_secs(30),
        min_level: Some(1),
        tiers: None,
        any_skill: false,
        queue: None,
    }];
    let (store, _) = connected(q, "CA1").await;
    clear_wake_markers(&store).await;
    enqueue(&store, "CA2", "sales").await;
    assert_eq!(
        wake_markers(&store).await.len(),
        1,
        "the widening is the claim's to judge"
    );
}

#[tokio::test]
async fn an_overdue_connected_call_check_does_not_hide_when_a_wrap_up_ends() {
    // The worker waits for the time an idle claim reports; a check the worker's check round
    // takes on its own timer, overdue until then, must not stand in for the wrap-up ending
    // meanwhile (a worker would then wait for the next unrelated event to offer that agent).
    let mut q = sales();
    q.wrapup = Duration::from_secs(2);
    q.check_after = Duration::from_millis(100);
    let (store, _) = connected(q, "CA1").await;
    online_agent(&store, &agent("a2", &[("sales", 1)])).await;
    let o2 = enter_connected(&store, "CA2", "sales").await;
    assert_eq!(o2.agent_id, "a2");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = redis_ms(&store).await;
    assert_eq!(
        complete(&store, "CA2").await.expect("complete"),
        Completion::Completed("a2".to_string())
    );
    let after = redis_ms(&store).await;
    assert_eq!(status(&store, "a2").await, AgentStatus::Wrapup);
    // both calls' checks are overdue now (CA1 still talking, nobody has asked Twilio yet)
    let due = match store.claim(LEASE, 0).await.expect("claim") {
        Claim::Idle { next_due_ms } => next_due_ms.expect("the wrap-up end is reported"),
        Claim::Offer(o) => panic!("offered {o:?} with every agent busy or wrapping up"),
    };
    assert!(
        (before + 2000..=after + 2000).contains(&due),
        "next due {due} is a2's wrap-up end, between {} and {}",
        before + 2000,
        after + 2000
    );
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn an_idle_claim_reports_no_heartbeat_deadline() {
    // A lapsed heartbeat makes no work for a worker (a claim checks each agent's heartbeat key
    // before offering; the reaper's timer counts the agent offline), so an idle claim must not
    // send the worker to wake at every agent's next deadline.
    let store = store_with(&[sales()]).await;
    online_agent_for(
        &store,
        &agent("a1", &[("sales", 1)]),
        Duration::from_secs(2),
    )
    .await;
    online_agent_for(
        &store,
        &agent("a2", &[("sales", 1)]),
        Duration::from_secs(3),
    )
    .await;
    match store.claim(LEASE, 0).await.expect("claim") {
        Claim::Idle { next_due_ms } => assert_eq!(next_due_ms, None, "nothing to look again for"),
        Claim::Offer(o) => panic!("offered {o:?} with no call waiting"),
    }
    // a wrap-up end is still reported
    let mut q = sales();
    q.wrapup = Duration::from_secs(5);
    let (store, _) = connected(q, "CA1").await;
    let before = redis_ms(&store).await;
    complete(&store, "CA1").await.expect("complete");
    let after = redis_ms(&store).await;
    let due = match store.claim(LEASE, 0).await.expect("claim") {
        Claim::Idle { next_due_ms } => next_due_ms.expect("the wrap-up end is reported"),
        Claim::Offer(o) => panic!("offered {o:?} during wrap-up"),
    };
    assert!(
        (before + 5000..=after + 5000).contains(&due),
        "next due {due} is the wrap-up end, between {} and {}",
        before + 5000,
        after + 5000
    );
}

#[tokio::test]
async fn no_answer_returns_call_to_its_original_rank_and_offers_next_agent() {
    let store = staffed(sales()).await;
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
        .offer_result(&current(&store, "CA-old").await, OfferOutcome::NoAnswer, "")
        .await
        .expect("no-answer");
    assert!(matches!(r, OfferResult::Requeued(_)));
    let call = call(&store, "CA-old").await;
    assert_eq!(call.state, CallState::Waiting);
    assert_eq!(call.rank, first.rank, "back at its original rank");
    assert_eq!(call.agent, None);
    // a2 misses CA-new too; both calls wait; CA-old must be ahead
    store
        .offer_result(&current(&store, "CA-new").await, OfferOutcome::Busy, "")
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
    let (store, _) = offered(sales(), "CA1").await;
    store
        .offer_result(&current(&store, "CA1").await, OfferOutcome::NoAnswer, "")
        .await
        .expect("no-answer");
    let again = claim(&store)
        .await
        .expect("offered again to the only agent");
    assert_eq!((again.agent_id.as_str(), again.attempt), ("a1", 2));
}

#[tokio::test]
async fn max_no_answer_in_a_row_pauses_the_agent() {
    let mut q = sales();
    q.max_no_answer = 2;
    let (store, _) = offered(q, "CA1").await;
    store
        .offer_result(&current(&store, "CA1").await, OfferOutcome::NoAnswer, "")
        .await
        .expect("miss 1");
    assert_eq!(status(&store, "a1").await, AgentStatus::Available);
    claim(&store).await.expect("offer 2");
    let r = store
        .offer_result(&current(&store, "CA1").await, OfferOutcome::NoAnswer, "")
        .await
        .expect("miss 2");
    assert_eq!(r, OfferResult::Requeued(AgentStatus::Paused));
    let a = agent_rec(&store, "a1").await;
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
    let mut q = sales();
    q.no_answer_delay = Duration::from_millis(250);
    let (store, _) = offered(q, "CA1").await;
    store
        .offer_result(&current(&store, "CA1").await, OfferOutcome::NoAnswer, "")
        .await
        .expect("miss");
    assert_eq!(status(&store, "a1").await, AgentStatus::Wrapup);
    assert_eq!(claim(&store).await, None, "resting after a miss");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(claim(&store).await.is_some(), "offered after the delay");
}

#[tokio::test]
async fn no_answer_busy_and_failed_each_rest_the_agent_their_own_time() {
    let mut q = sales();
    q.no_answer_delay = Duration::from_secs(100);
    q.busy_delay = Some(Duration::from_secs(300));
    q.failed_delay = Some(Duration::from_secs(600));
    q.max_no_answer = 10;
    for (i, (outcome, rest_s)) in [
        (OfferOutcome::NoAnswer, 100),
        (OfferOutcome::Busy, 300),
        (OfferOutcome::Failed, 600),
    ]
    .into_iter()
    .enumerate()
    {
        let sid = format!("CA{i}");
        let (store, _) = offered(q.clone(), &sid).await;
        store
            .offer_result(&current(&store, &sid).await, outcome, "")
            .await
            .expect("result");
        let left = agent_rec(&store, "a1").await.wrapup_left.expect("resting");
        assert!(
            left <= Duration::from_secs(rest_s) && left > Duration::from_secs(rest_s - 30),
            "{outcome:?}: rests {left:?}, expected about {rest_s} s"
        );
    }
    // without their own, busy and failed rest the no-answer delay
    let mut plain = q.clone();
    plain.busy_delay = None;
    let (store, _) = offered(plain, "CAp").await;
    store
        .offer_result(&current(&store, "CAp").await, OfferOutcome::Busy, "")
        .await
        .expect("busy");
    let left = agent_rec(&store, "a1").await.wrapup_left.expect("resting");
    assert!(
        left <= Duration::from_secs(100) && left > Duration::from_secs(70),
        "{left:?}"
    );
}

#[tokio::test]
async fn abandon_while_offered_releases_the_agent() {
    let (store, _) = offered(sales(), "CA1").await;
    enqueue(&store, "CA2", "sales").await;
    let r = store.abandon("CA1", "hangup").await.expect("abandon");
    assert_eq!(r, Transition::Done(CallState::Offered));
    assert_eq!(state(&store, "CA1").await, CallState::Abandoned);
    assert_eq!(status(&store, "a1").await, AgentStatus::Available);
    let a = agent_rec(&store, "a1").await;
    assert_eq!(a.misses, 0, "a caller's hang-up is not the agent's miss");
    // late results for the abandoned offer change nothing
    let late = store
        .offer_result(&current(&store, "CA1").await, OfferOutcome::NoAnswer, "")
        .await
        .expect("late");
    assert_eq!(late, OfferResult::Stale(Some(CallState::Abandoned)));
    let o = claim(&store).await.expect("the agent takes the next call");
    assert_eq!(o.call_sid, "CA2");
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn abandon_while_waiting_and_twice() {
    let store = store_with(&[sales()]).await;
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
async fn an_expired_offer_is_handed_to_a_check_never_requeued_blindly() {
    let store = staffed(sales()).await;
    enqueue(&store, "CA1", "sales").await;
    let offer = claim_leased(&store, Duration::from_millis(100)).await;
    let lease = Duration::from_secs(30);
    assert!(
        store
            .take_checks(10, lease)
            .await
            .expect("checks")
            .is_empty(),
        "lease still valid"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    store.reap(100).await.expect("reap");
    assert_eq!(
        state(&store, "CA1").await,
        CallState::Offered,
        "the reaper leaves an expired offer alone: Twilio may be ringing the agent"
    );
    let checks = store.take_checks(10, lease).await.expect("checks");
    assert_eq!(checks.len(), 1);
    let c = &checks[0];
    assert_eq!(c.offer, offer.offer_ref());
    assert_eq!((c.state, c.kind), (CallState::Offered, CallKind::Inbound));
    assert_eq!(
        (c.phase.as_str(), c.identity.as_str()),
        ("claimed", "client-a1")
    );
    assert_eq!(c.checks, 1);
    assert!(
        store
            .take_checks(10, lease)
            .await
            .expect("checks")
            .is_empty(),
        "one worker checks at a time: the check holds the call for its lease"
    );
    // Twilio says the phone never rang: back in line with no miss
    let r = store
        .offer_result(&offer.offer_ref(), OfferOutcome::Canceled, "")
        .await
        .expect("requeue");
    assert_eq!(r, OfferResult::Requeued(AgentStatus::Available));
    assert_eq!(state(&store, "CA1").await, CallState::Waiting);
    assert_invariants(&store, &sids(&["CA1"])).await;
    assert!(claim(&store).await.is_some(), "offered again");
}

#[tokio::test]
async fn extend_offer_keeps_a_ringing_offer_alive_and_names_its_offer() {
    let store = staffed(sales()).await;
    enqueue(&store, "CA1", "sales").await;
    let offer = claim_leased(&store, Duration::from_millis(50)).await;
    let ext = store
        .extend_offer(
            &offer.offer_ref(),
            Some(Duration::from_secs(30)),
            Some("CAleg1"),
        )
        .await
        .expect("extend");
    assert_eq!(ext, Transition::Done(()));
    let c = call(&store, "CA1").await;
    assert_eq!(
        (c.phase.as_deref(), c.leg_sid.as_deref()),
        (Some("ringing"), Some("CAleg1"))
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(store
        .take_checks(10, LEASE)
        .await
        .expect("checks")
        .is_empty());
    let mut wrong_agent = offer.offer_ref();
    wrong_agent.agent_id = "a2".into();
    let mut wrong_attempt = offer.offer_ref();
    wrong_attempt.attempt += 1;
    for other in [wrong_agent, wrong_attempt] {
        let r = store
            .extend_offer(&other, Some(Duration::from_secs(30)), None)
            .await
            .expect("extend");
        assert_eq!(r, Transition::Stale(Some(CallState::Offered)), "{other:?}");
    }
}

#[tokio::test]
async fn an_agent_whose_heartbeat_expired_is_never_offered_and_returns_on_the_next() {
    let store = store_with(&[sales()]).await;
    online_agent_for(
        &store,
        &agent("a1", &[("sales", 1)]),
        Duration::from_millis(100),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    enqueue(&store, "CA1", "sales").await;
    assert_eq!(
        claim(&store).await,
        None,
        "no offer to an agent without a heartbeat"
    );
    let a = agent_rec(&store, "a1").await;
    assert_eq!(
        a.status,
        AgentStatus::Available,
        "what the agent chose is kept"
    );
    assert!(!a.online());
    assert_invariants(&store, &sids(&["CA1"])).await;
    let back = store
        .heartbeat("a1", Duration::from_secs(30), true)
        .await
        .expect("beat");
    assert_eq!(back, AgentStatus::Available);
    assert_eq!(
        claim(&store).await.map(|o| o.agent_id),
        Some("a1".to_string()),
        "the next heartbeat makes the agent offerable again"
    );
}

#[tokio::test]
async fn an_agent_whose_heartbeat_lapsed_during_a_call_is_not_offered_the_next_before_a_reap() {
    let store = store_with(&[sales()]).await;
    online_agent_for(
        &store,
        &agent("a1", &[("sales", 1)]),
        Duration::from_secs(1),
    )
    .await;
    enqueue(&store, "CA1", "sales").await;
    let offer = claim(&store)
        .await
        .expect("offered while the heartbeat lives");
    store
        .offer_result(&offer.offer_ref(), OfferOutcome::Answered, "")
        .await
        .expect("answer");
    // the heartbeat key expires during the call, and no reap runs before the call ends
    tokio::time::sleep(Duration::from_millis(1500)).await;
    complete(&store, "CA1").await.expect("complete");
    assert_eq!(status(&store, "a1").await, AgentStatus::Available);
    enqueue(&store, "CA2", "sales").await;
    assert_eq!(
        claim(&store).await,
        None,
        "no offer to an agent whose heartbeat key is gone"
    );
    assert!(!agent_rec(&store, "a1").await.online());
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
    store
        .heartbeat("a1", Duration::from_secs(30), true)
        .await
        .expect("beat");
    assert_eq!(
        claim(&store).await.map(|o| o.call_sid),
        Some("CA2".to_string()),
        "the next heartbeat makes the agent offerable again"
    );
}

#[tokio::test]
async fn a_heartbeat_gap_never_turns_a_pause_into_available() {
    struct Case {
        name: &'static str,
        /// Put the agent in the state under test; returns the call it holds, if any.
        status: RequestedStatus,
        on_call: bool,
    }
    let cases = [
        Case {
            name: "paused by choice",
            status: RequestedStatus::Paused,
            on_call: false,
        },
        Case {
            name: "pause deferred while on a call",
            status: RequestedStatus::Paused,
            on_call: true,
        },
        Case {
            name: "offline deferred while on a call",
            status: RequestedStatus::Offline,
            on_call: true,
        },
    ];
    for case in cases {
        let store = staffed(sales()).await;
        if case.on_call {
            enter_connected(&store, "CA1", "sales").await;
        }
        let change = store
            .set_agent_status("a1", case.status, "lunch")
            .await
            .expect("status");
        // the heartbeat lapses, the reaper notices, then the agent beats again
        store
            .heartbeat("a1", Duration::from_millis(50), true)
            .await
            .expect("beat");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            store.reap(100).await.expect("reap").agents_lost,
            1,
            "{}",
            case.name
        );
        store
            .heartbeat("a1", Duration::from_secs(30), true)
            .await
            .expect("beat");
        if case.on_call {
            assert_eq!(change, StatusChange::Deferred(case.status), "{}", case.name);
            complete(&store, "CA1").await.expect("complete");
        }
        let a = agent_rec(&store, "a1").await;
        let want = match case.status {
            RequestedStatus::Paused => AgentStatus::Paused,
            RequestedStatus::Offline => AgentStatus::Offline,
            RequestedStatus::Available => AgentStatus::Available,
        };
        assert_eq!(
            (a.status, a.reason.as_str()),
            (want, "lunch"),
            "{}",
            case.name
        );
        enqueue(&store, "CA2", "sales").await;
        assert_eq!(claim(&store).await, None, "{}: not offered", case.name);
        assert_invariants(&store, &sids(&["CA2"])).await;
    }
}

#[tokio::test]
async fn the_no_answer_pause_outlives_a_heartbeat_gap() {
    let mut q = sales();
    q.max_no_answer = 1;
    let (store, o) = offered(q, "CA1").await;
    let r = store
        .offer_result(&o.offer_ref(), OfferOutcome::NoAnswer, "")
        .await
        .expect("miss");
    assert_eq!(r, OfferResult::Requeued(AgentStatus::Paused));
    store
        .heartbeat("a1", Duration::from_millis(50), true)
        .await
        .expect("beat");
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.reap(100).await.expect("reap");
    store
        .heartbeat("a1", Duration::from_secs(30), true)
        .await
        .expect("beat");
    let a = agent_rec(&store, "a1").await;
    assert_eq!(
        (a.status, a.reason.as_str()),
        (AgentStatus::Paused, "no_answer")
    );
    assert_eq!(claim(&store).await, None, "lifted only by the agent");
}

#[tokio::test]
async fn an_agent_without_a_registered_device_is_never_offered() {
    let store = store_with(&[sales()]).await;
    store
        .upsert_agent(&agent("a1", &[("sales", 1)]), UpsertMode::Upsert)
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
    let store = store_with(&[sales()]).await;
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
async fn one_claim_makes_several_offers_in_rank_order_and_stops_when_nothing_matches() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    for id in ["a1", "a2", "a3"] {
        online_agent(&store, &agent(id, &[("sales", 1)])).await;
    }
    let calls = ["CA1", "CA2", "CA3", "CA4", "CA5"];
    for sid in calls {
        enqueue(&store, sid, "sales").await;
    }
    let lease = Duration::from_secs(30);
    let first = store.claim_many(lease, 7, 2).await.expect("claim");
    assert_eq!(first.offers.len(), 2);
    assert_eq!(first.idle, None, "stopped at two offers: there may be more");
    let second = store.claim_many(lease, 7, 8).await.expect("claim");
    assert!(second.idle.is_some(), "nobody left for the last two calls");
    let offers: Vec<_> = first.offers.iter().chain(&second.offers).collect();
    assert_eq!(
        offers
            .iter()
            .map(|o| o.call_sid.as_str())
            .collect::<Vec<_>>(),
        ["CA1", "CA2", "CA3"],
        "the best calls, best first"
    );
    let mut agents: Vec<_> = offers.iter().map(|o| o.agent_id.as_str()).collect();
    agents.sort_unstable();
    assert_eq!(agents, ["a1", "a2", "a3"], "each call to its own agent");
    for o in &offers {
        assert_eq!(o.attempt, 1);
        assert_eq!(state(&store, &o.call_sid).await, CallState::Offered);
        assert_eq!(status(&store, &o.agent_id).await, AgentStatus::Reserved);
    }
    for sid in ["CA4", "CA5"] {
        assert_eq!(state(&store, sid).await, CallState::Waiting);
    }
    let again = store.claim_many(lease, 7, 8).await.expect("claim");
    assert!(again.offers.is_empty() && again.idle.is_some(), "{again:?}");
    assert_invariants(&store, &sids(&calls)).await;
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
        .offer_result(&current(&store, "CA1").await, OfferOutcome::Answered, "")
        .await
        .expect("answer");
    complete(&store, "CA1").await.expect("complete");
    assert_eq!(claim(&store).await.map(|o| o.call_sid), Some("CA3".into()));
    assert_invariants(&store, &sids(&["CA1", "CA2", "CA3"])).await;
}

#[tokio::test]
async fn the_best_call_across_an_agents_queues_is_offered_first() {
    let store = store_with(&[sales(), queue("support", Strategy::LongestIdle)]).await;
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
    let store = store_with(&[sales()]).await;
    // a caller who has held two minutes, and one who just came
    let mut long = holding("CA-long", "sales", "+2");
    long.arrival = Arrival::Holding {
        waited: Duration::from_secs(120),
    };
    store.enqueue(&long).await.expect("enqueue");
    enqueue(&store, "CA-plain", "sales").await;
    // a minute's boost passes the newcomer, never the caller who waited longer than that
    let mut vip = holding("CA-vip", "sales", "+1");
    vip.priority_boost = Duration::from_secs(60);
    store.enqueue(&vip).await.expect("enqueue");
    let snap = store
        .snapshot(&sids(&["CA-long", "CA-plain", "CA-vip"]))
        .await
        .expect("snap");
    assert_eq!(
        snap.waiting["sales"],
        sids(&["CA-long", "CA-vip", "CA-plain"])
    );
    assert_eq!(call(&store, "CA-vip").await.priority_ms, 60_000);
    let pos = store
        .position("CA-plain", "sales")
        .await
        .expect("pos")
        .expect("waiting");
    assert_eq!(pos.position, 3);
}

#[tokio::test]
async fn fewest_calls_strategy_prefers_the_agent_with_fewer_answered_calls() {
    let store = store_with(&[queue("q", Strategy::FewestCalls)]).await;
    online_agent(&store, &agent("busy-bee", &[("q", 1)])).await;
    enqueue(&store, "CA1", "q").await;
    claim(&store).await.expect("offer");
    store
        .offer_result(&current(&store, "CA1").await, OfferOutcome::Answered, "")
        .await
        .expect("answer");
    complete(&store, "CA1").await.expect("complete");
    online_agent(&store, &agent("fresh", &[("q", 1)])).await;
    enqueue(&store, "CA2", "q").await;
    assert_eq!(
        claim(&store).await.map(|o| o.agent_id),
        Some("fresh".into())
    );
}

/// One call of queue `q` answered and completed by whoever the claim picks; returns the agent.
/// `talk` passes between the answer and the end.
async fn serve_one(store: &Store, sid: &str, q: &str, talk: Duration) -> String {
    enqueue(store, sid, q).await;
    let o = claim(store).await.expect("offer");
    store
        .offer_result(&o.offer_ref(), OfferOutcome::Answered, "")
        .await
        .expect("answer");
    tokio::time::sleep(talk).await;
    complete(store, sid).await.expect("complete");
    o.agent_id
}

/// `fewest_calls` counts recent calls, not a lifetime's: calls fade with the queue's half-life,
/// so a newcomer is preferred until their recent work matches the others', then they share.
#[tokio::test]
async fn fewest_calls_compares_recent_work_so_a_newcomer_does_not_take_every_call() {
    let mut q = queue("q", Strategy::FewestCalls);
    q.half_life = Duration::from_secs(1);
    let store = store_with(&[q]).await;
    online_agent(&store, &agent("veteran", &[("q", 1)])).await;
    for i in 0..3 {
        let by = serve_one(&store, &format!("CAv{i}"), "q", Duration::ZERO).await;
        assert_eq!(by, "veteran");
    }
    // four half-lives or more (a slow machine only lets more fade): three calls count
    // under 0.2 now
    tokio::time::sleep(Duration::from_secs(4)).await;
    online_agent(&store, &agent("newcomer", &[("q", 1)])).await;
    assert_eq!(
        serve_one(&store, "CAn1", "q", Duration::ZERO).await,
        "newcomer",
        "no recent calls at all: first"
    );
    // one fresh call outweighs three faded ones: with a lifetime count (3 > 1) the
    // newcomer would take this one too, and the next
    assert_eq!(
        serve_one(&store, "CAn2", "q", Duration::ZERO).await,
        "veteran"
    );
}

#[tokio::test]
async fn least_talk_time_prefers_the_agent_who_talked_least_lately() {
    let store = store_with(&[queue("q", Strategy::LeastTalkTime)]).await;
    online_agent(&store, &agent("talker", &[("q", 1)])).await;
    assert_eq!(
        serve_one(&store, "CA1", "q", Duration::from_secs(3)).await,
        "talker"
    );
    online_agent(&store, &agent("brief", &[("q", 1)])).await;
    assert_eq!(serve_one(&store, "CA2", "q", Duration::ZERO).await, "brief");
    // brief talked a few milliseconds, talker three seconds: brief again, though both are
    // free and brief took the last call
    assert_eq!(serve_one(&store, "CA3", "q", Duration::ZERO).await, "brief");
    let talker = agent_rec(&store, "talker").await;
    assert_eq!(talker.handled, 1);
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
            .offer_result(&current(&store, &sid).await, OfferOutcome::Answered, "")
            .await
            .expect("ans");
        complete(&store, &sid).await.expect("complete");
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
    let mut picked = std::collections::HashMap::new();
    for i in 0..60u32 {
        let sid = format!("CA{i}");
        enqueue(&store, &sid, "q").await;
        let Claim::Offer(o) = store.claim(LEASE, rand::random()).await.expect("claim") else {
            panic!("no offer");
        };
        store.abandon(&sid, "test").await.expect("abandon");
        *picked.entry(o.agent_id).or_insert(0) += 1;
    }
    // each misses 60 draws with probability (2/3)^60, about 3e-11
    assert_eq!(picked.len(), 3, "every agent is drawn: {picked:?}");
}

/// Offer and settle calls in `q` until `n` offers were made, each claim with a fresh random
/// seed; returns how many went to each agent.
async fn offers_by_agent(store: &Store, q: &str, n: u32) -> std::collections::HashMap<String, u32> {
    let mut picked = std::collections::HashMap::new();
    for i in 0..n {
        let sid = format!("CAw{i}");
        enqueue(store, &sid, q).await;
        let Claim::Offer(o) = store.claim(LEASE, rand::random()).await.expect("claim") else {
            panic!("no offer");
        };
        store.abandon(&sid, "test").await.expect("abandon");
        *picked.entry(o.agent_id).or_insert(0) += 1;
    }
    picked
}

#[tokio::test]
async fn weighted_random_offers_in_proportion_to_the_weights() {
    let store = store_with(&[queue("q", Strategy::WeightedRandom)]).await;
    let mut light = agent("light", &[("q", 1)]);
    light.weight = 1;
    let mut heavy = agent("heavy", &[("q", 1)]);
    heavy.weight = 9;
    online_agent(&store, &light).await;
    online_agent(&store, &heavy).await;
    let picked = offers_by_agent(&store, "q", 300).await;
    let heavy_n = picked.get("heavy").copied().unwrap_or(0);
    // expected 270 of 300 (sd about 5): far from an even split either way
    assert!(
        (220..300).contains(&heavy_n),
        "heavy got {heavy_n} of 300: {picked:?}"
    );
    assert!(picked.get("light").copied().unwrap_or(0) > 0, "{picked:?}");
}

#[tokio::test]
async fn linear_offers_in_the_configured_order() {
    let store = store_with(&[queue("q", Strategy::Linear)]).await;
    for (id, order) in [("c", 1), ("a", 3), ("b", 2), ("d", 1)] {
        let mut spec = agent(id, &[("q", 1)]);
        spec.order = order;
        online_agent(&store, &spec).await;
    }
    let mut offered = Vec::new();
    for i in 0..4 {
        let sid = format!("CA{i}");
        enqueue(&store, &sid, "q").await;
        offered.push(claim(&store).await.expect("offer").agent_id);
    }
    assert_eq!(offered, ["c", "d", "b", "a"], "order, then id");
    // the first in order takes the next call as soon as it is free again, however long the
    // others have waited
    store.end_call("CA0", "test").await.expect("ended");
    store.end_call("CA2", "test").await.expect("ended");
    enqueue(&store, "CA9", "q").await;
    assert_eq!(
        claim(&store).await.map(|o| o.agent_id).as_deref(),
        Some("c")
    );
}

/// A claim reads the head of a ready set first and looks deeper only when the head's agents
/// cannot take the call: here the first two in order already rang it, and the third, further
/// down, is the one offered (not the first again).
#[tokio::test]
async fn agents_past_the_head_of_the_ready_set_are_found_when_the_head_already_rang() {
    let store = store_with(&[queue("q", Strategy::Linear)]).await;
    for (id, order) in [("a1", 1), ("a2", 2), ("a3", 3)] {
        let mut spec = agent(id, &[("q", 1)]);
        spec.order = order;
        online_agent(&store, &spec).await;
    }
    enqueue(&store, "CA1", "q").await;
    let mut rang = Vec::new();
    for _ in 0..3 {
        let o = claim(&store).await.expect("offer");
        rang.push(o.agent_id.clone());
        store
            .offer_result(&o.offer_ref(), OfferOutcome::NoAnswer, "")
            .await
            .expect("no-answer");
    }
    assert_eq!(rang, ["a1", "a2", "a3"], "each agent once before any again");
    let again = claim(&store).await.expect("offer");
    assert_eq!(again.agent_id, "a1", "then the first in order again");
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn going_offline_on_a_call_is_applied_when_the_call_ends() {
    let mut q = sales();
    q.wrapup = Duration::from_secs(60);
    let (store, _) = connected(q, "CA1").await;
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
    complete(&store, "CA1").await.expect("complete");
    let a = agent_rec(&store, "a1").await;
    assert_eq!(
        (a.status, a.reason.as_str()),
        (AgentStatus::Offline, "end of shift")
    );
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn going_available_during_wrapup_ends_it_early() {
    let mut q = sales();
    q.wrapup = Duration::from_secs(60);
    let (store, _) = connected(q, "CA1").await;
    complete(&store, "CA1").await.expect("complete");
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
    let (store, _) = offered(sales(), "CA1").await;
    assert_eq!(
        complete(&store, "CA1").await.expect("complete"),
        Completion::Completed("a1".to_string())
    );
    let late = store
        .offer_result(&current(&store, "CA1").await, OfferOutcome::Answered, "")
        .await
        .expect("late");
    assert_eq!(late, OfferResult::Stale(Some(CallState::Completed)));
    assert_eq!(
        complete(&store, "CA1").await.expect("again"),
        Completion::Stale(Some(CallState::Completed))
    );
    assert_eq!(status(&store, "a1").await, AgentStatus::Available);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn a_callback_keeps_its_rank_and_is_offered_as_a_callback() {
    let store = store_with(&[sales()]).await;
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
    let call = call(&store, "CA-cb").await;
    assert_eq!(call.callback_to.as_deref(), Some("+15551234567"));
    assert_invariants(&store, &sids(&["CA-cb", "CA-later"])).await;
}

#[tokio::test]
async fn a_callback_enqueued_on_arrival_calls_back_the_caller() {
    let store = store_with(&[sales()]).await;
    let mut cb = holding("CA1", "sales", "+15557654321");
    cb.kind = CallKind::Callback;
    cb.arrival = Arrival::Arriving;
    store.enqueue(&cb).await.expect("enqueue");
    let record = call(&store, "CA1").await;
    assert_eq!(record.state, CallState::Callback);
    assert_eq!(record.callback_to.as_deref(), Some("+15557654321"));
    // an agent comes online: the callback is offered, to ring the caller's number
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    let o = claim(&store).await.expect("the callback offered");
    assert_eq!((o.call_sid.as_str(), o.kind), ("CA1", CallKind::Callback));
}

#[tokio::test]
async fn overflow_takes_a_waiting_call_out_of_line() {
    let store = store_with(&[sales()]).await;
    enqueue(&store, "CA1", "sales").await;
    assert_eq!(
        store
            .overflow("CA1", "voicemail", callq::store::OverflowRule::MaxWait)
            .await
            .expect("overflow"),
        Transition::Done(())
    );
    assert_eq!(state(&store, "CA1").await, CallState::Overflowed);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn a_transfer_moves_a_waiting_call_and_keeps_its_rank() {
    let store = store_with(&[sales(), queue("support", Strategy::LongestIdle)]).await;
    let first = enqueue(&store, "CA-old", "support").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    enqueue(&store, "CA-sales", "sales").await;
    let r = store.transfer("CA-old", "sales").await.expect("transfer");
    assert_eq!(r, Transition::Done("support".to_string()));
    let call = call(&store, "CA-old").await;
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
    let store = store_with(&[sales()]).await;
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
    // a worker that finds the callback impossible ends it, freeing the agent
    let r = store
        .callback_result(
            &current(&store, "CA1").await,
            OfferOutcome::Refused,
            "no_number",
            Duration::ZERO,
        )
        .await
        .expect("refused");
    assert_eq!(r, CallbackRetry::Failed);
    assert_eq!(state(&store, "CA1").await, CallState::CallbackFailed);
    let a = agent_rec(&store, "a1").await;
    assert_eq!((a.status, a.active), (AgentStatus::Wrapup, 0));
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn an_agent_on_a_call_cannot_be_deleted() {
    let (store, _) = offered(sales(), "CA1").await;
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
    let store = store_with(&[sales()]).await;
    let err = store
        .upsert_agent(&agent("a1", &[("nope", 1)]), UpsertMode::Upsert)
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::UnknownQueue(q) if q == "nope"));
    let mut spec = agent("a1", &[("sales", 1)]);
    spec.capacity = 0;
    assert!(matches!(
        store.upsert_agent(&spec, UpsertMode::Upsert).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.heartbeat("ghost", Duration::from_secs(1), true).await,
        Err(StoreError::UnknownAgent(_))
    ));
}

#[tokio::test]
async fn moving_an_agent_between_queues_reindexes_its_ready_sets() {
    let store = store_with(&[sales(), queue("support", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    store
        .upsert_agent(&agent("a1", &[("support", 2)]), UpsertMode::Upsert)
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

/// How a store runs the routing scripts, whatever `CALLQ_TEST_BY_SHA` says.
enum Scripts {
    AsFunctions,
    BySha,
}

/// A store on centre `<name><pid>` with the sales queue, running the scripts as `scripts` says.
async fn sales_store_running(scripts: Scripts, name: &str) -> Store {
    let opts = callq::store::StoreOptions {
        functions: matches!(scripts, Scripts::AsFunctions),
        ..callq::store::StoreOptions::default()
    };
    let centre = format!("{name}{}", std::process::id());
    let store = Store::connect_with(&support::redis_url(), &centre, &opts).expect("store");
    store.configure_queue(&sales()).await.expect("queue");
    store
}

#[tokio::test]
async fn scripts_survive_a_script_flush() {
    // by SHA, as on a Redis without functions: a SCRIPT FLUSH (a restart, a new master) leaves
    // EVALSHA answering NOSCRIPT, and the script is loaded again (functions ignore the flush:
    // transitions_survive_a_function_flush covers them)
    let store = sales_store_running(Scripts::BySha, "flush").await;
    enqueue(&store, "CA1", "sales").await;
    let mut conn = store.conn().await.expect("conn");
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("flush");
    enqueue(&store, "CA2", "sales").await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    assert_eq!(claim(&store).await.map(|o| o.call_sid), Some("CA1".into()));
    let memory: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .expect("info");
    let cached = memory
        .lines()
        .find_map(|l| l.strip_prefix("number_of_cached_scripts:"))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(
        cached.is_some_and(|n| n > 0),
        "the scripts were loaded again: {cached:?}"
    );
}

#[tokio::test]
async fn a_call_cycle_runs_by_sha_as_on_a_redis_without_functions() {
    // each script with only the shared definitions it reaches pasted in (EVALSHA)
    let store = sales_store_running(Scripts::BySha, "sha").await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enter_connected(&store, "CA1", "sales").await;
    assert_eq!(status(&store, "a1").await, AgentStatus::Busy);
    complete(&store, "CA1").await.expect("complete");
    assert_eq!(state(&store, "CA1").await, CallState::Completed);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn transitions_survive_a_function_flush() {
    // the scripts run as a library of Redis functions; a Redis that lost it (restarted
    // without persistence, flushed) gets it loaded again by the next transition
    let store = sales_store_running(Scripts::AsFunctions, "fn").await;
    enqueue(&store, "CA1", "sales").await;
    let mut conn = store.conn().await.expect("conn");
    async fn libraries(conn: &mut callq::store::Conn) -> usize {
        let v: Vec<redis::Value> = redis::cmd("FUNCTION")
            .arg("LIST")
            .arg("LIBRARYNAME")
            .arg("callq_*")
            .query_async(conn)
            .await
            .expect("list");
        v.len()
    }
    assert_eq!(
        libraries(&mut conn).await,
        1,
        "loaded by the first transition"
    );
    let _: () = redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("flush");
    // (other tests share this Redis: one of them may load it again first, which is fine)
    enqueue(&store, "CA2", "sales").await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    assert_eq!(claim(&store).await.map(|o| o.call_sid), Some("CA1".into()));
    assert_eq!(libraries(&mut conn).await, 1, "loaded again");
}

#[tokio::test]
async fn a_call_history_is_read_from_the_event_stream() {
    let (store, _) = connected(sales(), "CA1").await;
    complete(&store, "CA1").await.expect("complete");
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
async fn a_changed_queue_setting_applies_to_the_next_transition() {
    // Scripts keep a queue's settings from one call to the next (the functions library's
    // state outlives a call); a change must show in the very next transition.
    let mut q = sales();
    q.wrapup = Duration::ZERO;
    let (store, _) = connected(q.clone(), "CA1").await;
    q.wrapup = Duration::from_secs(60);
    store.configure_queue(&q).await.expect("reconfigured");
    complete(&store, "CA1").await.expect("complete");
    assert_eq!(
        status(&store, "a1").await,
        AgentStatus::Wrapup,
        "the new wrap-up applies"
    );
}

#[tokio::test]
async fn an_agent_in_a_new_tier_is_offered_at_once() {
    // Adding an agent in a tier beyond the queue's last raises the queue's `tiers`, a
    // setting the scripts keep between calls: the next claim must look at that tier.
    let store = store_with(&[sales()]).await;
    enqueue(&store, "CA1", "sales").await;
    assert!(claim(&store).await.is_none(), "nobody to take it yet");
    online_agent(&store, &agent("a2", &[("sales", 2)])).await;
    let offer = claim(&store).await.expect("offered to the tier-2 agent");
    assert_eq!(offer.agent_id, "a2");
    assert_invariants(&store, &sids(&["CA1"])).await;
}

/// The time to live of `key`, ms (-1: none, -2: no key).
async fn pttl(store: &Store, key: &str) -> i64 {
    let mut conn = store.conn().await.expect("conn");
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("PTTL")
}

#[tokio::test]
async fn a_call_history_lives_a_day_from_its_first_entry_and_from_the_call_end() {
    const DAY_MS: i64 = 86_400_000;
    let store = store_with(&[sales()]).await;
    enqueue(&store, "CA1", "sales").await;
    let history = format!("{}call:CA1:history", store.prefix());
    let call = format!("{}call:CA1", store.prefix());
    let first = pttl(&store, &history).await;
    assert!(first > DAY_MS - 60_000 && first <= DAY_MS, "{first}");
    assert_eq!(
        pttl(&store, &call).await,
        -1,
        "a live call's hash never expires"
    );
    // a day less an hour left on the history: the end of the call sets a whole day again
    let mut conn = store.conn().await.expect("conn");
    redis::cmd("PEXPIRE")
        .arg(&history)
        .arg(DAY_MS - 3_600_000)
        .query_async::<i64>(&mut conn)
        .await
        .expect("PEXPIRE");
    drop(conn);
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    let offer = claim(&store).await.expect("offered");
    store
        .offer_result(&offer.offer_ref(), OfferOutcome::Answered, "")
        .await
        .expect("answered");
    let mid = pttl(&store, &history).await;
    assert!(
        mid <= DAY_MS - 3_600_000,
        "a transition leaves the TTL as it is: {mid}"
    );
    complete(&store, "CA1").await.expect("complete");
    for key in [history, call] {
        let left = pttl(&store, &key).await;
        assert!(left > DAY_MS - 60_000 && left <= DAY_MS, "{key}: {left}");
    }
}

#[tokio::test]
async fn queue_stats_count_agents_and_estimate_the_wait() {
    let (store, _) = offered(sales(), "CA1").await;
    enqueue(&store, "CA2", "sales").await;
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

/// The wait estimate learns from the callers who left the line: the ring they waited through
/// once offered, and how many gave up for the time they held, so a long line of impatient
/// callers is not told the textbook k × AHT ÷ agents.
#[tokio::test]
async fn callers_leaving_the_line_teach_the_wait_estimate() {
    let store = store_with(&[sales()]).await;
    let fresh = store.queue_stats("sales").await.expect("stats");
    assert_eq!((fresh.ring_s, fresh.abandon_rate), (0.0, 0.0));

    // one call answered after a ring of at least 50 ms
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CAr", "sales").await;
    let o = claim(&store).await.expect("offer");
    tokio::time::sleep(Duration::from_millis(50)).await;
    store
        .offer_result(&o.offer_ref(), OfferOutcome::Answered, "CAleg")
        .await
        .expect("answered");
    let stats = store.queue_stats("sales").await.expect("stats");
    assert!(stats.ring_s >= 0.05, "ring {}", stats.ring_s);
    assert_eq!(stats.abandon_rate, 0.0, "one caller is too little history");

    // thirty callers who hang up after holding a little: half the line gives up
    for i in 0..30 {
        enqueue(&store, &format!("CAgone{i}"), "sales").await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..30 {
        let sid = format!("CAgone{i}");
        assert_eq!(
            store.abandon(&sid, "hangup").await.expect("abandon"),
            Transition::Done(CallState::Waiting)
        );
    }
    let stats = store.queue_stats("sales").await.expect("stats");
    assert!(stats.abandon_rate > 0.0, "{stats:?}");
    // the agent is busy: the 40th caller's wait is far under 40 handle times
    let textbook = stats.ring_s + 40.0 * stats.aht_s / stats.staffed() as f64;
    let estimate = callq::store::read::estimate_wait(40, &stats);
    assert!(
        estimate < textbook / 2.0,
        "estimate {estimate} vs textbook {textbook}"
    );
    assert!(estimate > stats.ring_s, "{estimate}");
}

/// A queue hash written by an older callq holds the running figures beside the settings;
/// configuring the queue again moves them into `queue:<q>:stats`, where the wait estimate
/// reads them, and a figure the stats hash already has (newer) is kept.
#[tokio::test]
async fn configuring_a_queue_moves_old_running_figures_into_its_stats_hash() {
    let store = store_with(&[sales()]).await;
    let mut c = store.conn().await.expect("conn");
    let queue = store.key("queue:sales");
    let figures = store.key("queue:sales:stats");
    let _: () = redis::cmd("HSET")
        .arg(&queue)
        .arg(&["aht_ms", "42000", "ring_ms", "3000", "rr_seq", "7"])
        .query_async(&mut c)
        .await
        .expect("old layout");
    let _: () = redis::cmd("HSET")
        .arg(&figures)
        .arg(&["ring_ms", "5000"])
        .query_async(&mut c)
        .await
        .expect("a newer figure");
    store.configure_queue(&sales()).await.expect("configured");

    let left: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(&queue)
        .arg(&["aht_ms", "ring_ms", "rr_seq", "strategy"])
        .query_async(&mut c)
        .await
        .expect("queue hash");
    assert_eq!(
        &left[..3],
        &[None, None, None],
        "the figures left the settings"
    );
    assert!(left[3].is_some(), "the settings stay");
    let moved: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(&figures)
        .arg(&["aht_ms", "ring_ms", "rr_seq"])
        .query_async(&mut c)
        .await
        .expect("stats hash");
    assert_eq!(
        moved,
        [Some("42000".into()), Some("5000".into()), Some("7".into())]
    );
    let stats = store.queue_stats("sales").await.expect("stats");
    assert_eq!((stats.aht_s, stats.ring_s), (42.0, 5.0));
}

// ---------------------------------------------------------------------------------------------
// Fault paths: results late, repeated or about another offer; calls Twilio is not yet
// holding; callbacks whose customer does not answer; checks; re-entry; operator ends.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_result_for_an_earlier_offer_of_the_same_call_and_agent_changes_nothing() {
    let (store, first) = offered(sales(), "CA1").await;
    store
        .offer_result(&first.offer_ref(), OfferOutcome::NoAnswer, "")
        .await
        .expect("miss");
    let second = claim(&store)
        .await
        .expect("offered again to the only agent");
    assert_eq!((second.agent_id.as_str(), second.attempt), ("a1", 2));
    // the first ring's result comes again (duplicated), and a late 'canceled' too
    for outcome in [
        OfferOutcome::NoAnswer,
        OfferOutcome::Canceled,
        OfferOutcome::Answered,
    ] {
        let r = store
            .offer_result(&first.offer_ref(), outcome, "")
            .await
            .expect("late");
        assert_eq!(r, OfferResult::Stale(Some(CallState::Offered)), "{outcome}");
    }
    let r = store
        .complete("CA1", Some(&first.offer_ref()), EndSource::Leg)
        .await
        .expect("late completion");
    assert_eq!(r, Completion::Stale(Some(CallState::Offered)));
    let a = agent_rec(&store, "a1").await;
    assert_eq!(a.misses, 1, "one unanswered ring is one miss");
    assert_eq!(
        a.status,
        AgentStatus::Reserved,
        "still ringing for attempt 2"
    );
    let c = call(&store, "CA1").await;
    assert_eq!((c.state, c.attempts), (CallState::Offered, 2));
    assert_eq!(c.rang, vec!["a1".to_string()], "an agent is listed once");
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn an_agent_of_capacity_two_is_never_booked_twice_by_one_call() {
    let store = store_with(&[sales()]).await;
    let mut spec = agent("a1", &[("sales", 1)]);
    spec.capacity = 2;
    online_agent(&store, &spec).await;
    let first = enter_offered(&store, "CA1", "sales").await;
    store
        .offer_result(&first.offer_ref(), OfferOutcome::NoAnswer, "")
        .await
        .expect("miss");
    let second = claim(&store).await.expect("again");
    store
        .offer_result(&second.offer_ref(), OfferOutcome::Answered, "CAleg")
        .await
        .expect("answered");
    // the first ring's late no-answer must not put the live conversation back in line
    let r = store
        .offer_result(&first.offer_ref(), OfferOutcome::NoAnswer, "")
        .await
        .expect("late");
    assert_eq!(r, OfferResult::Stale(Some(CallState::Connected)));
    assert_eq!(state(&store, "CA1").await, CallState::Connected);
    assert_eq!(claim(&store).await, None, "nothing else to offer");
    let a = agent_rec(&store, "a1").await;
    assert_eq!(a.active, 1);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn a_call_is_offered_only_once_twilio_holds_the_caller() {
    let store = staffed(sales()).await;
    let mut call_in = holding("CA1", "sales", "+15550001111");
    call_in.arrival = Arrival::Arriving;
    let e = store.enqueue(&call_in).await.expect("enqueue");
    assert_eq!(e.state, CallState::Arriving);
    assert_eq!(
        claim(&store).await,
        None,
        "Twilio has not run the <Enqueue>"
    );
    assert_invariants(&store, &sids(&["CA1"])).await;
    assert_eq!(
        store.arrive("CA1").await.expect("arrive"),
        Transition::Done(())
    );
    assert_eq!(
        store.arrive("CA1").await.expect("again"),
        Transition::Stale(Some(CallState::Waiting))
    );
    let o = claim(&store).await.expect("offerable now");
    assert_eq!(o.call_sid, "CA1");
    // the rank is the one given on entry
    assert_eq!(call(&store, "CA1").await.rank, e.rank);
}

#[tokio::test]
async fn an_arrival_whose_wait_request_never_came_is_offered_after_its_grace() {
    let store = staffed(sales()).await;
    let mut call_in = holding("CA1", "sales", "+15550001111");
    call_in.arrival = Arrival::Arriving;
    store.enqueue(&call_in).await.expect("enqueue");
    // the grace is seconds; bring its deadline forward instead of waiting for it
    let mut conn = store.conn().await.expect("conn");
    let _: () = redis::cmd("ZADD")
        .arg(store.key("arriving"))
        .arg(0)
        .arg("CA1")
        .query_async(&mut conn)
        .await
        .expect("zadd");
    let o = claim(&store).await.expect("offered after the grace");
    assert_eq!(o.call_sid, "CA1");
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn an_arriving_caller_who_hangs_up_is_abandoned() {
    let store = store_with(&[sales()]).await;
    let mut call_in = holding("CA1", "sales", "+15550001111");
    call_in.arrival = Arrival::Arriving;
    store.enqueue(&call_in).await.expect("enqueue");
    assert_eq!(
        store.abandon("CA1", "hangup").await.expect("abandon"),
        Transition::Done(CallState::Arriving)
    );
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn a_caller_holding_without_a_record_enters_at_the_time_they_arrived() {
    let store = store_with(&[sales()]).await;
    enqueue(&store, "CA-later", "sales").await;
    let mut fallback = holding("CA-early", "sales", "+15550001111");
    fallback.arrival = Arrival::Holding {
        waited: Duration::from_secs(90),
    };
    store.enqueue(&fallback).await.expect("enqueue");
    let snap = store
        .snapshot(&sids(&["CA-early", "CA-later"]))
        .await
        .expect("snap");
    assert_eq!(
        snap.waiting["sales"],
        sids(&["CA-early", "CA-later"]),
        "the caller who held 90 s in Twilio's queue is ahead"
    );
}

#[tokio::test]
async fn a_callback_whose_customer_does_not_answer_is_retried_then_fails() {
    let mut q = sales();
    q.callback_retries = 1;
    q.callback_retry_delay = Duration::from_millis(200);
    let store = staffed(q).await;
    let entered = enqueue(&store, "CA1", "sales").await;
    store
        .request_callback("CA1", "+15551234567")
        .await
        .expect("callback");
    let o = claim(&store).await.expect("agent rung for the callback");
    assert_eq!(o.kind, CallKind::Callback);
    store
        .offer_result(&o.offer_ref(), OfferOutcome::Answered, "CAagentleg")
        .await
        .expect("agent answered");
    // the customer leg: no answer
    let r = store
        .callback_result(
            &o.offer_ref(),
            OfferOutcome::NoAnswer,
            "customer_no-answer",
            Duration::ZERO,
        )
        .await
        .expect("result");
    assert!(matches!(r, CallbackRetry::Retry { .. }), "{r:?}");
    let c = call(&store, "CA1").await;
    assert_eq!((c.state, c.callback_tries), (CallState::Callback, 1));
    let a = agent_rec(&store, "a1").await;
    assert_eq!(
        (a.status, a.active, a.misses),
        (AgentStatus::Wrapup, 0, 0),
        "free of the call, no miss, held while its own leg says its last words"
    );
    assert_invariants(&store, &sids(&["CA1"])).await;
    assert_eq!(claim(&store).await, None, "not before the retry delay");
    let again = claim_within(&store, Duration::from_secs(30))
        .await
        .expect("retried");
    assert_eq!((again.call_sid.as_str(), again.attempt), ("CA1", 2));
    assert_eq!(call(&store, "CA1").await.rank, entered.rank, "rank kept");
    // a late duplicate of the first result changes nothing
    assert_eq!(
        store
            .callback_result(
                &o.offer_ref(),
                OfferOutcome::NoAnswer,
                "dup",
                Duration::ZERO
            )
            .await
            .expect("dup"),
        CallbackRetry::Stale(Some(CallState::Offered))
    );
    let r = store
        .callback_result(
            &again.offer_ref(),
            OfferOutcome::Busy,
            "customer_busy",
            Duration::ZERO,
        )
        .await
        .expect("result");
    assert_eq!(r, CallbackRetry::Failed);
    let c = call(&store, "CA1").await;
    assert_eq!(c.state, CallState::CallbackFailed);
    assert_eq!(c.end_reason.as_deref(), Some("customer_busy"));
    assert_eq!(status(&store, "a1").await, AgentStatus::Wrapup);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn a_callbacks_agent_leg_ending_asks_twilio_instead_of_completing() {
    let store = staffed(sales()).await;
    enqueue(&store, "CA1", "sales").await;
    store
        .request_callback("CA1", "+15551234567")
        .await
        .expect("callback");
    let o = claim(&store).await.expect("offer");
    store
        .offer_result(&o.offer_ref(), OfferOutcome::Answered, "CAagentleg")
        .await
        .expect("answered");
    let r = store
        .complete("CA1", Some(&o.offer_ref()), EndSource::Leg)
        .await
        .expect("leg ended");
    assert_eq!(r, Completion::Check);
    assert_eq!(state(&store, "CA1").await, CallState::Connected);
    let checks = store.take_checks(10, LEASE).await.expect("checks");
    assert_eq!(checks.len(), 1, "due at once");
    assert_eq!(checks[0].leg_sid.as_deref(), Some("CAagentleg"));
    assert_eq!(checks[0].state, CallState::Connected);
    // Twilio says the customer talked: completed from the check
    let r = store
        .complete("CA1", Some(&o.offer_ref()), EndSource::Check)
        .await
        .expect("complete");
    assert_eq!(r, Completion::Completed("a1".into()));
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn a_call_twilio_keeps_refusing_overflows_and_its_agents_are_freed_without_a_miss() {
    let (store, first) = offered(sales(), "CA1").await;
    for (i, want) in [
        OfferResult::Requeued(AgentStatus::Available),
        OfferResult::Requeued(AgentStatus::Available),
        OfferResult::Refused,
    ]
    .into_iter()
    .enumerate()
    {
        let o = if i == 0 {
            first.clone()
        } else {
            claim(&store).await.expect("offered again")
        };
        let r = store
            .offer_result(&o.offer_ref(), OfferOutcome::Refused, "twilio_21210")
            .await
            .expect("refused");
        assert_eq!(r, want, "refusal {}", i + 1);
        assert_invariants(&store, &sids(&["CA1"])).await;
    }
    let c = call(&store, "CA1").await;
    assert_eq!(c.state, CallState::Overflowed);
    assert_eq!(c.end_reason.as_deref(), Some("twilio_21210"));
    let a = agent_rec(&store, "a1").await;
    assert_eq!((a.status, a.misses), (AgentStatus::Available, 0));
}

#[tokio::test]
async fn a_connected_call_is_due_a_check_and_a_check_that_finds_it_talking_moves_it_out() {
    let mut q = sales();
    q.check_after = Duration::from_millis(100);
    let (store, o) = connected(q, "CA1").await;
    assert!(store
        .take_checks(10, LEASE)
        .await
        .expect("checks")
        .is_empty());
    tokio::time::sleep(Duration::from_millis(150)).await;
    let checks = store.take_checks(10, LEASE).await.expect("checks");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].state, CallState::Connected);
    // still talking: the next check moves out
    store
        .extend_offer(&o.offer_ref(), Some(Duration::from_secs(60)), None)
        .await
        .expect("extend");
    assert_eq!(call(&store, "CA1").await.state, CallState::Connected);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn a_caller_held_as_gone_rejoins_at_their_rank_but_not_after_hanging_up() {
    struct Case {
        reason: &'static str,
        reenters: bool,
    }
    for case in [
        Case {
            reason: "call_gone",
            reenters: true,
        },
        Case {
            reason: "hangup",
            reenters: false,
        },
    ] {
        let store = store_with(&[sales()]).await;
        let e = enqueue(&store, "CA1", "sales").await;
        store.abandon("CA1", case.reason).await.expect("abandon");
        let r = store.reenter("CA1").await.expect("reenter");
        if case.reenters {
            assert_eq!(r, Transition::Done(()), "{}", case.reason);
            let c = call(&store, "CA1").await;
            assert_eq!((c.state, c.rank), (CallState::Waiting, e.rank));
        } else {
            assert_eq!(r, Transition::Stale(Some(CallState::Abandoned)));
        }
        assert_invariants(&store, &sids(&["CA1"])).await;
    }
}

#[tokio::test]
async fn an_operator_ends_a_stuck_call_and_frees_its_agent_on_the_record() {
    let mut q = sales();
    q.wrapup = Duration::from_secs(60);
    let (store, _) = connected(q, "CA1").await;
    let r = store.end_call("CA1", "admin").await.expect("end");
    assert_eq!(r, Transition::Done(CallState::Connected));
    let c = call(&store, "CA1").await;
    assert_eq!(
        (c.state, c.end_reason.as_deref()),
        (CallState::Completed, Some("ended_by_operator"))
    );
    assert_eq!(
        status(&store, "a1").await,
        AgentStatus::Available,
        "released at once, no wrap-up"
    );
    assert_eq!(
        store.end_call("CA1", "admin").await.expect("again"),
        Transition::Stale(Some(CallState::Completed))
    );
    let events = store.call_events("CA1").await.expect("events");
    let (_, ended) = events.last().expect("an event");
    assert_eq!(
        (ended["type"].as_str(), ended["by"].as_str()),
        ("ended", "admin")
    );
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn an_agent_without_a_live_device_does_not_count_as_available_in_the_estimate() {
    let store = store_with(&[sales()]).await;
    let spec = agent("a1", &[("sales", 1)]);
    store
        .upsert_agent(&spec, UpsertMode::Upsert)
        .await
        .expect("agent");
    store
        .set_agent_status("a1", RequestedStatus::Available, "")
        .await
        .expect("available");
    let stats = store.queue_stats("sales").await.expect("stats");
    assert_eq!((stats.agents["available"], stats.agents["offline"]), (0, 1));
}

#[tokio::test]
async fn a_hangup_heard_while_the_agent_rang_is_checked_with_twilio_not_taken_at_its_word() {
    let (store, o) = offered(sales(), "CA1").await;
    store
        .extend_offer(&o.offer_ref(), Some(Duration::from_secs(60)), None)
        .await
        .expect("ringing");
    // the caller's call ended; the agent may have answered with every callback lost
    let r = store.abandon("CA1", "hangup").await.expect("abandon");
    assert_eq!(r, Transition::Stale(Some(CallState::Offered)));
    let checks = store.take_checks(10, LEASE).await.expect("checks");
    assert_eq!(checks.len(), 1, "the check is due at once");
    assert_eq!(checks[0].offer, o.offer_ref());
    // Twilio confirms the caller left without a conversation
    let r = store.abandon("CA1", "call_gone").await.expect("abandon");
    assert_eq!(r, Transition::Done(CallState::Offered));
    assert_eq!(status(&store, "a1").await, AgentStatus::Available);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

/// A recording goes on the call's hash without touching its state; the same one again changes
/// nothing; a later one replaces it (its event names the one replaced); an unknown call gets
/// nothing, not even a hash.
#[tokio::test]
async fn a_recording_is_kept_with_the_call_once() {
    let store = staffed(sales()).await;
    let offer = enter_connected(&store, "CArec", "sales").await;
    let rec = |sid: &str| Recording {
        sid: sid.to_string(),
        url: format!("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{sid}"),
        duration_s: 12,
    };
    let first = rec("RE0000000000000000000000000000000a");
    assert_eq!(
        store.record("CArec", &first).await.expect("record"),
        Recorded::Kept
    );
    let c = call(&store, "CArec").await;
    assert_eq!(c.recording.as_ref(), Some(&first));
    assert_eq!(
        (c.state, c.agent.as_deref()),
        (CallState::Connected, Some(offer.agent_id.as_str()))
    );
    assert_eq!(
        store.record("CArec", &first).await.expect("record"),
        Recorded::Duplicate
    );
    let second = rec("RE0000000000000000000000000000000b");
    assert_eq!(
        store.record("CArec", &second).await.expect("record"),
        Recorded::Kept
    );
    assert_eq!(call(&store, "CArec").await.recording, Some(second.clone()));
    let events = store.call_events("CArec").await.expect("history");
    let recorded: Vec<_> = events
        .iter()
        .filter(|(_, f)| f.get("type").map(String::as_str) == Some("recorded"))
        .collect();
    assert_eq!(recorded.len(), 2, "{events:?}");
    assert_eq!(recorded[1].1.get("replaced"), Some(&first.sid));
    assert!(
        events
            .iter()
            .all(|(_, f)| f.values().all(|v| !v.contains("api.twilio.com"))),
        "no URL in the history: {events:?}"
    );
    assert_eq!(
        store.record("CAnobody", &first).await.expect("record"),
        Recorded::UnknownCall
    );
    assert_eq!(store.call("CAnobody").await.expect("read"), None);
    assert_invariants(&store, &["CArec".to_string()]).await;
}

#[tokio::test]
async fn a_resumed_place_is_kept_only_within_the_window_once_and_after_a_hangup() {
    let mut q = sales();
    q.resume_within = Some(Duration::from_millis(400));
    let store = store_with(&[q]).await;
    let first = enqueue(&store, "CA1", "sales").await;
    store.abandon("CA1", "hangup").await.expect("hung up");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = enqueue(&store, "CA2", "sales").await;
    assert!(again.resumed && again.rank == first.rank, "{again:?}");
    // used up: the next call from the number is new
    store.end_call("CA2", "test").await.expect("ended");
    let third = enqueue(&store, "CA3", "sales").await;
    assert!(!third.resumed && third.rank > first.rank, "{third:?}");
    // past the window: new
    store.abandon("CA3", "hangup").await.expect("hung up");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let late = enqueue(&store, "CA4", "sales").await;
    assert!(!late.resumed, "{late:?}");
    // a call Twilio said was over (not the caller hanging up) leaves no place behind
    store.abandon("CA4", "call_gone").await.expect("gone");
    let after_gone = enqueue(&store, "CA5", "sales").await;
    assert!(!after_gone.resumed, "{after_gone:?}");
    // a withheld number never resumes
    store
        .enqueue(&holding("CA6", "sales", "anonymous"))
        .await
        .expect("enqueue");
    store.abandon("CA6", "hangup").await.expect("hung up");
    let anon_again = store
        .enqueue(&holding("CA7", "sales", "anonymous"))
        .await
        .expect("enqueue");
    assert!(!anon_again.resumed);
    assert_invariants(
        &store,
        &sids(&["CA1", "CA2", "CA3", "CA4", "CA5", "CA6", "CA7"]),
    )
    .await;
}

/// A call `sid` connected to `a1` in sales, with support configured, plus `others` online.
async fn connected_with(sid: &str, others: &[(&str, &[(&str, u32)])]) -> Store {
    let store = store_with(&[sales(), queue("support", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enter_connected(&store, sid, "sales").await;
    for (id, queues) in others {
        online_agent(&store, &agent(id, queues)).await;
    }
    store
}

#[tokio::test]
async fn an_agent_transfers_a_connected_call_to_another_queue_keeping_its_place() {
    let store = connected_with("CA1", &[]).await;
    let rank = call(&store, "CA1").await.rank;
    // a support caller who came later than CA1
    enqueue(&store, "CA2", "support").await;
    let r = store
        .transfer_connected("CA1", "a1", "support", None)
        .await
        .expect("transfer");
    assert_eq!(
        r,
        HandOver::Transferred {
            from_queue: "sales".into()
        }
    );
    let c = call(&store, "CA1").await;
    assert_eq!(
        (c.state, c.queue.as_str(), c.rank),
        (CallState::Waiting, "support", rank)
    );
    assert_eq!(c.agent, None);
    assert_ne!(
        status(&store, "a1").await,
        AgentStatus::Busy,
        "the first agent is let go"
    );
    assert_eq!(agent_rec(&store, "a1").await.active, 0);
    online_agent(&store, &agent("s1", &[("support", 1)])).await;
    let o = claim(&store).await.expect("offered");
    assert_eq!(
        (o.call_sid.as_str(), o.agent_id.as_str()),
        ("CA1", "s1"),
        "ahead of CA2"
    );
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn a_call_transferred_to_a_named_agent_is_offered_to_that_agent_first_then_anyone() {
    let store = connected_with(
        "CA1",
        &[("a2", &[("sales", 1)]), ("bob", &[("support", 1)])],
    )
    .await;
    store
        .set_agent_status("bob", RequestedStatus::Paused, "")
        .await
        .expect("paused");
    store
        .transfer_connected("CA1", "a1", "sales", Some("bob"))
        .await
        .expect("transfer");
    // a2 is ready in sales, but the call waits for bob
    assert_eq!(claim(&store).await, None, "pinned to bob");
    store
        .set_agent_status("bob", RequestedStatus::Available, "")
        .await
        .expect("available");
    let o = claim(&store).await.expect("offered to bob");
    assert_eq!(
        o.agent_id, "bob",
        "bob is not even in sales: named, he takes it"
    );
    // bob lets it ring out: the pin is spent, anyone of sales may take it
    store
        .offer_result(&o.offer_ref(), OfferOutcome::NoAnswer, "")
        .await
        .expect("no answer");
    let o = claim(&store).await.expect("offered again");
    assert_eq!(o.agent_id, "a2");
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn only_the_agent_on_the_call_can_transfer_it_and_only_while_connected() {
    let store = connected_with("CA1", &[("a2", &[("sales", 1)])]).await;
    let not_yours = store
        .transfer_connected("CA1", "a2", "support", None)
        .await
        .expect("read");
    assert_eq!(not_yours, HandOver::NotYours);
    let to_self = store
        .transfer_connected("CA1", "a1", "support", Some("a1"))
        .await
        .expect("read");
    assert_eq!(to_self, HandOver::UnknownAgent);
    let ghost = store
        .transfer_connected("CA1", "a1", "support", Some("ghost"))
        .await
        .expect("read");
    assert_eq!(ghost, HandOver::UnknownAgent);
    let err = store
        .transfer_connected("CA1", "a1", "nowhere", None)
        .await
        .expect_err("unknown queue");
    assert!(matches!(err, StoreError::UnknownQueue(_)));
    assert_eq!(
        state(&store, "CA1").await,
        CallState::Connected,
        "nothing changed"
    );
    complete(&store, "CA1").await.expect("completed");
    let late = store
        .transfer_connected("CA1", "a1", "support", None)
        .await
        .expect("read");
    assert_eq!(late, HandOver::Stale(Some(CallState::Completed)));
    assert_invariants(&store, &sids(&["CA1"])).await;
}

/// The connection reconcile puts back after Redis lost a centre (`restore_connected`).
fn talking<'a>(sid: &'a str, agent: &'a str) -> ConnectedCall<'a> {
    ConnectedCall {
        call_sid: sid,
        queue: "sales",
        agent_id: agent,
        attempt: 2,
        from: "+14155550123",
        to: "+15005550001",
        kind: CallKind::Inbound,
        waited: Duration::from_secs(40),
        talking: Duration::from_secs(25),
    }
}

#[tokio::test]
async fn a_restored_connection_holds_its_agent_until_it_ends_like_any_other() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    // refused, changing nothing: an unknown agent or queue
    assert_eq!(
        store
            .restore_connected(&talking("CA1", "ghost"))
            .await
            .expect("run"),
        RestoredCall::UnknownAgent
    );
    let elsewhere = ConnectedCall {
        queue: "nowhere",
        ..talking("CA1", "a1")
    };
    assert_eq!(
        store.restore_connected(&elsewhere).await.expect("run"),
        RestoredCall::UnknownQueue
    );
    assert!(store.call("CA1").await.expect("read").is_none());

    assert_eq!(
        store
            .restore_connected(&talking("CA1", "a1"))
            .await
            .expect("run"),
        RestoredCall::Restored
    );
    let c = call(&store, "CA1").await;
    assert_eq!(
        (c.state, c.agent.as_deref(), c.attempts),
        (CallState::Connected, Some("a1"), 2)
    );
    let talked = c.answered_ms.expect("answered") - c.entered_ms;
    assert!(
        (14_000..=16_000).contains(&talked),
        "entered 15 s before the answer: {talked}"
    );
    assert_eq!(status(&store, "a1").await, AgentStatus::Busy);
    // the agent is held: a new caller waits for someone else, and a second restore of the
    // same call, or another call for the same agent, changes nothing
    enqueue(&store, "CA2", "sales").await;
    assert!(claim(&store).await.is_none(), "a1 is talking");
    assert_eq!(
        store
            .restore_connected(&talking("CA1", "a1"))
            .await
            .expect("run"),
        RestoredCall::Known(Some(CallState::Connected))
    );
    assert_eq!(
        store
            .restore_connected(&talking("CA3", "a1"))
            .await
            .expect("run"),
        RestoredCall::AgentFull
    );
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;

    // the <Dial> of the answered offer ends: completed as usual, and a1 takes the next caller
    assert!(matches!(
        complete(&store, "CA1").await.expect("complete"),
        Completion::Completed(_)
    ));
    assert_eq!(call(&store, "CA1").await.state, CallState::Completed);
    let o = claim(&store).await.expect("offered");
    assert_eq!((o.call_sid.as_str(), o.agent_id.as_str()), ("CA2", "a1"));
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

/// The number of commands `name` Redis has run (`INFO commandstats`).
async fn commands_run(conn: &mut redis::aio::MultiplexedConnection, name: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_pool_pings_only_idle_connections_and_drops_one_that_broke() {
    use callq::lab::embedded_redis::EmbeddedRedis;
    // a Redis of its own: its command counts are this test's alone
    let redis = EmbeddedRedis::start().expect("redis-server");
    let opts = StoreOptions {
        pool_size: 1,
        ..StoreOptions::default()
    };
    let store = Store::connect_with(&redis.url(), "pool", &opts).expect("store");
    let mut admin = redis::Client::open(redis.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("admin connection");
    store.ping().await.expect("first use");
    let pings = commands_run(&mut admin, "ping").await;
    // busy: a connection taken out again at once goes without a PING
    for _ in 0..50 {
        store.redis_time().await.expect("TIME");
    }
    assert_eq!(
        commands_run(&mut admin, "ping").await,
        pings,
        "no PING per checkout"
    );
    // idle for longer than a second: checked first
    tokio::time::sleep(Duration::from_millis(1300)).await;
    store.redis_time().await.expect("TIME");
    assert_eq!(
        commands_run(&mut admin, "ping").await,
        pings + 1,
        "an idle one is PINGed"
    );

    // the server drops the pooled connection: the next use fails, and the one after works on a
    // new connection rather than the dead one coming back from the pool
    let id: i64 = {
        let mut c = store.conn().await.expect("conn");
        redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut c)
            .await
            .expect("CLIENT ID")
    };
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut admin)
        .await
        .expect("CLIENT KILL");
    let first = store.redis_time().await;
    let second = store.redis_time().await;
    let third = store.redis_time().await;
    assert!(
        second.is_ok() && third.is_ok(),
        "after one failure ({first:?}) a new connection: {second:?} {third:?}"
    );
}
