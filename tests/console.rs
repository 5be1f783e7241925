//! The agent console (`GET /console`) in a real headless Chromium, driven over WebDriver
//! (chromedriver), against a real `callq serve` and Redis from the shared harness. The Twilio
//! Voice SDK is replaced by a stub (`tests/support/voice_sdk_stub.js`) with the same `Device`
//! surface, served by the test and given to the server through its `voice_sdk_url` setting
//! (`CALLQ_VOICE_SDK_URL`), so the test can make the device register, drop its registration
//! and ring.
//!
//! What it shows, each checked in the store: the console signs in and heartbeats with
//! `device_registered: true`; an `unregistered` event makes the next heartbeat false and the
//! agent unofferable (a claim does not pick them); an incoming call shows the caller, queue and
//! wait the worker's `<Client>` parameters carry; reject is reported by Twilio as `busy` and
//! counts as a miss; accept reaches the SDK's call; status buttons reach callq (deferred on a
//! call, applied otherwise); wrap-up is counted down; the queues list their lines; the phone
//! token is renewed on `tokenWillExpire`; signing out goes offline.
//!
//! Needs `chromium` and `chromedriver` (`scripts/ensure-browser.sh` installs Debian's); without
//! them the test fails and says so. Screenshots land in `target/tmp/console-*.png`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use callq::app::AgentSettings;
use callq::contract::{LegParameters, OfferHook};
use callq::store::{AgentStatus, CallState, RequestedStatus};
use callq::twilio::twiml::{self, DialNoun, Verb};
use serde_json::{json, Value};
use support::browser::*;
use support::edge::*;
use support::*;

/// How long any one condition may take to come true on a busy machine.
const DEADLINE: Duration = Duration::from_secs(30);

const STUB: &str = include_str!("support/voice_sdk_stub.js");
const AGENT: &str = "alice";
const IDENTITY: &str = "alice-desk";

/// Run `f` until it returns Some, for at most [`DEADLINE`].
async fn until<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    until_within(DEADLINE, what, f).await
}

impl Browser {
    /// `window.voiceStub.<call>`'s value.
    async fn stub(&self, call: &str) -> Value {
        self.js(&format!("return window.voiceStub.{call};"), vec![])
            .await
    }

    /// Wait until element `id` is shown and its text satisfies `ok`; returns the text.
    async fn until_text(&self, id: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        until(what, || async {
            let t = self.text(id).await;
            (self.shown(id).await && ok(&t)).then_some(t)
        })
        .await
    }
}

/// A server for the stub SDK script on a free port: its URL.
async fn serve_stub() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/voice-sdk-stub.js",
        axum::routing::get(|| async {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/javascript; charset=utf-8",
                )],
                STUB,
            )
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/voice-sdk-stub.js")
}

fn voice_grant() -> callq::app::VoiceGrant {
    callq::app::VoiceGrant {
        account_sid: "AC00000000000000000000000000000001".into(),
        api_key: "SK00000000000000000000000000000001".into(),
        api_secret: "voice-api-secret-0123456789abcdef".into(),
        ttl: Duration::from_secs(3600),
    }
}

/// `callq serve` for a centre whose sales queue has a long wrap-up and no rest after a miss,
/// with Voice tokens configured and the console loading `sdk_url`.
async fn console_server(sdk_url: &str) -> TestServer {
    let centre = centre_with(
        "wrapup_s = 120\nno_answer_delay_s = 0\nring_timeout_s = 30",
        "",
        "",
    );
    let sdk_url = sdk_url.to_string();
    spawn_server_with(centre, move |s| {
        s.agents = Arc::new(AgentSettings {
            voice: Some(voice_grant()),
            voice_sdk_url: sdk_url,
            ..(*s.agents).clone()
        });
    })
    .await
}

