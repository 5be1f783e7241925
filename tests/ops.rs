//! The operations endpoints of `callq serve`: probes, metrics and the wallboard, against a real
//! Redis and against one that cannot be reached; who may see the wallboard (admin or viewer
//! token, or a session cookie from the login form) and who may read `/metrics`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use callq::app::{AgentSettings, OpsSettings};
use callq::config::CentreConfig;
use callq::store::Store;
use reqwest::header::{AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE};
use support::*;

/// A client that does not follow redirects (the login's 303 and cookie are looked at).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let r = req.send().await.expect("request");
    Reply {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.expect("body"),
    }
}

async fn get(url: String) -> (u16, String) {
    let r = send(client().get(url)).await;
    (r.status, r.body)
}

async fn get_as(url: String, bearer: &str) -> (u16, String) {
    let r = send(
        client()
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {bearer}")),
    )
    .await;
    (r.status, r.body)
}

async fn get_with_cookie(url: String, cookie: &str) -> (u16, String) {
    let r = send(client().get(url).header(COOKIE, cookie)).await;
    (r.status, r.body)
}

async fn login(base: &str, token: &str) -> Reply {
    send(
        client()
            .post(format!("{base}/wallboard/login"))
            .form(&[("token", token)]),
    )
    .await
}

/// The `name=value` part of the response's Set-Cookie, and its attributes, lowercased.
fn set_cookie(r: &Reply) -> (String, String) {
    let raw = r
        .headers
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a Set-Cookie header")
        .to_string();
    let (pair, attrs) = raw.split_once(';').unwrap_or((&raw, ""));
    (pair.trim().to_string(), attrs.to_ascii_lowercase())
}

#[tokio::test]
async fn probes_and_metrics_answer() {
    let server = spawn_server(CentreConfig::demo()).await;
    assert_eq!(
        get(format!("{}/healthz", server.base)).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        get(format!("{}/readyz", server.base)).await,
        (200, "ready\n".into())
    );
    let (status, _) = get(format!("{}/metrics", server.base)).await;
    assert_eq!(status, 200, "no metrics token configured: open");
}

#[tokio::test]
async fn metrics_ask_for_their_token_when_one_is_set() {
    let token = "metrics-token-0123456789";
    let server = spawn_server_with(CentreConfig::demo(), |s| {
        s.ops = Arc::new(OpsSettings {
            metrics_token: token.into(),
            ..(*s.ops).clone()
        })
    })
    .await;
    let url = format!("{}/metrics", server.base);
    assert_eq!(get(url.clone()).await.0, 401, "no token");
    assert_eq!(get_as(url.clone(), "wrong-token").await.0, 401);
    assert_eq!(
        get_as(url.clone(), ADMIN_TOKEN).await.0,
        401,
        "its own token only"
    );
    assert_eq!(get_as(url, token).await.0, 200);
    assert_eq!(
        get(format!("{}/healthz", server.base)).await.0,
        200,
        "probes stay open"
    );
}

#[tokio::test]
async fn readiness_fails_when_redis_is_unreachable_but_liveness_holds() {
    let dead = Store::connect("redis://127.0.0.1:1/", "dead", 2).expect("store");
    let server = spawn_server_on(dead, CentreConfig::demo()).await;
    assert_eq!(get(format!("{}/healthz", server.base)).await.0, 200);
    assert_eq!(get(format!("{}/readyz", server.base)).await.0, 503);
    assert_eq!(
        get_as(format!("{}/wallboard/data", server.base), VIEWER_TOKEN)
            .await
            .0,
        503
    );
}

