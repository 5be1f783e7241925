//! The Twilio edge end to end: signed webhooks against a running `callq serve` on the real
//! Redis of the test harness, every TwiML answer read back with `twilio::twiml::parse`.

mod support;

use std::time::{Duration, Instant};

use callq::config::CentreConfig;
use callq::contract::OfferHook;
use callq::store::{CallKind, CallState, Claim, OfferRef, Store};
use callq::twilio::signature::signed_form;
use callq::twilio::twiml::{self, DialNoun, GatherChild, Verb};
use support::edge::*;
use support::*;

// ---------------------------------------------------------------------------------------------
// /twilio/voice
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn voice_welcomes_and_enqueues_by_called_number() {
    let srv = spawn_server(centre()).await;
    let doc = call_in(&srv, "CAvoice1", CALLER, SALES_NO).await;
    assert_eq!(
        doc.verbs,
        vec![
            Verb::Say(twiml::Say::new("Welcome to sales.")),
            Verb::Enqueue(the_enqueue(&srv, "sales")),
        ]
    );
    let call = srv.state.store.call("CAvoice1").await.expect("read");
    let call = call.expect("call recorded");
    assert_eq!(
        (call.queue.as_str(), call.state, call.kind),
        ("sales", CallState::Arriving, CallKind::Inbound),
        "offerable once Twilio runs the <Enqueue> and asks for the wait document"
    );
    assert_eq!(call.from, CALLER);

    let doc = call_in(&srv, "CAvoice2", CALLER, SUPPORT_NO).await;
    assert_eq!(doc.verbs[1], Verb::Enqueue(the_enqueue(&srv, "support")));
    // unknown numbers land in the default queue
    let doc = call_in(&srv, "CAvoice3", CALLER, "+19998887777").await;
    assert_eq!(doc.verbs[1], Verb::Enqueue(the_enqueue(&srv, "sales")));
}

#[tokio::test]
async fn retried_voice_webhook_answers_the_same_and_enters_once() {
    let srv = spawn_server(centre()).await;
    let params = voice_params("CAretry", CALLER, SALES_NO);
    let (first, _) = twiml_text(&srv, "/twilio/voice", &params).await;
    let rank = srv
        .state
        .store
        .call("CAretry")
        .await
        .expect("read")
        .expect("call")
        .rank;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (again, _) = twiml_text(&srv, "/twilio/voice", &params).await;
    assert_eq!(first, again, "a retry answers the same TwiML");
    let snap = srv
        .state
        .store
        .snapshot(&["CAretry".to_string()])
        .await
        .expect("snapshot");
    assert_eq!(snap.arriving, vec!["CAretry".to_string()]);
    assert_eq!(snap.calls[0].rank, rank, "the retry keeps the rank");
    assert_invariants(&srv.state.store, &["CAretry".to_string()]).await;
}

#[tokio::test]
async fn vip_callers_are_served_first() {
    let srv = spawn_server(centre()).await;
    holding_in(&srv, "CAplain", CALLER, SALES_NO).await;
    holding_in(&srv, "CAvip", VIP, SALES_NO).await;
    let store = &srv.state.store;
    let vip = call(store, "CAvip").await;
    assert_eq!(vip.priority_ms, 120_000);
    let pos = store.position("CAvip", "sales").await.expect("read");
    assert_eq!(pos.map(|p| p.position), Some(1), "the VIP is next in line");
    let doc = wait_doc(&srv, "CAplain").await;
    assert!(said(&doc, "You are number 2 in line."), "{:?}", says(&doc));
}

#[tokio::test]
async fn ivr_menu_gathers_a_digit_and_routes_it() {
    let srv = spawn_server(centre()).await;
    let doc = call_in(&srv, "CAivr", CALLER, IVR_NO).await;
    let menu_url = format!("{}/twilio/voice/menu", srv.base);
    match doc.verbs.as_slice() {
        [Verb::Gather(g), Verb::Redirect { url, .. }] => {
            assert_eq!(g.num_digits, Some(1));
            assert_eq!(g.action.as_deref(), Some(menu_url.as_str()));
            assert_eq!(url, &menu_url);
            assert!(matches!(&g.children[..], [GatherChild::Say(s)] if s.text.contains("press 2")));
        }
        other => panic!("menu: {other:?}"),
    }
    assert_eq!(
        state_of(&srv.state.store, "CAivr").await,
        None,
        "no entry yet"
    );

    // a wrong digit plays the menu again (with a numbered attempt), nothing recorded
    let mut params = voice_params("CAivr", CALLER, IVR_NO);
    params.push(("Digits", "7"));
    let doc = twiml(&srv, "/twilio/voice/menu", &params).await;
    match doc.verbs.as_slice() {
        [Verb::Gather(g), Verb::Redirect { url, .. }] => {
            let again = format!("{menu_url}?attempt=1");
            assert_eq!(g.action.as_deref(), Some(again.as_str()));
            assert_eq!(url, &again);
            assert!(said(&doc, "not one of the options"));
        }
        other => panic!("menu again: {other:?}"),
    }
    assert_eq!(state_of(&srv.state.store, "CAivr").await, None);

    // 2: support
    params.pop();
    params.push(("Digits", "2"));
    let doc = twiml(&srv, "/twilio/voice/menu?attempt=1", &params).await;
    assert_eq!(doc.verbs[1], Verb::Enqueue(the_enqueue(&srv, "support")));
    let call = srv
        .state
        .store
        .call("CAivr")
        .await
        .expect("read")
        .expect("call");
    assert_eq!(call.queue, "support");
    assert!(
        call.skills.is_empty(),
        "the plain choice: the queue's skills"
    );

    // 3: billing, a choice that gives its calls skills they require
    let mut params = voice_params("CAbill", CALLER, IVR_NO);
    params.push(("Digits", "3"));
    let doc = twiml(&srv, "/twilio/voice/menu", &params).await;
    assert_eq!(doc.verbs[1], Verb::Enqueue(the_enqueue(&srv, "support")));
    let call = srv
        .state
        .store
        .call("CAbill")
        .await
        .expect("read")
        .expect("call");
    assert_eq!(call.queue, "support");
    assert_eq!(call.skills, callq::store::Skills::new([("billing", 2)]));

    // no digit at all, the last time: the default queue
    let params = voice_params("CAivr2", CALLER, IVR_NO);
    let doc = twiml(&srv, "/twilio/voice/menu?attempt=2", &params).await;
    assert_eq!(doc.verbs[1], Verb::Enqueue(the_enqueue(&srv, "sales")));
}

// ---------------------------------------------------------------------------------------------
// Business hours
// ---------------------------------------------------------------------------------------------

const NEVER_OPEN: &str = "[queues.sales.hours]\ntimezone = \"Europe/London\"\n";

#[tokio::test]
async fn closed_queue_says_so_and_records_voicemail() {
    let sales = format!(
        "closed_message = \"Sales is closed.\"\nafter_hours = {{ action = \"voicemail\" }}\n{NEVER_OPEN}"
    );
    let srv = spawn_server(centre_with(&sales, "", "")).await;
    let doc = call_in(&srv, "CAclosed", CALLER, SALES_NO).await;
    assert_eq!(doc.verbs[0], Verb::Say(twiml::Say::new("Sales is closed.")));
    let record = doc.verbs.iter().find_map(|v| match v {
        Verb::Record(r) => Some(r.clone()),
        _ => None,
    });
    let record = record.expect("a <Record>");
    assert_eq!(
        record.action,
        Some(format!("{}/twilio/voicemail", srv.base))
    );
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup));
    assert!(
        !said(&doc, "We open"),
        "a queue that never opens has no opening time"
    );
    assert_eq!(state_of(&srv.state.store, "CAclosed").await, None);

    // the recording arrives
    let doc = twiml(
        &srv,
        "/twilio/voicemail",
        &[
            ("CallSid", "CAclosed"),
            ("RecordingUrl", "https://api.twilio.com/rec/RE1"),
            ("RecordingDuration", "7"),
        ],
    )
    .await;
    assert!(said(&doc, "Thank you"));
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup));
}

#[tokio::test]
async fn closed_queue_says_when_it_opens() {
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date();
    let tomorrow = today.tomorrow().expect("tomorrow");
    let mut sales = format!(
        "after_hours = {{ action = \"hangup\" }}\n[queues.sales.hours]\ntimezone = \"UTC\"\nholidays = [\"{today}\", \"{tomorrow}\"]\n"
    );
    for day in [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ] {
        sales.push_str(&format!("{day} = [\"00:00-24:00\"]\n"));
    }
    let srv = spawn_server(centre_with(&sales, "", "")).await;
    let doc = call_in(&srv, "CAlater", CALLER, SALES_NO).await;
    let texts = says(&doc);
    assert!(
        texts
            .iter()
            .any(|s| s.starts_with("We open ") && s.contains("from midnight")),
        "{texts:?}"
    );
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup));
}

