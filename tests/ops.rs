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

/// Redis commands the server ran while answering one `/wallboard/data` request, counted by
/// the server's own `INFO commandstats` (this test's redis-server serves nobody else), and
/// the data it answered.
async fn wallboard_commands(server: &TestServer, redis_url: &str) -> (u64, serde_json::Value) {
    let client = redis::Client::open(redis_url).expect("redis url");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connects");
    // a first request warms the pool, so connection set-up is not counted
    let (status, _) = get_as(format!("{}/wallboard/data", server.base), VIEWER_TOKEN).await;
    assert_eq!(status, 200);
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut raw)
        .await
        .expect("resetstat");
    let (status, body) = get_as(format!("{}/wallboard/data", server.base), VIEWER_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .expect("info");
    let mut calls = 0;
    for line in info.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        // this connection's own CONFIG and INFO are not the server's work
        if !name.starts_with("cmdstat_") || name == "cmdstat_config" || name == "cmdstat_info" {
            continue;
        }
        let n: u64 = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("calls="))
            .and_then(|v| v.parse().ok())
            .expect("calls=N in commandstats");
        calls += n;
    }
    (calls, serde_json::from_str(&body).expect("json"))
}

fn available_in(data: &serde_json::Value, queue: &str) -> u64 {
    data["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == queue)
        .and_then(|q| q["agents"]["available"].as_u64())
        .expect("available count")
}

/// The chart's samples: taken by the server on its period, each queue's line and waits, served
/// with the data (the hour, or only samples after `since`); one sample per period however many
/// times (or replicas) try.
#[tokio::test]
async fn the_wallboard_charts_samples_of_each_queue() {
    let server = spawn_server_with(CentreConfig::demo(), |s| {
        s.ops = Arc::new(OpsSettings {
            history_every: Duration::from_secs(1),
            ..(*s.ops).clone()
        })
    })
    .await;
    let store = &server.state.store;
    enqueue(store, "CAhist1", "sales").await;
    enqueue(store, "CAhist2", "sales").await;
    let data = format!("{}/wallboard/data", server.base);
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    let history = loop {
        let (status, body) = get_as(data.clone(), VIEWER_TOKEN).await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let h = v["history"].as_array().cloned().unwrap_or_default();
        let with_line = h
            .iter()
            .filter(|s| {
                s["queues"].as_array().is_some_and(|qs| {
                    qs.iter()
                        .any(|q| q["queue"] == "sales" && q["waiting"] == 2)
                })
            })
            .count();
        if with_line >= 2 {
            assert_eq!(v["history_every_s"], 1.0);
            assert_eq!(v["history_window_s"], 3600.0);
            break h;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "two samples with sales' two callers: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let last = history.last().expect("a sample");
    let sales_point = last["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["queue"] == "sales"))
        .expect("sales in the sample");
    let oldest = sales_point["oldest_wait_s"].as_f64().expect("oldest");
    let average = sales_point["average_wait_s"].as_f64().expect("average");
    assert!(oldest >= average && average >= 0.0, "{sales_point}");
    assert!(
        last["queues"].as_array().is_some_and(|qs| qs
            .iter()
            .any(|q| q["queue"] == "support" && q["waiting"] == 0)),
        "every queue is sampled: {last}"
    );
    // ids rise with time, and `since` returns only what came after
    let ts: Vec<i64> = history.iter().filter_map(|s| s["t_ms"].as_i64()).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
    let newest = last["id"].as_str().expect("id");
    let (status, body) = get_as(format!("{data}?since={newest}"), VIEWER_TOKEN).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    for s in v["history"].as_array().cloned().unwrap_or_default() {
        assert!(
            s["t_ms"].as_i64() > last["t_ms"].as_i64(),
            "{s} after {newest}"
        );
    }
    // a malformed `since` is ignored (the hour comes back), never passed to Redis
    let (status, body) = get_as(format!("{data}?since=%2B"), VIEWER_TOKEN).await;
    assert_eq!(status, 200, "{body}");

    // one sample per period: a second try in the same (hour-long) period records nothing
    let other = fresh_store();
    other
        .configure_queue(&sales())
        .await
        .expect("a queue to sample");
    let hour = Duration::from_secs(3600);
    assert!(other.record_history(hour).await.expect("sample"));
    assert!(!other.record_history(hour).await.expect("sample"));
    let h = other.history(None, hour).await.expect("history");
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].queues[0].queue, "sales");
    assert!(other
        .history(Some(&h[0].id), hour)
        .await
        .expect("history")
        .is_empty());
}

/// The wallboard's cost does not grow with the number of agents: the queue numbers come from
/// counters the scripts keep, so 200 agents cost Redis the same commands as 10.
#[tokio::test]
async fn the_wallboard_costs_redis_the_same_with_10_or_200_agents() {
    let redis = callq::lab::embedded_redis::EmbeddedRedis::start().expect("a redis of its own");
    let opts = callq::store::StoreOptions {
        pool_size: 4,
        response_timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(30),
        functions: true,
    };
    let store = Store::connect_with(&redis.url(), "stats", &opts).expect("store");
    let server = spawn_server_on(store, CentreConfig::demo()).await;
    let store = &server.state.store;
    let add = |from: usize, to: usize| async move {
        for i in from..to {
            online_agent(store, &agent(&format!("a{i:03}"), &[("sales", 1)])).await;
        }
    };
    add(0, 10).await;
    let (with_10, data_10) = wallboard_commands(&server, &redis.url()).await;
    add(10, 200).await;
    let (with_200, data_200) = wallboard_commands(&server, &redis.url()).await;
    assert_eq!(available_in(&data_10, "sales"), 10);
    assert_eq!(available_in(&data_200, "sales"), 200);
    assert!(with_10 > 0, "the request reached Redis");
    assert_eq!(
        with_10, with_200,
        "Redis commands per wallboard request, 10 agents vs 200"
    );
}

/// The queue counters follow every way an agent's counted state changes (created, heartbeat
/// with and without a device, statuses, queues changed, deleted), and `recount_agents` finds
/// and repairs a counter that was edited by hand.
#[tokio::test]
async fn queue_counters_follow_agents_and_a_recount_repairs_them() {
    let store = store_with(&[
        queue("sales", callq::store::Strategy::LongestIdle),
        queue("support", callq::store::Strategy::LongestIdle),
    ])
    .await;
    let counts = |q: &'static str| {
        let store = store.clone();
        async move {
            let s = store.queue_stats(q).await.expect("stats");
            let n = |k: &str| s.agents.get(k).copied().unwrap_or(0);
            (n("available"), n("paused"), n("offline"))
        }
    };
    let ana = agent("ana", &[("sales", 1), ("support", 2)]);
    online_agent(&store, &ana).await;
    assert_eq!(counts("sales").await, (1, 0, 0));
    assert_eq!(counts("support").await, (1, 0, 0));

    // chose available, but the device is not registered: nobody can take a call there
    let bo = agent("bo", &[("sales", 1)]);
    online_agent(&store, &bo).await;
    store
        .heartbeat("bo", Duration::from_secs(30), false)
        .await
        .expect("heartbeat");
    assert_eq!(counts("sales").await, (1, 0, 1));
    store
        .heartbeat("bo", Duration::from_secs(30), true)
        .await
        .expect("heartbeat");
    assert_eq!(counts("sales").await, (2, 0, 0));

    store
        .set_agent_status("ana", callq::store::RequestedStatus::Paused, "lunch")
        .await
        .expect("paused");
    assert_eq!(counts("sales").await, (1, 1, 0));
    assert_eq!(counts("support").await, (0, 1, 0));

    // ana leaves support
    let ana_sales = agent("ana", &[("sales", 1)]);
    store
        .upsert_agent(&ana_sales, callq::store::UpsertMode::Update)
        .await
        .expect("updated");
    assert_eq!(counts("support").await, (0, 0, 0));
    assert_eq!(counts("sales").await, (1, 1, 0));

    store
        .set_agent_status("ana", callq::store::RequestedStatus::Offline, "")
        .await
        .expect("offline");
    store.delete_agent("ana").await.expect("deleted");
    assert_eq!(counts("sales").await, (1, 0, 0));
    let snap = store.snapshot(&[]).await.expect("snapshot");
    assert!(snap.counter_drift.is_empty(), "{:?}", snap.counter_drift);
    assert!(store.recount_agents(false).await.expect("check").is_empty());

    // a hand edit is found, reported, and repaired
    let client = redis::Client::open(redis_url()).expect("url");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let key = store.key("queue:sales:agents");
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("available")
        .arg(7)
        .query_async(&mut raw)
        .await
        .expect("hset");
    let snap = store.snapshot(&[]).await.expect("snapshot");
    assert_eq!(snap.counter_drift.len(), 1, "{:?}", snap.counter_drift);
    let drift = store.recount_agents(true).await.expect("fix");
    assert_eq!(
        drift,
        vec![callq::store::CounterDrift {
            queue: "sales".into(),
            state: "available".into(),
            stored: 7,
            counted: 1,
        }]
    );
    assert_eq!(counts("sales").await, (1, 0, 0));
    assert!(store.recount_agents(false).await.expect("check").is_empty());
}

/// After a scripted day in queue `kpi` (one call answered and completed, one missed then
/// abandoned, one overflowed, one callback requested twice), `/metrics` reports the plan's
/// KPIs with Prometheus types and labels: counters by queue, the wait to answer as a
/// histogram, and the queue's live numbers as gauges. Webhooks counted twice count once.
#[tokio::test]
async fn metrics_report_the_centre_kpis() {
    use callq::store::{Claim, EndSource, OfferOutcome, Strategy};
    callq::ops::metrics_handle().expect("the recorder installs");
    let server = spawn_server(CentreConfig::demo()).await;
    let store = &server.state.store;
    // a queue of this test's own: other tests in this binary count in sales and support
    store
        .configure_queue(&queue("kpi", Strategy::LongestIdle))
        .await
        .expect("queue");
    online_agent(store, &agent("k1", &[("kpi", 1)])).await;
    let offer = || async {
        match store
            .claim(Duration::from_secs(30), 0)
            .await
            .expect("claim")
        {
            Claim::Offer(o) => o.offer_ref(),
            other => panic!("expected an offer, got {other:?}"),
        }
    };

    store
        .enqueue(&holding("CAk1", "kpi", "+15550000001"))
        .await
        .expect("enqueue");
    let first = offer().await;
    store
        .offer_result(&first, OfferOutcome::Answered, "")
        .await
        .expect("answered");
    // a duplicated webhook is stale: counted once
    store
        .offer_result(&first, OfferOutcome::Answered, "")
        .await
        .expect("stale");
    store
        .complete("CAk1", Some(&first), EndSource::Dial)
        .await
        .expect("completed");

    store
        .enqueue(&holding("CAk2", "kpi", "+15550000002"))
        .await
        .expect("enqueue");
    let missed = offer().await;
    store
        .offer_result(&missed, OfferOutcome::NoAnswer, "")
        .await
        .expect("no answer");
    store.abandon("CAk2", "hangup").await.expect("abandoned");

    store
        .enqueue(&holding("CAk3", "kpi", "+15550000003"))
        .await
        .expect("enqueue");
    store
        .overflow("CAk3", "voicemail", callq::store::OverflowRule::MaxWait)
        .await
        .expect("overflow");

    store
        .enqueue(&holding("CAk4", "kpi", "+15550000004"))
        .await
        .expect("enqueue");
    for _ in 0..2 {
        store
            .request_callback("CAk4", "+15550000004")
            .await
            .expect("callback");
    }

    let (status, text) = get(format!("{}/metrics", server.base)).await;
    assert_eq!(status, 200, "{text}");
    let kpi = |name: &str, extra: &[(&str, &str)]| {
        let mut labels = vec![("queue", "kpi")];
        labels.extend_from_slice(extra);
        sample(&text, name, &labels).unwrap_or_else(|| panic!("{name} {labels:?} in:\n{text}"))
    };
    let inbound = [("kind", "inbound")];
    assert_eq!(kpi("callq_calls_entered_total", &inbound), 4.0);
    assert_eq!(kpi("callq_calls_answered_total", &inbound), 1.0);
    assert_eq!(kpi("callq_calls_answered_first_offer_total", &[]), 1.0);
    assert_eq!(kpi("callq_calls_completed_total", &inbound), 1.0);
    assert_eq!(kpi("callq_calls_abandoned_total", &[]), 1.0);
    assert_eq!(kpi("callq_calls_overflowed_total", &[]), 1.0);
    assert_eq!(kpi("callq_callbacks_requested_total", &[]), 1.0);
    assert_eq!(
        kpi("callq_offer_results_total", &[("outcome", "answered")]),
        1.0
    );
    assert_eq!(
        kpi("callq_offer_results_total", &[("outcome", "no-answer")]),
        1.0
    );
    assert_eq!(kpi("callq_wait_to_answer_seconds_count", &inbound), 1.0);
    assert_eq!(
        kpi("callq_wait_to_answer_seconds_bucket", &[("le", "+Inf")]),
        1.0
    );
    // the callback waits in line; k1 is free again
    assert_eq!(kpi("callq_queue_waiting_calls", &[]), 1.0);
    assert_eq!(kpi("callq_queue_agents", &[("state", "available")]), 1.0);
    assert_eq!(kpi("callq_queue_agents", &[("state", "busy")]), 0.0);
    assert_eq!(sample(&text, "callq_redis_up", &[]), Some(1.0));
    for (name, kind) in [
        ("callq_calls_entered_total", "counter"),
        ("callq_offer_results_total", "counter"),
        ("callq_wait_to_answer_seconds", "histogram"),
        ("callq_queue_waiting_calls", "gauge"),
        ("callq_queue_agents", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}")),
            "{name} is a {kind}:\n{text}"
        );
    }
}