#[tokio::test]
async fn the_wallboard_shows_queues_and_recent_transitions_without_caller_numbers() {
    let server = spawn_server(CentreConfig::demo()).await;
    let store = &server.state.store;
    store
        .enqueue(&holding("CAwall1", "sales", "+15559998888"))
        .await
        .expect("enqueue");
    let (status, page) = get_as(format!("{}/wallboard", server.base), VIEWER_TOKEN).await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>callq wallboard</title>"));
    let (status, body) = get_as(format!("{}/wallboard/data", server.base), VIEWER_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    let d: serde_json::Value = serde_json::from_str(&body).expect("json");
    let sales = d["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "sales")
        .expect("sales queue");
    assert_eq!(sales["waiting"], 1);
    assert!(d["events"][0].as_str().expect("event").contains("enqueue"));
    assert!(d["events"][0].as_str().expect("event").contains("CAwall1"));
    assert!(
        !body.contains("+15559998888"),
        "no caller numbers on the wallboard"
    );
}

/// Without credentials, or with wrong ones, the wallboard shows a login form and its data
/// answers 401; nothing about agents or calls leaks.
#[tokio::test]
async fn the_wallboard_refuses_anyone_without_an_operator_token() {
    let server = spawn_server(CentreConfig::demo()).await;
    server
        .state
        .store
        .enqueue(&holding("CAsecret1", "sales", "+15559998888"))
        .await
        .expect("enqueue");
    let data = format!("{}/wallboard/data", server.base);
    let page = format!("{}/wallboard", server.base);

    let (status, body) = get(data.clone()).await;
    assert_eq!(status, 401, "{body}");
    let err: serde_json::Value = serde_json::from_str(&body).expect("json error");
    assert_eq!(err["error"]["code"], "login_required");
    assert!(!body.contains("CAsecret1"));

    let agent_secret = String::from_utf8_lossy(AGENT_SECRET).to_string();
    for wrong in ["nope", "test-admin-token-", agent_secret.as_str()] {
        let (status, body) = get_as(data.clone(), wrong).await;
        assert_eq!(status, 401, "{wrong}: {body}");
    }
    for bad_cookie in [
        "callq_session=garbage",
        "callq_session=viewer.99999999999.AAAA",
        "callq_session=admin.99999999999.",
    ] {
        assert_eq!(
            get_with_cookie(data.clone(), bad_cookie).await.0,
            401,
            "{bad_cookie}"
        );
    }

    let (status, body) = get(page).await;
    assert_eq!(status, 401);
    assert!(
        body.contains("<form method=\"post\" action=\"/wallboard/login\""),
        "{body}"
    );
    assert!(!body.contains("CAsecret1"));

    for token in [ADMIN_TOKEN, VIEWER_TOKEN] {
        assert_eq!(get_as(data.clone(), token).await.0, 200, "{token}");
    }
}

/// The login form trades a right token for a session cookie that opens the board; the cookie
/// holds no token, cannot be altered, and logging out ends it.
#[tokio::test]
async fn operators_log_in_with_a_form_and_keep_a_session_cookie() {
    let server = spawn_server(CentreConfig::demo()).await;
    let base = &server.base;

    let wrong = login(base, "not-the-token").await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.headers.get(SET_COOKIE).is_none(),
        "no cookie for a wrong token"
    );
    assert!(wrong.body.contains("not right"), "{}", wrong.body);

    for token in [VIEWER_TOKEN, ADMIN_TOKEN] {
        let ok = login(base, token).await;
        assert_eq!(ok.status, 303, "{}", ok.body);
        assert_eq!(
            ok.headers.get(LOCATION).and_then(|v| v.to_str().ok()),
            Some("/wallboard")
        );
        let (cookie, attrs) = set_cookie(&ok);
        assert!(cookie.starts_with("callq_session="), "{cookie}");
        assert!(!cookie.contains(token), "the cookie never holds the token");
        for attr in ["httponly", "samesite=strict", "path=/", "max-age=43200"] {
            assert!(attrs.contains(attr), "{attr} in {attrs}");
        }
        assert_eq!(
            get_with_cookie(format!("{base}/wallboard/data"), &cookie)
                .await
                .0,
            200
        );
        let (status, page) = get_with_cookie(format!("{base}/wallboard"), &cookie).await;
        assert_eq!(status, 200);
        assert!(page.contains("<title>callq wallboard</title>"));

        // a session lengthened by hand is refused
        let (name_role, rest) = cookie.split_once('.').expect("role.");
        let (_, mac) = rest.split_once('.').expect("expiry.mac");
        let forged = format!("{name_role}.99999999999.{mac}");
        assert_eq!(
            get_with_cookie(format!("{base}/wallboard/data"), &forged)
                .await
                .0,
            401
        );

        let out = send(
            client()
                .post(format!("{base}/wallboard/logout"))
                .header(COOKIE, &cookie),
        )
        .await;
        assert_eq!(out.status, 303);
        let (cleared, attrs) = set_cookie(&out);
        assert_eq!(cleared, "callq_session=");
        assert!(attrs.contains("max-age=0"), "{attrs}");
    }
}

/// The viewer token opens the views and nothing else: the admin API refuses it.
#[tokio::test]
async fn the_viewer_token_does_not_open_the_admin_api() {
    let server = spawn_server(CentreConfig::demo()).await;
    let (status, body) = get_as(format!("{}/v1/admin/queues", server.base), VIEWER_TOKEN).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        get_as(format!("{}/v1/admin/queues", server.base), ADMIN_TOKEN)
            .await
            .0,
        200
    );
}

/// With neither an admin nor a viewer token configured, nobody can open the views.
#[tokio::test]
async fn the_wallboard_is_off_without_operator_tokens() {
    let server = spawn_server_with(CentreConfig::demo(), |s| {
        s.agents = Arc::new(AgentSettings {
            admin_token: String::new(),
            ..(*s.agents).clone()
        });
        s.ops = Arc::new(OpsSettings::default());
    })
    .await;
    let base = &server.base;
    assert_eq!(get(format!("{base}/wallboard")).await.0, 403);
    let (status, body) = get_as(format!("{base}/wallboard/data"), "anything-at-all").await;
    assert_eq!(status, 403);
    assert!(body.contains("operator_views_disabled"), "{body}");
    assert_eq!(login(base, "").await.status, 403);
}

/// A client that sends half its headers and stops is disconnected, and one that sends its
/// headers but not the body it announced gets 408; neither holds a connection for ever. The
/// limits are the server's (10 s each); the waits here allow for a loaded machine.
#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = spawn_server(CentreConfig::demo()).await;
    let addr = server.base.trim_start_matches("http://").to_string();

    let half_headers = async {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        s.write_all(b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\nContent-Ty")
            .await
            .expect("write");
        let mut buf = Vec::new();
        // the server closes the connection: read_to_end returns (with or without a reply)
        tokio::time::timeout(Duration::from_secs(90), s.read_to_end(&mut buf))
            .await
            .expect("the server closes a connection whose headers never finish")
            .ok();
    };
    let half_body = async {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        s.write_all(
            b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: AAAA\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nCallSid=CA",
        )
        .await
        .expect("write");
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(90), s.read_to_end(&mut buf))
            .await
            .expect("the server answers a body that never finishes")
            .ok();
        String::from_utf8_lossy(&buf).to_string()
    };
    let ((), reply) = tokio::join!(half_headers, half_body);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
}