#[tokio::test]
async fn closed_queue_takes_a_callback_request() {
    let sales = format!("after_hours = {{ action = \"callback\" }}\n{NEVER_OPEN}");
    let srv = spawn_server(centre_with(&sales, "", "")).await;
    let doc = call_in(&srv, "CAcb", CALLER, SALES_NO).await;
    assert!(said(&doc, "call you back"), "{:?}", says(&doc));
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup));
    let call = srv
        .state
        .store
        .call("CAcb")
        .await
        .expect("read")
        .expect("call");
    assert_eq!(
        (call.state, call.kind, call.from.as_str()),
        (CallState::Callback, CallKind::Callback, CALLER)
    );
    // the caller hangs up: the request stays
    let resp = post(
        &srv,
        "/twilio/status",
        &[("CallSid", "CAcb"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        state_of(&srv.state.store, "CAcb").await,
        Some(CallState::Callback)
    );

    // a withheld number cannot be called back: voicemail instead, nothing recorded
    let doc = call_in(&srv, "CAanon", "+266696687", SALES_NO).await;
    assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Record(_))));
    assert_eq!(state_of(&srv.state.store, "CAanon").await, None);
}

#[tokio::test]
async fn closed_queue_dials_a_number_or_moves_to_an_open_queue() {
    let sales =
        format!("after_hours = {{ action = \"dial\", number = \"+442071234567\" }}\n{NEVER_OPEN}");
    let srv = spawn_server(centre_with(&sales, "", "")).await;
    let doc = call_in(&srv, "CAdial", CALLER, SALES_NO).await;
    let dial = doc.verbs.iter().find_map(|v| match v {
        Verb::Dial(d) => Some(d.clone()),
        _ => None,
    });
    assert_eq!(
        dial.expect("a <Dial>").nouns,
        vec![DialNoun::Number(twiml::Number::new("+442071234567"))]
    );

    let sales =
        format!("after_hours = {{ action = \"queue\", queue = \"support\" }}\n{NEVER_OPEN}");
    let srv = spawn_server(centre_with(&sales, "", "")).await;
    let doc = call_in(&srv, "CAhop", CALLER, SALES_NO).await;
    assert_eq!(doc.verbs[1], Verb::Enqueue(the_enqueue(&srv, "support")));
    let call = srv
        .state
        .store
        .call("CAhop")
        .await
        .expect("read")
        .expect("call");
    assert_eq!(call.queue, "support");
}

// ---------------------------------------------------------------------------------------------
// /twilio/wait and /twilio/wait/gather
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn wait_document_says_position_and_wait_then_plays_music() {
    let srv = spawn_server(centre()).await;
    // one agent logged in and ready (no worker runs here, so nobody is offered)
    online_agent(&srv.state.store, &agent("a1", &[("sales", 1)])).await;
    holding_in(&srv, "CAw1", CALLER, SALES_NO).await;
    call_in(&srv, "CAw2", CALLER, SALES_NO).await;
    let doc = wait_doc(&srv, "CAw2").await;
    match doc.verbs.as_slice() {
        [Verb::Say(pos), Verb::Say(wait), Verb::Play(music)] => {
            assert_eq!(pos.text, "You are number 2 in line.");
            assert!(
                wait.text.starts_with("Your estimated wait is "),
                "{}",
                wait.text
            );
            assert!(!wait.text.contains("0 minutes"), "{}", wait.text);
            assert_eq!(music.url, SALES_MUSIC);
        }
        other => panic!("wait: {other:?}"),
    }
    let doc = wait_doc(&srv, "CAw1").await;
    assert!(said(&doc, "You are next in line."));
    // no callback offer: sales has no callback_after_s here
    assert!(!doc.verbs.iter().any(|v| matches!(v, Verb::Gather(_))));
}

/// Hold music given as short clips: enough of them play to fill `announce_every_s`, so the
/// caller hears their position again on time, and a piece cut into parts continues where the
/// caller's wait has got to.
#[tokio::test]
async fn hold_music_clips_bring_the_announcement_round_on_time() {
    const PARTS: [&str; 4] = [
        "https://music.example/part1.mp3",
        "https://music.example/part2.mp3",
        "https://music.example/part3.mp3",
        "https://music.example/part4.mp3",
    ];
    let support = format!("hold_music = {PARTS:?}\nhold_music_clip_s = 10\nannounce_every_s = 30");
    let srv = spawn_server(centre_with(
        "hold_music_clip_s = 10\nannounce_every_s = 25",
        &support,
        "",
    ))
    .await;
    online_agent(
        &srv.state.store,
        &agent("a1", &[("sales", 1), ("support", 1)]),
    )
    .await;

    // one clip: looped to fill 25 s (three plays of 10 s; never less than the interval)
    holding_in(&srv, "CAc1", CALLER, SALES_NO).await;
    let doc = wait_doc(&srv, "CAc1").await;
    match doc.verbs.as_slice() {
        [Verb::Say(_), Verb::Say(_), Verb::Play(music)] => {
            assert_eq!(music.url, SALES_MUSIC);
            assert_eq!(music.loop_, Some(3), "{doc:?}");
        }
        other => panic!("wait: {other:?}"),
    }

    // a piece in four parts: three parts per announcement, starting where 20 s of holding got to
    call_in(&srv, "CAc2", CALLER, SUPPORT_NO).await;
    let doc = support_wait(&srv, "CAc2", "20").await;
    let played: Vec<&str> = doc
        .verbs
        .iter()
        .filter_map(|v| match v {
            Verb::Play(p) => Some(p.url.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(played, [PARTS[2], PARTS[3], PARTS[0]], "{doc:?}");
    assert!(said(&doc, "You are next in line."), "{doc:?}");
}

/// Nobody takes calls: the caller is told so, never a number we cannot stand behind.
#[tokio::test]
async fn with_nobody_staffed_the_caller_hears_no_made_up_wait() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    online_agent(store, &agent("a1", &[("sales", 1)])).await;
    store
        .set_agent_status("a1", callq::store::RequestedStatus::Paused, "lunch")
        .await
        .expect("paused");
    holding_in(&srv, "CAaway", CALLER, SALES_NO).await;
    // the queue's numbers are cached for a second
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let doc = wait_doc(&srv, "CAaway").await;
    assert!(said(&doc, "You are next in line."), "{:?}", says(&doc));
    assert!(
        said(&doc, "All our agents are away at the moment"),
        "{:?}",
        says(&doc)
    );
    assert!(!said(&doc, "estimated wait is"), "{:?}", says(&doc));
}

/// With `no_agents` set, a caller whose queue has nobody logged in leaves for that action
/// after `no_agents_after_s`; a paused agent counts as logged in, so callers keep waiting.
#[tokio::test]
async fn no_agents_logged_in_sends_the_caller_to_the_no_agents_action() {
    let srv = spawn_server(centre_with(
        "no_agents = { action = \"voicemail\" }\nno_agents_after_s = 0",
        "",
        "",
    ))
    .await;
    let store = &srv.state.store;
    online_agent(store, &agent("a1", &[("sales", 1)])).await;
    store
        .set_agent_status("a1", callq::store::RequestedStatus::Paused, "meeting")
        .await
        .expect("paused");
    holding_in(&srv, "CAnobody1", CALLER, SALES_NO).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let doc = wait_doc(&srv, "CAnobody1").await;
    assert!(!doc.verbs.contains(&Verb::Leave), "{:?}", doc.verbs);
    assert_eq!(state_of(store, "CAnobody1").await, Some(CallState::Waiting));

    store
        .set_agent_status("a1", callq::store::RequestedStatus::Offline, "")
        .await
        .expect("offline");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let doc = wait_doc(&srv, "CAnobody1").await;
    assert_eq!(doc.verbs, vec![Verb::Leave]);
    assert_eq!(
        state_of(store, "CAnobody1").await,
        Some(CallState::Overflowed)
    );
    let doc = queue_exit(&srv, "CAnobody1", "leave").await;
    assert!(
        doc.verbs.iter().any(|v| matches!(v, Verb::Record(_))),
        "{:?}",
        doc.verbs
    );
}

#[tokio::test]
async fn wait_for_a_call_being_offered_is_just_music() {
    let srv = spawn_server(centre()).await;
    offered_to(&srv, "a1", "CAoffered").await;
    let doc = wait_doc(&srv, "CAoffered").await;
    assert_eq!(doc.verbs, vec![Verb::Play(twiml::Play::new(SALES_MUSIC))]);
}

/// A caller whose callback is booked and already being offered, yet holding again (their
/// queue exit was answered without Redis): their wait request sends them away (`<Leave/>`,
/// then the goodbye), never music while the callback rings their own phone.
#[tokio::test]
async fn wait_for_a_callback_already_offered_leaves_the_queue() {
    let srv = spawn_server(centre_with("callback_after_s = 0", "", "")).await;
    let store = &srv.state.store;
    call_in(&srv, "CAcbheld", CALLER, SALES_NO).await;
    wait_doc(&srv, "CAcbheld").await;
    let params = [("CallSid", "CAcbheld"), ("From", CALLER), ("Digits", "1")];
    let doc = twiml(&srv, "/twilio/wait/gather", &params).await;
    assert_eq!(doc.verbs.last(), Some(&Verb::Leave));
    online_agent(store, &agent("a1", &[("sales", 1)])).await;
    let offer = claim(store).await.expect("the callback is offered");
    assert_eq!(offer.call_sid, "CAcbheld");
    assert_eq!(state_of(store, "CAcbheld").await, Some(CallState::Offered));
    let doc = wait_doc(&srv, "CAcbheld").await;
    assert_eq!(doc.verbs, vec![Verb::Leave]);
    let doc = queue_exit(&srv, "CAcbheld", "leave").await;
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup), "{doc:?}");
}

