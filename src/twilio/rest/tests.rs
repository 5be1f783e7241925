//! The REST client against the lab's REST recorder standing in for Twilio's API: requests and
//! parsing, Twilio's errors and their classes, timeouts, retries, and a request gate (the
//! worker's circuit breaker) around the client.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::time::Instant;

use super::*;
use crate::sim::recorder::{Recorder, Reply, Request};
use crate::worker::breaker::{BreakerState, CircuitBreaker};

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TOKEN: &str = "secret-token";

/// How the recorder answers: by what the CallSid starts with, as Twilio would answer such a
/// call (`CAflaky…` fails `flaky` times before it succeeds; `CAswitch` fails while
/// `switch_failing`).
struct Twilio {
    recorder: Recorder,
    switch_failing: Arc<AtomicBool>,
}

impl Twilio {
    fn seen(&self) -> Vec<Request> {
        self.recorder.requests()
    }
    fn count(&self) -> usize {
        self.recorder.count()
    }
}

async fn stand_in_flaky(flaky: u32) -> (String, Twilio) {
    let switch_failing = Arc::new(AtomicBool::new(false));
    let failing = switch_failing.clone();
    let mut flaky_left = flaky;
    let recorder = Recorder::start(ACCOUNT, TOKEN, move |req, _| {
        let sid = req.call_sid.as_deref().unwrap_or("");
        match sid {
            s if s.starts_with("CA429") => Reply::too_many(),
            s if s.starts_with("CA500") => Reply::Raw(500, "upstream exploded"),
            s if s.starts_with("CAgone") => Reply::call_gone(),
            s if s.starts_with("CA404") => Reply::not_found(),
            s if s.starts_with("CAslow") => Reply::after(1_000, Reply::Ok),
            s if s.starts_with("CAflaky") && flaky_left > 0 => {
                flaky_left -= 1;
                Reply::error(503, 20500, "Service Unavailable")
            }
            s if s.starts_with("CAswitch") && failing.load(Ordering::SeqCst) => {
                Reply::server_error()
            }
            s if s.starts_with("CAbadjson") => Reply::Raw(200, "<html>ok</html>"),
            _ => Reply::Ok,
        }
    })
    .await
    .expect("recorder");
    let base = recorder.base.clone();
    (
        base,
        Twilio {
            recorder,
            switch_failing,
        },
    )
}

async fn stand_in() -> (String, Twilio) {
    stand_in_flaky(0).await
}

fn client(base: &str, timeout_ms: u64) -> TwilioRest {
    TwilioRest::new(RestConfig {
        api_base: base.to_owned(),
        account_sid: ACCOUNT.to_owned(),
        username: ACCOUNT.to_owned(),
        password: TOKEN.to_owned(),
        request_timeout: Duration::from_millis(timeout_ms),
    })
    .expect("client")
}

fn fast_backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        max_attempts: 50,
    }
}

fn form_get<'a>(seen: &'a Request, key: &str) -> Vec<&'a str> {
    seen.params(key)
}

// ---- requests and parsing -----------------------------------------------------------

#[tokio::test]
async fn update_call_twiml_sends_form_and_basic_auth_and_parses_call() {
    let (base, state) = stand_in().await;
    let rest = client(&base, 2_000);
    let twiml =
        r#"<Response><Dial timeout="20"><Client>alice &amp; bob</Client></Dial></Response>"#;
    let call = rest
        .update_call_twiml("CAok000000000000000000000000000001", twiml)
        .await
        .expect("redirect ok");
    assert_eq!(call.sid, "CAok000000000000000000000000000001");
    assert_eq!(call.status, CallStatus::InProgress);
    assert_eq!(call.account_sid, ACCOUNT);
    assert_eq!(call.to.as_deref(), Some("+15005550001"));
    assert_eq!(call.from.as_deref(), Some("+15550001111"));
    assert_eq!(call.direction.as_deref(), Some("inbound"));
    assert_eq!(call.duration, None);

    let seen = state.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(
        req.path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/CAok000000000000000000000000000001.json")
    );
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
    );
    assert_eq!(req.authorization.as_deref(), Some(expected.as_str()));
    assert_eq!(
        req.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.form, vec![("Twiml".to_owned(), twiml.to_owned())]);
}