/// Create the agent through the admin API and issue its token.
async fn agent_token(srv: &TestServer) -> String {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let r = http
        .post(format!("{}/v1/admin/agents", srv.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({"id": AGENT, "identity": IDENTITY, "queues": [{"queue": "sales", "tier": 1}]}),
        )
        .send()
        .await
        .expect("create agent");
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{}/v1/admin/agents/{AGENT}/token", srv.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("issue token");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["token"].as_str().expect("token").to_string()
}

/// The `<Client>` parameters of the worker's `<Dial>` for `offer`: what Twilio hands the
/// agent's Voice SDK as `call.customParameters`.
fn client_parameters(srv: &TestServer, offer: &callq::store::Offer) -> Value {
    let xml = callq::worker::offer::inbound_twiml(&srv.base, offer).expect("twiml");
    let doc = twiml::parse(&xml).expect("valid TwiML");
    let client = doc
        .verbs
        .iter()
        .find_map(|v| match v {
            Verb::Dial(d) => d.nouns.iter().find_map(|n| match n {
                DialNoun::Client(c) => Some(c.clone()),
                _ => None,
            }),
            _ => None,
        })
        .expect("a <Dial><Client>");
    assert_eq!(client.identity, IDENTITY);
    assert!(LegParameters::parse(&client.parameters).is_some());
    Value::Object(
        client
            .parameters
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// Twilio rings the agent's device with `offer`: the stub's `incoming`, as the SDK raises it.
async fn ring(b: &Browser, srv: &TestServer, offer: &callq::store::Offer, leg: &str) -> u64 {
    let custom = client_parameters(srv, offer);
    let params = json!({"CallSid": leg, "From": offer.from, "To": format!("client:{IDENTITY}")});
    let i = b
        .js(
            "return window.voiceStub.incoming(arguments[0], arguments[1]);",
            vec![params, custom],
        )
        .await;
    i.as_u64().expect("the stub call's index")
}

async fn agent_now(srv: &TestServer) -> callq::store::AgentRecord {
    agent_rec(&srv.state.store, AGENT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_an_agent_s_shift_in_a_real_browser() {
    let b = Browser::start().await;
    let sdk_url = serve_stub().await;
    let srv = console_server(&sdk_url).await;
    let store = &srv.state.store;
    let token = agent_token(&srv).await;

    // sign in: the console checks the token, registers the device, heartbeats
    cmd(
        "open /console",
        b.client.goto(&format!("{}/console", srv.base)),
    )
    .await;
    b.type_into("agent-id", AGENT).await;
    b.type_into("agent-token", &token).await;
    b.click("sign-in-button").await;
    b.until_text("who-id", "signed in", |t| t == AGENT).await;
    until("a registered device's heartbeat in the store", || async {
        (agent_now(&srv).await.heartbeat == Some(true)).then_some(())
    })
    .await;
    let summary = b.stub("summary()").await;
    assert_eq!(summary["state"], "registered", "{summary}");
    assert_eq!(summary["options"]["closeProtection"], true, "{summary}");
    assert!(
        summary["options"]["tokenRefreshMs"].as_u64() >= Some(10_000),
        "the token is renewed ahead of its end: {summary}"
    );
    let jwt = summary["token"].as_str().expect("a Voice token");
    assert_eq!(
        jsonwebtoken::decode_header(jwt)
            .expect("a JWT")
            .cty
            .as_deref(),
        Some("twilio-fpa;v=1"),
        "the Device got callq's Voice token"
    );
    b.until_text("device", "the page shows the phone registered", |t| {
        t == "registered"
    })
    .await;
    // the token stays in the tab's sessionStorage, never in a cookie
    let stored = b
        .js(
            "return [sessionStorage.getItem('callq.agent_token'), document.cookie];",
            vec![],
        )
        .await;
    assert_eq!(stored, json!([token, ""]));

    // the Available button reaches callq
    b.click("go-available").await;
    until("available in the store", || async {
        (agent_now(&srv).await.status == AgentStatus::Available).then_some(())
    })
    .await;

    // the device loses its registration: the next heartbeat says so, and no claim picks them
    assert_eq!(b.stub("setRegistered(false)").await, "unregistered");
    until(
        "an unregistered device's heartbeat in the store",
        || async { (agent_now(&srv).await.heartbeat == Some(false)).then_some(()) },
    )
    .await;
    holding_in(&srv, "CA1", CALLER, SALES_NO).await;
    assert!(
        claim(store).await.is_none(),
        "an agent whose device is unregistered is offered nothing"
    );
    assert_eq!(state(store, "CA1").await, CallState::Waiting);
    b.until_text("presence", "the page says no calls come", |t| {
        t.contains("NOT registered")
    })
    .await;
    assert!(b.shown("reconnect").await, "a way to reconnect the phone");

    // registered again: offerable again
    assert_eq!(b.stub("setRegistered(true)").await, "registered");
    until("a registered heartbeat again", || async {
        (agent_now(&srv).await.heartbeat == Some(true)).then_some(())
    })
    .await;
    let first = claim_within(store, DEADLINE)
        .await
        .expect("the call is offered to the agent");
    assert_eq!(
        (first.call_sid.as_str(), first.agent_id.as_str()),
        ("CA1", AGENT)
    );

    // it rings: caller, queue and wait from the worker's <Client> parameters
    let i = ring(&b, &srv, &first, "CAleg1").await;
    b.until_text("call-from", "the caller's number", |t| t == CALLER)
        .await;
    assert_eq!(b.text("call-queue").await, "sales");
    let wait = b.text("call-wait").await;
    assert!(wait.ends_with(" s"), "a wait: {wait:?}");
    b.screenshot("console-ringing").await;

    // reject: the SDK's reject, which Twilio reports as a busy <Dial>; callq counts a miss
    b.click("reject").await;
    assert_eq!(b.stub(&format!("call({i})")).await["rejected"], true);
    until("the call leaves the screen", || async {
        (!b.shown("incoming").await).then_some(())
    })
    .await;
    let doc = twiml(
        &srv,
        &hook(OfferHook::DialResult, &first.offer_ref()),
        &[("CallSid", "CA1"), ("DialCallStatus", "busy")],
    )
    .await;
    assert!(
        doc.verbs.iter().any(|v| matches!(v, Verb::Enqueue(_))),
        "the caller goes back in line: {doc:?}"
    );
    let a = agent_now(&srv).await;
    assert_eq!(a.misses, 1, "a rejected offer counts as a miss");
    assert_eq!(state(store, "CA1").await, CallState::Waiting);

    // offered again; this time accepted
    let second = claim_within(store, DEADLINE).await.expect("offered again");
    assert_eq!((second.call_sid.as_str(), second.attempt), ("CA1", 2));
    let i = ring(&b, &srv, &second, "CAleg2").await;
    b.until_text("call-from", "the second ring", |t| t == CALLER)
        .await;
    b.click("accept").await;
    assert_eq!(b.stub(&format!("call({i})")).await["accepted"], true);
    b.until_text("call-title", "on a call", |t| t == "On a call")
        .await;
    let r = post(
        &srv,
        &hook(OfferHook::AgentLeg, &second.offer_ref()),
        &[("CallSid", "CAleg2"), ("CallStatus", "in-progress")],
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(state(store, "CA1").await, CallState::Connected);
    b.until_text("status", "the page shows the call", |t| t == "On a call")
        .await;

    // on a call, Offline is deferred (and shown so); Available lifts it again
    b.click("go-offline").await;
    until("offline deferred in the store", || async {
        (agent_now(&srv).await.pending == Some(RequestedStatus::Offline)).then_some(())
    })
    .await;
    b.until_text("status-message", "the deferral shown", |t| {
        t.starts_with("Deferred")
    })
    .await;
    b.until_text("pending", "the pending status shown", |t| {
        t.contains("Offline")
    })
    .await;
    b.click("go-available").await;
    until("the deferral lifted", || async {
        agent_now(&srv).await.pending.is_none().then_some(())
    })
    .await;

    // the call ends: wrap-up, counted down on the page
    twiml(
        &srv,
        &hook(OfferHook::DialResult, &second.offer_ref()),
        &[("CallSid", "CA1"), ("DialCallStatus", "completed")],
    )
    .await;
    b.js(
        &format!("window.voiceStub.hangUp({i}); return null;"),
        vec![],
    )
    .await;
    assert_eq!(agent_now(&srv).await.status, AgentStatus::Wrapup);
    let left = b
        .until_text("wrapup-left", "the wrap-up countdown", |t| {
            t.contains("min") || t.ends_with(" s")
        })
        .await;
    let later = b
        .until_text("wrapup-left", "the countdown moves", |t| t != left)
        .await;
    assert_ne!(left, later);

    // the queues: a caller waiting in sales shows up in the agent's list
    holding_in(&srv, "CA2", CALLER, SALES_NO).await;
    until("sales shows one waiting", || async {
        let row = b
            .js(
                "const r = document.querySelector('#queues tr'); \
                 return r ? Array.from(r.children, c => c.textContent) : null;",
                vec![],
            )
            .await;
        (row.get(0) == Some(&json!("sales")) && row.get(2) == Some(&json!("1"))).then_some(())
    })
    .await;
    b.screenshot("console-wrapup").await;

    // paused with a reason, applied at once (not on a call)
    b.type_into("pause-reason", "lunch").await;
    b.click("go-paused").await;
    until("paused for lunch in the store", || async {
        let a = agent_now(&srv).await;
        (a.status == AgentStatus::Paused && a.reason == "lunch").then_some(())
    })
    .await;
    b.until_text("status", "paused on the page", |t| t == "Paused")
        .await;

    // the SDK asks for a fresh token before the old one ends: the console gives it one
    b.js("window.voiceStub.tokenWillExpire(); return null;", vec![])
        .await;
    until("the Device's token renewed", || async {
        (b.stub("updates").await.as_u64() >= Some(1)).then_some(())
    })
    .await;

    // sign out: offline, the Device destroyed, the token forgotten
    b.click("sign-out").await;
    until("offline in the store", || async {
        (agent_now(&srv).await.status == AgentStatus::Offline).then_some(())
    })
    .await;
    b.until_text("sign-in-title", "the sign-in form again", |t| {
        t == "Sign in"
    })
    .await;
    assert_eq!(b.stub("summary()").await["destroyed"], true);
    let stored = b
        .js(
            "return sessionStorage.getItem('callq.agent_token');",
            vec![],
        )
        .await;
    assert_eq!(stored, Value::Null);
    b.screenshot("console-signed-out").await;
    cmd("close the browser", b.client.clone().close()).await;
}

/// The page and its assets: served with a Content-Security-Policy naming the SDK's origin,
/// never cached stale, never framed; the SDK's URL in the page as configured.
#[tokio::test]
async fn the_console_is_served_with_its_security_headers() {
    let sdk = "http://127.0.0.1:9/voice-sdk.js?v=1&x=2";
    let srv = console_server(sdk).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    for (path, content_type) in [
        ("/console", "text/html; charset=utf-8"),
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/ticker.js", "text/javascript; charset=utf-8"),
    ] {
        let r = http
            .get(format!("{}{path}", srv.base))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "{path}");
        let h = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(h("content-type"), content_type, "{path}");
        let csp = h("content-security-policy");
        assert!(
            csp.contains("script-src 'self' http://127.0.0.1:9;"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("cache-control"), "no-cache", "{path}");
        if path == "/console" {
            let html = r.text().await.expect("body");
            assert!(
                html.contains("content=\"http://127.0.0.1:9/voice-sdk.js?v=1&amp;x=2\""),
                "{html}"
            );
            assert!(
                html.contains("data-integrity=\"\""),
                "no integrity for another URL"
            );
        }
    }
    // the default, pinned SDK is checked by integrity
    let default = spawn_server(centre()).await;
    let html = http
        .get(format!("{}/console", default.base))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(html.contains(callq::agents::console::DEFAULT_VOICE_SDK_URL));
    assert!(html.contains(callq::agents::console::DEFAULT_VOICE_SDK_INTEGRITY));
}