#[tokio::test]
async fn callback_offer_after_threshold_and_pressing_1() {
    let srv = spawn_server(centre_with("callback_after_s = 0", "", "")).await;
    call_in(&srv, "CAoffer", CALLER, SALES_NO).await;
    let doc = wait_doc(&srv, "CAoffer").await;
    let gather_url = format!("{}/twilio/wait/gather", srv.base);
    match doc.verbs.as_slice() {
        [Verb::Gather(g)] => {
            assert_eq!(g.num_digits, Some(1));
            assert_eq!(g.action.as_deref(), Some(gather_url.as_str()));
            assert!(g
                .children
                .iter()
                .any(|c| matches!(c, GatherChild::Say(s) if s.text.contains("press 1"))));
            assert!(g
                .children
                .iter()
                .any(|c| matches!(c, GatherChild::Play(p) if p.url == SALES_MUSIC)));
        }
        other => panic!("offer: {other:?}"),
    }

    // another digit: back to the music, still waiting
    let params = |d: &'static str| vec![("CallSid", "CAoffer"), ("From", CALLER), ("Digits", d)];
    let doc = twiml(&srv, "/twilio/wait/gather", &params("5")).await;
    assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Play(_))));
    assert!(!doc.verbs.contains(&Verb::Leave));
    assert_eq!(
        state_of(&srv.state.store, "CAoffer").await,
        Some(CallState::Waiting)
    );

    // 1: a callback request, the caller leaves Twilio's queue
    let doc = twiml(&srv, "/twilio/wait/gather", &params("1")).await;
    assert!(said(&doc, "call you back"), "{:?}", says(&doc));
    assert_eq!(doc.verbs.last(), Some(&Verb::Leave));
    let call = srv
        .state
        .store
        .call("CAoffer")
        .await
        .expect("read")
        .expect("call");
    assert_eq!(call.state, CallState::Callback);
    assert_eq!(call.callback_to.as_deref(), Some(CALLER));
    // a retried gather answers the same
    let again = twiml(&srv, "/twilio/wait/gather", &params("1")).await;
    assert_eq!(again, doc);

    // then the Enqueue action: goodbye
    let doc = queue_exit(&srv, "CAoffer", "leave").await;
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup));
    let doc = queue_exit(&srv, "CAoffer", "hangup").await;
    assert_eq!(doc, twiml::Response::new());
    assert_eq!(
        state_of(&srv.state.store, "CAoffer").await,
        Some(CallState::Callback),
        "hanging up keeps the callback"
    );
    // its place in line is kept
    let snap = srv.state.store.snapshot(&[]).await.expect("snapshot");
    assert_eq!(snap.waiting["sales"], vec!["CAoffer".to_string()]);
}

#[tokio::test]
async fn withheld_numbers_get_no_callback_offer() {
    let srv = spawn_server(centre_with("callback_after_s = 0", "", "")).await;
    call_in(&srv, "CAwithheld", "+266696687", SALES_NO).await;
    let doc = twiml(
        &srv,
        "/twilio/wait",
        &[("CallSid", "CAwithheld"), ("From", "+266696687")],
    )
    .await;
    assert!(!doc.verbs.iter().any(|v| matches!(v, Verb::Gather(_))));
    let doc = twiml(
        &srv,
        "/twilio/wait/gather",
        &[
            ("CallSid", "CAwithheld"),
            ("From", "+266696687"),
            ("Digits", "1"),
        ],
    )
    .await;
    assert!(!doc.verbs.contains(&Verb::Leave));
    assert_eq!(
        state_of(&srv.state.store, "CAwithheld").await,
        Some(CallState::Waiting)
    );
}

#[tokio::test]
async fn max_wait_overflows_to_voicemail_through_queue_exit() {
    let srv = spawn_server(centre_with(
        "max_wait_s = 0\noverflow = { action = \"voicemail\" }",
        "",
        "",
    ))
    .await;
    call_in(&srv, "CAmax", CALLER, SALES_NO).await;
    let doc = wait_doc(&srv, "CAmax").await;
    assert_eq!(doc.verbs, vec![Verb::Leave]);
    assert_eq!(
        state_of(&srv.state.store, "CAmax").await,
        Some(CallState::Overflowed)
    );
    let doc = queue_exit(&srv, "CAmax", "leave").await;
    assert!(said(&doc, "long wait"), "{:?}", says(&doc));
    assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Record(r)
        if r.action.as_deref() == Some(format!("{}/twilio/voicemail", srv.base).as_str()))));
    // a late wait request (our <Leave/> was lost): leave again, never endless music
    let doc = wait_doc(&srv, "CAmax").await;
    assert_eq!(doc.verbs, vec![Verb::Leave]);
}

/// `max_waiting`: a caller who finds that many ahead of them takes the overflow action on
/// their first wait request; callers already in line keep their places whatever the line
/// does later.
#[tokio::test]
async fn a_caller_who_finds_the_line_full_takes_the_overflow_at_once() {
    let srv = spawn_server(centre_with(
        "max_waiting = 1\noverflow = { action = \"voicemail\" }",
        "",
        "",
    ))
    .await;
    let store = &srv.state.store;
    call_in(&srv, "CAfirst", CALLER, SALES_NO).await;
    let doc = wait_doc(&srv, "CAfirst").await;
    assert!(!doc.verbs.contains(&Verb::Leave), "one waiting: room");
    // a VIP goes ahead of the one waiting: nobody is ahead of them, so the line has room
    call_in(&srv, "CAvip", VIP, SALES_NO).await;
    let doc = wait_doc(&srv, "CAvip").await;
    assert!(!doc.verbs.contains(&Verb::Leave), "first in line: room");
    call_in(&srv, "CAsecond", "+14155550199", SALES_NO).await;
    let doc = wait_doc(&srv, "CAsecond").await;
    assert_eq!(doc.verbs, vec![Verb::Leave], "the line holds one");
    let rec = call(store, "CAsecond").await;
    assert_eq!(
        (rec.state, rec.end_reason.as_deref()),
        (CallState::Overflowed, Some("queue_full"))
    );
    let doc = queue_exit(&srv, "CAsecond", "leave").await;
    assert!(said(&doc, "lines are busy"), "{:?}", says(&doc));
    assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Record(_))));
    // the first caller's next wait requests keep them in line
    let doc = wait_doc(&srv, "CAfirst").await;
    assert!(!doc.verbs.contains(&Verb::Leave));
    assert_eq!(state(store, "CAfirst").await, CallState::Waiting);
    assert_invariants(store, &sids(&["CAfirst", "CAvip", "CAsecond"])).await;
}

#[tokio::test]
async fn max_wait_moves_to_the_overflow_queue_and_keeps_holding() {
    let srv = spawn_server(centre_with(
        "max_wait_s = 600\noverflow = { action = \"hangup\" }",
        "max_wait_s = 0\noverflow = { action = \"queue\", queue = \"sales\" }",
        "",
    ))
    .await;
    call_in(&srv, "CAmove", CALLER, SUPPORT_NO).await;
    let doc = wait_doc(&srv, "CAmove").await;
    assert!(said(&doc, "keep your place"), "{:?}", says(&doc));
    assert!(!doc.verbs.contains(&Verb::Leave));
    assert!(doc
        .verbs
        .iter()
        .any(|v| matches!(v, Verb::Play(p) if p.url == SALES_MUSIC)));
    let call = srv
        .state
        .store
        .call("CAmove")
        .await
        .expect("read")
        .expect("call");
    assert_eq!(
        (call.queue.as_str(), call.state),
        ("sales", CallState::Waiting)
    );
    // sales' own max wait counts from the move: the caller keeps holding there
    let doc = wait_doc(&srv, "CAmove").await;
    assert!(said(&doc, "You are next in line."), "{:?}", says(&doc));
    assert_eq!(
        state_of(&srv.state.store, "CAmove").await,
        Some(CallState::Waiting)
    );
}

