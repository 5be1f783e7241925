//! The agent and admin APIs over HTTP against a real `callq serve` and Redis: every endpoint,
//! every auth failure and bad body (each changing nothing), 404s and 409s, heartbeat expiry,
//! the OpenAPI document (every answer listed in it, every value described as the server checks
//! it), the `callq agent` client, and `scripts/agent-example.sh`, run against a real server.

mod support;

use std::sync::Arc;
use std::time::Duration;

use callq::agents::client::AgentClient;
use callq::agents::token;
use callq::app::{AgentSettings, AppState};
use callq::config::CentreConfig;
use callq::store::{
    AgentRecord, AgentStatus, CallState, OfferOutcome, RequestedStatus, UpsertMode,
};
use reqwest::Method;
use serde_json::{json, Value};
use support::*;

/// What a request may carry in `Authorization`.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Raw(&'a str),
}

/// A request body.
enum Body {
    None,
    Json(Value),
    /// Raw bytes with an optional Content-Type.
    Raw(Vec<u8>, Option<&'static str>),
}

struct Resp {
    status: u16,
    json: Value,
    headers: reqwest::header::HeaderMap,
}

impl Resp {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    fn field(&self) -> Option<&str> {
        self.json["error"]["field"].as_str()
    }

    /// Assert an error answer: status, stable code, and the field when one is named.
    #[track_caller]
    fn assert_error(&self, status: u16, code: &str, field: Option<&str>, what: &str) {
        assert_eq!(
            (self.status, self.code(), self.field()),
            (status, code, field),
            "{what}: {}",
            self.json
        );
        assert!(
            self.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: error has a message: {}",
            self.json
        );
    }
}

/// A request the API must refuse: its body, and the status, error code and field it names.
struct BadRequest<'a> {
    what: &'a str,
    body: Body,
    status: u16,
    code: &'a str,
    field: Option<&'a str>,
}

/// An agent update the admin API must refuse with 422, `code` and `field`.
struct BadUpdate<'a> {
    what: &'a str,
    body: Value,
    code: &'a str,
    field: Option<&'a str>,
}

/// A credential the agent API must refuse with `status` and `code`.
struct BadAuth<'a> {
    what: &'a str,
    auth: Auth<'a>,
    status: u16,
    code: &'a str,
}

async fn send(srv: &TestServer, method: Method, path: &str, auth: Auth<'_>, body: Body) -> Resp {
    let http = reqwest::Client::new();
    let mut req = http.request(method, format!("{}{path}", srv.base));
    req = match auth {
        Auth::None => req,
        Auth::Bearer(t) => req.header("authorization", format!("Bearer {t}")),
        Auth::Raw(h) => req.header("authorization", h),
    };
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(&v),
        Body::Raw(bytes, ct) => {
            let req = req.body(bytes);
            match ct {
                Some(ct) => req.header("content-type", ct),
                None => req,
            }
        }
    };
    let res = req.send().await.expect("request reaches the server");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("body");
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{status}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Resp {
        status,
        json,
        headers,
    }
}

fn raw(text: &str) -> Body {
    Body::Raw(text.as_bytes().to_vec(), Some("application/json"))
}

async fn admin(srv: &TestServer, method: Method, path: &str, body: Body) -> Resp {
    send(srv, method, path, Auth::Bearer(ADMIN_TOKEN), body).await
}

async fn server() -> TestServer {
    spawn_server(CentreConfig::demo()).await
}

/// A server whose agent settings are changed by `f`.
async fn server_with(f: impl FnOnce(&mut AgentSettings)) -> TestServer {
    spawn_server_with(CentreConfig::demo(), |state: &mut AppState| {
        let mut agents = (*state.agents).clone();
        f(&mut agents);
        state.agents = Arc::new(agents);
    })
    .await
}

/// Create agent `id` in `queue` at tier 1 through the admin API.
async fn create(srv: &TestServer, id: &str, queue: &str) {
    let r = admin(
        srv,
        Method::POST,
        "/v1/admin/agents",
        Body::Json(json!({"id": id, "queues": [{"queue": queue, "tier": 1}]})),
    )
    .await;
    assert_eq!(r.status, 201, "create {id}: {}", r.json);
}

/// A fresh token for `id` from the admin API.
async fn token_for(srv: &TestServer, id: &str) -> String {
    let r = admin(
        srv,
        Method::POST,
        &format!("/v1/admin/agents/{id}/token"),
        Body::None,
    )
    .await;
    assert_eq!(r.status, 200, "token for {id}: {}", r.json);
    r.json["token"].as_str().expect("token").to_string()
}

async fn heartbeat(srv: &TestServer, id: &str, token: &str, device: bool) -> Resp {
    send(
        srv,
        Method::POST,
        &format!("/v1/agents/{id}/heartbeat"),
        Auth::Bearer(token),
        Body::Json(json!({ "device_registered": device })),
    )
    .await
}

async fn set_status(srv: &TestServer, id: &str, token: &str, status: &str) -> Resp {
    send(
        srv,
        Method::PUT,
        &format!("/v1/agents/{id}/status"),
        Auth::Bearer(token),
        Body::Json(json!({ "status": status })),
    )
    .await
}

/// Create `id`, heartbeat with a registered device and go available; returns its token.
async fn online(srv: &TestServer, id: &str, queue: &str) -> String {
    create(srv, id, queue).await;
    let token = token_for(srv, id).await;
    assert_eq!(heartbeat(srv, id, &token, true).await.status, 200);
    let r = set_status(srv, id, &token, "available").await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (200, Some("available"))
    );
    token
}

async fn record(srv: &TestServer, id: &str) -> Option<AgentRecord> {
    srv.state.store.agent(id).await.expect("read agent")
}

/// The agent's current token generation, as the store keeps it.
async fn generation(srv: &TestServer, id: &str) -> String {
    srv.state
        .store
        .token_generation(id)
        .await
        .expect("read generation")
        .expect("agent has a token generation")
}

fn now_s() -> i64 {
    jiff::Timestamp::now().as_second()
}

// ---------------------------------------------------------------------------------------
// The agent API

