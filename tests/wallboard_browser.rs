//! The operator wallboard (`GET /wallboard`) in a real headless Chromium, against `callq demo`
//! (started through `lab::demo::start`, as the command starts it): the embedded demo centre,
//! `callq serve`, a worker and a private Redis, with the Twilio simulator placing calls and
//! playing agents, time compressed and the load above what the agents can take, so a queue
//! forms.
//!
//! What it shows: without a session the page is the login form; logging in with the viewer
//! token there opens the board, whose script runs under its Content-Security-Policy; the
//! demo's queues appear with agents in them, the numbers then change while the page stays the
//! same document (no reload); the history chart draws lines of
//! points for every queue, and a queue that formed shows in its samples. A screenshot is kept
//! as `target/tmp/wallboard.png`.
//!
//! Needs `chromium` and `chromedriver` (`scripts/ensure-browser.sh` installs Debian's); without
//! them the test fails and says so.

mod support;

use std::time::Duration;

use callq::lab::demo::{start, Demo, DemoOptions};
use serde_json::{json, Value};
use support::browser::*;

/// How long any one condition may take to come true on a busy machine.
const DEADLINE: Duration = Duration::from_secs(60);
const AGENTS: u32 = 4;

async fn until<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    until_within(DEADLINE, what, f).await
}

/// `callq demo` itself (`lab::demo::start`, what the command runs) with [`AGENTS`] agents and
/// callers arriving at twice the rate they can answer, for `for_real`.
async fn demo(for_real: Duration) -> Demo {
    let options = DemoOptions {
        agents: AGENTS,
        load: 2.0,
        seed: 7,
        ..DemoOptions::new(for_real)
    };
    start(&options).await.expect("the demo starts")
}