// ---------------------------------------------------------------------------------------------
// /twilio/queue-exit
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn queue_exit_results() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    holding_in(&srv, "CAqx", CALLER, SALES_NO).await;
    for result in [
        "bridged",
        "redirected",
        "redirected-from-bridged",
        "bridging-in-process",
    ] {
        let doc = queue_exit(&srv, "CAqx", result).await;
        assert_eq!(doc, twiml::Response::new(), "{result}");
        assert_eq!(
            state_of(store, "CAqx").await,
            Some(CallState::Waiting),
            "{result}"
        );
    }

    // Twilio errors: back in the queue, counting the retries in the action URL
    let doc = queue_exit(&srv, "CAqx", "error").await;
    let mut retried = the_enqueue(&srv, "sales");
    retried.action = Some(format!("{}/twilio/queue-exit?retry=1", srv.base));
    assert_eq!(doc.verbs, vec![Verb::Enqueue(retried)]);
    let doc = twiml(
        &srv,
        "/twilio/queue-exit?retry=3",
        &[("CallSid", "CAqx"), ("QueueResult", "system-error")],
    )
    .await;
    assert!(
        said(&doc, "sorry") && doc.verbs.last() == Some(&Verb::Hangup),
        "after a few errors, with no fallback number, an apology: {doc:?}"
    );
    // queue-full: a sibling Twilio queue
    let doc = queue_exit(&srv, "CAqx", "queue-full").await;
    match doc.verbs.as_slice() {
        [Verb::Enqueue(e)] => {
            assert_eq!(e.name, "callq-sales-1");
            assert_eq!(
                e.action,
                Some(format!("{}/twilio/queue-exit?shard=1", srv.base))
            );
        }
        other => panic!("queue-full: {other:?}"),
    }
    assert_eq!(state_of(store, "CAqx").await, Some(CallState::Waiting));

    // hangup: abandoned; again (a retry): still abandoned, nothing else
    assert_eq!(
        queue_exit(&srv, "CAqx", "hangup").await,
        twiml::Response::new()
    );
    assert_eq!(state_of(store, "CAqx").await, Some(CallState::Abandoned));
    assert_eq!(
        queue_exit(&srv, "CAqx", "hangup").await,
        twiml::Response::new()
    );
    assert_eq!(state_of(store, "CAqx").await, Some(CallState::Abandoned));
    assert_invariants(store, &["CAqx".to_string()]).await;
}

// ---------------------------------------------------------------------------------------------
// /twilio/dial-result, /twilio/agent-leg, /twilio/status
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unanswered_dial_puts_the_caller_back_in_line() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    let offer = offered_to(&srv, "a1", "CAna").await;
    let dial_result = hook(OfferHook::DialResult, &offer.offer_ref());
    let doc = twiml(
        &srv,
        &dial_result,
        &[("CallSid", "CAna"), ("DialCallStatus", "no-answer")],
    )
    .await;
    match doc.verbs.as_slice() {
        [Verb::Say(s), Verb::Enqueue(e)] => {
            assert!(s.text.contains("keep your place"), "{}", s.text);
            assert_eq!(e, &the_enqueue(&srv, "sales"));
        }
        other => panic!("dial no-answer: {other:?}"),
    }
    let call = call(store, "CAna").await;
    assert_eq!((call.state, call.agent), (CallState::Waiting, None));
    let a1 = agent_rec(store, "a1").await;
    assert_eq!(a1.misses, 1);
    // the same result again (a retry): the same TwiML, no second miss
    let again = twiml(
        &srv,
        &dial_result,
        &[("CallSid", "CAna"), ("DialCallStatus", "no-answer")],
    )
    .await;
    assert_eq!(again, doc);
    let a1 = agent_rec(store, "a1").await;
    assert_eq!(a1.misses, 1);
    assert_invariants(store, &["CAna".to_string()]).await;

    // the caller hangs up; a late dial result just hangs up
    queue_exit(&srv, "CAna", "hangup").await;
    let doc = twiml(
        &srv,
        &dial_result,
        &[("CallSid", "CAna"), ("DialCallStatus", "busy")],
    )
    .await;
    assert_eq!(doc.verbs, vec![Verb::Hangup]);
}

#[tokio::test]
async fn answered_call_connects_and_completes_in_any_order() {
    // order 1: agent-leg answered, dial-result completed, status completed, agent-leg completed
    // order 2: status completed first, then dial-result, then agent-leg answered/completed
    for order in 0..2 {
        let srv = spawn_server(centre()).await;
        let store = &srv.state.store;
        let sid = format!("CAorder{order}");
        let offer = offered_to(&srv, "a1", &sid).await;
        let leg_path = hook(OfferHook::AgentLeg, &offer.offer_ref());
        let dial_path = hook(OfferHook::DialResult, &offer.offer_ref());
        let answered = [("CallSid", "CAleg"), ("CallStatus", "in-progress")];
        let leg_done = [("CallSid", "CAleg"), ("CallStatus", "completed")];
        let dial_done = [("CallSid", sid.as_str()), ("DialCallStatus", "completed")];
        let status_done = [("CallSid", sid.as_str()), ("CallStatus", "completed")];
        if order == 0 {
            assert_eq!(post(&srv, &leg_path, &answered).await.status(), 204);
            assert_eq!(state_of(store, &sid).await, Some(CallState::Connected));
            let doc = twiml(&srv, &dial_path, &dial_done).await;
            assert_eq!(doc.verbs, vec![Verb::Hangup]);
            assert_eq!(
                post(&srv, "/twilio/status", &status_done).await.status(),
                204
            );
            assert_eq!(post(&srv, &leg_path, &leg_done).await.status(), 204);
        } else {
            assert_eq!(
                post(&srv, "/twilio/status", &status_done).await.status(),
                204
            );
            // the caller hung up while the agent's phone rang: abandoned, agent released
            assert_eq!(state_of(store, &sid).await, Some(CallState::Abandoned));
            let doc = twiml(&srv, &dial_path, &dial_done).await;
            assert_eq!(doc.verbs, vec![Verb::Hangup]);
            assert_eq!(post(&srv, &leg_path, &answered).await.status(), 204);
            assert_eq!(post(&srv, &leg_path, &leg_done).await.status(), 204);
            assert_eq!(state_of(store, &sid).await, Some(CallState::Abandoned));
        }
        if order == 0 {
            assert_eq!(state_of(store, &sid).await, Some(CallState::Completed));
            let a1 = agent_rec(store, "a1").await;
            assert_eq!(a1.handled, 1);
        }
        let a1 = agent_rec(store, "a1").await;
        assert_eq!(a1.active, 0, "order {order}: the agent holds no call");
        assert_invariants(store, std::slice::from_ref(&sid)).await;
    }
}

