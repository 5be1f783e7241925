//! Checks: a worker asks Twilio about calls callq lost track of (an offer whose lease passed,
//! a connected call gone silent) and settles them on Twilio's word. Against a real Redis and
//! the REST recorder of `support::worker`, whose world of calls plays Twilio's view.

mod support;

use std::time::Duration;

use callq::store::*;
use callq::twilio::rest::CallStatus;
use support::worker::*;
use support::*;

/// Claim `sid` for agent `a1` as a worker that then died would have: the lease is short and
/// nothing settles the offer.
async fn claimed_by_a_dead_worker(store: &Store, sid: &str) -> Offer {
    enqueue(store, sid, "sales").await;
    claim_leased(store, Duration::from_millis(100)).await
}

#[tokio::test]
async fn a_ring_under_way_when_its_worker_died_is_left_ringing_then_connected() {
    logs();
    let store = staffed(sales()).await;
    let offer = claimed_by_a_dead_worker(&store, "CA0001").await;
    // Twilio accepted the dead worker's redirect: the agent's phone rings
    let twilio = recorder_ok().await;
    twilio.set_call(twilio_call(
        "CA0001",
        "+15005550001",
        CallStatus::InProgress,
        None,
    ));
    twilio.set_call(twilio_call(
        "CAleg1",
        "client:client-a1",
        CallStatus::Ringing,
        Some("CA0001"),
    ));
    let settings = fast_settings();
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    eventually(SECS(2), "a check finds the ring", || async {
        let c = call(&store, "CA0001").await;
        (c.phase.as_deref() == Some("ringing")).then_some(())
    })
    .await;
    assert_eq!(
        twilio.count(),
        0,
        "the live ring is not cut by a second redirect"
    );
    let c = call(&store, "CA0001").await;
    assert_eq!((c.state, c.attempts), (CallState::Offered, offer.attempt));
    // the agent answers; the callback saying so is lost; a later check sees it
    twilio.set_call(twilio_call(
        "CAleg1",
        "client:client-a1",
        CallStatus::InProgress,
        Some("CA0001"),
    ));
    store
        .extend_offer(&offer.offer_ref(), Some(Duration::from_millis(50)), None)
        .await
        .expect("bring the next check forward");
    eventually(SECS(2), "connected on Twilio's word", || {
        state_is(&store, "CA0001", CallState::Connected)
    })
    .await;
    let c = call(&store, "CA0001").await;
    assert_eq!(c.leg_sid.as_deref(), Some("CAleg1"));
    let a = agent_rec(&store, "a1").await;
    assert_eq!((a.status, a.misses), (AgentStatus::Busy, 0));
    assert_eq!(
        twilio.count(),
        0,
        "the live conversation is never redirected"
    );
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn a_connected_call_whose_end_was_lost_is_completed_and_its_agent_freed() {
    logs();
    let mut q = sales();
    q.check_after = Duration::from_millis(200);
    let (store, offer) = connected(q, "CA0001").await;
    // the conversation ended; every callback saying so was lost (Redis was out of reach)
    let twilio = recorder_ok().await;
    twilio.set_call(twilio_call(
        "CA0001",
        "+15005550001",
        CallStatus::Completed,
        None,
    ));
    twilio.set_call(twilio_call(
        "CAleg",
        "client:client-a1",
        CallStatus::Completed,
        Some("CA0001"),
    ));
    let settings = fast_settings();
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    eventually(SECS(3), "completed on Twilio's word", || {
        state_is(&store, "CA0001", CallState::Completed)
    })
    .await;
    assert_eq!(
        call(&store, "CA0001").await.end_reason.as_deref(),
        Some("check")
    );
    let a = agent_rec(&store, "a1").await;
    assert_eq!(a.active, 0, "the agent is free again");
    assert_ne!(a.status, AgentStatus::Busy);
    // a late completion from the lost callbacks changes nothing
    let late = store
        .complete("CA0001", Some(&offer.offer_ref()), EndSource::Leg)
        .await
        .expect("late");
    assert_eq!(late, Completion::Stale(Some(CallState::Completed)));
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn a_connected_call_still_talking_is_left_alone() {
    logs();
    let mut q = sales();
    q.check_after = Duration::from_millis(200);
    let (store, _) = connected(q, "CA0001").await;
    let twilio = recorder_ok().await;
    twilio.set_call(twilio_call(
        "CA0001",
        "+15005550001",
        CallStatus::InProgress,
        None,
    ));
    twilio.set_call(twilio_call(
        "CAleg",
        "client:client-a1",
        CallStatus::InProgress,
        Some("CA0001"),
    ));
    let settings = fast_settings();
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    eventually(SECS(3), "Twilio asked, more than once", || async {
        (twilio.reads().len() >= 4).then_some(())
    })
    .await;
    assert_eq!(call(&store, "CA0001").await.state, CallState::Connected);
    let a = agent_rec(&store, "a1").await;
    assert_eq!((a.status, a.active), (AgentStatus::Busy, 1));
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn a_callback_whose_customer_result_was_lost_is_retried_on_twilios_word() {
    logs();
    let mut q = sales();
    q.callback_retry_delay = Duration::from_secs(60);
    let store = store_with(&[q]).await;
    enqueue(&store, "CA0001", "sales").await;
    store
        .request_callback("CA0001", "+15557654321")
        .await
        .expect("callback");
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    let offer = claim(&store).await.expect("offer");
    store
        .extend_offer(&offer.offer_ref(), Some(SECS(60)), Some("CAagent"))
        .await
        .expect("ringing");
    store
        .offer_result(&offer.offer_ref(), OfferOutcome::Answered, "CAagent")
        .await
        .expect("answered");
    // the agent leg ends; the customer <Dial>'s result never reached callq
    let r = store
        .complete("CA0001", Some(&offer.offer_ref()), EndSource::Leg)
        .await
        .expect("leg ended");
    assert_eq!(r, Completion::Check);
    let twilio = recorder_ok().await;
    twilio.set_call(twilio_call(
        "CAagent",
        "client:client-a1",
        CallStatus::Completed,
        None,
    ));
    twilio.set_call(twilio_call(
        "CAcustomer",
        "+15557654321",
        CallStatus::NoAnswer,
        Some("CAagent"),
    ));
    let settings = fast_settings();
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    eventually(SECS(3), "the callback waits for its retry", || async {
        let c = call(&store, "CA0001").await;
        (c.state == CallState::Callback && c.callback_tries == 1).then_some(())
    })
    .await;
    let a = agent_rec(&store, "a1").await;
    assert_eq!((a.active, a.misses), (0, 0));
    worker.stop(SECS(5)).await;
    assert_invariants(&store, &sids(&["CA0001"])).await;
}

#[tokio::test]
async fn when_twilio_cannot_be_asked_the_call_is_settled_from_callqs_record_in_the_end() {
    logs();
    let store = staffed(sales()).await;
    claimed_by_a_dead_worker(&store, "CA0001").await;
    // Twilio does not know the call (every read answers 404), and nothing else is offered
    let twilio = recorder(|_, _| Reply::Hang).await;
    // each check holds the call for its lease; bring the deadline forward between rounds
    let settings = fast_settings();
    let worker = RunningWorker::start(&store, rest_for(&twilio, &settings), settings);
    let mut conn = store.conn().await.expect("conn");
    for _ in 0..200 {
        if call(&store, "CA0001").await.attempts > 1 || twilio.count() > 0 {
            break;
        }
        let _: () = redis::cmd("ZADD")
            .arg(store.key("offers"))
            .arg("XX")
            .arg(0)
            .arg("CA0001")
            .query_async(&mut conn)
            .await
            .expect("zadd");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let req = twilio.wait_for(1, SECS(5)).await;
    assert_eq!(
        req[0].offer().map(|o| o.attempt),
        Some(2),
        "after repeated unanswerable checks the call went back in line and was offered again"
    );
    assert_eq!(
        store
            .agent("a1")
            .await
            .expect("read")
            .expect("agent")
            .misses,
        0
    );
    worker.stop(SECS(5)).await;
}
