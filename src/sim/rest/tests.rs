//! The REST API against the simulator's record of calls: updates and creation, the reads
//! (Call resource, filtered lists, paging), injected refusals by code, and, with a stand-in
//! for callq answering TwiML, an inbound call's and a dialled leg's statuses as they move.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::sync::mpsc;
use tower::ServiceExt;

use super::*;
use crate::sim::faults::{CustomerFaults, Faults, RestFaults};
use crate::sim::twiml_exec::{CallInfo, CallerScript, Control, Env, RingResult, Target};
use crate::sim::{Sim, SimConfig};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "secret-token";
const SID: &str = "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn config(url: &str, faults: Faults) -> SimConfig {
    SimConfig {
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        public_url: url.into(),
        callq_url: url.into(),
        admin_token: "admin".into(),
        clock: crate::sim::clock::Clock::new(100.0),
        agents: Default::default(),
        wrapup: Duration::ZERO,
        no_answer_delay: Duration::ZERO,
        media: Default::default(),
        customer_answer_s: 1.0,
        faults,
        seed: 1,
        legacy: None,
    }
}

fn sim_at(url: &str, faults: Faults) -> (Arc<Sim>, Router) {
    let sim = Sim::new(config(url, faults), None).unwrap();
    let state = Arc::new(RestState::new(
        sim.env.clone(),
        ACCOUNT,
        TOKEN,
        faults.rest,
        1,
    ));
    (sim, router(state))
}

fn sim_with(rest: RestFaults) -> (Arc<Sim>, Router) {
    let faults = Faults {
        rest,
        ..Faults::default()
    };
    sim_at("http://127.0.0.1:9", faults)
}

fn auth(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

fn request(path: &str, body: &str, user: &str, pass: &str) -> Request<Body> {
    Request::post(path)
        .header("authorization", auth(user, pass))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", auth(ACCOUNT, TOKEN))
        .body(Body::empty())
        .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The answer is Twilio's refusal `status` with `code`.
fn refused(answer: (StatusCode, serde_json::Value), status: StatusCode, code: u32) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
    assert_eq!(answer.1["status"], status.as_u16());
}

fn call_path(sid: &str) -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json")
}

fn list_path(query: &str) -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json?{query}")
}

fn live_call(sim: &Sim, status: &'static str) -> mpsc::UnboundedReceiver<Control> {
    let (tx, rx) = mpsc::unbounded_channel();
    let info = CallInfo {
        sid: SID.into(),
        account_sid: ACCOUNT.into(),
        from: "+15550001111".into(),
        to: "+15005550001".into(),
        direction: "inbound".into(),
    };
    sim.env.registry.insert(info, tx, status);
    rx
}

const TWIML: &str =
    "Twiml=%3CResponse%3E%3CDial%3E%3CClient%3Ealice%3C%2FClient%3E%3C%2FDial%3E%3C%2FResponse%3E";