#[tokio::test]
async fn status_callback_before_the_dial_result_completes_a_connected_call() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    let offer = offered_to(&srv, "a1", "CAconn").await;
    let leg = &hook(OfferHook::AgentLeg, &offer.offer_ref());
    let dial = &hook(OfferHook::DialResult, &offer.offer_ref());
    let r = post(
        &srv,
        leg,
        &[("CallSid", "CAleg"), ("CallStatus", "answered")],
    )
    .await;
    assert_eq!(r.status(), 204);
    // the customer's status callback arrives first: connected → completed
    let r = post(
        &srv,
        "/twilio/status",
        &[("CallSid", "CAconn"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(state_of(store, "CAconn").await, Some(CallState::Completed));
    // then the rest, late and repeated: nothing changes
    for _ in 0..2 {
        let doc = twiml(
            &srv,
            dial,
            &[("CallSid", "CAconn"), ("DialCallStatus", "completed")],
        )
        .await;
        assert_eq!(doc.verbs, vec![Verb::Hangup]);
        let r = post(
            &srv,
            leg,
            &[("CallSid", "CAleg"), ("CallStatus", "completed")],
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    assert_eq!(state_of(store, "CAconn").await, Some(CallState::Completed));
    let a1 = agent_rec(store, "a1").await;
    assert_eq!((a1.active, a1.handled), (0, 1));
}

#[tokio::test]
async fn agent_leg_no_answer_requeues_and_a_stale_completed_is_ignored() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    let first = offered_to(&srv, "a1", "CAleg1").await;
    let a1_leg = hook(OfferHook::AgentLeg, &first.offer_ref());
    let r = post(
        &srv,
        &a1_leg,
        &[("CallSid", "CAlegA"), ("CallStatus", "no-answer")],
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(state_of(store, "CAleg1").await, Some(CallState::Waiting));
    // offered to a2 now; a1's late "completed" must not end a2's call
    online_agent(store, &agent("a2", &[("sales", 1)])).await;
    let second = match store
        .claim(Duration::from_secs(30), 0)
        .await
        .expect("claim")
    {
        Claim::Offer(o) => o,
        Claim::Idle { .. } => panic!("a2 should get the call"),
    };
    assert_eq!(
        (second.call_sid.as_str(), second.agent_id.as_str()),
        ("CAleg1", "a2")
    );
    let r = post(
        &srv,
        &a1_leg,
        &[("CallSid", "CAlegA"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(state_of(store, "CAleg1").await, Some(CallState::Offered));
    // ringing and other progress statuses change nothing
    let r = post(
        &srv,
        &hook(OfferHook::AgentLeg, &second.offer_ref()),
        &[("CallSid", "CAlegB"), ("CallStatus", "ringing")],
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(state_of(store, "CAleg1").await, Some(CallState::Offered));
    // a query that does not name an offer (no call, no attempt): 400
    for path in [
        "/twilio/agent-leg?agent=a2&attempt=2",
        "/twilio/agent-leg?call=CAleg1&agent=a2",
    ] {
        let r = post(
            &srv,
            path,
            &[("CallSid", "CAlegB"), ("CallStatus", "in-progress")],
        )
        .await;
        assert_eq!(r.status(), 400, "{path}");
    }
    assert_eq!(state_of(store, "CAleg1").await, Some(CallState::Offered));
    assert_invariants(store, &["CAleg1".to_string()]).await;
}

#[tokio::test]
async fn status_callback_abandons_a_waiting_call_once() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    holding_in(&srv, "CAst", CALLER, SALES_NO).await;
    let ringing = post(
        &srv,
        "/twilio/status",
        &[("CallSid", "CAst"), ("CallStatus", "in-progress")],
    )
    .await;
    assert_eq!(ringing.status(), 204);
    assert_eq!(state_of(store, "CAst").await, Some(CallState::Waiting));
    for _ in 0..2 {
        let r = post(
            &srv,
            "/twilio/status",
            &[("CallSid", "CAst"), ("CallStatus", "completed")],
        )
        .await;
        assert_eq!(r.status(), 204);
        assert_eq!(state_of(store, "CAst").await, Some(CallState::Abandoned));
    }
    // the Enqueue action arriving after it changes nothing
    assert_eq!(
        queue_exit(&srv, "CAst", "hangup").await,
        twiml::Response::new()
    );
    let events = store.call_events("CAst").await.expect("events");
    let abandoned = events
        .iter()
        .filter(|(_, f)| f.get("type").map(String::as_str) == Some("abandoned"))
        .count();
    assert_eq!(abandoned, 1);
    // a status for a call we never saw: fine
    let r = post(
        &srv,
        "/twilio/status",
        &[("CallSid", "CAunknown"), ("CallStatus", "completed")],
    )
    .await;
    assert_eq!(r.status(), 204);
}

// ---------------------------------------------------------------------------------------------
// Signatures and limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn only_correctly_signed_requests_get_through() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    let url = format!("{}/twilio/voice", srv.base);
    let params = voice_params("CAsig", CALLER, SALES_NO);
    let (body, sig) = signed_form(AUTH_TOKEN, &url, &params);

    let send = |body: String, sig: Option<String>| {
        let mut req = client()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(sig) = sig {
            req = req.header("X-Twilio-Signature", sig);
        }
        req.send()
    };

    // a tampered parameter
    let tampered = body.replace("%2B14155551234", "%2B14155559999");
    assert_ne!(tampered, body);
    let r = send(tampered, Some(sig.clone())).await.expect("request");
    assert_eq!(r.status(), 403);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/plain"));
    // an extra parameter
    let r = send(format!("{body}&Digits=1"), Some(sig.clone()))
        .await
        .expect("request");
    assert_eq!(r.status(), 403);
    // the wrong auth token
    let (_, wrong) = signed_form("not-the-token", &url, &params);
    let r = send(body.clone(), Some(wrong)).await.expect("request");
    assert_eq!(r.status(), 403);
    // signed for another URL (path, query, host)
    for other in [
        format!("{}/twilio/wait", srv.base),
        format!("{url}?x=1"),
        url.replace("127.0.0.1", "localhost"),
    ] {
        let (_, sig) = signed_form(AUTH_TOKEN, &other, &params);
        let r = send(body.clone(), Some(sig)).await.expect("request");
        assert_eq!(r.status(), 403, "{other}");
    }
    // no header, and garbage headers
    let r = send(body.clone(), None).await.expect("request");
    assert_eq!(r.status(), 403);
    for junk in ["", "x", "!!!!", "RSOYDt4T1cUTdK1PDd93/VVr8B8="] {
        let r = send(body.clone(), Some(junk.to_string()))
            .await
            .expect("request");
        assert_eq!(r.status(), 403, "{junk:?}");
    }
    assert_eq!(state_of(store, "CAsig").await, None, "nothing changed");

    // the real thing
    let r = send(body, Some(sig)).await.expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(state_of(store, "CAsig").await, Some(CallState::Arriving));

    // an unsigned status callback changes nothing either
    let r = client()
        .post(format!("{}/twilio/status", srv.base))
        .form(&[("CallSid", "CAsig"), ("CallStatus", "completed")])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 403);
    assert_eq!(state_of(store, "CAsig").await, Some(CallState::Arriving));
}

#[tokio::test]
async fn a_public_url_with_a_path_prefix_is_what_gets_signed() {
    // behind a load balancer: Twilio signs the public URL, not the address we listen on
    let mut srv = spawn_server(centre()).await;
    let mut edge = (*srv.state.edge).clone();
    edge.public_url = "https://callq.example.com/acd".into();
    srv.state.edge = std::sync::Arc::new(edge);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = callq::shutdown::channel();
    let state = srv.state.clone();
    tokio::spawn(async move {
        let _ = callq::server::serve(listener, state, 64 * 1024, shutdown).await;
    });
    let params = voice_params("CApublic", CALLER, SALES_NO);
    for (signed_url, want) in [
        ("https://callq.example.com/acd/twilio/voice", 200),
        ("https://callq.example.com:443/acd/twilio/voice", 200),
        ("https://callq.example.com/twilio/voice", 403),
        (&format!("http://{addr}/twilio/voice") as &str, 403),
    ] {
        let (body, sig) = signed_form(AUTH_TOKEN, signed_url, &params);
        let r = client()
            .post(format!("http://{addr}/twilio/voice"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), want, "{signed_url}");
    }
    let doc = twiml::parse(&{
        let (body, sig) = signed_form(
            AUTH_TOKEN,
            "https://callq.example.com/acd/twilio/voice",
            &params,
        );
        client()
            .post(format!("http://{addr}/twilio/voice"))
            .header("x-twilio-signature", sig)
            .body(body)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body")
    })
    .expect("TwiML");
    match &doc.verbs[1] {
        Verb::Enqueue(e) => {
            assert_eq!(
                e.wait_url.as_deref(),
                Some("https://callq.example.com/acd/twilio/wait?queue=sales")
            );
        }
        other => panic!("{other:?}"),
    }
    trigger.trigger();
}

#[tokio::test]
async fn limits_have_short_plain_answers() {
    let srv = spawn_server(centre()).await;
    let url = format!("{}/twilio/voice", srv.base);
    let plain = |r: &reqwest::Response| {
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .starts_with("text/plain")
    };

    // malformed forms: 400 (the signature header is there; the body cannot be read)
    for body in ["CallSid=%zz", "CallSid=CA1&From=%", "CallSid=%C3%28"] {
        let r = client()
            .post(&url)
            .header("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 400, "{body}");
        assert!(plain(&r));
    }
    let r = client()
        .post(&url)
        .header("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
        .body(vec![0xffu8, 0xfe, b'=', b'1'])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    // signed but without a CallSid: 400
    let r = post(&srv, "/twilio/voice", &[("From", CALLER)]).await;
    assert_eq!(r.status(), 400);
    let r = post(&srv, "/twilio/voice", &[("CallSid", "CA,1")]).await;
    assert_eq!(r.status(), 400);

    // unknown path: 404
    let r = post(
        &srv,
        "/twilio/nope",
        &voice_params("CA404", CALLER, SALES_NO),
    )
    .await;
    assert_eq!(r.status(), 404);
    // wrong method: 405, with Allow
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = client()
            .request(method.clone(), &url)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(r.headers()["allow"], "POST");
        assert!(plain(&r));
    }
    // oversized: 413 (the server's limit is 64 kB in the harness)
    let big = format!("CallSid=CAbig&Junk={}", "x".repeat(200 * 1024));
    let r = client()
        .post(&url)
        .header("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 413);
    assert!(plain(&r));
    assert_eq!(state_of(&srv.state.store, "CAbig").await, None);
}

#[tokio::test]
async fn metrics_count_webhooks() {
    let srv = spawn_server(centre()).await;
    call_in(&srv, "CAmetrics", CALLER, SALES_NO).await;
    let text = client()
        .get(format!("{}/metrics", srv.base))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(
        text.lines().any(|l| l.starts_with("callq_webhooks_total")
            && l.contains("endpoint=\"voice\"")
            && l.contains("outcome=\"enqueued\"")),
        "{text}"
    );
    assert!(text.contains("callq_webhook_seconds"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Redis down or slow: the fallback
// ---------------------------------------------------------------------------------------------

/// A server whose Redis refuses connections (nothing listens on port 1).
async fn server_without_redis(centre: CentreConfig) -> TestServer {
    let store = Store::connect("redis://127.0.0.1:1/", "edge", 4).expect("store");
    spawn_server_on(store, centre).await
}

/// A server whose Redis accepts connections and never answers.
async fn server_with_silent_redis(centre: CentreConfig) -> TestServer {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let store = Store::connect(&format!("redis://127.0.0.1:{port}/"), "edge", 4).expect("store");
    spawn_server_on(store, centre).await
}

#[tokio::test]
async fn redis_down_answers_the_fallback_quickly() {
    // no fallback number: the caller holds in callq's Twilio queue with callq's wait URL, so
    // the first wait request that finds Redis back takes them into the line
    let srv = server_without_redis(centre()).await;
    let started = Instant::now();
    let doc = call_in(&srv, "CAdown", CALLER, SALES_NO).await;
    assert!(
        started.elapsed() < TWILIO_WEBHOOK_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        doc.verbs,
        vec![
            Verb::Say(twiml::Say::new("Welcome to sales.")),
            Verb::Enqueue(the_enqueue(&srv, "sales")),
        ]
    );

    // a fallback number
    let srv =
        server_without_redis(centre_with("", "", "[fallback]\nnumber = \"+15550009999\"")).await;
    let doc = call_in(&srv, "CAdown", CALLER, SALES_NO).await;
    let dial = doc.verbs.iter().find_map(|v| match v {
        Verb::Dial(d) => Some(d.nouns.clone()),
        _ => None,
    });
    assert_eq!(
        dial,
        Some(vec![DialNoun::Number(twiml::Number::new("+15550009999"))])
    );

    // the other webhooks: music, back in line, no errors
    let srv = server_without_redis(centre()).await;
    let doc = wait_doc(&srv, "CAdown").await;
    assert_eq!(doc.verbs, vec![Verb::Play(twiml::Play::new(SALES_MUSIC))]);
    let offer = OfferRef {
        call_sid: "CAdown".into(),
        agent_id: "a1".into(),
        attempt: 1,
    };
    let doc = twiml(
        &srv,
        &hook(OfferHook::DialResult, &offer),
        &[
            ("CallSid", "CAdown"),
            ("DialCallStatus", "no-answer"),
            ("To", SALES_NO),
        ],
    )
    .await;
    assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))));
    let doc = twiml(
        &srv,
        "/twilio/wait/gather",
        &[("CallSid", "CAdown"), ("From", CALLER), ("Digits", "1")],
    )
    .await;
    assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Play(_))));
    assert_eq!(
        queue_exit(&srv, "CAdown", "hangup").await,
        twiml::Response::new()
    );
    for path in [
        "/twilio/status".to_string(),
        hook(OfferHook::AgentLeg, &offer),
    ] {
        let r = post(
            &srv,
            &path,
            &[("CallSid", "CAdown"), ("CallStatus", "completed")],
        )
        .await;
        assert_eq!(r.status(), 204, "{path}");
    }
    let doc = twiml(
        &srv,
        &hook(OfferHook::CallbackResult, &offer),
        &[("CallSid", "CAagentleg"), ("DialCallStatus", "no-answer")],
    )
    .await;
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup));
    // a recording report while Redis is down: an empty answer (the recording stays at Twilio)
    let doc = twiml(
        &srv,
        "/twilio/recording?call=CAdown",
        &[
            ("CallSid", "CAdown"),
            ("RecordingSid", "RE0123456789abcdef0123456789abcdef"),
            ("RecordingStatus", "completed"),
            (
                "RecordingUrl",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            ),
            ("RecordingDuration", "3"),
        ],
    )
    .await;
    assert_eq!(doc, twiml::Response::new());
}

#[tokio::test]
async fn slow_redis_misses_the_deadline_and_answers_the_fallback() {
    let srv = server_with_silent_redis(centre()).await;
    let started = Instant::now();
    let doc = call_in(&srv, "CAslow", CALLER, SALES_NO).await;
    let took = started.elapsed();
    // the harness's deadline is 300 ms; what matters is that Twilio gets an answer in time
    assert!(took < TWILIO_WEBHOOK_TIMEOUT, "{took:?}");
    assert!(
        doc.verbs
            .contains(&Verb::Enqueue(the_enqueue(&srv, "sales"))),
        "{doc:?}"
    );
    let started = Instant::now();
    let doc = wait_doc(&srv, "CAslow").await;
    assert!(started.elapsed() < TWILIO_WEBHOOK_TIMEOUT);
    assert_eq!(doc.verbs, vec![Verb::Play(twiml::Play::new(SALES_MUSIC))]);
}

#[tokio::test]
async fn max_wait_with_a_callback_overflow_takes_the_callback() {
    let srv = spawn_server(centre_with(
        "max_wait_s = 0\noverflow = { action = \"callback\" }",
        "",
        "",
    ))
    .await;
    call_in(&srv, "CAmaxcb", CALLER, SALES_NO).await;
    let doc = wait_doc(&srv, "CAmaxcb").await;
    assert!(said(&doc, "call you back"), "{:?}", says(&doc));
    assert_eq!(doc.verbs.last(), Some(&Verb::Leave));
    assert_eq!(
        state_of(&srv.state.store, "CAmaxcb").await,
        Some(CallState::Callback)
    );
    let doc = queue_exit(&srv, "CAmaxcb", "leave").await;
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup));
}

