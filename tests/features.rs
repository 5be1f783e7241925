//! The feature switches (`[features]`, `/v1/admin/features`): each one's "off" still answers
//! Twilio correctly, an admin's override reaches the webhooks within the switch cache's half
//! second (the routing script reads `fallback` itself, at once), and clearing it brings the
//! file's setting back. Against a running `callq serve` and the harness's real Redis.

mod support;

use std::time::Duration;

use callq::contract::OfferHook;
use callq::store::CallState;
use callq::twilio::twiml::{self, Verb};
use serde_json::{json, Value};
use support::edge::*;
use support::worker::eventually;
use support::*;

/// `PUT` (Some) or `DELETE` (None) feature `name` through the admin API; (status, body).
async fn switch(srv: &TestServer, name: &str, enabled: Option<bool>) -> (u16, Value) {
    let url = format!("{}/v1/admin/features/{name}", srv.base);
    let req = match enabled {
        Some(on) => client().put(&url).json(&json!({ "enabled": on })),
        None => client().delete(&url),
    };
    let resp = req.bearer_auth(ADMIN_TOKEN).send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// How long a switch may take to show: the switch cache holds a value half a second; the
/// harness's `eventually` allows a loaded machine ten times this.
const SWITCH_SHOWS: Duration = Duration::from_millis(1500);

fn offers_callback(doc: &twiml::Response) -> bool {
    doc.verbs.iter().any(|v| matches!(v, Verb::Gather(_)))
}

#[tokio::test]
async fn the_admin_lists_switches_and_clears_every_feature() {
    let srv = spawn_server(centre_with("", "", "[features]\npriority = false")).await;
    let resp = client()
        .get(format!("{}/v1/admin/features", srv.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let list: Value = resp.json().await.expect("json");
    let names: Vec<(&str, bool, bool)> = list["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or_default(),
                f["enabled"].as_bool().unwrap_or_default(),
                f["overridden"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("callbacks", true, false),
            ("priority", false, false),
            ("device_check", true, false),
            ("fallback", true, false),
        ]
    );

    let (status, v) = switch(&srv, "priority", Some(true)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            v["enabled"].as_bool(),
            v["configured"].as_bool(),
            v["overridden"].as_bool()
        ),
        (Some(true), Some(false), Some(true))
    );
    let (status, v) = switch(&srv, "priority", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["enabled"].as_bool(), v["overridden"].as_bool()),
        (Some(false), Some(false))
    );

    // an unknown feature, a bad body, no token: refused, nothing stored
    let (status, v) = switch(&srv, "Callbacks", Some(false)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("feature_not_found"))
    );
    let resp = client()
        .put(format!("{}/v1/admin/features/callbacks", srv.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "enabled": "no" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 422);
    let resp = client()
        .put(format!("{}/v1/admin/features/callbacks", srv.base))
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);
    let sw = srv.state.store.switches().await.expect("switches");
    assert!(sw.features.is_empty(), "nothing stored: {sw:?}");
}

#[tokio::test]
async fn with_callbacks_off_no_new_offer_is_made() {
    let srv = spawn_server(centre_with("callback_after_s = 0", "", "")).await;
    call_in(&srv, "CAcb", CALLER, SALES_NO).await;
    assert!(
        offers_callback(&wait_doc(&srv, "CAcb").await),
        "on: offered"
    );

    assert_eq!(switch(&srv, "callbacks", Some(false)).await.0, 200);
    let doc = eventually(SWITCH_SHOWS, "the callback offer to stop", || async {
        let doc = wait_doc(&srv, "CAcb").await;
        (!offers_callback(&doc)).then_some(doc)
    })
    .await;
    // still a proper wait document: the position, then hold music
    assert!(said(&doc, "You are next in line."), "{:?}", says(&doc));
    assert!(doc.verbs.iter().any(|v| matches!(v, Verb::Play(_))));
    assert_eq!(
        state_of(&srv.state.store, "CAcb").await,
        Some(CallState::Waiting)
    );

    assert_eq!(switch(&srv, "callbacks", None).await.0, 200);
    // cleared: the file's setting (on) again
    eventually(SWITCH_SHOWS, "the callback offer to come back", || async {
        offers_callback(&wait_doc(&srv, "CAcb").await).then_some(())
    })
    .await;
}

#[tokio::test]
async fn with_priority_off_callers_keep_arrival_order() {
    let srv = spawn_server(centre_with("", "", "[features]\npriority = false")).await;
    let store = &srv.state.store;
    holding_in(&srv, "CAplain", CALLER, SALES_NO).await;
    holding_in(&srv, "CAvip", VIP, SALES_NO).await;
    assert_eq!(call(store, "CAvip").await.priority_ms, 0);
    let pos = store.position("CAvip", "sales").await.expect("read");
    assert_eq!(pos.map(|p| p.position), Some(2), "the VIP waits their turn");

    // switched on at run time: the next VIP goes ahead again
    assert_eq!(switch(&srv, "priority", Some(true)).await.0, 200);
    let mut n = 0;
    let boosted = eventually(SWITCH_SHOWS, "priority to apply again", || {
        n += 1;
        let sid = format!("CAvip{n}");
        let srv = &srv;
        async move {
            holding_in(srv, &sid, VIP, SALES_NO).await;
            (call(&srv.state.store, &sid).await.priority_ms == 120_000).then_some(sid)
        }
    })
    .await;
    let pos = store.position(&boosted, "sales").await.expect("read");
    assert_eq!(pos.map(|p| p.position), Some(1));
}

