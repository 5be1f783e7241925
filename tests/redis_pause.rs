//! Redis pausing (as in a failover: `CLIENT PAUSE`) while a caller rings in: the caller gets
//! the fallback TwiML at once (never an application error), and once Redis answers again the
//! caller's next wait request takes them into callq's line, where an agent is offered them.
//! Its own test binary: pausing Redis must not slow the other suites' servers.

mod support;

use std::time::Duration;

use callq::store::CallState;
use callq::twilio::twiml::Verb;
use support::edge::*;
use support::*;

/// Held by each test for its whole run: a pause is the whole Redis', so one test's pause
/// must not fall inside another's (nor its `CLIENT PAUSE` wait out the other's pause).
static ONE_PAUSE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `CLIENT PAUSE ms ALL` on the harness's Redis, from a connection of its own.
async fn pause_redis(ms: u64) {
    let client = redis::Client::open(redis_url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(ms)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .expect("CLIENT PAUSE");
}

#[tokio::test]
async fn a_caller_who_rang_during_a_redis_pause_is_answered_and_later_offered() {
    let _alone = ONE_PAUSE_AT_A_TIME.lock().await;
    let srv = spawn_server(centre_with("", "", "")).await;
    let store = srv.state.store.clone();
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;

    pause_redis(1500).await;
    let doc = call_in(&srv, "CApaused", CALLER, SALES_NO).await;
    assert_eq!(
        doc.verbs,
        vec![
            Verb::Say(callq::twilio::twiml::Say::new("Welcome to sales.")),
            Verb::Enqueue(the_enqueue(&srv, "sales")),
        ],
        "the fallback holds the caller in callq's own Twilio queue with callq's wait URL"
    );
    // Twilio asks for the wait document while Redis is still paused: music, no error
    let doc = twiml(
        &srv,
        "/twilio/wait?queue=sales",
        &[
            ("CallSid", "CApaused"),
            ("From", CALLER),
            ("To", SALES_NO),
            ("QueueTime", "1"),
        ],
    )
    .await;
    assert!(
        doc.verbs.iter().any(|v| matches!(v, Verb::Play(_))),
        "{doc:?}"
    );

    // Redis is back; the next wait request takes the caller into the line
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let doc = twiml(
        &srv,
        "/twilio/wait?queue=sales",
        &[
            ("CallSid", "CApaused"),
            ("From", CALLER),
            ("To", SALES_NO),
            ("QueueTime", "3"),
        ],
    )
    .await;
    assert!(said(&doc, "next in line"), "{:?}", says(&doc));
    assert_eq!(state_of(&store, "CApaused").await, Some(CallState::Waiting));
    let offer = claim(&store).await.expect("offered once Redis is back");
    assert_eq!(offer.call_sid, "CApaused");
    assert_invariants(&store, &sids(&["CApaused"])).await;
}

#[tokio::test]
async fn a_caller_who_rang_and_left_during_a_redis_pause_still_leaves_a_record() {
    let _alone = ONE_PAUSE_AT_A_TIME.lock().await;
    let srv = spawn_server(centre_with("", "", "")).await;
    let store = srv.state.store.clone();
    pause_redis(1500).await;
    let doc = call_in(&srv, "CAshort", CALLER, SALES_NO).await;
    assert!(doc
        .verbs
        .contains(&Verb::Enqueue(the_enqueue(&srv, "sales"))));
    // the caller hangs up before any wait request; Twilio's status callback finds Redis paused
    // too: answered at once all the same (Twilio would retry nothing), its end unrecorded or
    // recorded once Redis runs the commands it holds
    let hung_up = post(
        &srv,
        "/twilio/status",
        &[("CallSid", "CAshort"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(hung_up.status(), 204);
    for _ in 0..100 {
        if state_of(&store, "CAshort").await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = state_of(&store, "CAshort").await;
    assert!(
        matches!(
            state,
            Some(CallState::Waiting | CallState::Arriving | CallState::Abandoned)
        ),
        "recorded once Redis answers (abandoned, or for a worker to settle with Twilio): {state:?}"
    );
}

/// The dial result's answer while Redis is paused: a short hold and a `<Redirect>` back to
/// the same dial result, marked as the next retry; returns the path and query to ask again.
fn asks_again(srv: &TestServer, doc: &callq::twilio::twiml::Response, retry: u32) -> String {
    match doc.verbs.as_slice() {
        [Verb::Pause { .. }, Verb::Redirect { url, .. }] => {
            let base = srv.state.edge.public_url.trim_end_matches('/');
            let path = url.strip_prefix(base).unwrap_or(url).to_string();
            assert!(
                path.starts_with("/twilio/dial-result?")
                    && path.ends_with(&format!("&retry={retry}")),
                "{path}"
            );
            path
        }
        other => panic!("a pause and a redirect back to the dial result: {other:?}"),
    }
}

/// Caller `sid` rings sales, holds, is offered to a new agent a1, and a1 answers.
async fn connected_to_a1(srv: &TestServer, sid: &str) -> callq::store::Offer {
    let offer = offered_to(srv, "a1", sid).await;
    srv.state
        .store
        .offer_result(
            &offer.offer_ref(),
            callq::store::OfferOutcome::Answered,
            "CAleg",
        )
        .await
        .expect("answered");
    offer
}

#[tokio::test]
async fn a_transferred_caller_whose_agent_hangs_up_during_a_redis_pause_holds_in_the_new_queue() {
    use callq::contract::OfferHook;
    use callq::store::AgentStatus;

    let _alone = ONE_PAUSE_AT_A_TIME.lock().await;
    let srv = spawn_server(centre_with("", "", "")).await;
    let store = srv.state.store.clone();
    let offer = connected_to_a1(&srv, "CAxfer").await;
    store
        .transfer_connected("CAxfer", "a1", "support", None)
        .await
        .expect("transferred");

    // the agent hangs up while Redis is paused: the caller is not hung up but holds
    pause_redis(2000).await;
    let mut params = voice_params("CAxfer", CALLER, SALES_NO);
    params.push(("DialCallStatus", "completed"));
    let doc = twiml(
        &srv,
        &hook(OfferHook::DialResult, &offer.offer_ref()),
        &params,
    )
    .await;
    let again = asks_again(&srv, &doc, 1);
    // Twilio's redirect carries the call's parameters but no DialCallStatus
    let params = voice_params("CAxfer", CALLER, SALES_NO);
    let doc = twiml(&srv, &again, &params).await;
    let again = asks_again(&srv, &doc, 2);

    // Redis is back: the caller holds in support, and is offered there
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let doc = twiml(&srv, &again, &params).await;
    assert!(said(&doc, "transfer your call"), "{:?}", says(&doc));
    assert_eq!(
        doc.verbs.last(),
        Some(&Verb::Enqueue(the_enqueue(&srv, "support"))),
        "{doc:?}"
    );
    assert_eq!(state_of(&store, "CAxfer").await, Some(CallState::Waiting));
    online_agent(&store, &agent("b1", &[("support", 1)])).await;
    let next = claim(&store).await.expect("offered in support");
    assert_eq!(
        (next.call_sid.as_str(), next.agent_id.as_str()),
        ("CAxfer", "b1")
    );
    let a1 = store.agent("a1").await.expect("read").expect("a1");
    assert_ne!(a1.status, AgentStatus::Busy, "the first agent is free");
    assert_invariants(&store, &sids(&["CAxfer"])).await;
}

#[tokio::test]
async fn a_call_that_ends_during_a_redis_pause_is_completed_once_redis_answers() {
    use callq::contract::{OfferHook, DIAL_RETRIES};

    let _alone = ONE_PAUSE_AT_A_TIME.lock().await;
    let srv = spawn_server(centre_with("", "", "")).await;
    let store = srv.state.store.clone();
    let offer = connected_to_a1(&srv, "CAdone").await;

    pause_redis(2000).await;
    let mut params = voice_params("CAdone", CALLER, SALES_NO);
    params.push(("DialCallStatus", "completed"));
    let doc = twiml(
        &srv,
        &hook(OfferHook::DialResult, &offer.offer_ref()),
        &params,
    )
    .await;
    let again = asks_again(&srv, &doc, 1);

    tokio::time::sleep(Duration::from_millis(2200)).await;
    let params = voice_params("CAdone", CALLER, SALES_NO);
    let doc = twiml(&srv, &again, &params).await;
    assert_eq!(doc.verbs, vec![Verb::Hangup], "a finished call hangs up");
    assert_eq!(state_of(&store, "CAdone").await, Some(CallState::Completed));
    assert_invariants(&store, &sids(&["CAdone"])).await;

    // the last retry hangs up even when Redis cannot answer (nothing to wait for any more)
    pause_redis(1000).await;
    let last = format!(
        "{}&retry={DIAL_RETRIES}",
        hook(OfferHook::DialResult, &offer.offer_ref())
    );
    let doc = twiml(&srv, &last, &params).await;
    assert_eq!(doc.verbs, vec![Verb::Hangup]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// A caller who pressed 1 for a callback leaves Twilio's queue (our `<Leave/>`), and Twilio's
/// request to the `<Enqueue>` action comes while Redis pauses: why the caller left is known to
/// Redis alone, so the answer waits for it (a pause shorter than the edge's patience) and is
/// the goodbye, never the caller held again (or sent to the fallback number) while their
/// callback is booked.
#[tokio::test]
async fn a_caller_who_took_a_callback_and_leaves_during_a_redis_pause_is_told_goodbye() {
    let _alone = ONE_PAUSE_AT_A_TIME.lock().await;
    let srv = spawn_server(centre_with("callback_after_s = 0", "", "")).await;
    let store = srv.state.store.clone();
    call_in(&srv, "CAcbpause", CALLER, SALES_NO).await;
    let doc = wait_doc(&srv, "CAcbpause").await;
    assert!(
        doc.verbs.iter().any(|v| matches!(v, Verb::Gather(_))),
        "the callback offer: {doc:?}"
    );
    let params = [("CallSid", "CAcbpause"), ("From", CALLER), ("Digits", "1")];
    let doc = twiml(&srv, "/twilio/wait/gather", &params).await;
    assert_eq!(doc.verbs.last(), Some(&Verb::Leave), "{doc:?}");

    pause_redis(1500).await;
    let doc = queue_exit(&srv, "CAcbpause", "leave").await;
    assert!(
        !doc.verbs
            .iter()
            .any(|v| matches!(v, Verb::Enqueue(_) | Verb::Dial(_))),
        "held again or dialled elsewhere with a callback booked: {doc:?}"
    );
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup), "{doc:?}");
    assert_eq!(
        state_of(&store, "CAcbpause").await,
        Some(CallState::Callback)
    );
}

/// The callback key pressed while Redis pauses: the request waits for Redis instead of telling
/// the caller it was not taken (and then booking it all the same once Redis runs the command).
#[tokio::test]
async fn a_callback_key_pressed_during_a_redis_pause_is_taken_once_redis_answers() {
    let _alone = ONE_PAUSE_AT_A_TIME.lock().await;
    let srv = spawn_server(centre_with("callback_after_s = 0", "", "")).await;
    let store = srv.state.store.clone();
    call_in(&srv, "CAcbkey", CALLER, SALES_NO).await;
    wait_doc(&srv, "CAcbkey").await;
    let params = [("CallSid", "CAcbkey"), ("From", CALLER), ("Digits", "1")];
    // the caller heard the offer before the pause; the key's read and request both meet it
    pause_redis(1500).await;
    let doc = twiml(&srv, "/twilio/wait/gather", &params).await;
    assert!(said(&doc, "call you back"), "{:?}", says(&doc));
    assert_eq!(doc.verbs.last(), Some(&Verb::Leave), "{doc:?}");
    assert_eq!(state_of(&store, "CAcbkey").await, Some(CallState::Callback));
}