/// The board's queue rows as the page shows them: [name, waiting, oldest, est., ready,
/// on call, wrap-up, paused, offline].
async fn rows(b: &Browser) -> Vec<Vec<String>> {
    let v = b
        .js(
            "return [...document.querySelectorAll('#queues tr')].map(tr => \
             [...tr.children].map(td => td.textContent));",
            vec![],
        )
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

fn num(s: &str) -> u64 {
    s.trim().parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallboard_shows_the_demo_live_with_its_last_hour_charted() {
    let b = Browser::start_sized(1280, 1100).await;
    let demo = demo(Duration::from_secs(150)).await;
    let stack = &demo.stack;
    let board = format!("{}/wallboard", stack.callq_url);

    // no session: the login form, and the data refuses
    b.goto(&board).await;
    assert!(b.shown("token").await, "the login form is shown");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let refused = http
        .get(format!("{board}/data"))
        .send()
        .await
        .expect("data request");
    assert_eq!(refused.status(), 401);

    // a wrong token: the form again
    b.type_into("token", "not-the-token-not-the-token").await;
    b.click_css("button[type=submit]").await;
    until("the form answers a wrong token", || async {
        let body = b.js("return document.body.textContent;", vec![]).await;
        body.as_str()
            .is_some_and(|t| t.contains("not right"))
            .then_some(())
    })
    .await;

    // the viewer token through the form opens the board
    b.type_into("token", &stack.viewer_token).await;
    b.click_css("button[type=submit]").await;
    until("the board after logging in", || async {
        (b.shown("queues").await && b.shown("chart-waiting").await).then_some(())
    })
    .await;
    // the board runs under its Content-Security-Policy (only its own script, by hash): the
    // script ran above, so the policy lets it
    let csp = b
        .js(
            "return fetch('/wallboard').then(r => r.headers.get('content-security-policy'));",
            vec![],
        )
        .await;
    let csp = csp.as_str().unwrap_or("");
    assert!(
        csp.contains("script-src 'sha256-") && csp.contains("default-src 'none'"),
        "{csp:?}"
    );
    // a mark on this document: if the page reloaded, it would be gone
    b.js("window.sameDocument = true; return true;", vec![])
        .await;

    // the demo's queues appear, with its agents logged in
    let first = until("the demo's queues with agents on the board", || async {
        let r = rows(&b).await;
        let names: Vec<&str> = r.iter().map(|row| row[0].as_str()).collect();
        let agents: u64 = r
            .iter()
            .map(|row| row[4..9].iter().map(|c| num(c)).sum::<u64>())
            .sum();
        (names == ["sales", "soporte", "support"] && agents > 0).then_some(r)
    })
    .await;
    assert_eq!(b.text("centre").await, stack.centre.centre);

    // then they change: agents take calls, and callers queue for them
    until("agents on calls", || async {
        let r = rows(&b).await;
        (r.iter().map(|row| num(&row[5])).sum::<u64>() > 0).then_some(())
    })
    .await;
    until("a queue forms on the board", || async {
        let r = rows(&b).await;
        (r.iter().map(|row| num(&row[1])).sum::<u64>() > 0).then_some(())
    })
    .await;
    // (the line may have formed before the first look: wait for the numbers to move)
    until("the board's numbers change", || async {
        (rows(&b).await != first).then_some(())
    })
    .await;
    let events = b.text("events").await;
    assert!(
        events.contains("queue="),
        "transitions are listed: {events:?}"
    );

    // the chart: a line of points per queue, in both charts, and the queue that formed
    let chart = "const c = id => [...document.querySelectorAll('#' + id + ' polyline')] \
                 .map(p => [p.dataset.queue, p.getAttribute('class'), \
                 p.getAttribute('points').trim().split(/\\s+/).length]); \
                 return { waiting: c('chart-waiting'), wait: c('chart-wait'), \
                 samples: samples.length, \
                 queued: samples.some(s => s.queues.some(q => q.waiting > 0)), \
                 legend: document.getElementById('legend').textContent };";
    let drawn = until(
        "the chart draws lines of points with the queue in them",
        || async {
            let v = b.js(chart, vec![]).await;
            let lines = |k: &str| v[k].as_array().cloned().unwrap_or_default();
            let long = |k: &str, q: &str| {
                lines(k)
                    .iter()
                    .any(|l| l[0] == json!(q) && l[2].as_u64() >= Some(3))
            };
            let all = ["sales", "support"]
                .iter()
                .all(|q| long("waiting", q) && long("wait", q));
            (all && v["queued"] == json!(true)).then_some(v)
        },
    )
    .await;
    let classes: Vec<Value> = drawn["wait"]
        .as_array()
        .map(|a| a.iter().map(|l| l[1].clone()).collect())
        .unwrap_or_default();
    assert!(
        classes.contains(&json!("series oldest")) && classes.contains(&json!("series average")),
        "the wait chart has oldest and average lines: {drawn}"
    );
    let legend = drawn["legend"].as_str().unwrap_or("");
    assert!(
        legend.contains("sales") && legend.contains("support"),
        "{drawn}"
    );
    // more points arrive without a reload
    let before = drawn["samples"].as_u64().unwrap_or(0);
    until("a newer sample reaches the page", || async {
        let v = b.js(chart, vec![]).await;
        (v["samples"].as_u64() > Some(before)).then_some(())
    })
    .await;
    assert_eq!(
        b.js("return window.sameDocument === true;", vec![]).await,
        json!(true),
        "the page updated in place, never reloaded"
    );

    let shot = b.screenshot("wallboard").await;
    println!("wallboard screenshot: {}", shot.display());

    // the data's history is incremental: after the newest id, nothing older comes back
    let last: Value = b
        .js(
            "return fetch('/wallboard/data').then(r => r.json()).then(d => d.history);",
            vec![],
        )
        .await;
    let ids: Vec<&str> = last
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(ids.len() >= 3, "{last}");
    let newest = ids[ids.len() - 1];
    let after = b
        .js(
            "return fetch('/wallboard/data?since=' + encodeURIComponent(arguments[0])) \
             .then(r => r.json()).then(d => d.history.map(s => s.id));",
            vec![json!(newest)],
        )
        .await;
    for id in after.as_array().cloned().unwrap_or_default() {
        assert!(
            id.as_str() != Some(newest) && !ids.contains(&id.as_str().unwrap_or("")),
            "only newer samples after since={newest}: {after}"
        );
    }

    demo.stop().await;
}