/// The offer's `<Dial>` ended unanswered: Twilio's request to the dial-result hook.
async fn dial_ended(
    srv: &TestServer,
    offer: &callq::store::Offer,
    status: &str,
) -> twiml::Response {
    let url = hook(OfferHook::DialResult, &offer.offer_ref());
    twiml(
        srv,
        &url,
        &[
            ("CallSid", offer.call_sid.as_str()),
            ("DialCallStatus", status),
        ],
    )
    .await
}

#[tokio::test]
async fn with_fallback_off_an_unanswered_offer_takes_the_overflow_action() {
    let srv = spawn_server(centre_with(
        "overflow = { action = \"voicemail\" }",
        "",
        "[features]\nfallback = false",
    ))
    .await;
    let store = &srv.state.store;
    let offer = offered_to(&srv, "a1", "CAone").await;
    let doc = dial_ended(&srv, &offer, "no-answer").await;
    assert!(
        said(&doc, "nobody could take your call"),
        "{:?}",
        says(&doc)
    );
    assert!(
        doc.verbs.iter().any(|v| matches!(v, Verb::Record(_))),
        "voicemail: {doc:?}"
    );
    let rec = call(store, "CAone").await;
    assert_eq!(rec.state, CallState::Overflowed);
    assert_eq!(rec.end_reason.as_deref(), Some("no_answer"));
    assert_eq!(
        agent_rec(store, "a1").await.misses,
        1,
        "the miss is counted"
    );
    // Twilio retries the request: the same answer, nothing counted twice
    assert_eq!(dial_ended(&srv, &offer, "no-answer").await, doc);
    assert_eq!(agent_rec(store, "a1").await.misses, 1);
    assert_invariants(store, &["CAone".to_string()]).await;
}

#[tokio::test]
async fn switched_off_at_run_time_fallback_applies_to_the_next_result_at_once() {
    let srv = spawn_server(centre()).await;
    let store = &srv.state.store;
    // a ring cut by something not the agent's doing still goes back in line
    assert_eq!(switch(&srv, "fallback", Some(false)).await.0, 200);
    let offer = offered_to(&srv, "a1", "CAcut").await;
    let doc = dial_ended(&srv, &offer, "canceled").await;
    assert!(
        doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))),
        "{doc:?}"
    );
    assert_eq!(state(store, "CAcut").await, CallState::Waiting);

    // the agent leg's own status comes first: the caller's dial result then plays the
    // action (no overflow action here: a goodbye)
    let again = claim(store).await.expect("offered again");
    let leg = hook(OfferHook::AgentLeg, &again.offer_ref());
    let r = post(
        &srv,
        &leg,
        &[
            ("CallSid", "CAleg"),
            ("CallStatus", "no-answer"),
            ("ParentCallSid", "CAcut"),
        ],
    )
    .await;
    assert!(r.status().is_success(), "agent leg: {}", r.status());
    assert_eq!(state(store, "CAcut").await, CallState::Overflowed);
    let doc = dial_ended(&srv, &again, "no-answer").await;
    assert!(
        said(&doc, "nobody could take your call"),
        "{:?}",
        says(&doc)
    );
    assert_eq!(doc.verbs.last(), Some(&Verb::Hangup));

    // cleared: the next unanswered offer goes on to the next agent, as the file says
    assert_eq!(switch(&srv, "fallback", None).await.0, 200);
    online_agent(store, &agent("a2", &[("sales", 1)])).await;
    holding_in(&srv, "CAnext", CALLER, SALES_NO).await;
    let o = claim(store).await.expect("offered");
    let doc = dial_ended(&srv, &o, "no-answer").await;
    assert!(
        doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))),
        "{doc:?}"
    );
    assert_eq!(state(store, "CAnext").await, CallState::Waiting);
    assert_invariants(store, &sids(&["CAcut", "CAnext"])).await;
}

/// A switch flipped through one server reaches another server of the centre (its own switch
/// cache, the same Redis) without a restart.
#[tokio::test]
async fn a_switch_flipped_on_one_server_reaches_the_others() {
    let centre = centre_with("callback_after_s = 0", "", "");
    let a = spawn_server(centre.clone()).await;
    let b = spawn_server_on(a.state.store.clone(), centre).await;
    call_in(&b, "CAboth", CALLER, SALES_NO).await;
    assert!(
        offers_callback(&wait_doc(&b, "CAboth").await),
        "on: offered"
    );
    assert_eq!(switch(&a, "callbacks", Some(false)).await.0, 200);
    let flipped_at = std::time::Instant::now();
    eventually(
        SWITCH_SHOWS,
        "server b to follow server a's switch",
        || async { (!offers_callback(&wait_doc(&b, "CAboth").await)).then_some(()) },
    )
    .await;
    eprintln!("server b followed after {:?}", flipped_at.elapsed());
}