#[tokio::test]
async fn voice_rewrites_queue_settings_redis_lost_after_a_restart() {
    // Redis restarted empty: the queues are unknown to it; the first call writes them again
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    {
        let mut c = store.conn().await.expect("conn");
        let _: () = redis::cmd("DEL")
            .arg(store.key("queues"))
            .query_async(&mut c)
            .await
            .expect("del");
    }
    let doc = call_in(&srv, "CAheal", CALLER, SALES_NO).await;
    assert_eq!(doc.verbs[1], Verb::Enqueue(the_enqueue(&srv, "sales")));
    assert_eq!(state_of(store, "CAheal").await, Some(CallState::Arriving));
}

/// Log lines written while a test runs, captured (this test's runtime is single-threaded: the
/// server's tasks log through the subscriber set on this thread).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let sink = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).to_string()
    }
}

/// A voicemail from CALLER, left on a server tuned by `tune`; the logs written meanwhile.
async fn voicemail_logs(tune: impl FnOnce(&mut callq::app::AppState)) -> String {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber());
    let sales = format!("after_hours = {{ action = \"voicemail\" }}\n{NEVER_OPEN}");
    let srv = spawn_server_with(centre_with(&sales, "", ""), tune).await;
    call_in(&srv, "CAlog", CALLER, SALES_NO).await;
    twiml(
        &srv,
        "/twilio/voicemail",
        &[
            ("CallSid", "CAlog"),
            ("From", CALLER),
            (
                "RecordingUrl",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE0123456789abcdef",
            ),
            ("RecordingDuration", "7"),
        ],
    )
    .await;
    captured.text()
}

/// Logs go to more people than call records: a caller's number shows as its last four digits
/// only, and a recording by its SID, never its URL.
#[tokio::test]
async fn logs_carry_no_full_caller_number_and_no_recording_url() {
    let logs = voicemail_logs(|_| {}).await;
    assert!(logs.contains("voicemail recorded"), "{logs}");
    assert!(!logs.contains("4155551234"), "a full caller number: {logs}");
    assert!(logs.contains("…1234"), "{logs}");
    assert!(!logs.contains("api.twilio.com"), "a recording URL: {logs}");
    assert!(logs.contains("RE0123456789abcdef"), "{logs}");
}

/// With `CALLQ_LOG_CALLER_NUMBERS` (for debugging one number's routing) the full number is
/// logged; the recording URL still is not.
#[tokio::test]
async fn the_debug_switch_logs_full_caller_numbers() {
    let logs = voicemail_logs(|app| {
        let mut edge = (*app.edge).clone();
        edge.log_caller_numbers = true;
        app.edge = std::sync::Arc::new(edge);
    })
    .await;
    assert!(logs.contains("voicemail recorded"), "{logs}");
    assert!(logs.contains(CALLER), "the full caller number: {logs}");
    assert!(!logs.contains("api.twilio.com"), "a recording URL: {logs}");
}

// ---------------------------------------------------------------------------------------------
// Rollout: a stable share of callers to callq, the rest down the legacy path
// ---------------------------------------------------------------------------------------------

const LEGACY_URL: &str = "https://legacy.example.com/voice";

/// A caller number routed by callq at `share` percent (`inside`) or not.
fn caller_at(share: u8, inside: bool) -> String {
    (0..10_000u32)
        .map(|i| format!("+1415{:07}", 2_000_000 + i))
        .find(|n| callq::config::rollout::routed_by_callq(n, share) == inside)
        .expect("such a caller")
}

