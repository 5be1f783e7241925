//! The part of Twilio's REST API callq's worker uses, served by the simulator:
//!
//! - `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with `Twiml`, `Url`
//!   (+`Method`) or `Status=completed|canceled`: the live call is interrupted and runs the new
//!   instructions; 200 with the call's JSON.
//! - `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` with `To`, `From`, `Twiml` or `Url`,
//!   `StatusCallback`, `StatusCallbackEvent` (repeated), `Timeout`: a new outbound call; 201.
//!
//! HTTP basic auth is checked (401, code 20003). Errors have Twilio's JSON shape
//! (`code`, `message`, `more_info`, `status`): 20404 for an unknown call or path, 21220 for a
//! call that is no longer in progress, 32018 for inline TwiML over 4,000 characters, 12100 for
//! TwiML that does not parse. Optional fault injection answers a share of requests with 429
//! (20429) or 500 (20500) before doing anything, as Twilio's own overload does.
//!
//! Every update that dials an agent's `<Client>` is also where assignment latency is measured:
//! the call has waited since callq put it in line, the agent has been ready since its last
//! leg ended plus wrap-up; the later of the two up to now is the time callq took.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::time::Instant;

use super::call::{CallGone, CallView, Outbound, OutboundStart, SimEnv};
use super::twiml_exec::{rfc2822_now, Control};
use crate::twilio::twiml::{self, DialNoun, Verb, MAX_INLINE_TWIML_CHARS};

/// Faults the REST API injects.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Share of requests refused before processing (half 429/20429, half 500/20500).
    pub error_rate: f64,
    /// Added to every answer.
    pub delay: Duration,
}

/// What the REST server needs.
pub struct RestState {
    pub env: Arc<SimEnv>,
    pub account_sid: String,
    /// Basic-auth user and password accepted (the account SID and auth token).
    pub username: String,
    pub password: String,
    pub faults: Faults,
    rng: Mutex<StdRng>,
}

impl RestState {
    pub fn new(
        env: Arc<SimEnv>,
        account_sid: &str,
        password: &str,
        faults: Faults,
        seed: u64,
    ) -> Self {
        Self {
            env,
            account_sid: account_sid.to_string(),
            username: account_sid.to_string(),
            password: password.to_string(),
            faults,
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x4e57)),
        }
    }
}

pub fn router(state: Arc<RestState>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(create_call),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Calls/{file}",
            post(update_call),
        )
        .fallback(|uri: axum::http::Uri| async move {
            error(
                StatusCode::NOT_FOUND,
                20404,
                &format!("The requested resource {} was not found", uri.path()),
            )
        })
        .with_state(state)
}

/// Twilio's error JSON.
pub fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

fn call_json(account: &str, v: &CallView) -> serde_json::Value {
    json!({
        "sid": v.info.sid,
        "account_sid": account,
        "to": v.info.to,
        "from": v.info.from,
        "status": v.status,
        "direction": v.info.direction,
        "api_version": "2010-04-01",
        "date_created": rfc2822_now(),
        "date_updated": rfc2822_now(),
        "parent_call_sid": null,
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{}.json", v.info.sid),
    })
}

/// Auth, account and fault injection, common to every request. `Err` is the answer.
async fn gate(
    st: &RestState,
    headers: &HeaderMap,
    account: &str,
    path: &str,
) -> Result<(), Response> {
    st.env.stats.rest_requests.fetch_add(1, Ordering::Relaxed);
    if !st.faults.delay.is_zero() {
        tokio::time::sleep(st.faults.delay).await;
    }
    let authorised = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|pair| pair == format!("{}:{}", st.username, st.password));
    if !authorised {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            20003,
            "Authenticate: invalid username or password",
        ));
    }
    if account != st.account_sid {
        return Err(error(
            StatusCode::NOT_FOUND,
            20404,
            &format!("The requested resource {path} was not found"),
        ));
    }
    if st.faults.error_rate > 0.0 {
        let (fail, which) = {
            let mut g = st.rng.lock().unwrap_or_else(|p| p.into_inner());
            (g.random::<f64>() < st.faults.error_rate, g.random::<bool>())
        };
        if fail {
            st.env.stats.rest_faults.fetch_add(1, Ordering::Relaxed);
            return Err(if which {
                error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests")
            } else {
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    20500,
                    "Internal Server Error",
                )
            });
        }
    }
    Ok(())
}

// an axum Response as the error: the handler returns it as is
#[allow(clippy::result_large_err)]
fn form(body: &[u8]) -> Result<Vec<(String, String)>, Response> {
    serde_urlencoded::from_bytes(body)
        .map_err(|_| error(StatusCode::BAD_REQUEST, 20001, "Malformed form body"))
}

fn first<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

#[allow(clippy::result_large_err)]
fn parse_twiml(raw: &str) -> Result<twiml::Response, Response> {
    if raw.chars().count() > MAX_INLINE_TWIML_CHARS {
        return Err(error(
            StatusCode::BAD_REQUEST,
            32018,
            "Twiml parameter exceeds the maximum of 4000 characters",
        ));
    }
    twiml::parse(raw).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            12100,
            &format!("Document parse failure: {e}"),
        )
    })
}

