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
    // the caller hangs up before any wait request; Twilio's callbacks find Redis paused too
    for _ in 0..100 {
        if state_of(&store, "CAshort").await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = state_of(&store, "CAshort").await;
    assert!(
        matches!(state, Some(CallState::Waiting | CallState::Arriving)),
        "recorded once Redis answers, for a worker to settle with Twilio: {state:?}"
    );
}