/// Set (Some) or clear (None) the rollout override through the admin API of `srv`.
async fn set_share(srv: &TestServer, share: Option<u32>) -> serde_json::Value {
    let url = format!("{}/v1/admin/rollout", srv.base);
    let req = match share {
        Some(p) => client()
            .put(&url)
            .json(&serde_json::json!({ "share_pct": p })),
        None => client().delete(&url),
    };
    let resp = req.bearer_auth(ADMIN_TOKEN).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

#[tokio::test]
async fn callers_outside_the_share_take_the_legacy_path_and_keep_it() {
    let top = format!(
        "[rollout]\nshare_pct = 50\nlegacy = {{ action = \"redirect\", url = \"{LEGACY_URL}\" }}"
    );
    let srv = spawn_server(centre_with("", "", &top)).await;
    let outside = caller_at(50, false);
    let inside = caller_at(50, true);
    for i in 0..3 {
        // the same caller takes the same path on every call
        let sid = format!("CAlegacy{i}");
        let doc = call_in(&srv, &sid, &outside, SALES_NO).await;
        assert_eq!(
            doc.verbs,
            vec![Verb::Redirect {
                url: LEGACY_URL.into(),
                method: None
            }]
        );
        assert_eq!(state_of(&srv.state.store, &sid).await, None, "not in callq");
    }
    let doc = call_in(&srv, "CAnew", &inside, SALES_NO).await;
    assert!(
        doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))),
        "{:?}",
        doc.verbs
    );
    assert!(state_of(&srv.state.store, "CAnew").await.is_some());
}

#[tokio::test]
async fn the_legacy_dial_rings_one_phone_for_30_seconds_then_hangs_up() {
    let top = "[rollout]\nshare_pct = 0\nlegacy = { action = \"dial\", number = \"+15550001111\" }";
    let srv = spawn_server(centre_with("", "", top)).await;
    let doc = call_in(&srv, "CAdial", CALLER, SALES_NO).await;
    match doc.verbs.as_slice() {
        [Verb::Dial(d), Verb::Hangup] => {
            assert_eq!(d.timeout, Some(30));
            // its result is counted, so the legacy path's connected share is measured
            assert_eq!(
                d.action.as_deref(),
                Some(format!("{}/twilio/legacy-result", srv.base).as_str())
            );
            assert!(
                matches!(d.nouns.as_slice(), [DialNoun::Number(n)] if n.number == "+15550001111"),
                "{:?}",
                d.nouns
            );
        }
        other => panic!("legacy dial: {other:?}"),
    }
    assert_eq!(state_of(&srv.state.store, "CAdial").await, None);
}

/// An admin's rollback on one server reaches another server of the centre without restart;
/// callers already in callq's line stay there; clearing the override restores the file's share.
#[tokio::test]
async fn a_rollback_through_one_server_reaches_the_other() {
    let top = format!(
        "[rollout]\nshare_pct = 100\nlegacy = {{ action = \"redirect\", url = \"{LEGACY_URL}\" }}"
    );
    let store = fresh_store();
    let a = spawn_server_on(store.clone(), centre_with("", "", &top)).await;
    let b = spawn_server_on(store.clone(), centre_with("", "", &top)).await;
    let doc = call_in(&b, "CAbefore", CALLER, SALES_NO).await;
    assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))));

    let view = set_share(&a, Some(0)).await;
    assert_eq!(view["share_pct"], 0);
    assert_eq!(view["configured_share_pct"], 100);
    assert_eq!(view["overridden"], true);
    // server b follows within its switch TTL (half a second); allow a busy machine more
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    loop {
        i += 1;
        let doc = call_in(&b, &format!("CAafter{i}"), CALLER, SALES_NO).await;
        if matches!(doc.verbs.as_slice(), [Verb::Redirect { url, .. }] if url == LEGACY_URL) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server b never followed the rollback"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // the call that entered before the rollback is still in callq's line
    assert!(matches!(
        state_of(&store, "CAbefore").await,
        Some(CallState::Arriving | CallState::Waiting)
    ));

    let view = set_share(&b, None).await;
    assert_eq!(
        (view["share_pct"].as_u64(), view["overridden"].as_bool()),
        (Some(100), Some(false))
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        i += 1;
        let doc = call_in(&a, &format!("CAback{i}"), CALLER, SALES_NO).await;
        if doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server a never followed the clearing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_share_below_100_needs_a_legacy_path() {
    let srv = spawn_server(centre()).await;
    let resp = client()
        .put(format!("{}/v1/admin/rollout", srv.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "share_pct": 10 }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 409);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "no_legacy_path");
    let resp = client()
        .put(format!("{}/v1/admin/rollout", srv.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "share_pct": 101 }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 422);
    // nothing changed: every caller still reaches callq
    let doc = call_in(&srv, "CAstill", CALLER, SALES_NO).await;
    assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))));
}

// ---------------------------------------------------------------------------------------------
// Languages
// ---------------------------------------------------------------------------------------------