/// The legacy path's rings are counted by outcome from the `<Dial>`'s own result, so the
/// connected share of both paths can be compared during a rollout.
#[tokio::test]
async fn legacy_rings_are_counted_by_outcome() {
    use callq::twilio::twiml::Verb;
    use support::edge::{call_in, centre_with, twiml, CALLER, SALES_NO};
    callq::ops::metrics_handle().expect("the recorder installs");
    let top = "[rollout]\nshare_pct = 0\nlegacy = { action = \"dial\", number = \"+15550001111\" }";
    let server = spawn_server(centre_with("", "", top)).await;
    let before = |text: &str, outcome: &str| {
        sample(text, "callq_legacy_calls_total", &[("outcome", outcome)]).unwrap_or(0.0)
    };
    let (_, text) = get(format!("{}/metrics", server.base)).await;
    let (answered, missed) = (before(&text, "answered"), before(&text, "no_answer"));

    let doc = call_in(&server, "CAlegacy1", CALLER, SALES_NO).await;
    let action = match doc.verbs.as_slice() {
        [Verb::Dial(d), Verb::Hangup] => d.action.clone().expect("the dial reports back"),
        other => panic!("legacy dial: {other:?}"),
    };
    let path = action
        .strip_prefix(&server.base)
        .expect("on callq's public URL")
        .to_owned();
    for (sid, status) in [("CAlegacy1", "no-answer"), ("CAlegacy2", "completed")] {
        let doc = twiml(
            &server,
            &path,
            &[
                ("CallSid", sid),
                ("From", CALLER),
                ("To", SALES_NO),
                ("DialCallStatus", status),
            ],
        )
        .await;
        assert_eq!(doc.verbs, [Verb::Hangup], "after the one ring, as before");
    }

    let (status, text) = get(format!("{}/metrics", server.base)).await;
    assert_eq!(status, 200);
    assert_eq!(before(&text, "answered"), answered + 1.0, "{text}");
    assert_eq!(before(&text, "no_answer"), missed + 1.0, "{text}");
    assert!(
        text.contains("# TYPE callq_legacy_calls_total counter"),
        "{text}"
    );
}