#[tokio::test]
async fn update_call_url_and_hangup_send_twilio_parameter_names() {
    let (base, state) = stand_in().await;
    // A trailing slash on the base must not produce `//2010-04-01`.
    let rest = client(&format!("{base}/"), 2_000);
    rest.update_call_url(
        "CAok1",
        "https://callq.example/twilio/wait?q=1",
        HttpMethod::Get,
    )
    .await
    .expect("url redirect");
    let call = rest.hangup_call("CAok2").await.expect("hangup");
    assert_eq!(call.status, CallStatus::Completed);
    assert!(call.status.is_final());

    let seen = state.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/CAok1.json")
    );
    assert_eq!(
        seen[0].form,
        vec![
            (
                "Url".to_owned(),
                "https://callq.example/twilio/wait?q=1".to_owned()
            ),
            ("Method".to_owned(), "GET".to_owned()),
        ]
    );
    assert_eq!(
        seen[1].form,
        vec![("Status".to_owned(), "completed".to_owned())]
    );
}

#[tokio::test]
async fn create_call_sends_repeated_status_callback_event_and_expects_201() {
    let (base, state) = stand_in().await;
    let rest = client(&base, 2_000);
    let req = CreateCall {
        to: "client:alice".to_owned(),
        from: "+15005550006".to_owned(),
        instructions: CallInstructions::Twiml("<Response><Say>Hi</Say></Response>".into()),
        status_callback: Some("https://callq.example/twilio/agent-leg".to_owned()),
        status_callback_event: vec![
            CallEvent::Initiated,
            CallEvent::Ringing,
            CallEvent::Answered,
            CallEvent::Completed,
        ],
        status_callback_method: Some(HttpMethod::Post),
        timeout_s: Some(20),
    };
    let call = rest.create_call(&req).await.expect("created");
    assert_eq!(call.status, CallStatus::Queued);
    assert_eq!(call.direction.as_deref(), Some("outbound-api"));

    let seen = state.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.path, format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json"));
    assert_eq!(form_get(r, "To"), ["client:alice"]);
    assert_eq!(form_get(r, "From"), ["+15005550006"]);
    assert_eq!(form_get(r, "Twiml"), ["<Response><Say>Hi</Say></Response>"]);
    assert!(form_get(r, "Url").is_empty());
    assert_eq!(
        form_get(r, "StatusCallback"),
        ["https://callq.example/twilio/agent-leg"]
    );
    assert_eq!(
        form_get(r, "StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(form_get(r, "StatusCallbackMethod"), ["POST"]);
    assert_eq!(form_get(r, "Timeout"), ["20"]);
    assert!(r.authorization.is_some());
}

#[tokio::test]
async fn create_call_with_url_sends_url_and_method() {
    let (base, state) = stand_in().await;
    let rest = client(&base, 2_000);
    let req = CreateCall {
        instructions: CallInstructions::Url {
            url: "https://callq.example/twilio/callback".to_owned(),
            method: HttpMethod::Post,
        },
        ..CreateCall::with_twiml("client:bob", "+15005550006", "")
    };
    rest.create_call(&req).await.expect("created");
    let seen = state.seen();
    assert_eq!(
        form_get(&seen[0], "Url"),
        ["https://callq.example/twilio/callback"]
    );
    assert_eq!(form_get(&seen[0], "Method"), ["POST"]);
    assert!(form_get(&seen[0], "Twiml").is_empty());
    assert!(form_get(&seen[0], "StatusCallbackEvent").is_empty());
    assert!(form_get(&seen[0], "Timeout").is_empty());
}

#[tokio::test]
async fn dequeue_member_posts_url_and_method() {
    let (base, state) = stand_in().await;
    let rest = client(&base, 2_000);
    let m = rest
        .dequeue_member("QU1", "CA9", "https://callq.example/x", HttpMethod::Post)
        .await
        .expect("dequeued");
    assert_eq!(m.call_sid, "CA9");
    assert_eq!(m.position, Some(1));
    let seen = state.seen();
    assert_eq!(
        seen[0].path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Queues/QU1/Members/CA9.json")
    );
    assert_eq!(form_get(&seen[0], "Url"), ["https://callq.example/x"]);
    assert_eq!(form_get(&seen[0], "Method"), ["POST"]);
}

#[tokio::test]
async fn long_twiml_is_refused_locally() {
    let (base, state) = stand_in().await;
    let rest = client(&base, 2_000);
    // 4,000 two-byte characters are fine (the limit is in characters, not bytes).
    let ok = "é".repeat(MAX_INLINE_TWIML_CHARS);
    rest.update_call_twiml("CAok", &ok)
        .await
        .expect("4000 chars ok");
    let too_long = "x".repeat(MAX_INLINE_TWIML_CHARS + 1);
    let err = rest
        .update_call_twiml("CAok", &too_long)
        .await
        .expect_err("too long");
    assert_eq!(err, RestError::TwimlTooLong { len: 4_001 });
    assert_eq!(err.code(), Some(CODE_TWIML_TOO_LONG));
    assert!(err.to_string().contains("32018"));
    assert!(!err.is_retryable());
    let err = rest
        .create_call(&CreateCall::with_twiml(
            "client:a",
            "+15005550006",
            too_long,
        ))
        .await
        .expect_err("too long");
    assert!(matches!(err, RestError::TwimlTooLong { .. }));
    assert_eq!(
        state.count(),
        1,
        "only the 4,000-character request was sent"
    );
}

#[tokio::test]
async fn bad_input_is_refused_locally() {
    let (base, state) = stand_in().await;
    let rest = client(&base, 2_000);
    for sid in ["", "CA/../Queues", "CA 1"] {
        let err = rest.hangup_call(sid).await.expect_err("bad sid");
        assert!(matches!(err, RestError::Invalid(_)), "{sid:?}: {err:?}");
    }
    let mut req = CreateCall::with_twiml("client:a", "+15005550006", "<Response/>");
    req.timeout_s = Some(601);
    assert!(matches!(
        rest.create_call(&req).await,
        Err(RestError::Invalid(_))
    ));
    assert_eq!(state.count(), 0);

    let mut cfg = RestConfig::with_auth_token(ACCOUNT, TOKEN);
    cfg.api_base = "not a url".to_owned();
    assert!(matches!(TwilioRest::new(cfg), Err(RestError::Invalid(_))));
    let cfg = RestConfig::with_auth_token(ACCOUNT, "");
    assert!(matches!(TwilioRest::new(cfg), Err(RestError::Invalid(_))));
    let dbg = format!("{:?}", RestConfig::with_auth_token(ACCOUNT, TOKEN));
    assert!(!dbg.contains(TOKEN), "password must not be printed");
}

// ---- errors ---------------------------------------------------------------------------

#[tokio::test]
async fn twilio_errors_are_parsed_and_classified() {
    let (base, _state) = stand_in().await;
    let rest = client(&base, 2_000);

    let gone = rest.update_call_twiml("CAgone", "<Response/>").await;
    let gone = gone.expect_err("21220");
    assert_eq!(
        gone,
        RestError::Api {
            status: 400,
            code: Some(21220),
            message: "Call is not in-progress. Cannot redirect.".to_owned(),
            more_info: Some("https://www.twilio.com/docs/errors/21220".to_owned()),
        }
    );
    assert_eq!(gone.kind(), FailureKind::NotInProgress);
    assert!(!gone.is_retryable());

    let nf = rest.hangup_call("CA404").await.expect_err("20404");
    assert_eq!(nf.code(), Some(20404));
    assert_eq!(nf.kind(), FailureKind::Misconfigured);
    assert!(!nf.is_retryable());

    let busy = rest.hangup_call("CA429").await.expect_err("20429");
    assert!(matches!(
        busy,
        RestError::Api {
            status: 429,
            code: Some(20429),
            ..
        }
    ));
    assert!(busy.is_retryable());
    assert!(busy.is_unprocessed());
    assert_eq!(busy.kind(), FailureKind::Outage);

    let boom = rest.hangup_call("CA500").await.expect_err("500");
    assert_eq!(
        boom,
        RestError::Api {
            status: 500,
            code: None,
            message: "upstream exploded".to_owned(),
            more_info: None,
        }
    );
    assert!(boom.is_retryable());
    assert!(!boom.is_unprocessed());

    let bad = rest.hangup_call("CAbadjson").await.expect_err("decode");
    assert!(matches!(bad, RestError::Decode { status: 200, .. }));
    assert!(!bad.is_retryable());
}

#[tokio::test]
async fn slow_response_times_out() {
    let (base, _state) = stand_in().await;
    let rest = client(&base, 100);
    let started = Instant::now();
    let err = rest.hangup_call("CAslow").await.expect_err("timeout");
    assert_eq!(err, RestError::Timeout);
    assert!(err.is_retryable());
    assert!(!err.is_unprocessed());
    assert!(started.elapsed() < Duration::from_millis(900));
}

#[tokio::test]
async fn connection_refused_is_a_retryable_connect_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let rest = client(&format!("http://{addr}"), 500);
    let err = rest.hangup_call("CAok").await.expect_err("refused");
    assert!(matches!(err, RestError::Connect(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.is_unprocessed());
}

// ---- retry ----------------------------------------------------------------------------

#[tokio::test]
async fn retry_then_success() {
    let (base, state) = stand_in_flaky(3).await;
    let rest = client(&base, 2_000);
    let deadline = Instant::now() + Duration::from_secs(5);
    let call = with_retry(deadline, &fast_backoff(), || {
        rest.update_call_twiml("CAflaky1", "<Response/>")
    })
    .await
    .expect("eventually ok");
    assert_eq!(call.sid, "CAflaky1");
    assert_eq!(state.count(), 4);
}

#[tokio::test]
async fn retries_stop_at_the_deadline_and_return_the_last_error() {
    let (base, state) = stand_in().await;
    let rest = client(&base, 2_000);
    let started = Instant::now();
    let deadline = started + Duration::from_millis(300);
    let err = with_retry(deadline, &fast_backoff(), || rest.hangup_call("CA429"))
        .await
        .expect_err("never succeeds");
    let elapsed = started.elapsed();
    // The last error is Twilio's 20429, unless the machine was slow enough that the last
    // attempt was still in flight at the deadline and was cut short.
    assert!(
        matches!(
            err,
            RestError::Api {
                code: Some(20429),
                ..
            } | RestError::Timeout
        ),
        "{err:?}"
    );
    // generous bound: these machines are shared; what matters is that retrying stops
    assert!(elapsed <= Duration::from_millis(300 + 700), "{elapsed:?}");
    assert!(state.count() >= 2, "retried at least once");
}

#[tokio::test]
async fn an_attempt_running_into_the_deadline_is_cut_short() {
    let (base, _state) = stand_in().await;
    let rest = client(&base, 5_000);
    let started = Instant::now();
    let deadline = started + Duration::from_millis(100);
    let err = with_retry(deadline, &fast_backoff(), || rest.hangup_call("CAslow"))
        .await
        .expect_err("deadline");
    assert_eq!(err, RestError::Timeout);
    assert!(started.elapsed() < Duration::from_millis(500));
    // Past the deadline nothing is attempted at all.
    let calls = AtomicU32::new(0);
    let err = with_retry(Instant::now(), &fast_backoff(), || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<(), RestError>(())
    })
    .await
    .expect_err("no time");
    assert_eq!(err, RestError::Timeout);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn non_retryable_errors_are_not_retried() {
    let (base, state) = stand_in().await;
    let rest = client(&base, 2_000);
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = with_retry(deadline, &fast_backoff(), || {
        rest.update_call_twiml("CAgone", "<Response/>")
    })
    .await
    .expect_err("gone");
    assert_eq!(err.kind(), FailureKind::NotInProgress);
    assert_eq!(state.count(), 1);
}

#[tokio::test]
async fn max_attempts_and_custom_predicate_are_honoured() {
    let calls = AtomicU32::new(0);
    let deadline = Instant::now() + Duration::from_secs(5);
    let policy = Backoff {
        max_attempts: 3,
        ..fast_backoff()
    };
    let err = with_retry(deadline, &policy, || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(RestError::Transport("reset".into()))
    })
    .await
    .expect_err("fails");
    assert_eq!(err, RestError::Transport("reset".into()));
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // For creating calls only replay what Twilio certainly did not process.
    calls.store(0, Ordering::SeqCst);
    let err = with_retry_if(
        deadline,
        &fast_backoff(),
        RestError::is_unprocessed,
        || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(RestError::Timeout)
        },
    )
    .await
    .expect_err("fails");
    assert_eq!(err, RestError::Timeout);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// ---- a request gate: the worker's circuit breaker around the client ----------------------

#[tokio::test]
async fn breaker_opens_fails_fast_half_opens_and_closes() {
    let (base, state) = stand_in().await;
    let breaker = Arc::new(CircuitBreaker::new(2, Duration::from_millis(250)));
    let rest = client(&base, 2_000).with_gate(breaker.clone());
    state.switch_failing.store(true, Ordering::SeqCst);

    for _ in 0..2 {
        let err = rest.hangup_call("CAswitch").await.expect_err("500");
        assert!(err.is_retryable());
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let sent = state.count();
    let err = rest.hangup_call("CAswitch").await.expect_err("open");
    assert_eq!(err, RestError::CircuitOpen);
    assert!(!err.is_retryable());
    assert_eq!(
        state.count(),
        sent,
        "an open breaker does not touch the network"
    );

    // Half-open: the trial fails, the breaker opens again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    rest.hangup_call("CAswitch").await.expect_err("trial fails");
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(state.count(), sent + 1);

    // Half-open again: Twilio is back, the trial succeeds, the breaker closes.
    state.switch_failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    rest.hangup_call("CAswitch").await.expect("trial ok");
    assert_eq!(breaker.state(), BreakerState::Closed);
    rest.hangup_call("CAswitch").await.expect("closed");
}

#[tokio::test]
async fn call_gone_errors_do_not_trip_the_breaker() {
    let (base, _state) = stand_in().await;
    let breaker = Arc::new(CircuitBreaker::new(1, Duration::from_secs(60)));
    let rest = client(&base, 2_000).with_gate(breaker.clone());
    for _ in 0..3 {
        let err = rest.hangup_call("CAgone").await.expect_err("21220");
        assert_eq!(err.kind(), FailureKind::NotInProgress);
    }
    let err = rest.hangup_call("CA404").await.expect_err("20404");
    assert_eq!(err.kind(), FailureKind::Misconfigured);
    assert_eq!(breaker.state(), BreakerState::Closed);
    // Local refusals never reach the breaker either.
    let long = "x".repeat(MAX_INLINE_TWIML_CHARS + 1);
    assert!(rest.update_call_twiml("CAok", &long).await.is_err());
    assert_eq!(breaker.state(), BreakerState::Closed);
    // One retryable failure (threshold 1) opens it.
    rest.hangup_call("CA500").await.expect_err("500");
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test]
async fn clones_share_the_breaker() {
    let (base, _state) = stand_in().await;
    let breaker = Arc::new(CircuitBreaker::new(1, Duration::from_secs(60)));
    let a = client(&base, 2_000).with_gate(breaker);
    let b = a.clone();
    a.hangup_call("CA500").await.expect_err("500");
    assert_eq!(b.hangup_call("CAok").await, Err(RestError::CircuitOpen));
}
