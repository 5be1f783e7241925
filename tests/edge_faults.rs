//! The Twilio edge when things go wrong: webhooks late, repeated or about an earlier offer; a
//! callback whose customer does not answer; a caller answered with the fallback while Redis
//! was out of reach; a caller callq holds as over who is still on hold. Signed webhooks
//! against a running `callq serve` on the harness's real Redis.

mod support;

use std::time::Duration;

use callq::contract::OfferHook;
use callq::store::{CallKind, CallState, OfferOutcome, Transition};
use callq::twilio::twiml::{self, Verb};
use support::edge::*;
use support::*;

/// Twilio's request to a callback's `<Dial action>` after the customer leg ended with
/// `status`; the request comes from the agent's leg.
async fn customer_dial_ended(
    srv: &TestServer,
    offer: &callq::store::OfferRef,
    status: &str,
) -> twiml::Response {
    twiml(
        srv,
        &hook(OfferHook::CallbackResult, offer),
        &[
            ("CallSid", "CAagentleg"),
            ("DialCallStatus", status),
            ("Direction", "outbound-api"),
        ],
    )
    .await
}

#[tokio::test]
async fn a_callback_whose_customer_does_not_answer_is_retried_and_the_agent_is_told() {
    let srv = spawn_server(centre_with(
        "callback_after_s = 0\ncallback_retries = 1\ncallback_retry_delay_s = 0",
        "",
        "",
    ))
    .await;
    let store = &srv.state.store;
    online_agent(store, &agent("a1", &[("sales", 1)])).await;
    holding_in(&srv, "CAcb", CALLER, SALES_NO).await;
    // an agent was free, so the call was not claimed yet in this test: ask for the callback
    twiml(
        &srv,
        "/twilio/wait/gather",
        &[("CallSid", "CAcb"), ("From", CALLER), ("Digits", "1")],
    )
    .await;
    assert_eq!(state_of(store, "CAcb").await, Some(CallState::Callback));
    let offer = claim(store)
        .await
        .expect("the agent is rung for the callback");
    assert_eq!(offer.kind, CallKind::Callback);
    // the agent answers their leg
    let r = post(
        &srv,
        &hook(OfferHook::AgentLeg, &offer.offer_ref()),
        &[("CallSid", "CAagentleg"), ("CallStatus", "in-progress")],
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(state_of(store, "CAcb").await, Some(CallState::Connected));

    // the customer does not pick up
    let doc = customer_dial_ended(&srv, &offer.offer_ref(), "no-answer").await;
    assert!(said(&doc, "did not answer"), "{:?}", says(&doc));
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup));
    assert!(
        !doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))),
        "an agent's own call never joins a customer queue: {doc:?}"
    );
    let c = call(store, "CAcb").await;
    assert_eq!((c.state, c.callback_tries), (CallState::Callback, 1));
    let a = agent_rec(store, "a1").await;
    assert_eq!(
        (a.status, a.active, a.misses),
        (callq::store::AgentStatus::Wrapup, 0, 0),
        "no miss; held while the agent's own leg says its last words"
    );
    // the agent leg ends: the agent is free at once; a duplicate of the result changes nothing
    let r = post(
        &srv,
        &hook(OfferHook::AgentLeg, &offer.offer_ref()),
        &[("CallSid", "CAagentleg"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        status(store, "a1").await,
        callq::store::AgentStatus::Available
    );
    customer_dial_ended(&srv, &offer.offer_ref(), "no-answer").await;
    let c = call(store, "CAcb").await;
    assert_eq!((c.state, c.callback_tries), (CallState::Callback, 1));

    // the retry: offered again; the customer is busy again, and no retries are left
    let again = claim_within(store, Duration::from_secs(30))
        .await
        .expect("the callback is offered again");
    assert_eq!((again.call_sid.as_str(), again.attempt), ("CAcb", 2));
    store
        .offer_result(&again.offer_ref(), OfferOutcome::Answered, "CAagentleg2")
        .await
        .expect("answered");
    let doc = customer_dial_ended(&srv, &again.offer_ref(), "busy").await;
    assert!(said(&doc, "could not be reached"), "{:?}", says(&doc));
    let c = call(store, "CAcb").await;
    assert_eq!(c.state, CallState::CallbackFailed);
    assert_eq!(c.end_reason.as_deref(), Some("customer_busy"));
    assert_invariants(store, &sids(&["CAcb"])).await;
}

#[tokio::test]
async fn a_callback_answered_by_the_customer_completes_on_the_dial_result() {
    let srv = spawn_server(centre_with("callback_after_s = 0", "", "")).await;
    let store = &srv.state.store;
    holding_in(&srv, "CAok", CALLER, SALES_NO).await;
    twiml(
        &srv,
        "/twilio/wait/gather",
        &[("CallSid", "CAok"), ("From", CALLER), ("Digits", "1")],
    )
    .await;
    online_agent(store, &agent("a1", &[("sales", 1)])).await;
    let offer = claim(store).await.expect("offer");
    // the agent leg's 'answered' is lost; the customer talks, and the Dial ends
    let doc = customer_dial_ended(&srv, &offer.offer_ref(), "completed").await;
    assert_eq!(doc.verbs, vec![Verb::Hangup]);
    assert_eq!(state_of(store, "CAok").await, Some(CallState::Completed));
    assert_invariants(store, &sids(&["CAok"])).await;
}

#[tokio::test]
async fn a_late_dial_result_from_an_earlier_ring_leaves_the_current_ring_alone() {
    let srv = spawn_server(centre_with("no_answer_delay_s = 0", "", "")).await;
    let store = &srv.state.store;
    let first = offered_to(&srv, "a1", "CAlate").await;
    let first_dial = hook(OfferHook::DialResult, &first.offer_ref());
    let no_answer = [("CallSid", "CAlate"), ("DialCallStatus", "no-answer")];
    twiml(&srv, &first_dial, &no_answer).await;
    let second = claim(store).await.expect("offered again to a1");
    assert_eq!((second.agent_id.as_str(), second.attempt), ("a1", 2));
    // the first ring's result again, and its 'canceled', late
    for status in ["no-answer", "canceled"] {
        let doc = twiml(
            &srv,
            &first_dial,
            &[("CallSid", "CAlate"), ("DialCallStatus", status)],
        )
        .await;
        assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))));
        let r = post(
            &srv,
            &hook(OfferHook::AgentLeg, &first.offer_ref()),
            &[("CallSid", "CAlegA"), ("CallStatus", status)],
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    let c = call(store, "CAlate").await;
    assert_eq!(
        (c.state, c.attempts),
        (CallState::Offered, 2),
        "still ringing"
    );
    let a1 = agent_rec(store, "a1").await;
    assert_eq!(a1.misses, 1, "one unanswered ring, one miss");
    assert_invariants(store, &sids(&["CAlate"])).await;
}