#[tokio::test]
async fn an_update_reaches_the_live_call_and_answers_with_the_call() {
    let (sim, app) = sim_with(RestFaults::default());
    let mut rx = live_call(&sim, "in-progress");
    let (status, body) = send(&app, request(&call_path(SID), TWIML, ACCOUNT, TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sid"], SID);
    assert_eq!(body["status"], "in-progress");
    assert!(matches!(rx.try_recv(), Ok(Control::Twiml(_))));
}

#[tokio::test]
async fn unknown_and_ended_calls_get_twilios_error_codes() {
    let (sim, app) = sim_with(RestFaults::default());
    let (status, body) = send(&app, request(&call_path(SID), TWIML, ACCOUNT, TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 20404);
    assert_eq!(body["status"], 404);
    assert_eq!(
        body["more_info"],
        "https://www.twilio.com/docs/errors/20404"
    );
    refused(
        send(&app, get(&call_path(SID))).await,
        StatusCode::NOT_FOUND,
        20404,
    );
    let _rx = live_call(&sim, "in-progress");
    sim.env.registry.end(SID);
    let (status, body) = send(&app, request(&call_path(SID), TWIML, ACCOUNT, TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 21220);
    let hangup = "Status=completed";
    refused(
        send(&app, request(&call_path(SID), hangup, ACCOUNT, TOKEN)).await,
        StatusCode::BAD_REQUEST,
        21220,
    );
    refused(
        send(
            &app,
            request("/2010-04-01/Accounts/x/Queues", "", ACCOUNT, TOKEN),
        )
        .await,
        StatusCode::NOT_FOUND,
        20404,
    );
}

#[tokio::test]
async fn new_twiml_for_an_inbound_call_still_ringing_is_refused_with_21220() {
    let (sim, app) = sim_with(RestFaults::default());
    let mut rx = live_call(&sim, "ringing");
    refused(
        send(&app, request(&call_path(SID), TWIML, ACCOUNT, TOKEN)).await,
        StatusCode::BAD_REQUEST,
        21220,
    );
    let (_, body) = send(&app, get(&call_path(SID))).await;
    assert_eq!(body["status"], "ringing");
    assert!(rx.try_recv().is_err());
    // answered: the same update goes through; a cancel no longer touches it
    sim.env.registry.set_status(SID, "in-progress");
    let (status, _) = send(&app, request(&call_path(SID), TWIML, ACCOUNT, TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(matches!(rx.try_recv(), Ok(Control::Twiml(_))));
    let cancel = "Status=canceled";
    let (status, body) = send(&app, request(&call_path(SID), cancel, ACCOUNT, TOKEN)).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, "in-progress".into())
    );
    assert!(
        rx.try_recv().is_err(),
        "a cancel leaves an answered call alone"
    );
    let hangup = "Status=completed";
    let (status, _) = send(&app, request(&call_path(SID), hangup, ACCOUNT, TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rx.try_recv(), Ok(Control::Hangup));
}

#[tokio::test]
async fn bad_credentials_and_bad_twiml_are_refused() {
    let (sim, app) = sim_with(RestFaults::default());
    let _rx = live_call(&sim, "in-progress");
    refused(
        send(&app, request(&call_path(SID), TWIML, ACCOUNT, "nope")).await,
        StatusCode::UNAUTHORIZED,
        20003,
    );
    let other = "AC99999999999999999999999999999999";
    let path = format!("/2010-04-01/Accounts/{other}/Calls/{SID}.json");
    let (status, _) = send(&app, request(&path, TWIML, ACCOUNT, TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let long = format!(
        "Twiml=%3CResponse%3E%3CSay%3E{}%3C%2FSay%3E%3C%2FResponse%3E",
        "a".repeat(4100)
    );
    refused(
        send(&app, request(&call_path(SID), &long, ACCOUNT, TOKEN)).await,
        StatusCode::BAD_REQUEST,
        32018,
    );
    refused(
        send(
            &app,
            request(&call_path(SID), "Twiml=%3CNope%2F%3E", ACCOUNT, TOKEN),
        )
        .await,
        StatusCode::BAD_REQUEST,
        12100,
    );
    let (status, _) = send(&app, request(&call_path(SID), "Foo=1", ACCOUNT, TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_created_call_is_an_outbound_api_call_the_reads_find() {
    let (_sim, app) = sim_with(RestFaults::default());
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    let body = format!(
        "To=client%3Aalice&From=%2B15005550001&{TWIML}&StatusCallbackEvent=answered&StatusCallbackEvent=completed&Timeout=5"
    );
    let (status, json) = send(&app, request(&path, &body, ACCOUNT, TOKEN)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(json["to"], "client:alice");
    assert_eq!(json["status"], "queued");
    assert_eq!(json["direction"], "outbound-api");
    assert_eq!(json["start_time"], serde_json::Value::Null);
    let sid = json["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("CA"));
    refused(
        send(&app, request(&path, "From=%2B1", ACCOUNT, TOKEN)).await,
        StatusCode::BAD_REQUEST,
        21201,
    );
    // the agent's device is unknown here: the call rings
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, json) = send(&app, get(&call_path(&sid))).await;
    assert_eq!(json["status"], "ringing");
    assert!(json["start_time"].is_string());
    // found as callq looks for a callback's agent-first call
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let q = format!("To=client%3Aalice&From=%2B15005550001&StartTime%3E={today}");
    let (status, json) = send(&app, get(&list_path(&q))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["calls"][0]["sid"], sid.as_str());
    let tomorrow = today.tomorrow().unwrap();
    let q = format!("To=client%3Aalice&StartTime%3E={tomorrow}");
    let (_, json) = send(&app, get(&list_path(&q))).await;
    assert_eq!(json["calls"].as_array().map(Vec::len), Some(0));
    // canceled while ringing: it ends canceled
    let (status, _) = send(
        &app,
        request(&call_path(&sid), "Status=canceled", ACCOUNT, TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, json) = send(&app, get(&call_path(&sid))).await;
    assert_eq!(json["status"], "canceled");
    assert_eq!(json["end_time"], serde_json::Value::Null);
    assert_eq!(json["duration"], serde_json::Value::Null);
}

#[tokio::test]
async fn the_call_resource_has_twilios_fields_and_times() {
    let (sim, app) = sim_with(RestFaults::default());
    let _rx = live_call(&sim, "in-progress");
    let (status, json) = send(&app, get(&call_path(SID))).await;
    assert_eq!(status, StatusCode::OK);
    for field in [
        "sid",
        "date_created",
        "date_updated",
        "parent_call_sid",
        "account_sid",
        "to",
        "from",
        "phone_number_sid",
        "status",
        "start_time",
        "end_time",
        "duration",
        "price",
        "direction",
        "answered_by",
        "api_version",
        "queue_time",
        "uri",
        "subresource_uris",
    ] {
        assert!(json.get(field).is_some(), "{field} missing");
    }
    assert_eq!(json["account_sid"], ACCOUNT);
    assert_eq!(json["direction"], "inbound");
    assert_eq!(json["uri"], call_path(SID));
    assert_eq!(
        json["duration"],
        serde_json::Value::Null,
        "no duration while live"
    );
    let created = json["date_created"].as_str().unwrap();
    // RFC 2822, as Twilio writes it: "Fri, 18 Oct 2019 17:00:00 +0000"
    assert!(
        jiff::fmt::rfc2822::parse(created).is_ok() && created.ends_with(" +0000"),
        "{created}"
    );
    sim.env.registry.end(SID);
    let (_, json) = send(&app, get(&call_path(SID))).await;
    assert_eq!(json["status"], "completed");
    assert!(json["end_time"].is_string());
    assert_eq!(json["duration"], "0");
}

#[tokio::test]
async fn lists_page_newest_first_in_twilios_envelope() {
    let (sim, app) = sim_with(RestFaults::default());
    let _rx = live_call(&sim, "in-progress");
    let legs: Vec<String> = (0..3)
        .map(|i| {
            let sid = format!("CA{:032x}", 100 + i);
            let info = CallInfo {
                sid: sid.clone(),
                account_sid: ACCOUNT.into(),
                from: "+15550001111".into(),
                to: format!("client:agent{i}"),
                direction: "outbound-dial".into(),
            };
            let _ = sim.env.registry.insert_leg(info, SID);
            sim.env.registry.set_status(&sid, "ringing");
            sid
        })
        .collect();
    let (status, json) = send(&app, get(&list_path(&format!("ParentCallSid={SID}")))).await;
    assert_eq!(status, StatusCode::OK);
    let sids: Vec<&str> = json["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["sid"].as_str())
        .collect();
    assert_eq!(sids, [&legs[2], &legs[1], &legs[0]]);
    assert_eq!(json["calls"][0]["parent_call_sid"], SID);
    assert_eq!(json["calls"][0]["direction"], "outbound-dial");
    assert_eq!(json["page"], 0);
    assert_eq!(json["page_size"], 50);
    assert_eq!(
        (json["start"].clone(), json["end"].clone()),
        (0.into(), 2.into())
    );
    assert_eq!(json["next_page_uri"], serde_json::Value::Null);
    assert_eq!(json["previous_page_uri"], serde_json::Value::Null);
    let uri = json["uri"].as_str().unwrap();
    assert!(uri.starts_with(&format!(
        "/2010-04-01/Accounts/{ACCOUNT}/Calls.json?ParentCallSid={SID}"
    )));
    assert_eq!(json["first_page_uri"], uri);
    // pages of two
    let (_, json) = send(
        &app,
        get(&list_path(&format!("ParentCallSid={SID}&PageSize=2"))),
    )
    .await;
    assert_eq!(json["calls"].as_array().map(Vec::len), Some(2));
    let next = json["next_page_uri"]
        .as_str()
        .expect("a next page")
        .to_string();
    assert!(
        next.contains("Page=1") && next.contains("PageSize=2"),
        "{next}"
    );
    let (_, json) = send(&app, get(&next)).await;
    assert_eq!(json["calls"][0]["sid"], legs[0].as_str());
    assert_eq!(json["next_page_uri"], serde_json::Value::Null);
    assert!(json["previous_page_uri"].is_string());
    // by status, and the parent alone by its number
    sim.env.registry.set_status(&legs[1], "no-answer");
    let q = format!("ParentCallSid={SID}&Status=no-answer");
    let (_, json) = send(&app, get(&list_path(&q))).await;
    assert_eq!(json["calls"].as_array().map(Vec::len), Some(1));
    let (_, json) = send(&app, get(&list_path("To=%2B15005550001"))).await;
    assert_eq!(json["calls"][0]["sid"], SID);
    refused(
        send(&app, get(&list_path("PageSize=5000"))).await,
        StatusCode::BAD_REQUEST,
        20001,
    );
}

#[tokio::test]
async fn injected_faults_answer_429_or_500_before_doing_anything() {
    let (sim, app) = sim_with(RestFaults {
        error_rate: 1.0,
        ..RestFaults::default()
    });
    let mut rx = live_call(&sim, "in-progress");
    for _ in 0..8 {
        let (status, body) = send(&app, request(&call_path(SID), TWIML, ACCOUNT, TOKEN)).await;
        match status {
            StatusCode::TOO_MANY_REQUESTS => assert_eq!(body["code"], 20429),
            StatusCode::INTERNAL_SERVER_ERROR => assert_eq!(body["code"], 20500),
            s => panic!("unexpected {s}"),
        }
    }
    assert!(rx.try_recv().is_err(), "a refused request changed nothing");
    assert_eq!(sim.stats.rest_faults.load(Ordering::Relaxed), 8);
}

#[tokio::test]
async fn while_the_outage_switch_is_on_every_request_is_refused_with_500() {
    let (sim, _) = sim_with(RestFaults::default());
    let state = RestState::new(sim.env.clone(), ACCOUNT, TOKEN, RestFaults::default(), 1)
        .with_outage(sim.rest_outage.clone());
    let app = router(Arc::new(state));
    let mut rx = live_call(&sim, "in-progress");
    sim.rest_outage.store(true, Ordering::Relaxed);
    for _ in 0..3 {
        let (status, body) = send(&app, request(&call_path(SID), TWIML, ACCOUNT, TOKEN)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["code"], 20500);
    }
    assert!(rx.try_recv().is_err(), "a refused request changed nothing");
    assert_eq!(sim.stats.injected().rest_500, 3);
    // switched off: answered again
    sim.rest_outage.store(false, Ordering::Relaxed);
    let (status, _) = send(&app, request(&call_path(SID), TWIML, ACCOUNT, TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn injected_404s_and_400s_by_operation() {
    let (sim, app) = sim_with(RestFaults {
        rate_404: 1.0,
        ..RestFaults::default()
    });
    let mut rx = live_call(&sim, "in-progress");
    refused(
        send(&app, request(&call_path(SID), TWIML, ACCOUNT, TOKEN)).await,
        StatusCode::NOT_FOUND,
        20404,
    );
    let (status, _) = send(&app, get(&call_path(SID))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "reads are refused too");
    assert!(rx.try_recv().is_err());
    assert_eq!(sim.stats.injected().rest_404, 2);

    let (sim, app) = sim_with(RestFaults {
        rate_400: 1.0,
        ..RestFaults::default()
    });
    let mut rx = live_call(&sim, "in-progress");
    refused(
        send(&app, request(&call_path(SID), TWIML, ACCOUNT, TOKEN)).await,
        StatusCode::BAD_REQUEST,
        21210,
    );
    let create = format!("To=client%3Aalice&From=%2B15005550001&{TWIML}");
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
    refused(
        send(&app, request(&path, &create, ACCOUNT, TOKEN)).await,
        StatusCode::BAD_REQUEST,
        21211,
    );
    let (status, _) = send(&app, get(&call_path(SID))).await;
    assert_eq!(status, StatusCode::OK, "reads never get a 400");
    assert!(rx.try_recv().is_err());
    assert_eq!(sim.stats.injected().rest_400, 2);
    assert_eq!(sim.env.registry.live(), 1, "nothing was created");
}

/// A stand-in for callq: the voice URL answers after `voice_delay` with a `<Dial>` of
/// `alice` (whose device nobody answers) for one second, the `<Dial>` action hangs up.
async fn fake_callq(voice_delay: Duration) -> String {
    let voice = move || async move {
        tokio::time::sleep(voice_delay).await;
        r#"<Response><Dial timeout="1" action="/twilio/dial-result"><Client statusCallback="/twilio/agent-leg" statusCallbackEvent="answered completed">alice</Client></Dial></Response>"#
    };
    let app = Router::new()
        .route("/twilio/voice", post(voice))
        .route(
            "/twilio/dial-result",
            post(|| async { "<Response><Hangup/></Response>" }),
        )
        .route("/twilio/{*rest}", post(|| async { "<Response/>" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn an_inbound_call_rings_until_its_first_twiml_and_its_dial_leg_is_listed() {
    let url = fake_callq(Duration::from_millis(300)).await;
    let (sim, app) = sim_at(&url, Faults::default());
    let sid = sim
        .env
        .place_inbound("+15550002222", "+15005550001", CallerScript::default());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, json) = send(&app, get(&call_path(&sid))).await;
    assert_eq!(
        json["status"], "ringing",
        "the voice URL has not answered yet"
    );
    refused(
        send(&app, request(&call_path(&sid), TWIML, ACCOUNT, TOKEN)).await,
        StatusCode::BAD_REQUEST,
        21220,
    );
    // the first TwiML runs: in progress, and the <Dial> leg rings
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, json) = send(&app, get(&call_path(&sid))).await;
    assert_eq!(json["status"], "in-progress");
    let (_, json) = send(&app, get(&list_path(&format!("ParentCallSid={sid}")))).await;
    let leg = json["calls"][0].clone();
    assert_eq!(leg["status"], "ringing");
    assert_eq!(leg["to"], "client:alice");
    assert_eq!(leg["from"], "+15550002222");
    assert_eq!(leg["direction"], "outbound-dial");
    let leg_sid = leg["sid"].as_str().unwrap().to_string();
    // the ring times out; the dial action hangs up
    assert!(sim.drain(Duration::from_secs(5)).await);
    let (_, json) = send(&app, get(&call_path(&leg_sid))).await;
    assert_eq!(json["status"], "no-answer");
    assert_eq!(json["duration"], serde_json::Value::Null);
    let (_, json) = send(&app, get(&call_path(&sid))).await;
    assert_eq!(json["status"], "completed");
    assert!(json["duration"].is_string());
}

#[tokio::test]
async fn a_dialled_leg_hung_up_over_rest_ends_the_dial_canceled() {
    let url = fake_callq(Duration::ZERO).await;
    let (sim, app) = sim_at(&url, Faults::default());
    let sid = sim
        .env
        .place_inbound("+15550003333", "+15005550001", CallerScript::default());
    let mut leg_sid = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (_, json) = send(&app, get(&list_path(&format!("ParentCallSid={sid}")))).await;
        if let Some(s) = json["calls"][0]["sid"].as_str() {
            leg_sid = Some(s.to_string());
            break;
        }
    }
    let leg_sid = leg_sid.expect("the leg was dialled");
    let (status, _) = send(
        &app,
        request(&call_path(&leg_sid), "Status=completed", ACCOUNT, TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(sim.drain(Duration::from_secs(5)).await);
    let (_, json) = send(&app, get(&call_path(&leg_sid))).await;
    assert_eq!(json["status"], "canceled");
    let logs = sim.stats.snapshot().logs;
    assert_eq!(logs[0].dial_results, ["canceled"]);
}

/// Rings a customer who called (so Twilio knows their number) with `customers` drawn; the
/// ring as it ended within 500 ms (None: still ringing), and the simulator.
async fn ring_customer(customers: CustomerFaults) -> (Option<RingResult>, Arc<Sim>) {
    let url = fake_callq(Duration::ZERO).await;
    let faults = Faults {
        customers,
        ..Faults::default()
    };
    let (sim, _app) = sim_at(&url, faults);
    let customer = "+15550004444";
    sim.env
        .place_inbound(customer, "+15005550001", CallerScript::default());
    let leg = CallInfo {
        sid: SID.into(),
        account_sid: ACCOUNT.into(),
        from: "+15005550001".into(),
        to: customer.into(),
        direction: "outbound-dial".into(),
    };
    let target = Target::Number(customer.into());
    let ring = sim.env.ring(&target, SID, &leg);
    let rung = tokio::time::timeout(Duration::from_millis(500), ring).await;
    (rung.ok(), sim)
}

#[tokio::test]
async fn callback_customers_ring_out_or_are_busy_as_drawn() {
    let (rung, sim) = ring_customer(CustomerFaults {
        no_answer: 0.0,
        busy: 1.0,
    })
    .await;
    assert_eq!(rung, Some(RingResult::Busy));
    assert_eq!(sim.stats.injected().customers_busy, 1);
    let (rung, sim) = ring_customer(CustomerFaults {
        no_answer: 1.0,
        busy: 0.0,
    })
    .await;
    assert_eq!(
        rung, None,
        "the phone rings out: the <Dial> timeout ends it"
    );
    assert_eq!(sim.stats.injected().customers_no_answer, 1);
    assert!(sim.stats.snapshot().callbacks_reached.is_empty());
    let (rung, sim) = ring_customer(CustomerFaults::default()).await;
    assert!(matches!(rung, Some(RingResult::Answered { .. })));
    assert_eq!(sim.stats.snapshot().callbacks_reached.len(), 1);
}

#[tokio::test]
async fn enqueue_queues_and_their_members_are_listed_in_twilios_shapes_and_paged() {
    use crate::sim::twiml_exec::TwilioQueues;
    use crate::twilio::rest::{MemberPage, QueuePage};
    let (sim, app) = sim_with(RestFaults::default());
    for sid in ["CAm1", "CAm2", "CAm3"] {
        sim.env.twilio_queues().join("callq-sales", sid);
    }
    let base = format!("/2010-04-01/Accounts/{ACCOUNT}");
    let (status, json) = send(&app, get(&format!("{base}/Queues.json"))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let page: QueuePage = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(page.queues.len(), 1);
    let q = &page.queues[0];
    assert_eq!(q.sid, TwilioQueues::sid_for("callq-sales"));
    assert_eq!(q.friendly_name.as_deref(), Some("callq-sales"));
    assert_eq!(q.current_size, Some(3));
    assert_eq!(page.next_page_uri, None);
    assert_eq!(json["page_size"], 50);

    let members = format!("{base}/Queues/{}/Members.json", q.sid);
    let (status, json) = send(&app, get(&format!("{members}?PageSize=2"))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let first: MemberPage = serde_json::from_value(json).unwrap();
    let sids: Vec<&str> = first
        .queue_members
        .iter()
        .map(|m| m.call_sid.as_str())
        .collect();
    assert_eq!(sids, ["CAm1", "CAm2"], "first in line first");
    assert_eq!(first.queue_members[1].position, Some(2));
    assert!(first.queue_members[0].wait_time.is_some());
    assert!(first.queue_members[0].date_enqueued.is_some());
    let next = first.next_page_uri.expect("a second page");
    let (_, json) = send(&app, get(&next)).await;
    let second: MemberPage = serde_json::from_value(json).unwrap();
    assert_eq!(second.queue_members.len(), 1);
    assert_eq!(second.queue_members[0].call_sid, "CAm3");
    assert_eq!(second.queue_members[0].position, Some(3));
    assert_eq!(second.next_page_uri, None);

    let (status, json) = send(&app, get(&format!("{base}/Queues/QUnone/Members.json"))).await;
    refused((status, json), StatusCode::NOT_FOUND, 20404);
}