async fn update_call(
    State(st): State<Arc<RestState>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{file}");
    if let Err(r) = gate(&st, &headers, &account, &path).await {
        return r;
    }
    let Some(sid) = file.strip_suffix(".json") else {
        return error(
            StatusCode::NOT_FOUND,
            20404,
            &format!("The requested resource {path} was not found"),
        );
    };
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (control, dialled) = if let Some(raw) = first(&f, "Twiml") {
        match parse_twiml(raw) {
            Ok(doc) => {
                let identity = dialled_client(&doc);
                (Control::Twiml(doc), identity)
            }
            Err(r) => return r,
        }
    } else if let Some(url) = first(&f, "Url") {
        (Control::Url(url.to_string()), None)
    } else if matches!(first(&f, "Status"), Some("completed" | "canceled")) {
        (Control::Hangup, None)
    } else {
        return error(
            StatusCode::BAD_REQUEST,
            21218,
            "One of Url, Twiml or Status (completed, canceled) is required",
        );
    };
    let now = Instant::now();
    match st.env.registry.control(sid, control) {
        Ok(view) => {
            if let (Some(identity), Some(waited)) = (dialled, view.waited) {
                // ready since the later of: the call in line, the agent free
                let call_since = now - waited;
                if let Some(agent_since) = st.env.agents.ready_at(&identity) {
                    let since = call_since.max(agent_since);
                    let ms = now.saturating_duration_since(since).as_secs_f64() * 1000.0;
                    st.env.stats.assignment(ms);
                }
            }
            (StatusCode::OK, Json(call_json(&st.account_sid, &view))).into_response()
        }
        Err(CallGone::Unknown) => error(
            StatusCode::NOT_FOUND,
            20404,
            &format!("The requested resource {path} was not found"),
        ),
        Err(CallGone::NotInProgress) => error(
            StatusCode::BAD_REQUEST,
            21220,
            "Call is not in-progress. Cannot redirect.",
        ),
    }
}

/// The identity a document dials, if it dials a `<Client>`.
fn dialled_client(doc: &twiml::Response) -> Option<String> {
    doc.verbs.iter().find_map(|v| match v {
        Verb::Dial(d) => d.nouns.iter().find_map(|n| match n {
            DialNoun::Client(c) => Some(c.identity.clone()),
            _ => None,
        }),
        _ => None,
    })
}

