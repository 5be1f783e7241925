//! Driving `callq serve`'s Twilio webhooks as Twilio does: a test centre, signed form posts,
//! TwiML read back with the strict parser, and the steps of a caller's life (ringing in,
//! holding, being offered).

use std::time::Duration;

use callq::config::CentreConfig;
use callq::contract::OfferHook;
use callq::store::{CallState, Offer, OfferRef, Store};
use callq::twilio::signature::signed_form;
use callq::twilio::twiml::{self, Enqueue, GatherChild, Verb};

use super::*;

pub const SALES_MUSIC: &str = "https://music.example/sales.mp3";
pub const CALLER: &str = "+14155551234";
pub const VIP: &str = "+14155550100";
pub const SALES_NO: &str = "+15005550001";
pub const SUPPORT_NO: &str = "+15005550002";
pub const IVR_NO: &str = "+15005550000";
/// How long Twilio waits for a webhook's answer; a fallback must come well within it.
pub const TWILIO_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// A centre with `sales` (default) and `support`, an IVR number and a VIP; `sales`, `support`
/// and `top` are extra TOML lines for the sales table, the support table and the top level.
pub fn centre_with(sales: &str, support: &str, top: &str) -> CentreConfig {
    let toml = format!(
        r#"
centre = "edge"
default_queue = "sales"
{top}

[priority]
vip = ["{VIP}"]
vip_boost_s = 120

[ivr]
numbers = ["{IVR_NO}"]
prompt = "For sales, press 1. For support, press 2. For billing, press 3."
options = {{ "1" = "sales", "2" = "support", "3" = {{ queue = "support", skills = {{ billing = 2 }} }} }}

[queues.support]
numbers = ["{SUPPORT_NO}"]
welcome = "Welcome to support."
{support}

[queues.sales]
numbers = ["{SALES_NO}"]
welcome = "Welcome to sales."
hold_music = "{SALES_MUSIC}"
{sales}
"#
    );
    centre_from(&toml)
}

pub fn centre() -> CentreConfig {
    centre_with("", "", "")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// POST `params` to `path`, signed as Twilio signs it.
pub async fn post(srv: &TestServer, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
    let url = format!("{}{}", srv.base, path);
    let (body, signature) = signed_form(AUTH_TOKEN, &url, params);
    client()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(body)
        .send()
        .await
        .expect("request")
}

/// POST a signed webhook and read its TwiML answer (200, text/xml, parses).
pub async fn twiml(srv: &TestServer, path: &str, params: &[(&str, &str)]) -> twiml::Response {
    let (_, doc) = twiml_text(srv, path, params).await;
    doc
}

pub async fn twiml_text(
    srv: &TestServer,
    path: &str,
    params: &[(&str, &str)],
) -> (String, twiml::Response) {
    let resp = post(srv, path, params).await;
    assert_eq!(resp.status(), 200, "{path} {params:?}");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(ct, "text/xml; charset=utf-8", "{path}: content-type");
    let text = resp.text().await.expect("body");
    match twiml::parse(&text) {
        Ok(doc) => (text, doc),
        Err(e) => panic!("{path}: invalid TwiML ({e}): {text}"),
    }
}

pub fn voice_params<'a>(sid: &'a str, from: &'a str, to: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("CallSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", from),
        ("To", to),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("ApiVersion", "2010-04-01"),
    ]
}

pub async fn call_in(srv: &TestServer, sid: &str, from: &str, to: &str) -> twiml::Response {
    twiml(srv, "/twilio/voice", &voice_params(sid, from, to)).await
}

/// The call's state, or None when callq has no record of it.
pub async fn state_of(store: &Store, sid: &str) -> Option<CallState> {
    store.call(sid).await.expect("read").map(|c| c.state)
}

pub fn the_enqueue(srv: &TestServer, queue: &str) -> Enqueue {
    Enqueue {
        name: format!("callq-{queue}"),
        action: Some(format!("{}/twilio/queue-exit", srv.base)),
        method: Some("POST".into()),
        wait_url: Some(format!("{}/twilio/wait?queue={queue}", srv.base)),
        wait_url_method: Some("POST".into()),
        max_queue_size: None,
    }
}

pub fn says(doc: &twiml::Response) -> Vec<String> {
    let mut out = Vec::new();
    for v in &doc.verbs {
        match v {
            Verb::Say(s) => out.push(s.text.clone()),
            Verb::Gather(g) => {
                for c in &g.children {
                    if let GatherChild::Say(s) = c {
                        out.push(s.text.clone());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

pub fn said(doc: &twiml::Response, needle: &str) -> bool {
    says(doc).iter().any(|s| s.contains(needle))
}

/// The path and query of `hook` for `offer`, as the worker writes it.
pub fn hook(hook: OfferHook, offer: &OfferRef) -> String {
    hook.url("", offer)
}

/// A caller rings in and Twilio puts them on hold (its first wait request).
pub async fn holding_in(srv: &TestServer, sid: &str, from: &str, to: &str) {
    call_in(srv, sid, from, to).await;
    twiml(
        srv,
        "/twilio/wait?queue=sales",
        &[
            ("CallSid", sid),
            ("From", from),
            ("To", to),
            ("QueueTime", "0"),
        ],
    )
    .await;
}

/// Twilio's wait request for `sid` holding `queue_time_s` seconds in support's Twilio queue.
pub async fn support_wait(srv: &TestServer, sid: &str, queue_time_s: &str) -> twiml::Response {
    twiml(
        srv,
        "/twilio/wait?queue=support",
        &[
            ("CallSid", sid),
            ("From", CALLER),
            ("To", SUPPORT_NO),
            ("QueueTime", queue_time_s),
        ],
    )
    .await
}

/// A caller rings in, holds, and is offered to a new online agent `agent_id` of sales.
pub async fn offered_to(srv: &TestServer, agent_id: &str, sid: &str) -> Offer {
    let store = &srv.state.store;
    online_agent(store, &agent(agent_id, &[("sales", 1)])).await;
    holding_in(srv, sid, CALLER, SALES_NO).await;
    let o = claim(store).await.expect("something to claim");
    assert_eq!(o.call_sid, sid);
    o
}

pub async fn wait_doc(srv: &TestServer, sid: &str) -> twiml::Response {
    twiml(
        srv,
        "/twilio/wait",
        &[
            ("CallSid", sid),
            ("From", CALLER),
            ("QueuePosition", "1"),
            ("QueueTime", "0"),
            ("CurrentQueueSize", "1"),
        ],
    )
    .await
}

pub async fn queue_exit(srv: &TestServer, sid: &str, result: &str) -> twiml::Response {
    twiml(
        srv,
        "/twilio/queue-exit",
        &[
            ("CallSid", sid),
            ("QueueResult", result),
            ("QueueTime", "12"),
        ],
    )
    .await
}