#[tokio::test]
async fn a_dial_result_without_an_offer_still_keeps_the_caller_holding() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    offered_to(&srv, "a1", "CAold").await;
    // an old-style URL (no attempt): the caller is kept in line, nothing recorded
    let doc = twiml(
        &srv,
        "/twilio/dial-result?agent=a1",
        &[("CallSid", "CAold"), ("DialCallStatus", "no-answer")],
    )
    .await;
    assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))));
    assert_eq!(state_of(store, "CAold").await, Some(CallState::Offered));
}

#[tokio::test]
async fn a_caller_is_offered_only_once_twilio_asks_for_their_wait_document() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    online_agent(store, &agent("a1", &[("sales", 1)])).await;
    call_in(&srv, "CAnew", CALLER, SALES_NO).await;
    assert_eq!(state_of(store, "CAnew").await, Some(CallState::Arriving));
    assert_eq!(
        claim(store).await,
        None,
        "Twilio would refuse a redirect now (the <Enqueue> has not run)"
    );
    wait_doc(&srv, "CAnew").await;
    let offer = claim(store).await.expect("offerable once on hold");
    assert_eq!(offer.call_sid, "CAnew");
}

#[tokio::test]
async fn a_caller_held_through_a_redis_outage_joins_the_line_when_it_returns() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    holding_in(&srv, "CAearlier", "+14155550001", SALES_NO).await;
    // CAfb was answered with the fallback <Enqueue> while Redis was out of reach: callq has no
    // record of it; 90 s later its wait request finds Redis back
    let doc = twiml(
        &srv,
        "/twilio/wait?queue=sales",
        &[
            ("CallSid", "CAfb"),
            ("From", CALLER),
            ("To", SALES_NO),
            ("QueueTime", "90"),
        ],
    )
    .await;
    assert!(
        said(&doc, "You are next in line."),
        "entered at the time they first arrived, ahead of later callers: {:?}",
        says(&doc)
    );
    let c = call(store, "CAfb").await;
    assert_eq!((c.state, c.queue.as_str()), (CallState::Waiting, "sales"));
    online_agent(store, &agent("a1", &[("sales", 1)])).await;
    assert_eq!(claim(store).await.map(|o| o.call_sid), Some("CAfb".into()));
    assert_invariants(store, &sids(&["CAfb", "CAearlier"])).await;
}