#[tokio::test]
async fn heartbeat_and_status_with_the_agents_own_token() {
    let srv = server().await;
    create(&srv, "a1", "sales").await;
    let token = token_for(&srv, "a1").await;

    let r = heartbeat(&srv, "a1", &token, true).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json, json!({"status": "offline", "ttl_ms": 15000}));
    let rec = record(&srv, "a1").await.expect("agent");
    assert_eq!(rec.heartbeat, Some(true), "the heartbeat key lives");

    let r = set_status(&srv, "a1", &token, "available").await;
    assert_eq!(
        (r.status, r.json.clone()),
        (200, json!({"status": "available"}))
    );
    let r = heartbeat(&srv, "a1", &token, true).await;
    assert_eq!(r.json["status"], "available");

    let r = send(
        &srv,
        Method::PUT,
        "/v1/agents/a1/status",
        Auth::Bearer(&token),
        Body::Json(json!({"status": "paused", "reason": "lunch"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (200, json!({"status": "paused"}))
    );
    let rec = record(&srv, "a1").await.expect("agent");
    assert_eq!(
        (rec.status, rec.reason.as_str()),
        (AgentStatus::Paused, "lunch")
    );

    let r = send(
        &srv,
        Method::GET,
        "/v1/agents/a1",
        Auth::Bearer(&token),
        Body::None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["id"], "a1");
    assert_eq!(r.json["status"], "paused");
    assert_eq!(r.json["online"], true);
    assert_eq!(r.json["queues"], json!([{"queue": "sales", "tier": 1}]));

    let r = set_status(&srv, "a1", &token, "offline").await;
    assert_eq!(
        (r.status, r.json.clone()),
        (200, json!({"status": "offline"}))
    );
}

#[tokio::test]
async fn an_unregistered_device_is_offered_nothing() {
    let srv = server().await;
    let token = online(&srv, "a1", "sales").await;
    let r = heartbeat(&srv, "a1", &token, false).await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (200, Some("available"))
    );
    enqueue(&srv.state.store, "CA1", "sales").await;
    assert_eq!(
        claimed(&srv.state.store).await,
        None,
        "device not registered: no offer"
    );
    heartbeat(&srv, "a1", &token, true).await;
    assert_eq!(
        claimed(&srv.state.store).await,
        Some(("CA1".into(), "a1".into()))
    );
}

/// How long a feature switch may take to show (the switch cache's half second, with room; the
/// harness's `eventually` allows a loaded machine ten times this).
const SWITCH_SHOWS: Duration = Duration::from_millis(1500);

/// The `device_check` feature switched off at run time: a live heartbeat is enough, whatever
/// the device says; switched back on, an unregistered device is offered nothing again.
#[tokio::test]
async fn with_device_check_off_a_live_heartbeat_is_enough() {
    let srv = server().await;
    let token = online(&srv, "a1", "sales").await;
    heartbeat(&srv, "a1", &token, false).await;
    enqueue(&srv.state.store, "CA1", "sales").await;
    assert_eq!(claimed(&srv.state.store).await, None, "device check on");

    let r = admin(
        &srv,
        Method::PUT,
        "/v1/admin/features/device_check",
        Body::Json(json!({ "enabled": false })),
    )
    .await;
    assert_eq!((r.status, r.json["enabled"].as_bool()), (200, Some(false)));
    // every server follows within the switch cache's half second: beat until it shows
    let offered = support::worker::eventually(SWITCH_SHOWS, "an offer", || async {
        heartbeat(&srv, "a1", &token, false).await;
        claimed(&srv.state.store).await
    })
    .await;
    assert_eq!(offered, ("CA1".into(), "a1".into()));

    // back on (the override cleared): the next unregistered beat takes the agent out again
    let r = admin(
        &srv,
        Method::DELETE,
        "/v1/admin/features/device_check",
        Body::None,
    )
    .await;
    assert_eq!((r.status, r.json["enabled"].as_bool()), (200, Some(true)));
    support::worker::eventually(SWITCH_SHOWS, "the device's word to count again", || async {
        heartbeat(&srv, "a1", &token, false).await;
        let r = record(&srv, "a1").await.expect("agent");
        (r.heartbeat == Some(false)).then_some(())
    })
    .await;
}

/// Every way an agent route can be refused for its credentials, on every agent route; none
/// changes anything.
#[tokio::test]
async fn agent_routes_refuse_every_bad_credential_and_change_nothing() {
    let srv = server().await;
    create(&srv, "a1", "sales").await;
    create(&srv, "a2", "sales").await;
    let a2 = token_for(&srv, "a2").await;
    let gen = generation(&srv, "a1").await;
    let expired = token::issue(AGENT_SECRET, "a1", &gen, now_s() - 1).expect("issue");
    let foreign = token::issue(
        b"some-other-secret-of-32-bytes-or-more",
        "a1",
        &gen,
        now_s() + 3600,
    )
    .expect("issue");
    let stale = token::issue(AGENT_SECRET, "a1", "oldGeneration1", now_s() + 3600).expect("issue");
    let before = (record(&srv, "a1").await, record(&srv, "a2").await);

    let cases: Vec<BadAuth> = vec![
        BadAuth {
            what: "no header",
            auth: Auth::None,
            status: 401,
            code: "missing_token",
        },
        BadAuth {
            what: "empty bearer",
            auth: Auth::Raw("Bearer "),
            status: 401,
            code: "missing_token",
        },
        BadAuth {
            what: "basic scheme",
            auth: Auth::Raw("Basic YTE6eA=="),
            status: 401,
            code: "missing_token",
        },
        BadAuth {
            what: "garbage",
            auth: Auth::Bearer("garbage"),
            status: 401,
            code: "invalid_token",
        },
        BadAuth {
            what: "truncated",
            auth: Auth::Bearer(&a2[..a2.len() - 3]),
            status: 401,
            code: "invalid_token",
        },
        BadAuth {
            what: "expired",
            auth: Auth::Bearer(&expired),
            status: 401,
            code: "token_expired",
        },
        BadAuth {
            what: "another secret",
            auth: Auth::Bearer(&foreign),
            status: 401,
            code: "invalid_token",
        },
        BadAuth {
            what: "admin token",
            auth: Auth::Bearer(ADMIN_TOKEN),
            status: 401,
            code: "invalid_token",
        },
        BadAuth {
            what: "another agent's token",
            auth: Auth::Bearer(&a2),
            status: 403,
            code: "forbidden",
        },
        BadAuth {
            what: "another generation",
            auth: Auth::Bearer(&stale),
            status: 401,
            code: "token_revoked",
        },
    ];
    let routes = [
        (
            Method::POST,
            "/v1/agents/a1/heartbeat",
            json!({"device_registered": true}),
        ),
        (
            Method::PUT,
            "/v1/agents/a1/status",
            json!({"status": "available"}),
        ),
        (Method::GET, "/v1/agents/a1", Value::Null),
        (Method::POST, "/v1/agents/a1/token", Value::Null),
    ];
    for (method, path, body) in &routes {
        for BadAuth {
            what,
            auth,
            status,
            code,
        } in &cases
        {
            let body = if body.is_null() {
                Body::None
            } else {
                Body::Json(body.clone())
            };
            let r = send(&srv, method.clone(), path, *auth, body).await;
            r.assert_error(*status, code, None, &format!("{method} {path}, {what}"));
            if *status == 401 {
                assert_eq!(
                    r.headers.get("www-authenticate").map(|v| v.as_bytes()),
                    Some(&b"Bearer"[..]),
                    "{what}"
                );
            }
        }
        // credentials are checked before the body is read
        let r = send(&srv, method.clone(), path, Auth::None, raw("{not json")).await;
        r.assert_error(401, "missing_token", None, "bad body without a token");
    }
    assert_eq!(
        (record(&srv, "a1").await, record(&srv, "a2").await),
        before,
        "no refused request changed an agent"
    );
}

#[tokio::test]
async fn the_agent_api_is_off_without_a_secret() {
    let srv = server_with(|a| a.agent_secret.clear()).await;
    create(&srv, "a1", "sales").await;
    let forged = token::issue(
        b"anything-at-all-anything-at-all!",
        "a1",
        "g1",
        now_s() + 60,
    )
    .expect("issue");
    let r = heartbeat(&srv, "a1", &forged, true).await;
    r.assert_error(403, "agent_api_disabled", None, "heartbeat");
    let r = admin(&srv, Method::POST, "/v1/admin/agents/a1/token", Body::None).await;
    r.assert_error(403, "agent_api_disabled", None, "token issue");
    assert_eq!(record(&srv, "a1").await.expect("agent").heartbeat, None);
}

/// Every kind of bad body on the agent routes; none changes anything.
#[tokio::test]
async fn agent_routes_refuse_every_bad_body_and_change_nothing() {
    let srv = server().await;
    create(&srv, "a1", "sales").await;
    let token = token_for(&srv, "a1").await;
    let before = record(&srv, "a1").await;
    let big = format!(
        r#"{{"device_registered":true,"pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );

    let heartbeat_cases: Vec<BadRequest> = vec![
        BadRequest {
            what: "empty",
            body: raw(""),
            status: 400,
            code: "malformed_json",
            field: None,
        },
        BadRequest {
            what: "truncated",
            body: raw("{\"device_registered\":"),
            status: 400,
            code: "malformed_json",
            field: None,
        },
        BadRequest {
            what: "not JSON",
            body: raw("device_registered=true"),
            status: 400,
            code: "malformed_json",
            field: None,
        },
        BadRequest {
            what: "trailing data",
            body: raw("{\"device_registered\":true} x"),
            status: 400,
            code: "malformed_json",
            field: None,
        },
        BadRequest {
            what: "bad UTF-8",
            body: Body::Raw(b"{\"device_registered\":\"\xff\"}".to_vec(), None),
            status: 400,
            code: "malformed_json",
            field: None,
        },
        BadRequest {
            what: "array",
            body: raw("[true]"),
            status: 422,
            code: "invalid_field",
            field: None,
        },
        BadRequest {
            what: "string",
            body: raw("\"yes\""),
            status: 422,
            code: "invalid_field",
            field: None,
        },
        BadRequest {
            what: "missing field",
            body: raw("{}"),
            status: 422,
            code: "missing_field",
            field: Some("device_registered"),
        },
        BadRequest {
            what: "string for bool",
            body: raw(r#"{"device_registered":"yes"}"#),
            status: 422,
            code: "invalid_field",
            field: Some("device_registered"),
        },
        BadRequest {
            what: "number for bool",
            body: raw(r#"{"device_registered":1}"#),
            status: 422,
            code: "invalid_field",
            field: Some("device_registered"),
        },
        BadRequest {
            what: "null for bool",
            body: raw(r#"{"device_registered":null}"#),
            status: 422,
            code: "invalid_field",
            field: Some("device_registered"),
        },
        BadRequest {
            what: "unknown field",
            body: raw(r#"{"device_registered":true,"battery":80}"#),
            status: 422,
            code: "unknown_field",
            field: Some("battery"),
        },
        BadRequest {
            what: "misspelt field",
            body: raw(r#"{"device_registred":true}"#),
            status: 422,
            code: "unknown_field",
            field: Some("device_registred"),
        },
        BadRequest {
            what: "form content type",
            body: Body::Raw(
                b"{\"device_registered\":true}".to_vec(),
                Some("application/x-www-form-urlencoded"),
            ),
            status: 415,
            code: "unsupported_media_type",
            field: None,
        },
        BadRequest {
            what: "too large",
            body: raw(&big),
            status: 413,
            code: "body_too_large",
            field: None,
        },
    ];
    for BadRequest {
        what,
        body,
        status,
        code,
        field,
    } in heartbeat_cases
    {
        let r = send(
            &srv,
            Method::POST,
            "/v1/agents/a1/heartbeat",
            Auth::Bearer(&token),
            body,
        )
        .await;
        r.assert_error(status, code, field, &format!("heartbeat, {what}"));
    }

    let long_reason = "r".repeat(201);
    let status_cases: Vec<BadRequest> = vec![
        BadRequest {
            what: "empty",
            body: raw(""),
            status: 400,
            code: "malformed_json",
            field: None,
        },
        BadRequest {
            what: "truncated",
            body: raw("{\"status\":\"pa"),
            status: 400,
            code: "malformed_json",
            field: None,
        },
        BadRequest {
            what: "missing status",
            body: raw("{}"),
            status: 422,
            code: "missing_field",
            field: Some("status"),
        },
        BadRequest {
            what: "reason only",
            body: raw(r#"{"reason":"lunch"}"#),
            status: 422,
            code: "missing_field",
            field: Some("status"),
        },
        BadRequest {
            what: "unknown status",
            body: raw(r#"{"status":"busy"}"#),
            status: 422,
            code: "invalid_field",
            field: Some("status"),
        },
        BadRequest {
            what: "routing-only status",
            body: raw(r#"{"status":"reserved"}"#),
            status: 422,
            code: "invalid_field",
            field: Some("status"),
        },
        BadRequest {
            what: "wrong case",
            body: raw(r#"{"status":"Available"}"#),
            status: 422,
            code: "invalid_field",
            field: Some("status"),
        },
        BadRequest {
            what: "number status",
            body: raw(r#"{"status":1}"#),
            status: 422,
            code: "invalid_field",
            field: Some("status"),
        },
        BadRequest {
            what: "number reason",
            body: raw(r#"{"status":"paused","reason":5}"#),
            status: 422,
            code: "invalid_field",
            field: Some("reason"),
        },
        BadRequest {
            what: "long reason",
            body: Body::Json(json!({"status":"paused","reason": long_reason})),
            status: 422,
            code: "invalid_field",
            field: Some("reason"),
        },
        BadRequest {
            what: "control in reason",
            body: Body::Json(json!({"status":"paused","reason":"a\u{7}b"})),
            status: 422,
            code: "invalid_field",
            field: Some("reason"),
        },
        BadRequest {
            what: "unknown field",
            body: raw(r#"{"status":"paused","colour":"red"}"#),
            status: 422,
            code: "unknown_field",
            field: Some("colour"),
        },
        BadRequest {
            what: "text content type",
            body: Body::Raw(b"{\"status\":\"paused\"}".to_vec(), Some("text/plain")),
            status: 415,
            code: "unsupported_media_type",
            field: None,
        },
    ];
    for BadRequest {
        what,
        body,
        status,
        code,
        field,
    } in status_cases
    {
        let r = send(
            &srv,
            Method::PUT,
            "/v1/agents/a1/status",
            Auth::Bearer(&token),
            body,
        )
        .await;
        r.assert_error(status, code, field, &format!("status, {what}"));
    }
    assert_eq!(
        record(&srv, "a1").await,
        before,
        "no refused body changed the agent"
    );

    // a body without Content-Type is read as JSON
    let r = send(
        &srv,
        Method::POST,
        "/v1/agents/a1/heartbeat",
        Auth::Bearer(&token),
        Body::Raw(b"{\"device_registered\":true}".to_vec(), None),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
}

#[tokio::test]
async fn unknown_agents_are_404_on_every_route() {
    let srv = server().await;
    let ghost = token::issue(AGENT_SECRET, "ghost", "g1", now_s() + 60).expect("issue");
    let r = heartbeat(&srv, "ghost", &ghost, true).await;
    r.assert_error(404, "agent_not_found", None, "heartbeat");
    let r = set_status(&srv, "ghost", &ghost, "available").await;
    r.assert_error(404, "agent_not_found", None, "status");
    let r = send(
        &srv,
        Method::GET,
        "/v1/agents/ghost",
        Auth::Bearer(&ghost),
        Body::None,
    )
    .await;
    r.assert_error(404, "agent_not_found", None, "whoami");

    let profile = json!({"queues": [{"queue": "sales", "tier": 1}]});
    for id in ["ghost", "not%20an%20id", "a,b"] {
        let cases = [
            (Method::GET, format!("/v1/admin/agents/{id}"), Body::None),
            (
                Method::PUT,
                format!("/v1/admin/agents/{id}"),
                Body::Json(profile.clone()),
            ),
            (Method::DELETE, format!("/v1/admin/agents/{id}"), Body::None),
            (
                Method::POST,
                format!("/v1/admin/agents/{id}/token"),
                Body::None,
            ),
            (
                Method::PUT,
                format!("/v1/admin/agents/{id}/status"),
                Body::Json(json!({"status": "paused"})),
            ),
        ];
        for (method, path, body) in cases {
            let r = admin(&srv, method.clone(), &path, body).await;
            r.assert_error(404, "agent_not_found", None, &format!("{method} {path}"));
        }
    }
    assert!(
        srv.state.store.agents().await.expect("agents").is_empty(),
        "PUT created nobody"
    );

    for sid in ["CA404", "CA%2C1", "x%20y"] {
        let r = admin(
            &srv,
            Method::GET,
            &format!("/v1/admin/calls/{sid}"),
            Body::None,
        )
        .await;
        r.assert_error(404, "call_not_found", None, sid);
    }
    let r = send(&srv, Method::GET, "/v1/nowhere", Auth::None, Body::None).await;
    r.assert_error(404, "not_found", None, "unknown path");
    let r = send(
        &srv,
        Method::DELETE,
        "/v1/agents/a1/heartbeat",
        Auth::None,
        Body::None,
    )
    .await;
    r.assert_error(405, "method_not_allowed", None, "wrong method");
}

/// Going paused or offline on a call is recorded (409) and applied when the call ends; the
/// agent cannot be deleted meanwhile.
#[tokio::test]
async fn status_changes_on_a_call_are_deferred_until_it_ends() {
    let srv = server().await;
    let token = online(&srv, "a1", "sales").await;
    enqueue(&srv.state.store, "CA1", "sales").await;
    assert_eq!(
        claimed(&srv.state.store).await,
        Some(("CA1".into(), "a1".into()))
    );
    let answered = srv
        .state
        .store
        .offer_result(
            &current(&srv.state.store, "CA1").await,
            OfferOutcome::Answered,
            "",
        )
        .await
        .expect("answered");
    assert_eq!(answered, callq::store::OfferResult::Connected);

    let r = set_status(&srv, "a1", &token, "available").await;
    assert_eq!((r.status, r.json.clone()), (200, json!({"status": "busy"})));

    let r = set_status(&srv, "a1", &token, "offline").await;
    r.assert_error(409, "deferred_until_call_ends", None, "offline on a call");
    let rec = record(&srv, "a1").await.expect("agent");
    assert_eq!(rec.status, AgentStatus::Busy);
    assert_eq!(
        rec.pending,
        Some(RequestedStatus::Offline),
        "recorded, not lost"
    );

    let r = admin(&srv, Method::DELETE, "/v1/admin/agents/a1", Body::None).await;
    r.assert_error(409, "agent_on_call", None, "delete on a call");
    assert!(record(&srv, "a1").await.is_some());

    // the supervisor's request replaces the agent's own
    let r = admin(
        &srv,
        Method::PUT,
        "/v1/admin/agents/a1/status",
        Body::Json(json!({"status": "paused", "reason": "coaching"})),
    )
    .await;
    r.assert_error(
        409,
        "deferred_until_call_ends",
        None,
        "supervisor pause on a call",
    );
    assert_eq!(
        record(&srv, "a1").await.expect("agent").pending,
        Some(RequestedStatus::Paused)
    );

    let done = complete(&srv.state.store, "CA1").await.expect("complete");
    assert_eq!(done, callq::store::Completion::Completed("a1".to_string()));
    let rec = record(&srv, "a1").await.expect("agent");
    assert_eq!(
        (rec.status, rec.reason.as_str(), rec.pending),
        (AgentStatus::Paused, "coaching", None),
        "applied when the call ended"
    );
    let r = admin(&srv, Method::DELETE, "/v1/admin/agents/a1", Body::None).await;
    assert_eq!(r.status, 204, "{}", r.json);
}

/// The agent's heartbeats stop: after the TTL it is offered nothing; its next heartbeat
/// brings it back and it is offered the waiting call.
#[tokio::test]
async fn an_agent_whose_heartbeats_stop_is_offered_nothing_until_it_beats_again() {
    let ttl = Duration::from_millis(400);
    let srv = server_with(|a| a.heartbeat_ttl = ttl).await;
    let token = online(&srv, "a1", "sales").await;
    assert_eq!(
        record(&srv, "a1").await.expect("agent").heartbeat,
        Some(true)
    );

    tokio::time::sleep(ttl + Duration::from_millis(250)).await;
    enqueue(&srv.state.store, "CA1", "sales").await;
    assert_eq!(
        claimed(&srv.state.store).await,
        None,
        "a silent agent is offered nothing"
    );
    let r = admin(&srv, Method::GET, "/v1/admin/agents/a1", Body::None).await;
    assert_eq!(
        (&r.json["status"], &r.json["online"]),
        (&json!("available"), &json!(false)),
        "presence is lost, the status the agent chose is kept: {}",
        r.json
    );
    assert_eq!(claimed(&srv.state.store).await, None, "and stays so");

    let r = heartbeat(&srv, "a1", &token, true).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json, json!({"status": "available", "ttl_ms": 400}));
    assert_eq!(
        claimed(&srv.state.store).await,
        Some(("CA1".into(), "a1".into())),
        "back on the next heartbeat"
    );
}

// ---------------------------------------------------------------------------------------
// The admin API

#[tokio::test]
async fn admin_creates_shows_lists_updates_and_deletes_agents() {
    let srv = server().await;
    let r = admin(
        &srv,
        Method::POST,
        "/v1/admin/agents",
        Body::Json(json!({
            "id": "alice",
            "identity": "alice_desk",
            "queues": [{"queue": "sales", "tier": 1}, {"queue": "support", "tier": 2}],
            "capacity": 2,
            "skills": [{"skill": "spanish", "level": 4}, {"skill": "billing", "level": 2}],
            "order": 3,
            "weight": 5
        })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(
        r.json["skills"],
        json!([{"skill": "billing", "level": 2}, {"skill": "spanish", "level": 4}]),
        "skills by name"
    );
    assert_eq!(
        (&r.json["order"], &r.json["weight"]),
        (&json!(3), &json!(5))
    );
    assert_eq!(
        r.headers.get("location").map(|v| v.as_bytes()),
        Some(&b"/v1/admin/agents/alice"[..])
    );
    assert_eq!(r.json["id"], "alice");
    assert_eq!(r.json["identity"], "alice_desk");
    assert_eq!(r.json["capacity"], 2);
    assert_eq!(r.json["status"], "offline");
    assert_eq!(r.json["online"], false);
    assert_eq!(
        r.json["queues"],
        json!([{"queue": "sales", "tier": 1}, {"queue": "support", "tier": 2}])
    );

    // identity and capacity have defaults
    let r = admin(
        &srv,
        Method::POST,
        "/v1/admin/agents",
        Body::Json(json!({"id": "bob", "queues": [{"queue": "support", "tier": 1}]})),
    )
    .await;
    assert_eq!(
        (
            r.status,
            &r.json["identity"],
            &r.json["capacity"],
            &r.json["skills"]
        ),
        (201, &json!("bob"), &json!(1), &json!([]))
    );

    // creating again is a conflict and changes nothing
    let r = admin(
        &srv,
        Method::POST,
        "/v1/admin/agents",
        Body::Json(json!({"id": "alice", "queues": [{"queue": "support", "tier": 9}]})),
    )
    .await;
    r.assert_error(409, "agent_exists", None, "second create");
    let r = admin(&srv, Method::GET, "/v1/admin/agents/alice", Body::None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json["identity"], "alice_desk",
        "unchanged by the refused create"
    );
    assert_eq!(r.json["capacity"], 2);

    let r = admin(&srv, Method::GET, "/v1/admin/agents", Body::None).await;
    assert_eq!(r.status, 200);
    let ids: Vec<&str> = r.json["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);

    // an update replaces the profile and keeps the status
    let token = token_for(&srv, "alice").await;
    heartbeat(&srv, "alice", &token, true).await;
    set_status(&srv, "alice", &token, "available").await;
    let r = admin(
        &srv,
        Method::PUT,
        "/v1/admin/agents/alice",
        Body::Json(json!({"queues": [{"queue": "support", "tier": 3}]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["queues"], json!([{"queue": "support", "tier": 3}]));
    assert_eq!(r.json["identity"], "alice");
    assert_eq!(r.json["capacity"], 1);
    assert_eq!(r.json["status"], "available");
    let snap = srv.state.store.snapshot(&[]).await.expect("snapshot");
    assert_eq!(
        snap.ready.get(&("support".to_string(), 3)),
        Some(&vec!["alice".to_string()]),
        "re-indexed in the new queue's ready set"
    );
    assert_eq!(snap.ready.get(&("sales".to_string(), 1)), Some(&vec![]));

    let r = admin(&srv, Method::DELETE, "/v1/admin/agents/alice", Body::None).await;
    assert_eq!((r.status, r.json.clone()), (204, Value::Null));
    let r = admin(&srv, Method::GET, "/v1/admin/agents/alice", Body::None).await;
    r.assert_error(404, "agent_not_found", None, "deleted");
    let r = admin(&srv, Method::DELETE, "/v1/admin/agents/alice", Body::None).await;
    r.assert_error(404, "agent_not_found", None, "deleted twice");
    let r = heartbeat(&srv, "alice", &token, true).await;
    r.assert_error(404, "agent_not_found", None, "a deleted agent's token");
}

/// Every kind of bad agent profile, on create and update; none creates or changes anything.
#[tokio::test]
async fn admin_refuses_every_bad_profile_naming_the_field() {
    let srv = server().await;
    let sales = json!([{"queue": "sales", "tier": 1}]);
    let long_id = "x".repeat(65);
    let long_identity = "i".repeat(122);
    let cases: Vec<BadRequest> = vec![
        BadRequest {
            what: "malformed",
            body: raw(r#"{"id":"a1","#),
            status: 400,
            code: "malformed_json",
            field: None,
        },
        BadRequest {
            what: "array",
            body: raw("[]"),
            status: 422,
            code: "invalid_field",
            field: None,
        },
        BadRequest {
            what: "missing id",
            body: Body::Json(json!({"queues": sales})),
            status: 422,
            code: "missing_field",
            field: Some("id"),
        },
        BadRequest {
            what: "missing queues",
            body: Body::Json(json!({"id": "a1"})),
            status: 422,
            code: "missing_field",
            field: Some("queues"),
        },
        BadRequest {
            what: "id with a space",
            body: Body::Json(json!({"id": "a 1", "queues": sales})),
            status: 422,
            code: "invalid_field",
            field: Some("id"),
        },
        BadRequest {
            what: "id with a comma",
            body: Body::Json(json!({"id": "a,1", "queues": sales})),
            status: 422,
            code: "invalid_field",
            field: Some("id"),
        },
        BadRequest {
            what: "empty id",
            body: Body::Json(json!({"id": "", "queues": sales})),
            status: 422,
            code: "invalid_field",
            field: Some("id"),
        },
        BadRequest {
            what: "long id",
            body: Body::Json(json!({"id": long_id, "queues": sales})),
            status: 422,
            code: "invalid_field",
            field: Some("id"),
        },
        BadRequest {
            what: "number id",
            body: Body::Json(json!({"id": 7, "queues": sales})),
            status: 422,
            code: "invalid_field",
            field: Some("id"),
        },
        BadRequest {
            what: "no queues",
            body: Body::Json(json!({"id": "a1", "queues": []})),
            status: 422,
            code: "invalid_field",
            field: Some("queues"),
        },
        BadRequest {
            what: "queues as string",
            body: Body::Json(json!({"id": "a1", "queues": "sales"})),
            status: 422,
            code: "invalid_field",
            field: Some("queues"),
        },
        BadRequest {
            what: "unknown queue",
            body: Body::Json(json!({"id": "a1", "queues": [{"queue": "nope", "tier": 1}]})),
            status: 422,
            code: "unknown_queue",
            field: Some("queues[0].queue"),
        },
        BadRequest {
            what: "second queue unknown",
            body: Body::Json(
                json!({"id": "a1", "queues": [{"queue": "sales", "tier": 1}, {"queue": "nope", "tier": 1}]}),
            ),
            status: 422,
            code: "unknown_queue",
            field: Some("queues[1].queue"),
        },
        BadRequest {
            what: "bad queue name",
            body: Body::Json(json!({"id": "a1", "queues": [{"queue": "sa=les", "tier": 1}]})),
            status: 422,
            code: "invalid_field",
            field: Some("queues[0].queue"),
        },
        BadRequest {
            what: "queue twice",
            body: Body::Json(
                json!({"id": "a1", "queues": [{"queue": "sales", "tier": 1}, {"queue": "sales", "tier": 2}]}),
            ),
            status: 422,
            code: "invalid_field",
            field: Some("queues[1].queue"),
        },
        BadRequest {
            what: "missing tier",
            body: Body::Json(json!({"id": "a1", "queues": [{"queue": "sales"}]})),
            status: 422,
            code: "missing_field",
            field: Some("queues[0].tier"),
        },
        BadRequest {
            what: "tier 0",
            body: Body::Json(json!({"id": "a1", "queues": [{"queue": "sales", "tier": 0}]})),
            status: 422,
            code: "invalid_field",
            field: Some("queues[0].tier"),
        },
        BadRequest {
            what: "tier 10",
            body: Body::Json(json!({"id": "a1", "queues": [{"queue": "sales", "tier": 10}]})),
            status: 422,
            code: "invalid_field",
            field: Some("queues[0].tier"),
        },
        BadRequest {
            what: "negative tier",
            body: Body::Json(json!({"id": "a1", "queues": [{"queue": "sales", "tier": -1}]})),
            status: 422,
            code: "invalid_field",
            field: Some("queues[0].tier"),
        },
        BadRequest {
            what: "string tier",
            body: Body::Json(json!({"id": "a1", "queues": [{"queue": "sales", "tier": "1"}]})),
            status: 422,
            code: "invalid_field",
            field: Some("queues[0].tier"),
        },
        BadRequest {
            what: "huge tier",
            body: raw(r#"{"id":"a1","queues":[{"queue":"sales","tier":99999999999999999999}]}"#),
            status: 422,
            code: "invalid_field",
            field: Some("queues[0].tier"),
        },
        BadRequest {
            what: "unknown queue field",
            body: Body::Json(
                json!({"id": "a1", "queues": [{"queue": "sales", "tier": 1, "skill": 5}]}),
            ),
            status: 422,
            code: "unknown_field",
            field: Some("queues[0].skill"),
        },
        BadRequest {
            what: "capacity 0",
            body: Body::Json(json!({"id": "a1", "queues": sales, "capacity": 0})),
            status: 422,
            code: "invalid_field",
            field: Some("capacity"),
        },
        BadRequest {
            what: "capacity 101",
            body: Body::Json(json!({"id": "a1", "queues": sales, "capacity": 101})),
            status: 422,
            code: "invalid_field",
            field: Some("capacity"),
        },
        BadRequest {
            what: "fractional capacity",
            body: Body::Json(json!({"id": "a1", "queues": sales, "capacity": 1.5})),
            status: 422,
            code: "invalid_field",
            field: Some("capacity"),
        },
        BadRequest {
            what: "empty identity",
            body: Body::Json(json!({"id": "a1", "queues": sales, "identity": ""})),
            status: 422,
            code: "invalid_field",
            field: Some("identity"),
        },
        BadRequest {
            what: "identity with a space",
            body: Body::Json(json!({"id": "a1", "queues": sales, "identity": "a b"})),
            status: 422,
            code: "invalid_field",
            field: Some("identity"),
        },
        BadRequest {
            what: "identity with markup",
            body: Body::Json(json!({"id": "a1", "queues": sales, "identity": "<a>"})),
            status: 422,
            code: "invalid_field",
            field: Some("identity"),
        },
        BadRequest {
            what: "long identity",
            body: Body::Json(json!({"id": "a1", "queues": sales, "identity": long_identity})),
            status: 422,
            code: "invalid_field",
            field: Some("identity"),
        },
        BadRequest {
            what: "unknown field",
            body: Body::Json(json!({"id": "a1", "queues": sales, "languages": []})),
            status: 422,
            code: "unknown_field",
            field: Some("languages"),
        },
        BadRequest {
            what: "weight 0",
            body: Body::Json(json!({"id": "a1", "queues": sales, "weight": 0})),
            status: 422,
            code: "invalid_field",
            field: Some("weight"),
        },
        BadRequest {
            what: "order too far",
            body: Body::Json(json!({"id": "a1", "queues": sales, "order": 1_000_001})),
            status: 422,
            code: "invalid_field",
            field: Some("order"),
        },
        BadRequest {
            what: "skill level 6",
            body: Body::Json(
                json!({"id": "a1", "queues": sales, "skills": [{"skill": "billing", "level": 6}]}),
            ),
            status: 422,
            code: "invalid_field",
            field: Some("skills[0].level"),
        },
        BadRequest {
            what: "skill level 0",
            body: Body::Json(
                json!({"id": "a1", "queues": sales, "skills": [{"skill": "billing", "level": 0}]}),
            ),
            status: 422,
            code: "invalid_field",
            field: Some("skills[0].level"),
        },
        BadRequest {
            what: "bad skill name",
            body: Body::Json(
                json!({"id": "a1", "queues": sales, "skills": [{"skill": "bill ing", "level": 2}]}),
            ),
            status: 422,
            code: "invalid_field",
            field: Some("skills[0].skill"),
        },
        BadRequest {
            what: "skill twice",
            body: Body::Json(json!({"id": "a1", "queues": sales, "skills": [
                {"skill": "billing", "level": 2}, {"skill": "billing", "level": 3}
            ]})),
            status: 422,
            code: "invalid_field",
            field: Some("skills[1].skill"),
        },
        BadRequest {
            what: "form body",
            body: Body::Raw(b"id=a1".to_vec(), Some("application/x-www-form-urlencoded")),
            status: 415,
            code: "unsupported_media_type",
            field: None,
        },
    ];
    for BadRequest {
        what,
        body,
        status,
        code,
        field,
    } in cases
    {
        let r = admin(&srv, Method::POST, "/v1/admin/agents", body).await;
        r.assert_error(status, code, field, &format!("create, {what}"));
    }
    assert!(
        srv.state.store.agents().await.expect("agents").is_empty(),
        "no refused create made an agent"
    );

    create(&srv, "a1", "sales").await;
    let before = record(&srv, "a1").await;
    let cases: Vec<BadUpdate> = vec![
        BadUpdate {
            what: "id in the body",
            body: json!({"id": "a2", "queues": sales}),
            code: "unknown_field",
            field: Some("id"),
        },
        BadUpdate {
            what: "unknown queue",
            body: json!({"queues": [{"queue": "nope", "tier": 1}]}),
            code: "unknown_queue",
            field: Some("queues[0].queue"),
        },
        BadUpdate {
            what: "tier 0",
            body: json!({"queues": [{"queue": "sales", "tier": 0}]}),
            code: "invalid_field",
            field: Some("queues[0].tier"),
        },
        BadUpdate {
            what: "capacity 0",
            body: json!({"queues": sales, "capacity": 0}),
            code: "invalid_field",
            field: Some("capacity"),
        },
        BadUpdate {
            what: "missing queues",
            body: json!({"capacity": 2}),
            code: "missing_field",
            field: Some("queues"),
        },
    ];
    for BadUpdate {
        what,
        body,
        code,
        field,
    } in cases
    {
        let r = admin(&srv, Method::PUT, "/v1/admin/agents/a1", Body::Json(body)).await;
        r.assert_error(422, code, field, &format!("update, {what}"));
    }
    assert_eq!(
        record(&srv, "a1").await,
        before,
        "no refused update changed the agent"
    );
}

/// Every admin route refuses every bad credential and changes nothing; with no admin token
/// configured the admin API is off (403) whatever is sent.
#[tokio::test]
async fn admin_routes_refuse_every_bad_credential_and_change_nothing() {
    let srv = server().await;
    create(&srv, "a1", "sales").await;
    let agent_token = token_for(&srv, "a1").await;
    let before = record(&srv, "a1").await;
    let routes = || {
        vec![
            (
                Method::POST,
                "/v1/admin/agents",
                Body::Json(json!({"id": "a2", "queues": [{"queue": "sales", "tier": 1}]})),
            ),
            (Method::GET, "/v1/admin/agents", Body::None),
            (Method::GET, "/v1/admin/agents/a1", Body::None),
            (
                Method::PUT,
                "/v1/admin/agents/a1",
                Body::Json(json!({"queues": [{"queue": "support", "tier": 1}]})),
            ),
            (Method::DELETE, "/v1/admin/agents/a1", Body::None),
            (Method::POST, "/v1/admin/agents/a1/token", Body::None),
            (
                Method::PUT,
                "/v1/admin/agents/a1/status",
                Body::Json(json!({"status": "paused"})),
            ),
            (Method::GET, "/v1/admin/queues", Body::None),
            (Method::GET, "/v1/admin/calls/CA1", Body::None),
        ]
    };
    let wrong_admin = format!("{ADMIN_TOKEN}x");
    let cases: Vec<(&str, Auth, &str)> = vec![
        ("no header", Auth::None, "missing_token"),
        (
            "basic scheme",
            Auth::Raw("Basic YWRtaW46eA=="),
            "missing_token",
        ),
        (
            "wrong admin token",
            Auth::Bearer(&wrong_admin),
            "invalid_token",
        ),
        (
            "admin token prefix",
            Auth::Bearer(&ADMIN_TOKEN[..4]),
            "invalid_token",
        ),
        ("agent token", Auth::Bearer(&agent_token), "invalid_token"),
    ];
    for (what, auth, code) in &cases {
        for (method, path, body) in routes() {
            let r = send(&srv, method.clone(), path, *auth, body).await;
            r.assert_error(401, code, None, &format!("{method} {path}, {what}"));
        }
    }
    assert_eq!(record(&srv, "a1").await, before, "a1 unchanged");
    assert!(record(&srv, "a2").await.is_none(), "a2 not created");

    let off = server_with(|a| a.admin_token.clear()).await;
    create_directly(&off, "a1").await;
    for auth in [Auth::None, Auth::Bearer(ADMIN_TOKEN), Auth::Raw("Bearer ")] {
        for (method, path, body) in routes() {
            let r = send(&off, method.clone(), path, auth, body).await;
            r.assert_error(
                403,
                "admin_disabled",
                None,
                &format!("{method} {path}, admin off"),
            );
        }
    }
    assert!(record(&off, "a1").await.is_some(), "not deleted");
    assert!(record(&off, "a2").await.is_none(), "not created");
}

async fn create_directly(srv: &TestServer, id: &str) {
    srv.state
        .store
        .upsert_agent(&agent(id, &[("sales", 1)]), UpsertMode::Upsert)
        .await
        .expect("agent");
}

#[tokio::test]
async fn admin_issues_tokens_for_one_agent_with_a_bounded_lifetime() {
    let srv = server().await;
    create(&srv, "a1", "sales").await;
    create(&srv, "a2", "sales").await;

    for body in [Body::None, raw(""), raw("{}")] {
        let r = admin(&srv, Method::POST, "/v1/admin/agents/a1/token", body).await;
        assert_eq!(r.status, 200, "{}", r.json);
        assert_eq!(r.json["agent"], "a1");
        let expires = r.json["expires_at"].as_i64().expect("expires_at");
        assert!(
            (expires - now_s() - 12 * 3600).abs() <= 5,
            "12 hours by default"
        );
        let claims = token::verify(
            AGENT_SECRET,
            r.json["token"].as_str().expect("token"),
            now_s(),
        )
        .expect("a genuine token");
        assert_eq!(
            (claims.agent_id.as_str(), claims.expires_at),
            ("a1", expires)
        );
    }
    let r = admin(
        &srv,
        Method::POST,
        "/v1/admin/agents/a1/token",
        Body::Json(json!({"ttl_s": 60})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!((r.json["expires_at"].as_i64().expect("expires_at") - now_s() - 60).abs() <= 5);
    let token = r.json["token"].as_str().expect("token").to_string();
    assert_eq!(heartbeat(&srv, "a1", &token, true).await.status, 200);
    heartbeat(&srv, "a2", &token, true).await.assert_error(
        403,
        "forbidden",
        None,
        "a1's token on a2",
    );

    let r = admin(
        &srv,
        Method::POST,
        "/v1/admin/agents/a1/token",
        Body::Json(json!({"ttl_s": 7 * 86400})),
    )
    .await;
    assert_eq!(r.status, 200, "7 days is the longest");
    for (what, body, code) in [
        ("zero", json!({"ttl_s": 0}), "invalid_field"),
        (
            "over 7 days",
            json!({"ttl_s": 7 * 86400 + 1}),
            "invalid_field",
        ),
        ("negative", json!({"ttl_s": -5}), "invalid_field"),
        ("string", json!({"ttl_s": "60"}), "invalid_field"),
        ("unknown field", json!({"ttl": 60}), "unknown_field"),
    ] {
        let field = if code == "unknown_field" {
            "ttl"
        } else {
            "ttl_s"
        };
        let r = admin(
            &srv,
            Method::POST,
            "/v1/admin/agents/a1/token",
            Body::Json(body),
        )
        .await;
        r.assert_error(422, code, Some(field), what);
    }
}

/// Revoking voids every earlier token at once, on every agent route, and touches nothing
/// else about the agent; a token issued afterwards works.
#[tokio::test]
async fn revoked_tokens_are_refused_and_new_ones_work() {
    let srv = server().await;
    let old = online(&srv, "a1", "sales").await;
    let other = online(&srv, "a2", "sales").await;
    let before = record(&srv, "a1").await.expect("a1");

    let r = admin(
        &srv,
        Method::POST,
        "/v1/admin/agents/a1/token/revoke",
        Body::None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.json);
    heartbeat(&srv, "a1", &old, true)
        .await
        .assert_error(401, "token_revoked", None, "heartbeat");
    set_status(&srv, "a1", &old, "paused")
        .await
        .assert_error(401, "token_revoked", None, "status");
    send(
        &srv,
        Method::GET,
        "/v1/agents/a1",
        Auth::Bearer(&old),
        Body::None,
    )
    .await
    .assert_error(401, "token_revoked", None, "whoami");
    send(
        &srv,
        Method::POST,
        "/v1/agents/a1/token",
        Auth::Bearer(&old),
        Body::None,
    )
    .await
    .assert_error(
        401,
        "token_revoked",
        None,
        "a revoked token cannot refresh itself",
    );
    assert_eq!(
        record(&srv, "a1").await.expect("a1").status,
        before.status,
        "revoking changes no status"
    );
    assert_eq!(
        heartbeat(&srv, "a2", &other, true).await.status,
        200,
        "a2 untouched"
    );

    let fresh = token_for(&srv, "a1").await;
    assert_eq!(heartbeat(&srv, "a1", &fresh, true).await.status, 200);

    admin(
        &srv,
        Method::POST,
        "/v1/admin/agents/ghost/token/revoke",
        Body::None,
    )
    .await
    .assert_error(404, "agent_not_found", None, "unknown agent");
}

/// Deleting an agent and creating one with the same id voids the old agent's tokens.
#[tokio::test]
async fn a_recreated_agent_does_not_accept_the_old_agents_tokens() {
    let srv = server().await;
    create(&srv, "a1", "sales").await;
    let old = token_for(&srv, "a1").await;
    let r = admin(&srv, Method::DELETE, "/v1/admin/agents/a1", Body::None).await;
    assert_eq!(r.status, 204, "{}", r.json);
    heartbeat(&srv, "a1", &old, true)
        .await
        .assert_error(404, "agent_not_found", None, "deleted");
    create(&srv, "a1", "sales").await;
    heartbeat(&srv, "a1", &old, true)
        .await
        .assert_error(401, "token_revoked", None, "re-created");
    let fresh = token_for(&srv, "a1").await;
    assert_eq!(heartbeat(&srv, "a1", &fresh, true).await.status, 200);
}

/// An agent trades its live token for a fresh one without the admin token; the old one stays
/// valid until it expires (both carry the same generation), and a revoke voids both.
#[tokio::test]
async fn an_agent_refreshes_its_own_token() {
    let srv = server().await;
    create(&srv, "a1", "sales").await;
    let first = token_for(&srv, "a1").await;
    let r = send(
        &srv,
        Method::POST,
        "/v1/agents/a1/token",
        Auth::Bearer(&first),
        Body::Json(json!({"ttl_s": 3600})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["agent"], "a1");
    assert!((r.json["expires_at"].as_i64().expect("expires_at") - now_s() - 3600).abs() <= 5);
    let second = r.json["token"].as_str().expect("token").to_string();
    assert_eq!(heartbeat(&srv, "a1", &second, true).await.status, 200);
    assert_eq!(heartbeat(&srv, "a1", &first, true).await.status, 200);

    let r = send(
        &srv,
        Method::POST,
        "/v1/agents/a1/token",
        Auth::Bearer(&first),
        Body::Json(json!({"ttl_s": 0})),
    )
    .await;
    r.assert_error(422, "invalid_field", Some("ttl_s"), "ttl out of range");

    let r = admin(
        &srv,
        Method::POST,
        "/v1/admin/agents/a1/token/revoke",
        Body::None,
    )
    .await;
    assert_eq!(r.status, 204);
    for t in [&first, &second] {
        heartbeat(&srv, "a1", t, true).await.assert_error(
            401,
            "token_revoked",
            None,
            "after revoke",
        );
    }
}

#[tokio::test]
async fn a_supervisor_sets_an_agents_status() {
    let srv = server().await;
    online(&srv, "a1", "sales").await;
    let r = admin(
        &srv,
        Method::PUT,
        "/v1/admin/agents/a1/status",
        Body::Json(json!({"status": "paused", "reason": "coaching"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (200, json!({"status": "paused"}))
    );
    let rec = record(&srv, "a1").await.expect("agent");
    assert_eq!(
        (rec.status, rec.reason.as_str()),
        (AgentStatus::Paused, "coaching")
    );

    let r = admin(
        &srv,
        Method::PUT,
        "/v1/admin/agents/a1/status",
        Body::Json(json!({"status": "available"})),
    )
    .await;
    assert_eq!(r.json, json!({"status": "available"}));
    assert_eq!(
        record(&srv, "a1").await.expect("agent").reason,
        "supervisor"
    );

    let r = admin(
        &srv,
        Method::PUT,
        "/v1/admin/agents/a1/status",
        Body::Json(json!({"status": "wrapup"})),
    )
    .await;
    r.assert_error(422, "invalid_field", Some("status"), "routing-only status");
}

#[tokio::test]
async fn admin_lists_queues_with_live_numbers() {
    let srv = server().await;
    online(&srv, "a1", "sales").await;
    let a2 = online(&srv, "a2", "sales").await;
    set_status(&srv, "a2", &a2, "paused").await;
    create(&srv, "a3", "sales").await;
    create(&srv, "s1", "support").await;
    enqueue(&srv.state.store, "CA1", "sales").await;
    enqueue(&srv.state.store, "CA2", "sales").await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let r = admin(&srv, Method::GET, "/v1/admin/queues", Body::None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let queues = r.json["queues"].as_array().expect("queues");
    let names: Vec<&str> = queues.iter().filter_map(|q| q["name"].as_str()).collect();
    assert_eq!(names, ["sales", "soporte", "support"]);
    let sales = &queues[0];
    assert_eq!(sales["strategy"], "longest_idle");
    assert_eq!(sales["waiting"], 2);
    assert!(
        sales["oldest_wait_s"].as_f64().expect("oldest") >= 0.01,
        "{sales}"
    );
    assert_eq!(
        sales["agents"],
        json!({"available": 1, "reserved": 0, "busy": 0, "wrapup": 0, "paused": 1, "offline": 1})
    );
    let aht = sales["aht_s"].as_f64().expect("aht");
    assert!(aht > 0.0);
    // the third caller in line with one agent staffed waits for two departures
    let eta = sales["estimated_wait_s"].as_f64().expect("estimate");
    assert!((eta - 2.0 * aht).abs() < 1e-6, "{sales}");
    let support = &queues[2];
    assert_eq!(support["name"], "support");
    assert_eq!(support["waiting"], 0);
    assert_eq!(support["oldest_wait_s"], 0.0);
    assert_eq!(support["agents"]["offline"], 1);
}

#[tokio::test]
async fn admin_shows_a_call_with_its_history() {
    let srv = server().await;
    online(&srv, "a1", "sales").await;
    enqueue(&srv.state.store, "CA1", "sales").await;
    assert_eq!(
        claimed(&srv.state.store).await,
        Some(("CA1".into(), "a1".into()))
    );
    let store = &srv.state.store;
    store
        .offer_result(
            &current(&srv.state.store, "CA1").await,
            OfferOutcome::Answered,
            "",
        )
        .await
        .expect("answered");
    complete(store, "CA1").await.expect("complete");
    // other calls' transitions, then the centre's stream trimmed to nothing (a busy centre
    // trims it all the time): the call's history is its own list, read without the stream
    for i in 0..20 {
        enqueue(&srv.state.store, &format!("CAother{i}"), "sales").await;
    }
    let client = redis::Client::open(redis_url()).expect("url");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: i64 = redis::cmd("XTRIM")
        .arg(store.key("events"))
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut raw)
        .await
        .expect("xtrim");

    let r = admin(&srv, Method::GET, "/v1/admin/calls/CA1", Body::None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let call = &r.json["call"];
    assert_eq!(call["sid"], "CA1");
    assert_eq!(call["queue"], "sales");
    assert_eq!(call["state"], "completed");
    assert_eq!(call["kind"], "inbound");
    assert_eq!(call["agent"], "a1");
    assert_eq!(call["attempts"], 1);
    assert_eq!(call["rang"], json!(["a1"]));
    assert_eq!(
        call["recording"],
        json!(null),
        "a queue that does not record"
    );
    let history = r.json["history"].as_array().expect("history");
    let kinds: Vec<&str> = history.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["enqueue", "offer", "connected", "completed"]);
    let mut last = 0;
    for e in history {
        assert_eq!(e["fields"]["call"], "CA1");
        let at = e["at_ms"].as_i64().expect("at_ms");
        assert!(at >= last && at > 1_600_000_000_000, "{e}");
        last = at;
    }
    assert_eq!(history[1]["fields"]["agent"], "a1");
}

// ---------------------------------------------------------------------------------------
// The OpenAPI document

/// (path, method, security scheme) of every route; the document must list exactly these.
const ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("/v1/agents/{id}/heartbeat", "post", Some("agent_token")),
    ("/v1/agents/{id}/status", "put", Some("agent_token")),
    ("/v1/agents/{id}", "get", Some("agent_token")),
    ("/v1/agents/{id}/token", "post", Some("agent_token")),
    ("/v1/agents/{id}/queues", "get", Some("agent_token")),
    ("/v1/agents/{id}/transfer", "post", Some("agent_token")),
    ("/v1/admin/agents", "post", Some("admin_token")),
    ("/v1/admin/agents", "get", Some("admin_token")),
    ("/v1/admin/agents/{id}", "get", Some("admin_token")),
    ("/v1/admin/agents/{id}", "put", Some("admin_token")),
    ("/v1/admin/agents/{id}", "delete", Some("admin_token")),
    ("/v1/admin/agents/{id}/token", "post", Some("admin_token")),
    (
        "/v1/admin/agents/{id}/token/revoke",
        "post",
        Some("admin_token"),
    ),
    ("/v1/admin/agents/{id}/status", "put", Some("admin_token")),
    ("/v1/admin/queues", "get", Some("admin_token")),
    ("/v1/admin/calls/{sid}", "get", Some("admin_token")),
    ("/v1/admin/calls/{sid}/end", "post", Some("admin_token")),
    ("/v1/agents/{id}/voice-token", "post", Some("agent_token")),
    ("/v1/admin/rollout", "get", Some("admin_token")),
    ("/v1/admin/rollout", "put", Some("admin_token")),
    ("/v1/admin/rollout", "delete", Some("admin_token")),
    ("/v1/admin/features", "get", Some("admin_token")),
    ("/v1/admin/features/{name}", "put", Some("admin_token")),
    ("/v1/admin/features/{name}", "delete", Some("admin_token")),
    ("/v1/openapi.json", "get", None),
];

#[tokio::test]
async fn the_openapi_document_lists_every_route_with_its_auth() {
    let srv = server().await;
    let r = send(
        &srv,
        Method::GET,
        "/v1/openapi.json",
        Auth::None,
        Body::None,
    )
    .await;
    assert_eq!(r.status, 200);
    let doc = r.json;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let schemes = &doc["components"]["securitySchemes"];
    for name in ["agent_token", "admin_token"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    for schema in [
        "HeartbeatRequest",
        "HeartbeatResponse",
        "StatusRequest",
        "CreateAgentRequest",
        "AgentView",
        "QueueList",
        "CallDetail",
        "RecordingView",
        "ErrorBody",
        "AgentStatus",
        "RequestedStatus",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
    // the admin call view documents the recording of a recording queue's call
    assert!(
        doc["components"]["schemas"]["CallView"]["properties"]["recording"].is_object(),
        "{}",
        doc["components"]["schemas"]["CallView"]
    );
    assert_eq!(
        doc["components"]["schemas"]["RequestedStatus"]["enum"],
        json!(["available", "paused", "offline"])
    );

    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method == "parameters" {
                continue;
            }
            documented.push((path.clone(), method.clone()));
            let expected = ROUTES
                .iter()
                .find(|(p, m, _)| p == path && m == method)
                .unwrap_or_else(|| panic!("{method} {path} is documented but not expected"));
            match expected.2 {
                Some(scheme) => {
                    assert_eq!(op["security"], json!([{ scheme: [] }]), "{method} {path}")
                }
                None => assert!(op["security"].is_null(), "{method} {path} needs no auth"),
            }
            assert!(
                op["responses"]["200"].is_object()
                    || op["responses"]["201"].is_object()
                    || op["responses"]["204"].is_object(),
                "{method} {path} has a success response"
            );

            // documented means served: without credentials it is refused, never missing
            let url = path.replace("{id}", "a1").replace("{sid}", "CA1");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let r = send(&srv, method.clone(), &url, Auth::None, Body::None).await;
            let want = if expected.2.is_some() { 401 } else { 200 };
            assert_eq!(r.status, want, "{method} {url}: {}", r.json);
        }
    }
    assert_eq!(
        documented.len(),
        ROUTES.len(),
        "every route is documented: {documented:?}"
    );
}

// ---------------------------------------------------------------------------------------
// `callq agent`

#[tokio::test]
async fn the_agent_client_beats_sets_status_and_goes_offline_on_exit() {
    let srv = server().await;
    create(&srv, "a1", "sales").await;
    let token = token_for(&srv, "a1").await;
    let client = AgentClient::new(&srv.base, "a1", &token, Duration::from_secs(5)).expect("client");

    let me = client.whoami().await.expect("whoami");
    assert_eq!((me.id.as_str(), me.status), ("a1", AgentStatus::Offline));
    let hb = client.heartbeat(true).await.expect("heartbeat");
    assert_eq!((hb.status, hb.ttl_ms), (AgentStatus::Offline, 15_000));
    let s = client
        .set_status(RequestedStatus::Paused, Some("setup"))
        .await
        .expect("status");
    assert_eq!(s.status, AgentStatus::Paused);

    let wrong =
        AgentClient::new(&srv.base, "a1", "garbage", Duration::from_secs(5)).expect("client");
    let e = wrong.heartbeat(true).await.expect_err("refused");
    assert_eq!(e.code(), Some("invalid_token"));
    assert!(e.is_permanent());

    let (trigger, shutdown) = callq::shutdown::channel();
    let looping = client.clone();
    let task = tokio::spawn(async move { beat_as_a1(&looping, shutdown).await });
    let mut seen = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rec = record(&srv, "a1").await.expect("agent");
        if rec.status == AgentStatus::Available && rec.heartbeat == Some(true) {
            seen = Some(rec);
            break;
        }
    }
    assert!(seen.is_some(), "the loop brought the agent online");
    trigger.trigger();
    task.await.expect("task").expect("loop ends cleanly");
    let rec = record(&srv, "a1").await.expect("agent");
    assert_eq!(
        (rec.status, rec.reason.as_str()),
        (AgentStatus::Offline, "client exit")
    );
}

/// `callq agent`'s loop for agent a1 with `client`: available, device registered, a beat
/// every 100 ms, until `shutdown` (or an error it cannot retry).
async fn beat_as_a1(
    client: &AgentClient,
    shutdown: callq::shutdown::Shutdown,
) -> anyhow::Result<()> {
    callq::agents::client::run_until(
        client,
        "a1",
        Duration::from_millis(100),
        RequestedStatus::Available,
        true,
        shutdown,
    )
    .await
}

#[tokio::test]
async fn the_agent_client_loop_stops_on_a_refused_token() {
    let srv = server().await;
    create(&srv, "a1", "sales").await;
    let client =
        AgentClient::new(&srv.base, "a1", "garbage", Duration::from_secs(5)).expect("client");
    let (_trigger, shutdown) = callq::shutdown::channel();
    let r = tokio::time::timeout(Duration::from_secs(30), beat_as_a1(&client, shutdown))
        .await
        .expect("a bad token ends the loop, never retried");
    let e = r.expect_err("a bad token ends the loop at once");
    let refused = e
        .chain()
        .find_map(|c| c.downcast_ref::<callq::agents::client::ClientError>())
        .unwrap_or_else(|| panic!("the server's refusal, not another failure: {e:#}"));
    assert_eq!(refused.code(), Some("invalid_token"), "{e:#}");
    assert!(refused.is_permanent());
}

/// An operator ends a call whose end never reached callq: the agent is free at once, the
/// event stream records who ended it, and ending it again or an unknown call is refused.
#[tokio::test]
async fn admin_ends_a_stuck_call_and_frees_its_agent() {
    let srv = server().await;
    online(&srv, "a1", "sales").await;
    enqueue(&srv.state.store, "CA1", "sales").await;
    assert_eq!(
        claimed(&srv.state.store).await,
        Some(("CA1".into(), "a1".into()))
    );
    let store = &srv.state.store;
    store
        .offer_result(
            &current(store, "CA1").await,
            OfferOutcome::Answered,
            "CAleg",
        )
        .await
        .expect("answered");

    let r = admin(&srv, Method::POST, "/v1/admin/calls/CA1/end", Body::None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["call"]["state"], "completed");
    assert_eq!(r.json["call"]["end_reason"], "ended_by_operator");
    let last = r.json["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&last["type"], &last["fields"]["by"]),
        (&json!("ended"), &json!("admin"))
    );
    let rec = record(&srv, "a1").await.expect("agent");
    assert_eq!((rec.status, rec.active), (AgentStatus::Available, 0));

    let r = admin(&srv, Method::POST, "/v1/admin/calls/CA1/end", Body::None).await;
    r.assert_error(409, "call_already_ended", None, "ended twice");
    let r = admin(&srv, Method::POST, "/v1/admin/calls/CAnope/end", Body::None).await;
    r.assert_error(404, "call_not_found", None, "unknown call");
    let r = admin(&srv, Method::GET, "/v1/admin/calls/CA1/end", Body::None).await;
    assert_eq!(r.status, 405);
}

// ---------------------------------------------------------------------------------------
// The OpenAPI document against the server's answers (what scripts/api-fuzz.sh checks with
// schemathesis, here for each way a request can be refused)

async fn openapi(srv: &TestServer) -> Value {
    let r = send(srv, Method::GET, "/v1/openapi.json", Auth::None, Body::None).await;
    assert_eq!(r.status, 200);
    r.json
}

/// A body the route accepts (enough to reach Redis), for routes that take one.
fn good_body(path: &str, method: &str) -> Option<Value> {
    let queues = json!([{"queue": "sales", "tier": 1}]);
    match (path, method) {
        ("/v1/agents/{id}/heartbeat", _) => Some(json!({"device_registered": true})),
        ("/v1/agents/{id}/status", _) | ("/v1/admin/agents/{id}/status", _) => {
            Some(json!({"status": "paused"}))
        }
        ("/v1/agents/{id}/token", _) | ("/v1/admin/agents/{id}/token", _) => Some(json!({})),
        ("/v1/admin/agents", "post") => Some(json!({"id": "b1", "queues": queues})),
        ("/v1/admin/agents/{id}", "put") => Some(json!({"queues": queues})),
        _ => None,
    }
}

/// Every status a route answers is one its operation in the OpenAPI document lists, and every
/// error code met is one the document names: no token, a path segment that is not UTF-8, a
/// Content-Type other than JSON, a body over the limit, malformed JSON, a body that is not an
/// object, and, on a server whose Redis is out of reach, a good request (503).
#[tokio::test]
async fn every_status_a_route_answers_is_in_its_openapi_document() {
    let srv = server().await;
    create(&srv, "a1", "sales").await;
    let agent_token = token_for(&srv, "a1").await;
    let doc = openapi(&srv).await;
    let codes_doc = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
        ["description"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let dead = callq::store::Store::connect("redis://127.0.0.1:1/", "dead", 2).expect("store");
    let down = spawn_server_on(dead, CentreConfig::demo()).await;
    let down_token = token::issue(AGENT_SECRET, "a1", "g1", now_s() + 600).expect("issue");

    let mut undocumented = Vec::new();
    let mut unnamed_codes = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (path, method, scheme) in ROUTES {
        let op = &doc["paths"][*path][*method];
        let takes_body = op["requestBody"].is_object();
        let url = path.replace("{id}", "a1").replace("{sid}", "CA1");
        let http = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let (live, dead) = match *scheme {
            Some("agent_token") => (Auth::Bearer(&agent_token), Auth::Bearer(&down_token)),
            Some(_) => (Auth::Bearer(ADMIN_TOKEN), Auth::Bearer(ADMIN_TOKEN)),
            None => (Auth::None, Auth::None),
        };
        let mut cases: Vec<(&TestServer, String, Auth, Body, &str)> =
            vec![(&srv, url.clone(), Auth::None, Body::None, "no token")];
        if path.contains('{') {
            let bad = path.replace("{id}", "%FF").replace("{sid}", "%FF");
            cases.push((&srv, bad, live, Body::None, "a path segment not UTF-8"));
        }
        if takes_body {
            let big = Body::Raw(vec![b' '; 70_000], Some("application/json"));
            let text = Body::Raw(b"{}".to_vec(), Some("text/plain"));
            cases.push((&srv, url.clone(), live, text, "text/plain"));
            cases.push((&srv, url.clone(), live, big, "a body over the limit"));
            cases.push((&srv, url.clone(), live, raw("{"), "malformed JSON"));
            cases.push((&srv, url.clone(), live, raw("[]"), "not an object"));
        }
        if scheme.is_some() {
            let body = good_body(path, method).map_or(Body::None, Body::Json);
            cases.push((&down, url.clone(), dead, body, "Redis out of reach"));
        }
        for (server, url, auth, body, what) in cases {
            let r = send(server, http.clone(), &url, auth, body).await;
            seen.insert(r.status);
            if !op["responses"][r.status.to_string()].is_object() {
                undocumented.push(format!("{method} {path} answered {} to {what}", r.status));
            }
            let code = r.code();
            if !code.is_empty() && !codes_doc.contains(&format!("`{code}`")) {
                unnamed_codes.push(format!("{method} {path}: {code} ({what})"));
            }
        }
    }
    assert!(undocumented.is_empty(), "undocumented: {undocumented:#?}");
    assert!(
        unnamed_codes.is_empty(),
        "codes not named: {unnamed_codes:#?}"
    );
    for status in [400, 401, 413, 415, 422, 503] {
        assert!(seen.contains(&status), "{status} was exercised: {seen:?}");
    }
    // not exercised here (10 s; tests/ops.rs sends a body too slowly), but listed
    for (path, method, _) in ROUTES {
        let op = &doc["paths"][*path][*method];
        if op["requestBody"].is_object() {
            assert!(op["responses"]["408"].is_object(), "{method} {path}: 408");
        }
    }
}

/// The document describes request fields and path parameters as the server checks them: a
/// value its pattern and bounds allow is accepted, one they refuse is refused (422, or 404 for
/// a path). The token routes' body is an optional object, never `null`.
#[tokio::test]
async fn the_openapi_document_describes_values_as_the_server_checks_them() {
    let srv = server().await;
    let doc = openapi(&srv).await;
    let schemas = &doc["components"]["schemas"];
    let pattern = |schema: &Value| {
        let p = schema["pattern"].as_str().expect("a pattern");
        regex::Regex::new(p).expect("the pattern compiles")
    };

    // path parameters: every templated path declares its parameters, each with the pattern
    for (path, method, _) in ROUTES {
        let params = doc["paths"][*path][*method]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if path.contains('{') {
            assert!(
                !params.is_empty(),
                "{method} {path}: no parameters declared"
            );
        }
        for p in &params {
            assert_eq!(
                p["schema"]["pattern"],
                json!(callq::agents::openapi::NAME_PATTERN),
                "{method} {path} {}",
                p["name"]
            );
        }
    }

    // the agent id, as created
    let id_rx = pattern(&schemas["CreateAgentRequest"]["properties"]["id"]);
    let long = "x".repeat(64);
    let too_long = "y".repeat(65);
    for (n, id) in [
        "a", "A.b-c_9", &long, &too_long, "", "a b", "a,b", "a@b", "ü", "a/b",
    ]
    .into_iter()
    .enumerate()
    {
        let r = admin(
            &srv,
            Method::POST,
            "/v1/admin/agents",
            Body::Json(json!({"id": id, "queues": [{"queue": "sales", "tier": 1}]})),
        )
        .await;
        assert_eq!(
            r.status == 201,
            id_rx.is_match(id),
            "id #{n} {id:?}: {}",
            r.json
        );
    }

    // the identity the agent's device registers with
    let identity = &schemas["CreateAgentRequest"]["properties"]["identity"];
    assert_eq!(
        identity["pattern"],
        schemas["UpdateAgentRequest"]["properties"]["identity"]["pattern"]
    );
    let identity_rx = pattern(identity);
    let longest = "i".repeat(callq::agents::admin::MAX_IDENTITY_LEN);
    let longer = "j".repeat(callq::agents::admin::MAX_IDENTITY_LEN + 1);
    for (n, identity) in [
        "alice", "a@b.c", "x_y-z.1", &longest, &longer, "", "a b", "client:a", "ü",
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"id": format!("i{n}"), "identity": identity,
            "queues": [{"queue": "sales", "tier": 1}]});
        let r = admin(&srv, Method::POST, "/v1/admin/agents", Body::Json(body)).await;
        assert_eq!(
            r.status == 201,
            identity_rx.is_match(identity),
            "identity {identity:?}: {}",
            r.json
        );
    }

    // queues: 1 to MAX_AGENT_QUEUES
    for name in ["CreateAgentRequest", "UpdateAgentRequest"] {
        let queues = &schemas[name]["properties"]["queues"];
        assert_eq!(
            (&queues["minItems"], &queues["maxItems"]),
            (&json!(1), &json!(callq::agents::admin::MAX_AGENT_QUEUES)),
            "{name}"
        );
    }
    let queue_rx = pattern(&schemas["QueueTier"]["properties"]["queue"]);
    assert!(queue_rx.is_match("sales") && !queue_rx.is_match("a,b") && !queue_rx.is_match(""));

    // a status's reason
    let reason = &schemas["StatusRequest"]["properties"]["reason"];
    assert_eq!(
        reason["maxLength"],
        json!(callq::agents::api::MAX_REASON_CHARS)
    );
    let reason_rx = pattern(reason);
    create(&srv, "r1", "sales").await;
    let max = callq::agents::api::MAX_REASON_CHARS;
    for (n, text) in [
        "lunch".to_string(),
        "ü".repeat(max),
        "x".repeat(max + 1),
        "a\u{0}b".into(),
        "a\u{1f}b".into(),
        "tab\tinside".into(),
        "a\u{7f}b".into(),
        "a\u{85}b".into(),
        "a\u{9f}b".into(),
        "a\u{a0}b".into(),
        "emoji 🙂".into(),
    ]
    .into_iter()
    .enumerate()
    {
        let valid = reason_rx.is_match(&text) && text.chars().count() <= max;
        let r = admin(
            &srv,
            Method::PUT,
            "/v1/admin/agents/r1/status",
            Body::Json(json!({"status": "paused", "reason": text})),
        )
        .await;
        assert_eq!(r.status == 200, valid, "reason #{n}: {}", r.json);
        if !valid {
            r.assert_error(422, "invalid_field", Some("reason"), "reason");
        }
    }

    // the token routes: an optional object, not `null`
    let token = token_for(&srv, "r1").await;
    for path in ["/v1/agents/{id}/token", "/v1/admin/agents/{id}/token"] {
        let body = &doc["paths"][path]["post"]["requestBody"];
        assert_ne!(body["required"], json!(true), "{path}");
        assert_eq!(
            body["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/schemas/TokenRequest"}),
            "{path}"
        );
        let url = path.replace("{id}", "r1");
        let auth = if path.contains("admin") {
            Auth::Bearer(ADMIN_TOKEN)
        } else {
            Auth::Bearer(&token)
        };
        let r = send(&srv, Method::POST, &url, auth, raw("null")).await;
        r.assert_error(422, "invalid_field", None, "a null body");
        let r = send(&srv, Method::POST, &url, auth, Body::None).await;
        assert_eq!(r.status, 200, "{path}: no body: {}", r.json);
    }
    let agent_scheme = doc["components"]["securitySchemes"]["agent_token"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        agent_scheme.contains("`v2."),
        "the token format: {agent_scheme}"
    );
    assert!(token.starts_with("v2."));
}

// ---------------------------------------------------------------------------------------
// scripts/agent-example.sh, the example docs/agents.md walks through

/// The example script, run against a real server, leaves the agent it creates paused for lunch
/// with a live heartbeat and a registered device, holding a working token it refreshed; with
/// jq and without.
#[tokio::test]
async fn the_agent_example_script_runs_against_a_real_server() {
    let srv = server().await;
    let has_jq = tokio::process::Command::new("jq")
        .arg("--version")
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    assert!(
        has_jq,
        "this test runs the example with jq too: install it (scripts/ensure-jq.sh)"
    );
    let runs = [("plain", true), ("jq", false)];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/agent-example.sh");
    for (mode, no_jq) in runs {
        let id = format!("desk-{mode}");
        let identity = format!("{id}@example");
        let mut cmd = tokio::process::Command::new("bash");
        cmd.arg(script)
            .arg(&id)
            .env("CALLQ_URL", &srv.base)
            .env("CALLQ_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("CALLQ_IDENTITY", &identity)
            .env("CALLQ_QUEUE", "support")
            .env_remove("CALLQ_EXAMPLE_NO_JQ");
        if no_jq {
            cmd.env("CALLQ_EXAMPLE_NO_JQ", "1");
        }
        let out = cmd.output().await.expect("bash runs the script");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{mode}: {stdout}\n{stderr}");
        assert!(
            stdout.contains("4. available: status available, online false"),
            "{mode}: available before a heartbeat, not yet online: {stdout}"
        );
        assert!(
            stdout.contains(&format!("done: {id} is paused (lunch), online true")),
            "{mode}: {stdout}"
        );

        let rec = record(&srv, &id)
            .await
            .expect("the script created the agent");
        assert_eq!(
            (rec.status, rec.reason.as_str(), rec.heartbeat),
            (AgentStatus::Paused, "lunch", Some(true)),
            "{mode}"
        );
        assert_eq!(rec.identity, identity, "{mode}");
        assert_eq!(rec.queues, vec![("support".to_string(), 1)], "{mode}");

        let token = stdout
            .lines()
            .find_map(|l| l.strip_prefix("token="))
            .expect("the script prints its token");
        let claims = token::verify(AGENT_SECRET, token, now_s()).expect("a genuine token");
        assert_eq!(claims.agent_id, id);
        assert!(
            (claims.expires_at - now_s() - 43_200).abs() <= 5,
            "the refreshed token lives 12 hours"
        );
        assert_eq!(
            heartbeat(&srv, &id, token, true).await.status,
            200,
            "{mode}"
        );

        // run again: the agent exists, which the script takes in its stride
        let again = cmd.output().await.expect("bash runs the script");
        assert!(
            again.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Twilio Voice access tokens

const API_KEY: &str = "SK00000000000000000000000000000001";
const API_SECRET: &str = "voice-api-secret-0123456789abcdef";
const ACCOUNT: &str = "AC00000000000000000000000000000001";

fn voice_grant() -> callq::agents::voice_token::VoiceGrant {
    callq::agents::voice_token::VoiceGrant {
        account_sid: ACCOUNT.into(),
        api_key: API_KEY.into(),
        api_secret: API_SECRET.into(),
        ttl: Duration::from_secs(3600),
    }
}

/// The agent's desktop gets a Twilio Voice access token for its own identity: decoded with a
/// JWT library, its header, issuer, subject, grants, lifetime and signature are Twilio's.
#[tokio::test]
async fn an_agent_gets_a_voice_token_for_its_own_identity() {
    let srv = server_with(|a| a.voice = Some(voice_grant())).await;
    let r = admin(
        &srv,
        Method::POST,
        "/v1/admin/agents",
        Body::Json(json!({"id": "a1", "identity": "alice@desk", "queues": [{"queue": "sales", "tier": 1}]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let token = token_for(&srv, "a1").await;
    let r = send(
        &srv,
        Method::POST,
        "/v1/agents/a1/voice-token",
        Auth::Bearer(&token),
        Body::None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["identity"], "alice@desk");
    let jwt = r.json["token"].as_str().expect("token");

    let header = jsonwebtoken::decode_header(jwt).expect("a JWT");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.cty.as_deref(), Some("twilio-fpa;v=1"));
    let mut check = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    check.set_required_spec_claims(&["exp", "iss", "sub"]);
    check.set_issuer(&[API_KEY]);
    let data = jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(API_SECRET.as_bytes()),
        &check,
    )
    .expect("signed with the API secret");
    let c = data.claims;
    assert_eq!(c["sub"], ACCOUNT);
    assert_eq!(c["grants"]["identity"], "alice@desk");
    assert_eq!(c["grants"]["voice"]["incoming"]["allow"], true);
    let (iat, exp) = (
        c["iat"].as_i64().expect("iat"),
        c["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, 3600);
    assert!((iat - now_s()).abs() < 300, "issued now: {iat}");
    assert_eq!(r.json["expires_at"].as_i64(), Some(exp));
    assert!(c["jti"].as_str().expect("jti").starts_with(API_KEY));
    // another secret does not verify it
    assert!(jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(b"another-secret-entirely-0123456789"),
        &check,
    )
    .is_err());
}

#[tokio::test]
async fn voice_tokens_are_refused_without_the_agents_own_token_or_an_api_key() {
    let srv = server_with(|a| a.voice = Some(voice_grant())).await;
    create(&srv, "a1", "sales").await;
    create(&srv, "a2", "sales").await;
    let a2 = token_for(&srv, "a2").await;
    let path = "/v1/agents/a1/voice-token";
    let r = send(&srv, Method::POST, path, Auth::None, Body::None).await;
    r.assert_error(401, "missing_token", None, "no token");
    let r = send(&srv, Method::POST, path, Auth::Bearer(&a2), Body::None).await;
    r.assert_error(403, "forbidden", None, "another agent's token");
    let r = send(
        &srv,
        Method::POST,
        path,
        Auth::Bearer(ADMIN_TOKEN),
        Body::None,
    )
    .await;
    r.assert_error(401, "invalid_token", None, "the admin token");

    let unconfigured = server().await;
    create(&unconfigured, "a1", "sales").await;
    let a1 = token_for(&unconfigured, "a1").await;
    let r = send(
        &unconfigured,
        Method::POST,
        path,
        Auth::Bearer(&a1),
        Body::None,
    )
    .await;
    r.assert_error(503, "voice_tokens_unconfigured", None, "no API key");
}

// ---------------------------------------------------------------------------------------
// What the agent console reads: the agent's queues, the wrap-up left

/// The agent reads the queues it serves, in its profile's order, with their lines; only with
/// its own token.
#[tokio::test]
async fn an_agent_sees_the_lines_of_its_own_queues() {
    let srv = server().await;
    let r = admin(
        &srv,
        Method::POST,
        "/v1/admin/agents",
        Body::Json(json!({"id": "a1", "queues": [
            {"queue": "support", "tier": 2}, {"queue": "sales", "tier": 1}
        ]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.json);
    create(&srv, "a2", "sales").await;
    let token = token_for(&srv, "a1").await;
    heartbeat(&srv, "a1", &token, true).await;
    set_status(&srv, "a1", &token, "available").await;
    let store = &srv.state.store;
    enqueue(store, "CAq1", "sales").await;
    enqueue(store, "CAq2", "sales").await;
    // a2 (offline) takes nothing; a1 is offered one of the two
    let offer = claim(store).await.expect("an offer");
    assert_eq!(offer.agent_id, "a1");

    // the numbers are shared by the server's requests for up to a second
    let (status, json) = until_answer(&srv, &token, |q| q[1]["waiting"] == 1).await;
    assert_eq!(status, 200, "{json}");
    let queues = json["queues"].as_array().expect("queues");
    assert_eq!(queues.len(), 2, "{json}");
    assert_eq!(
        (
            &queues[0]["queue"],
            &queues[0]["tier"],
            &queues[0]["waiting"]
        ),
        (&json!("support"), &json!(2), &json!(0))
    );
    assert_eq!(
        (
            &queues[1]["queue"],
            &queues[1]["tier"],
            &queues[1]["waiting"]
        ),
        (&json!("sales"), &json!(1), &json!(1))
    );
    assert_eq!(queues[1]["available"], 0, "a1 is ringing, a2 offline");
    assert!(queues[1]["oldest_wait_s"]
        .as_f64()
        .is_some_and(|s| s >= 0.0));
    assert!(queues[1]["estimated_wait_s"].as_f64().is_some());

    let a2 = token_for(&srv, "a2").await;
    let path = "/v1/agents/a1/queues";
    let r = send(&srv, Method::GET, path, Auth::None, Body::None).await;
    r.assert_error(401, "missing_token", None, "no token");
    let r = send(&srv, Method::GET, path, Auth::Bearer(&a2), Body::None).await;
    r.assert_error(403, "forbidden", None, "another agent's token");
    let r = admin(&srv, Method::DELETE, "/v1/admin/agents/a2", Body::None).await;
    assert_eq!(r.status, 204, "{}", r.json);
    let r = send(
        &srv,
        Method::GET,
        "/v1/agents/a2/queues",
        Auth::Bearer(&a2),
        Body::None,
    )
    .await;
    r.assert_error(404, "agent_not_found", None, "a deleted agent");
}

/// `GET /v1/agents/{id}/queues` until `done` holds for its queue list (the numbers may be a
/// second old), at most 30 s.
async fn until_answer(
    srv: &TestServer,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> (u16, Value) {
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = send(
            srv,
            Method::GET,
            "/v1/agents/a1/queues",
            Auth::Bearer(token),
            Body::None,
        )
        .await;
        if r.status != 200 || done(&r.json["queues"]) || tokio::time::Instant::now() > end {
            return (r.status, r.json);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An agent in wrap-up reads how long is left of it, counting down on Redis' clock; in any
/// other status the field is absent.
#[tokio::test]
async fn an_agent_in_wrap_up_reads_the_time_left() {
    let srv = spawn_server(centre_from(
        r#"
centre = "wrap"
default_queue = "sales"
[queues.sales]
numbers = ["+15005550001"]
wrapup_s = 600
"#,
    ))
    .await;
    create(&srv, "a1", "sales").await;
    let token = token_for(&srv, "a1").await;
    heartbeat(&srv, "a1", &token, true).await;
    set_status(&srv, "a1", &token, "available").await;
    let me = || {
        send(
            &srv,
            Method::GET,
            "/v1/agents/a1",
            Auth::Bearer(&token),
            Body::None,
        )
    };
    let r = me().await;
    assert_eq!(r.json["status"], "available");
    assert!(r.json.get("wrapup_left_ms").is_none(), "{}", r.json);

    let store = &srv.state.store;
    enter_connected(store, "CAw1", "sales").await;
    complete(store, "CAw1").await.expect("completed");
    let r = me().await;
    assert_eq!(r.json["status"], "wrapup", "{}", r.json);
    let left = r.json["wrapup_left_ms"].as_u64().expect("time left");
    assert!(left <= 600_000 && left > 500_000, "{left}");
    let listed = admin(&srv, Method::GET, "/v1/admin/agents", Body::None).await;
    let a1 = &listed.json["agents"][0];
    assert!(
        a1["wrapup_left_ms"].as_u64().is_some_and(|l| l <= left),
        "{a1}"
    );

    // going available ends the wrap-up early: nothing left to count
    set_status(&srv, "a1", &token, "available").await;
    let r = me().await;
    assert_eq!(r.json["status"], "available");
    assert!(r.json.get("wrapup_left_ms").is_none(), "{}", r.json);
}

/// POST `/v1/agents/{id}/transfer` with the agent's token.
async fn transfer(srv: &TestServer, id: &str, token: &str, body: Value) -> Resp {
    send(
        srv,
        Method::POST,
        &format!("/v1/agents/{id}/transfer"),
        Auth::Bearer(token),
        Body::Json(body),
    )
    .await
}

#[tokio::test]
async fn an_agent_transfers_a_connected_caller_who_then_holds_in_the_new_queue() {
    use callq::contract::OfferHook;
    use callq::twilio::twiml::Verb;
    use support::edge::{hook, twiml_text, voice_params, CALLER, SALES_NO};

    let srv = server().await;
    let store = &srv.state.store;
    create(&srv, "alice", "sales").await;
    create(&srv, "carol", "sales").await;
    let alice = token_for(&srv, "alice").await;
    let carol = token_for(&srv, "carol").await;
    assert_eq!(heartbeat(&srv, "alice", &alice, true).await.status, 200);
    assert_eq!(
        set_status(&srv, "alice", &alice, "available").await.status,
        200
    );
    store
        .enqueue(&holding("CAxfer", "sales", CALLER))
        .await
        .expect("enqueue");
    let offer = claim(store).await.expect("offered to alice");
    store
        .offer_result(&offer.offer_ref(), OfferOutcome::Answered, "CAleg")
        .await
        .expect("answered");

    // refused: another agent's call, no target, an unknown queue, an unknown agent, a bad sid
    let r = transfer(
        &srv,
        "carol",
        &carol,
        json!({"call": "CAxfer", "queue": "support"}),
    )
    .await;
    r.assert_error(409, "not_your_call", None, "another agent's call");
    let r = transfer(&srv, "alice", &alice, json!({"call": "CAxfer"})).await;
    r.assert_error(422, "invalid_field", Some("queue"), "no target");
    let r = transfer(
        &srv,
        "alice",
        &alice,
        json!({"call": "CAxfer", "queue": "nowhere"}),
    )
    .await;
    r.assert_error(422, "unknown_queue", Some("queue"), "unknown queue");
    let r = transfer(
        &srv,
        "alice",
        &alice,
        json!({"call": "CAxfer", "agent": "ghost"}),
    )
    .await;
    r.assert_error(422, "invalid_field", Some("agent"), "unknown agent");
    let r = transfer(
        &srv,
        "alice",
        &alice,
        json!({"call": "CA nope", "queue": "support"}),
    )
    .await;
    r.assert_error(422, "invalid_field", Some("call"), "bad sid");
    let r = transfer(
        &srv,
        "alice",
        &alice,
        json!({"call": "CAnone", "queue": "support"}),
    )
    .await;
    r.assert_error(404, "call_not_found", None, "unknown call");
    assert_eq!(
        state(store, "CAxfer").await,
        CallState::Connected,
        "nothing changed"
    );

    let r = transfer(
        &srv,
        "alice",
        &alice,
        json!({"call": "CAxfer", "queue": "support"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json,
        json!({"call": "CAxfer", "queue": "support", "from_queue": "sales", "agent": null})
    );
    let c = call(store, "CAxfer").await;
    assert_eq!((c.state, c.queue.as_str()), (CallState::Waiting, "support"));
    assert_ne!(status(store, "alice").await, AgentStatus::Busy);

    // alice hangs up: the <Dial> ends, and the caller holds in support instead of hanging up
    let mut params = voice_params("CAxfer", CALLER, SALES_NO);
    params.push(("DialCallStatus", "completed"));
    let (text, doc) = twiml_text(
        &srv,
        &hook(OfferHook::DialResult, &offer.offer_ref()),
        &params,
    )
    .await;
    assert!(
        text.contains("Please hold while we transfer your call."),
        "{text}"
    );
    match doc.verbs.last() {
        Some(Verb::Enqueue(e)) => assert_eq!(e.name, "callq-support", "{text}"),
        other => panic!("an <Enqueue> into support: {other:?} in {text}"),
    }
    // twice (a retried webhook): the same
    let (again, _) = twiml_text(
        &srv,
        &hook(OfferHook::DialResult, &offer.offer_ref()),
        &params,
    )
    .await;
    assert_eq!(again, text);
    // the call, no longer connected, cannot be transferred again until it is
    let r = transfer(
        &srv,
        "alice",
        &alice,
        json!({"call": "CAxfer", "queue": "sales"}),
    )
    .await;
    r.assert_error(409, "call_not_connected", None, "not connected");
    assert_invariants(store, &["CAxfer".to_string()]).await;
}