async fn create_call(
    State(st): State<Arc<RestState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    if let Err(r) = gate(&st, &headers, &account, &path).await {
        return r;
    }
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(to) = first(&f, "To") else {
        return error(
            StatusCode::BAD_REQUEST,
            21201,
            "No 'To' number is specified",
        );
    };
    let Some(from) = first(&f, "From") else {
        return error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required",
        );
    };
    let start = if let Some(raw) = first(&f, "Twiml") {
        match parse_twiml(raw) {
            Ok(doc) => OutboundStart::Twiml(doc),
            Err(r) => return r,
        }
    } else if let Some(url) = first(&f, "Url") {
        OutboundStart::Url(url.to_string())
    } else {
        return error(
            StatusCode::BAD_REQUEST,
            21205,
            "Either Url, Twiml or ApplicationSid is required",
        );
    };
    let timeout = match first(&f, "Timeout").map(str::parse::<u64>) {
        None => 60,
        Some(Ok(t)) if (1..=600).contains(&t) => t,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                21216,
                "Timeout must be between 1 and 600 seconds",
            )
        }
    };
    let events: Vec<String> = f
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_string))
        .collect();
    let view = st.env.place_outbound(Outbound {
        to: to.to_string(),
        from: from.to_string(),
        start,
        status_callback: first(&f, "StatusCallback").map(str::to_string),
        events: if events.is_empty() {
            vec!["completed".into()]
        } else {
            events
        },
        timeout: Duration::from_secs(timeout),
    });
    (StatusCode::CREATED, Json(call_json(&st.account_sid, &view))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::twiml_exec::CallInfo;
    use crate::sim::{Sim, SimConfig};
    use axum::body::Body;
    use axum::http::Request;
    use tokio::sync::mpsc;
    use tower::ServiceExt;

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "secret-token";
    const SID: &str = "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn sim(faults: Faults) -> (Arc<Sim>, Router) {
        let sim = Sim::new(
            SimConfig {
                account_sid: ACCOUNT.into(),
                auth_token: TOKEN.into(),
                public_url: "http://127.0.0.1:9".into(),
                callq_url: "http://127.0.0.1:9".into(),
                admin_token: "admin".into(),
                clock: crate::sim::clock::Clock::new(1.0),
                agents: Default::default(),
                wrapup: Duration::ZERO,
                no_answer_delay: Duration::ZERO,
                media: Default::default(),
                customer_answer_s: 1.0,
                faults,
                seed: 1,
            },
            None,
        )
        .unwrap();
        let state = Arc::new(RestState::new(sim.env.clone(), ACCOUNT, TOKEN, faults, 1));
        (sim, router(state))
    }

    fn request(path: &str, body: &str, user: &str, pass: &str) -> Request<Body> {
        Request::post(path)
            .header(
                "authorization",
                format!("Basic {}", STANDARD.encode(format!("{user}:{pass}"))),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_string()))
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

    fn update_path(sid: &str) -> String {
        format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json")
    }

    fn live_call(sim: &Sim) -> mpsc::UnboundedReceiver<Control> {
        let (tx, rx) = mpsc::unbounded_channel();
        let info = CallInfo {
            sid: SID.into(),
            account_sid: ACCOUNT.into(),
            from: "+15550001111".into(),
            to: "+15005550001".into(),
            direction: "inbound".into(),
        };
        sim.env.registry.insert(info, tx, "in-progress");
        rx
    }

    const TWIML: &str = "Twiml=%3CResponse%3E%3CDial%3E%3CClient%3Ealice%3C%2FClient%3E%3C%2FDial%3E%3C%2FResponse%3E";

    #[tokio::test]
    async fn an_update_reaches_the_live_call_and_answers_with_the_call() {
        let (sim, app) = sim(Faults::default());
        let mut rx = live_call(&sim);
        let (status, body) = send(&app, request(&update_path(SID), TWIML, ACCOUNT, TOKEN)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["sid"], SID);
        assert_eq!(body["status"], "in-progress");
        assert!(matches!(rx.try_recv(), Ok(Control::Twiml(_))));
    }

    #[tokio::test]
    async fn unknown_and_ended_calls_get_twilios_error_codes() {
        let (sim, app) = sim(Faults::default());
        let (status, body) = send(&app, request(&update_path(SID), TWIML, ACCOUNT, TOKEN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], 20404);
        assert_eq!(body["status"], 404);
        assert_eq!(
            body["more_info"],
            "https://www.twilio.com/docs/errors/20404"
        );
        let _rx = live_call(&sim);
        sim.env.registry.end(SID);
        let (status, body) = send(&app, request(&update_path(SID), TWIML, ACCOUNT, TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], 21220);
        let (status, body) = send(
            &app,
            request("/2010-04-01/Accounts/x/Queues", "", ACCOUNT, TOKEN),
        )
        .await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::NOT_FOUND, 20404.into())
        );
    }

    #[tokio::test]
    async fn bad_credentials_and_bad_twiml_are_refused() {
        let (sim, app) = sim(Faults::default());
        let _rx = live_call(&sim);
        let (status, body) = send(&app, request(&update_path(SID), TWIML, ACCOUNT, "nope")).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::UNAUTHORIZED, 20003.into())
        );
        let other = "AC99999999999999999999999999999999";
        let path = format!("/2010-04-01/Accounts/{other}/Calls/{SID}.json");
        let (status, _) = send(&app, request(&path, TWIML, ACCOUNT, TOKEN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let long = format!(
            "Twiml=%3CResponse%3E%3CSay%3E{}%3C%2FSay%3E%3C%2FResponse%3E",
            "a".repeat(4100)
        );
        let (status, body) = send(&app, request(&update_path(SID), &long, ACCOUNT, TOKEN)).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::BAD_REQUEST, 32018.into())
        );
        let (status, body) = send(
            &app,
            request(&update_path(SID), "Twiml=%3CNope%2F%3E", ACCOUNT, TOKEN),
        )
        .await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::BAD_REQUEST, 12100.into())
        );
        let (status, _) = send(&app, request(&update_path(SID), "Foo=1", ACCOUNT, TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn creating_a_call_answers_201_and_checks_its_parameters() {
        let (_sim, app) = sim(Faults::default());
        let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json");
        let body = format!(
            "To=client%3Aalice&From=%2B15005550001&{TWIML}&StatusCallbackEvent=answered&StatusCallbackEvent=completed&Timeout=5"
        );
        let (status, json) = send(&app, request(&path, &body, ACCOUNT, TOKEN)).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(json["to"], "client:alice");
        assert_eq!(json["status"], "queued");
        assert!(json["sid"].as_str().unwrap().starts_with("CA"));
        let (status, json) = send(&app, request(&path, "From=%2B1", ACCOUNT, TOKEN)).await;
        assert_eq!(
            (status, json["code"].clone()),
            (StatusCode::BAD_REQUEST, 21201.into())
        );
    }

    #[tokio::test]
    async fn injected_faults_answer_429_or_500_before_doing_anything() {
        let faults = Faults {
            error_rate: 1.0,
            delay: Duration::ZERO,
        };
        let (sim, app) = sim(faults);
        let mut rx = live_call(&sim);
        for _ in 0..8 {
            let (status, body) =
                send(&app, request(&update_path(SID), TWIML, ACCOUNT, TOKEN)).await;
            match status {
                StatusCode::TOO_MANY_REQUESTS => assert_eq!(body["code"], 20429),
                StatusCode::INTERNAL_SERVER_ERROR => assert_eq!(body["code"], 20500),
                s => panic!("unexpected {s}"),
            }
        }
        assert!(rx.try_recv().is_err(), "a refused request changed nothing");
        assert_eq!(sim.stats.rest_faults.load(Ordering::Relaxed), 8);
    }
}