/// Every `<Say>` of `doc` (in a `<Gather>` too), with its language and voice.
fn spoken(doc: &twiml::Response) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    let mut push = |s: &twiml::Say| out.push((s.text.clone(), s.language.clone(), s.voice.clone()));
    for v in &doc.verbs {
        match v {
            Verb::Say(s) => push(s),
            Verb::Gather(g) => {
                for c in &g.children {
                    if let GatherChild::Say(s) = c {
                        push(s);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A Spanish queue: its welcome, place, wait, callback offer and overflow all in Spanish,
/// each `<Say>` with the queue's language and voice; the English queue beside it unchanged.
#[tokio::test]
async fn a_spanish_queue_speaks_spanish_in_every_prompt() {
    let srv = spawn_server(centre_with(
        "",
        "language = \"es-MX\"\nvoice = \"Polly.Mia\"\ncallback_after_s = 0\nmax_wait_s = 2\noverflow = { action = \"voicemail\" }",
        "",
    ))
    .await;
    let store = &srv.state.store;
    let es = (Some("es-MX".to_string()), Some("Polly.Mia".to_string()));

    let doc = call_in(&srv, "CAes1", CALLER, SUPPORT_NO).await;
    let said_all = spoken(&doc);
    assert!(!said_all.is_empty(), "{doc:?}");
    for (_, lang, voice) in &said_all {
        assert_eq!((lang.clone(), voice.clone()), es, "{said_all:?}");
    }

    // nobody staffed: said so, in Spanish; with the callback offer in Spanish around it
    let doc = support_wait(&srv, "CAes1", "0").await;
    let words = spoken(&doc);
    let texts: Vec<&str> = words.iter().map(|w| w.0.as_str()).collect();
    assert!(texts.contains(&"Es usted el siguiente."), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("no podemos estimar su espera")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.contains("pulse 1")), "{texts:?}");
    assert!(
        words.iter().all(|w| (w.1.clone(), w.2.clone()) == es),
        "{words:?}"
    );

    // an agent logged in (seen once the server's one-second queue numbers are renewed): a
    // Spanish estimate
    online_agent(store, &agent("a1", &[("support", 1)])).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    call_in(&srv, "CAes2", CALLER, SUPPORT_NO).await;
    let doc = support_wait(&srv, "CAes2", "0").await;
    assert!(
        says(&doc)
            .iter()
            .any(|t| t.starts_with("Su espera estimada es de ")),
        "{:?}",
        says(&doc)
    );

    // the max wait: the voicemail lead in Spanish
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let doc = support_wait(&srv, "CAes1", "2").await;
    assert_eq!(doc.verbs, vec![Verb::Leave]);
    let doc = queue_exit(&srv, "CAes1", "leave").await;
    assert!(said(&doc, "Sentimos la larga espera"), "{:?}", says(&doc));
    assert!(spoken(&doc)
        .iter()
        .all(|w| (w.1.clone(), w.2.clone()) == es));

    // the English queue and the menu are still English
    // (no language configured: Twilio's default, English)
    let doc = call_in(&srv, "CAen", CALLER, SALES_NO).await;
    assert!(spoken(&doc)
        .iter()
        .all(|w| w.1.is_none() && w.2.is_none() && w.0 == "Welcome to sales."));
    let doc = call_in(&srv, "CAmenu", CALLER, IVR_NO).await;
    assert!(!spoken(&doc).is_empty());
    assert!(spoken(&doc).iter().all(|w| w.1.is_none()));
}

/// A language callq has no phrases for is refused at start, naming the field.
#[test]
fn an_unknown_language_is_refused() {
    let toml = callq::config::DEMO_TOML.replace("language = \"es-ES\"", "language = \"fr-FR\"");
    let err = CentreConfig::from_toml(&toml, "t")
        .expect_err("refused")
        .to_string();
    assert!(err.starts_with("queues.soporte.language: "), "{err}");
}

// ---------------------------------------------------------------------------------------------
// /twilio/recording
// ---------------------------------------------------------------------------------------------

const RECORDING_URL: &str =
    "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000000/Recordings/RE0123456789abcdef0123456789abcdef";

/// The admin API's view of call `sid`.
async fn admin_call(srv: &TestServer, sid: &str) -> serde_json::Value {
    let r = client()
        .get(format!("{}/v1/admin/calls/{sid}", srv.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

fn recording_params<'a>(sid: &'a str, rec: &'a str, status: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("CallSid", sid),
        ("RecordingSid", rec),
        ("RecordingUrl", RECORDING_URL),
        ("RecordingStatus", status),
        ("RecordingDuration", "42"),
        ("RecordingChannels", "2"),
        ("RecordingSource", "DialVerb"),
    ]
}

#[tokio::test]
async fn only_a_recording_queue_s_offer_records_the_agent_leg() {
    let srv = spawn_server(centre_with("record = \"record-from-answer-dual\"", "", "")).await;
    let store = &srv.state.store;
    let offer = offered_to(&srv, "a1", "CArecq").await;
    let xml = callq::worker::offer::inbound_twiml(&srv.base, &offer).expect("twiml");
    let doc = twiml::parse(&xml).expect("parses");
    let Some(Verb::Dial(dial)) = doc.verbs.first() else {
        panic!("a <Dial>: {xml}");
    };
    assert_eq!(dial.record.as_deref(), Some("record-from-answer-dual"));
    assert_eq!(
        dial.recording_status_callback,
        Some(format!("{}/twilio/recording?call=CArecq", srv.base))
    );
    assert_eq!(
        dial.recording_status_callback_event.as_deref(),
        Some("completed")
    );

    // support does not record: its offer's <Dial> has no recording attribute
    online_agent(store, &agent("b1", &[("support", 1)])).await;
    holding_in(&srv, "CAnorec", CALLER, SUPPORT_NO).await;
    let plain = claim(store).await.expect("an offer");
    assert_eq!(plain.call_sid, "CAnorec");
    let xml = callq::worker::offer::inbound_twiml(&srv.base, &plain).expect("twiml");
    assert!(!xml.contains("record"), "{xml}");
}

#[tokio::test]
async fn a_completed_recording_is_kept_with_the_call_and_shown_to_admins() {
    let srv = spawn_server(centre_with("record = \"record-from-answer\"", "", "")).await;
    let store = &srv.state.store;
    let sid = "CArec1";
    let offer = offered_to(&srv, "a1", sid).await;
    let leg_path = hook(OfferHook::AgentLeg, &offer.offer_ref());
    let answered = [("CallSid", "CAleg"), ("CallStatus", "in-progress")];
    assert_eq!(post(&srv, &leg_path, &answered).await.status(), 204);
    let dial_path = hook(OfferHook::DialResult, &offer.offer_ref());
    twiml(
        &srv,
        &dial_path,
        &[("CallSid", sid), ("DialCallStatus", "completed")],
    )
    .await;
    assert_eq!(state_of(store, sid).await, Some(CallState::Completed));

    let path = format!("/twilio/recording?call={sid}");
    let rec = "RE0123456789abcdef0123456789abcdef";
    // an in-progress report (not asked for) keeps nothing
    let doc = twiml(&srv, &path, &recording_params(sid, rec, "in-progress")).await;
    assert!(doc.verbs.is_empty());
    assert_eq!(call(store, sid).await.recording, None);

    let (text, doc) = twiml_text(&srv, &path, &recording_params(sid, rec, "completed")).await;
    assert!(doc.verbs.is_empty(), "{text}");
    let kept = call(store, sid).await.recording.expect("recording kept");
    assert_eq!(
        (kept.sid.as_str(), kept.url.as_str(), kept.duration_s),
        (rec, RECORDING_URL, 42)
    );
    // the call's own state is untouched
    assert_eq!(state_of(store, sid).await, Some(CallState::Completed));

    let view = admin_call(&srv, sid).await;
    assert_eq!(view["call"]["recording"]["sid"], rec);
    assert_eq!(view["call"]["recording"]["url"], RECORDING_URL);
    assert_eq!(view["call"]["recording"]["duration_s"], 42);
    // the history names the recording, never its URL
    let history = view["history"].as_array().expect("history");
    let recorded: Vec<_> = history.iter().filter(|e| e["type"] == "recorded").collect();
    assert_eq!(recorded.len(), 1, "{history:?}");
    assert_eq!(recorded[0]["fields"]["recording_sid"], rec);
    assert!(!view["history"].to_string().contains("api.twilio.com"));

    // Twilio retries: the same recording again changes nothing, no second event
    twiml(&srv, &path, &recording_params(sid, rec, "completed")).await;
    let view = admin_call(&srv, sid).await;
    let history = view["history"].as_array().expect("history");
    assert_eq!(
        history.iter().filter(|e| e["type"] == "recorded").count(),
        1
    );
    assert_invariants(store, &[sid.to_string()]).await;
}

#[tokio::test]
async fn a_recording_of_an_unknown_call_or_without_a_sid_changes_nothing() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    let rec = "RE0123456789abcdef0123456789abcdef";
    let doc = twiml(
        &srv,
        "/twilio/recording?call=CAnobody",
        &recording_params("CAnobody", rec, "completed"),
    )
    .await;
    assert!(doc.verbs.is_empty());
    assert_eq!(store.call("CAnobody").await.expect("read"), None);

    // a call callq knows, but a report without a RecordingSid or with no usable URL
    holding_in(&srv, "CArec2", CALLER, SALES_NO).await;
    let path = "/twilio/recording?call=CArec2";
    let mut params = recording_params("CArec2", "", "completed");
    twiml(&srv, path, &params).await;
    params = recording_params("CArec2", rec, "completed");
    params[3] = ("RecordingUrl", "");
    twiml(&srv, path, &params).await;
    assert_eq!(call(store, "CArec2").await.recording, None);
    assert_eq!(state_of(store, "CArec2").await, Some(CallState::Waiting));

    // unsigned: refused like every webhook
    let r = client()
        .post(format!("{}{path}", srv.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("CallSid=CArec2&RecordingSid=RE1&RecordingStatus=completed")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 403);
}

/// The agent leg's recording is logged by its SID, never its URL, whatever becomes of it.
#[tokio::test]
async fn recording_logs_name_the_recording_sid_never_its_url() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber());
    let srv = spawn_server(centre_with("record = \"record-from-answer\"", "", "")).await;
    holding_in(&srv, "CAreclog", CALLER, SALES_NO).await;
    let rec = "RE0123456789abcdef0123456789abcdef";
    for (sid, status) in [
        ("CAreclog", "completed"),
        ("CAreclog", "completed"),
        ("CAreclog", "failed"),
        ("CAnobody", "completed"),
    ] {
        let path = format!("/twilio/recording?call={sid}");
        twiml(&srv, &path, &recording_params(sid, rec, status)).await;
    }
    let logs = captured.text();
    assert!(logs.contains("recording kept with the call"), "{logs}");
    assert!(logs.contains("callq has no record of"), "{logs}");
    assert!(logs.contains(rec), "{logs}");
    assert!(!logs.contains("api.twilio.com"), "a recording URL: {logs}");
    assert!(!logs.contains("Recordings/"), "a recording URL: {logs}");
}

// ---------------------------------------------------------------------------------------------
// Caller resume
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_caller_who_hangs_up_and_calls_back_keeps_their_place_and_is_told_so() {
    let srv = spawn_server(centre_with("resume_within_s = 120", "", "")).await;
    let store = &srv.state.store;
    holding_in(&srv, "CAfirst", CALLER, SALES_NO).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    holding_in(&srv, "CAother", "+14155559876", SALES_NO).await;
    let kept = call(store, "CAfirst").await.rank;
    queue_exit(&srv, "CAfirst", "hangup").await;
    assert_eq!(state(store, "CAfirst").await, CallState::Abandoned);

    // the same number rings again: back in line ahead of the caller who came after them
    let doc = call_in(&srv, "CAagain", CALLER, SALES_NO).await;
    assert!(
        said(&doc, "Welcome back. You have kept your place in line."),
        "{:?}",
        says(&doc)
    );
    assert!(!said(&doc, "Welcome to sales."), "{:?}", says(&doc));
    let again = call(store, "CAagain").await;
    assert_eq!(again.rank, kept, "the rank they had");
    store.arrive("CAagain").await.expect("on hold");
    let pos = store.position("CAagain", "sales").await.expect("read");
    assert_eq!(pos.map(|p| p.position), Some(1), "first in line again");

    // another number joins at the back, as ever
    let doc = call_in(&srv, "CAnew", "+14155550000", SALES_NO).await;
    assert!(said(&doc, "Welcome to sales."), "{:?}", says(&doc));
    assert!(call(store, "CAnew").await.rank > kept);
}

#[tokio::test]
async fn without_a_resume_window_a_caller_who_calls_back_starts_at_the_back() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    holding_in(&srv, "CAfirst", CALLER, SALES_NO).await;
    let kept = call(store, "CAfirst").await.rank;
    queue_exit(&srv, "CAfirst", "hangup").await;
    let doc = call_in(&srv, "CAagain", CALLER, SALES_NO).await;
    assert!(said(&doc, "Welcome to sales."), "{:?}", says(&doc));
    assert!(call(store, "CAagain").await.rank > kept);
}