#[tokio::test]
async fn a_wait_request_for_a_call_held_as_over_never_gets_endless_music() {
    struct Case {
        name: &'static str,
        /// Bring call `sid` to the state under test.
        end: fn(&callq::store::Store, &'static str) -> futures_like::BoxFut,
        want: Vec<Verb>,
        state_after: CallState,
    }
    mod futures_like {
        pub type BoxFut = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
    }
    let cases = [
        Case {
            name: "abandoned on Twilio's word the call was over: back in line",
            end: |store, sid| {
                let store = store.clone();
                Box::pin(async move {
                    store.abandon(sid, "call_gone").await.expect("abandon");
                })
            },
            want: vec![],
            state_after: CallState::Waiting,
        },
        Case {
            name: "the caller hung up (a late wait request): hang up",
            end: |store, sid| {
                let store = store.clone();
                Box::pin(async move {
                    store.abandon(sid, "hangup").await.expect("abandon");
                })
            },
            want: vec![Verb::Hangup],
            state_after: CallState::Abandoned,
        },
        Case {
            name: "overflowed: leave, so the queue exit plays the overflow action",
            end: |store, sid| {
                let store = store.clone();
                Box::pin(async move {
                    store
                        .overflow(sid, "voicemail", callq::store::OverflowRule::MaxWait)
                        .await
                        .expect("overflow");
                })
            },
            want: vec![Verb::Leave],
            state_after: CallState::Overflowed,
        },
        Case {
            name: "ended by an operator while the caller still holds: back in line",
            end: |store, sid| {
                let store = store.clone();
                Box::pin(async move {
                    let _ = store.end_call(sid, "ops").await.expect("end");
                })
            },
            want: vec![],
            state_after: CallState::Waiting,
        },
    ];
    for case in cases {
        let srv = spawn_server(centre()).await;
        let store = &srv.state.store;
        holding_in(&srv, "CAover", CALLER, SALES_NO).await;
        (case.end)(store, "CAover").await;
        let doc = wait_doc(&srv, "CAover").await;
        if case.want.is_empty() {
            assert!(
                said(&doc, "next in line"),
                "{}: {:?}",
                case.name,
                says(&doc)
            );
        } else {
            assert_eq!(doc.verbs, case.want, "{}", case.name);
        }
        assert_eq!(
            state_of(store, "CAover").await,
            Some(case.state_after),
            "{}",
            case.name
        );
        assert_invariants(store, &sids(&["CAover"])).await;
    }
}

#[tokio::test]
async fn the_callers_hangup_during_the_ring_releases_the_agent_whatever_comes_after() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    let offer = offered_to(&srv, "a1", "CAgone").await;
    let r = post(
        &srv,
        "/twilio/status",
        &[("CallSid", "CAgone"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        store.abandon("CAgone", "hangup").await.expect("again"),
        Transition::Stale(Some(CallState::Abandoned))
    );
    // the agent leg's late 'answered' (the agent picked up as the caller left)
    let r = post(
        &srv,
        &hook(OfferHook::AgentLeg, &offer.offer_ref()),
        &[("CallSid", "CAleg"), ("CallStatus", "in-progress")],
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(state_of(store, "CAgone").await, Some(CallState::Abandoned));
    assert_eq!(
        status(store, "a1").await,
        callq::store::AgentStatus::Available
    );
    assert_invariants(store, &sids(&["CAgone"])).await;
}
