//! The interpreter against a scripted environment ([`Env`] faked) on paused time: the waitUrl
//! loop, REST updates in and out of `<Dial>`, ring timeouts, patience, `<Gather>` and `<Leave>`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use super::verbs::offered_digit;
use super::*;

/// A scripted environment: answers per URL path (in turn, the last one repeating), devices
/// that answer after a delay or never, and a log of every request.
#[derive(Default)]
struct Fake {
    answers: Mutex<HashMap<String, VecDeque<String>>>,
    requests: Mutex<Vec<(String, Params, bool)>>,
    devices: Mutex<HashMap<String, Option<Duration>>>,
    legs_over: Mutex<Vec<(String, bool)>>,
    /// Twilio's record: legs created (with their parent) and statuses reached.
    legs: Mutex<Vec<(CallInfo, String)>>,
    statuses: Mutex<Vec<(String, &'static str)>>,
    queues: TwilioQueues,
    sids: AtomicU32,
}

impl Fake {
    fn answer(&self, path: &str, xml: &str) {
        self.answers
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .push_back(xml.to_string());
    }
    fn device(&self, identity: &str, answer_after: Option<Duration>) {
        self.devices
            .lock()
            .unwrap()
            .insert(identity.to_string(), answer_after);
    }
    fn requests_to(&self, path: &str) -> Vec<Params> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(u, _, _)| u.ends_with(path) || u.contains(&format!("{path}?")))
            .map(|(_, p, _)| p.clone())
            .collect()
    }
    fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(u, _, _)| {
                u.trim_start_matches("https://callq.example.com")
                    .to_string()
            })
            .collect()
    }
}

fn get<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

impl Env for Fake {
    async fn fetch(&self, url: &str, params: Params) -> Result<Response, String> {
        self.requests
            .lock()
            .unwrap()
            .push((url.to_string(), params, true));
        let path = url
            .trim_start_matches("https://callq.example.com")
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        let xml = {
            let mut a = self.answers.lock().unwrap();
            let q = a.get_mut(&path).ok_or(format!("no answer for {path}"))?;
            if q.len() > 1 {
                q.pop_front().unwrap()
            } else {
                q.front().cloned().unwrap()
            }
        };
        crate::twilio::twiml::parse(&xml).map_err(|e| e.to_string())
    }
    fn notify(&self, url: &str, params: Params) {
        self.requests
            .lock()
            .unwrap()
            .push((url.to_string(), params, false));
    }
    async fn ring(&self, target: &Target, _leg: &str, _call: &CallInfo) -> RingResult {
        let after = match target {
            Target::Client(id) => self.devices.lock().unwrap().get(id).cloned().flatten(),
            Target::Number(_) => Some(Duration::from_secs(1)),
        };
        match after {
            Some(d) => {
                tokio::time::sleep(d).await;
                RingResult::Answered { talk: None }
            }
            None => std::future::pending().await,
        }
    }
    fn leg_over(&self, target: &Target, _leg: &str, end: LegEnd) {
        self.legs_over
            .lock()
            .unwrap()
            .push((target.address(), end == LegEnd::Completed));
    }
    fn speech(&self, _text: &str) -> Duration {
        Duration::from_secs(2)
    }
    fn media(&self, _url: &str) -> Duration {
        Duration::from_secs(10)
    }
    fn pace(&self, d: Duration) -> Duration {
        d
    }
    fn queues(&self) -> &TwilioQueues {
        &self.queues
    }
    fn new_sid(&self) -> String {
        format!("CA{:032x}", self.sids.fetch_add(1, Ordering::SeqCst) + 1000)
    }
    fn observe(&self, _call: &CallInfo, _what: Observed) {}
    fn leg_created(
        &self,
        leg: &CallInfo,
        parent: &str,
    ) -> Option<mpsc::UnboundedReceiver<Control>> {
        self.legs
            .lock()
            .unwrap()
            .push((leg.clone(), parent.to_string()));
        None
    }
    fn status_changed(&self, sid: &str, status: &'static str) {
        self.statuses
            .lock()
            .unwrap()
            .push((sid.to_string(), status));
    }
}

const BASE: &str = "https://callq.example.com";

fn call() -> CallInfo {
    CallInfo {
        sid: format!("CA{:032x}", 1),
        account_sid: format!("AC{:032x}", 2),
        from: "+15550001111".into(),
        to: "+15005550001".into(),
        direction: "inbound".into(),
    }
}

fn start(
    env: &Arc<Fake>,
    script: CallerScript,
) -> (
    mpsc::UnboundedSender<Control>,
    tokio::task::JoinHandle<CallLog>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let interp = Interpreter::new(
        env.clone(),
        call(),
        script,
        rx,
        Some(StatusCallback {
            url: format!("{BASE}/twilio/status"),
            events: vec!["completed".into()],
        }),
    );
    let h = tokio::spawn(interp.run(Start::Fetch(format!("{BASE}/twilio/voice"))));
    (tx, h)
}

const ENQUEUE: &str = r#"<Response><Say>Welcome</Say><Enqueue waitUrl="/twilio/wait" action="/twilio/queue-exit">sales</Enqueue></Response>"#;
const WAIT: &str = r#"<Response><Say>You are next in line.</Say><Pause length="5"/></Response>"#;

fn dial_doc(timeout: u32) -> Response {
    crate::twilio::twiml::parse(&format!(
            r#"<Response><Dial action="{BASE}/twilio/dial-result?agent=a1" timeout="{timeout}" answerOnBridge="true"><Client statusCallback="{BASE}/twilio/agent-leg?call=CA1&amp;agent=a1" statusCallbackEvent="answered completed"><Identity>alice</Identity></Client></Dial></Response>"#
        ))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn enqueue_requests_the_wait_url_each_time_its_document_ends() {
    let env = Arc::new(Fake::default());
    env.answer("/twilio/voice", ENQUEUE);
    env.answer("/twilio/wait", WAIT);
    env.answer("/twilio/queue-exit", "<Response/>");
    let script = CallerScript {
        patience: Some(Duration::from_secs(30)),
        ..CallerScript::default()
    };
    let (_tx, h) = start(&env, script);
    let log = h.await.unwrap();
    // welcome 2 s, then wait documents of 7 s at 2, 9, 16, 23; patience ends at 30
    let waits = env.requests_to("/twilio/wait");
    assert_eq!(waits.len(), 4, "{:?}", env.paths());
    assert_eq!(get(&waits[0], "QueuePosition"), Some("1"));
    assert_eq!(get(&waits[0], "CurrentQueueSize"), Some("1"));
    assert_eq!(get(&waits[2], "QueueTime"), Some("14"));
    assert!(get(&waits[0], "QueueSid").unwrap().starts_with("QU"));
    assert_eq!(get(&waits[0], "CallStatus"), Some("in-progress"));
    let voice = env.requests_to("/twilio/voice");
    assert_eq!(get(&voice[0], "CallStatus"), Some("ringing"));
    assert_eq!(get(&voice[0], "Direction"), Some("inbound"));
    let exit = env.requests_to("/twilio/queue-exit");
    assert_eq!(exit.len(), 1);
    assert_eq!(get(&exit[0], "QueueResult"), Some("hangup"));
    let status = env.requests_to("/twilio/status");
    assert_eq!(get(&status[0], "CallStatus"), Some("completed"));
    assert_eq!(log.outcome(), Outcome::Abandoned);
    assert_eq!(env.queues.total(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_rest_update_interrupts_the_queue_and_the_dial_connects() {
    let env = Arc::new(Fake::default());
    env.answer("/twilio/voice", ENQUEUE);
    env.answer("/twilio/wait", WAIT);
    env.answer("/twilio/queue-exit", "<Response/>");
    env.answer("/twilio/dial-result", "<Response><Hangup/></Response>");
    env.device("alice", Some(Duration::from_secs(3)));
    let script = CallerScript {
        patience: Some(Duration::from_secs(300)),
        talk: Duration::from_secs(40),
        ..CallerScript::default()
    };
    let (tx, h) = start(&env, script);
    tokio::time::sleep(Duration::from_secs(5)).await;
    tx.send(Control::Twiml(dial_doc(20))).unwrap();
    let log = h.await.unwrap();
    assert_eq!(log.queue_results, vec!["redirected"]);
    let exit = env.requests_to("/twilio/queue-exit");
    assert_eq!(get(&exit[0], "QueueResult"), Some("redirected"));
    let legs = env.requests_to("/twilio/agent-leg");
    let statuses: Vec<_> = legs.iter().map(|p| get(p, "CallStatus").unwrap()).collect();
    assert_eq!(statuses, vec!["in-progress", "completed"]);
    assert_eq!(get(&legs[0], "ParentCallSid"), Some(call().sid.as_str()));
    assert_eq!(get(&legs[1], "SequenceNumber"), Some("1"));
    assert_eq!(get(&legs[1], "To"), Some("client:alice"));
    let dial = env.requests_to("/twilio/dial-result");
    assert_eq!(dial.len(), 1);
    assert_eq!(get(&dial[0], "DialCallStatus"), Some("completed"));
    assert_eq!(get(&dial[0], "DialCallDuration"), Some("40"));
    assert_eq!(log.outcome(), Outcome::Answered);
    assert_eq!(log.wait(), Some(Duration::from_secs(8)));
    assert_eq!(
        *env.legs_over.lock().unwrap(),
        vec![("client:alice".to_string(), true)]
    );
    // patience (300 s) never applied after the answer: the call ended after the talk
    assert_eq!(log.ended.unwrap() - log.started, Duration::from_secs(48));
    // Twilio's record: the call answered as its first TwiML ran, before any wait request;
    // the <Dial> made one child leg, which rang, was answered and completed
    let legs = env.legs.lock().unwrap().clone();
    assert_eq!(legs.len(), 1);
    let (leg, parent) = &legs[0];
    assert_eq!(parent, &call().sid);
    assert_eq!(
        (leg.direction.as_str(), leg.to.as_str(), leg.from.as_str()),
        ("outbound-dial", "client:alice", call().from.as_str())
    );
    let statuses = env.statuses.lock().unwrap().clone();
    let of = |sid: &str| -> Vec<&str> {
        statuses
            .iter()
            .filter(|(s, _)| s == sid)
            .map(|(_, st)| *st)
            .collect()
    };
    assert_eq!(statuses[0], (call().sid, "in-progress"));
    assert_eq!(of(&call().sid), ["in-progress"]);
    assert_eq!(of(&leg.sid), ["ringing", "in-progress", "completed"]);
}

fn recording_dial_doc(timeout: u32) -> Response {
    crate::twilio::twiml::parse(&format!(
            r#"<Response><Dial action="{BASE}/twilio/dial-result?agent=a1" timeout="{timeout}" record="record-from-answer-dual" recordingStatusCallback="{BASE}/twilio/recording?call=CA1" recordingStatusCallbackEvent="completed"><Client><Identity>alice</Identity></Client></Dial></Response>"#
        ))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_recorded_dial_reports_its_recording_once_the_bridge_ends() {
    let env = Arc::new(Fake::default());
    env.answer("/twilio/voice", ENQUEUE);
    env.answer("/twilio/wait", WAIT);
    env.answer("/twilio/queue-exit", "<Response/>");
    env.answer("/twilio/dial-result", "<Response><Hangup/></Response>");
    env.device("alice", Some(Duration::from_secs(3)));
    let script = CallerScript {
        patience: Some(Duration::from_secs(300)),
        talk: Duration::from_secs(40),
        ..CallerScript::default()
    };
    let (tx, h) = start(&env, script);
    tokio::time::sleep(Duration::from_secs(5)).await;
    tx.send(Control::Twiml(recording_dial_doc(20))).unwrap();
    h.await.unwrap();
    let recs = env.requests_to("/twilio/recording");
    assert_eq!(recs.len(), 1, "{:?}", env.paths());
    let r = &recs[0];
    assert_eq!(get(r, "CallSid"), Some(call().sid.as_str()));
    assert_eq!(get(r, "RecordingStatus"), Some("completed"));
    assert_eq!(get(r, "RecordingDuration"), Some("40"));
    let sid = get(r, "RecordingSid").unwrap();
    assert!(sid.starts_with("RE") && sid.len() == 34, "{sid}");
    assert_eq!(
        get(r, "RecordingUrl").unwrap(),
        format!(
            "https://api.twilio.com/2010-04-01/Accounts/{}/Recordings/{sid}",
            call().account_sid
        )
    );
    // after the bridge ended: the leg's completion came first
    let paths = env.paths();
    let rec_at = paths
        .iter()
        .position(|p| p.starts_with("/twilio/recording"));
    let result_at = paths
        .iter()
        .position(|p| p.starts_with("/twilio/dial-result"));
    assert!(rec_at < result_at, "{paths:?}");
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_recorded_dial_reports_no_recording() {
    let env = Arc::new(Fake::default());
    env.answer("/twilio/voice", ENQUEUE);
    env.answer("/twilio/wait", WAIT);
    env.answer("/twilio/queue-exit", "<Response/>");
    env.answer("/twilio/dial-result", "<Response><Hangup/></Response>");
    env.device("alice", None);
    let script = CallerScript {
        patience: Some(Duration::from_secs(60)),
        ..CallerScript::default()
    };
    let (tx, h) = start(&env, script);
    tokio::time::sleep(Duration::from_secs(5)).await;
    tx.send(Control::Twiml(recording_dial_doc(10))).unwrap();
    h.await.unwrap();
    assert_eq!(env.requests_to("/twilio/dial-result").len(), 1);
    assert!(env.requests_to("/twilio/recording").is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_dial_reports_no_answer_after_its_timeout() {
    let env = Arc::new(Fake::default());
    env.answer("/twilio/voice", ENQUEUE);
    env.answer("/twilio/wait", WAIT);
    env.answer("/twilio/queue-exit", "<Response/>");
    // back in line after the miss
    env.answer("/twilio/dial-result", ENQUEUE);
    env.device("alice", None);
    let script = CallerScript {
        patience: Some(Duration::from_secs(60)),
        ..CallerScript::default()
    };
    let (tx, h) = start(&env, script);
    tokio::time::sleep(Duration::from_secs(5)).await;
    tx.send(Control::Twiml(dial_doc(15))).unwrap();
    let log = h.await.unwrap();
    let dial = env.requests_to("/twilio/dial-result");
    assert_eq!(get(&dial[0], "DialCallStatus"), Some("no-answer"));
    assert_eq!(get(&dial[0], "DialCallDuration"), Some("0"));
    assert_eq!(get(&dial[0], "DialBridged"), Some("false"));
    // only the completed event was asked with the answered one; no-answer reports completed
    let legs = env.requests_to("/twilio/agent-leg");
    assert_eq!(legs.len(), 1);
    assert_eq!(get(&legs[0], "CallStatus"), Some("no-answer"));
    assert_eq!(log.missed, 1);
    // requeued, then patience ran out in the queue
    assert_eq!(log.queue_results, vec!["redirected", "hangup"]);
    assert_eq!(log.outcome(), Outcome::Abandoned);
    assert_eq!(log.ended.unwrap() - log.started, Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn patience_ending_while_ringing_cancels_the_leg() {
    let env = Arc::new(Fake::default());
    env.answer("/twilio/voice", ENQUEUE);
    env.answer("/twilio/wait", WAIT);
    env.answer("/twilio/queue-exit", "<Response/>");
    env.answer("/twilio/dial-result", "<Response/>");
    env.device("alice", None);
    let script = CallerScript {
        patience: Some(Duration::from_secs(10)),
        ..CallerScript::default()
    };
    let (tx, h) = start(&env, script);
    tokio::time::sleep(Duration::from_secs(5)).await;
    tx.send(Control::Twiml(dial_doc(20))).unwrap();
    let log = h.await.unwrap();
    let dial = env.requests_to("/twilio/dial-result");
    assert_eq!(get(&dial[0], "DialCallStatus"), Some("canceled"));
    assert_eq!(log.outcome(), Outcome::Abandoned);
    assert_eq!(log.ended.unwrap() - log.started, Duration::from_secs(10));
    assert_eq!(
        *env.legs_over.lock().unwrap(),
        vec![("client:alice".to_string(), false)]
    );
}

#[tokio::test(start_paused = true)]
async fn gather_presses_the_menu_digit_and_the_offered_callback_digit() {
    let env = Arc::new(Fake::default());
    env.answer(
            "/twilio/voice",
            r#"<Response><Gather numDigits="1" action="/twilio/voice/menu"><Say>For sales, press 1. For support, press 2.</Say></Gather><Redirect>/twilio/voice</Redirect></Response>"#,
        );
    env.answer("/twilio/voice/menu", ENQUEUE);
    env.answer(
            "/twilio/wait",
            r#"<Response><Gather numDigits="1" action="/twilio/wait/gather"><Say>To be called back, press 3.</Say></Gather></Response>"#,
        );
    env.answer(
        "/twilio/wait/gather",
        "<Response><Say>We will call you back.</Say><Leave/></Response>",
    );
    env.answer("/twilio/queue-exit", "<Response><Hangup/></Response>");
    let script = CallerScript {
        patience: Some(Duration::from_secs(600)),
        menu_digit: Some("2".into()),
        wants_callback: true,
        ..CallerScript::default()
    };
    let (_tx, h) = start(&env, script);
    let log = h.await.unwrap();
    assert_eq!(log.pressed, vec!["2", "3"]);
    let menu = env.requests_to("/twilio/voice/menu");
    assert_eq!(get(&menu[0], "Digits"), Some("2"));
    let cb = env.requests_to("/twilio/wait/gather");
    assert_eq!(get(&cb[0], "Digits"), Some("3"));
    assert_eq!(log.queue_results, vec!["leave"]);
    assert_eq!(log.outcome(), Outcome::Callback, "the request was taken");
}

#[tokio::test(start_paused = true)]
async fn a_callback_key_answered_with_more_hold_is_not_a_callback() {
    let env = Arc::new(Fake::default());
    env.answer("/twilio/voice", ENQUEUE);
    env.answer(
        "/twilio/wait",
        r#"<Response><Gather numDigits="1" action="/twilio/wait/gather"><Say>To be called back, press 1.</Say></Gather></Response>"#,
    );
    // callq did not take the request (the call was being offered): back to hold
    env.answer(
        "/twilio/wait/gather",
        "<Response><Pause length=\"5\"/></Response>",
    );
    env.answer("/twilio/queue-exit", "<Response/>");
    let script = CallerScript {
        patience: Some(Duration::from_secs(60)),
        wants_callback: true,
        ..CallerScript::default()
    };
    let (_tx, h) = start(&env, script);
    let log = h.await.unwrap();
    assert!(
        log.pressed.len() >= 2,
        "pressed again at the next offer: {:?}",
        log.pressed
    );
    assert_ne!(log.outcome(), Outcome::Callback);
    assert_eq!(
        log.outcome(),
        Outcome::Abandoned,
        "the caller's patience ran out"
    );
}

#[tokio::test(start_paused = true)]
async fn a_caller_who_presses_nothing_falls_through_to_the_next_verb() {
    let env = Arc::new(Fake::default());
    env.answer(
            "/twilio/voice",
            r#"<Response><Gather numDigits="1" timeout="4" action="/twilio/voice/menu"><Say>Press 1.</Say></Gather><Redirect>/twilio/fallthrough</Redirect></Response>"#,
        );
    env.answer("/twilio/fallthrough", "<Response><Hangup/></Response>");
    let (_tx, h) = start(&env, CallerScript::default());
    let log = h.await.unwrap();
    assert!(log.pressed.is_empty());
    assert_eq!(
        env.paths(),
        vec!["/twilio/voice", "/twilio/fallthrough", "/twilio/status"]
    );
    assert_eq!(log.ended.unwrap() - log.started, Duration::from_secs(6));
    assert_eq!(log.outcome(), Outcome::EndedByCallq);
}

#[tokio::test(start_paused = true)]
async fn leave_requests_the_action_and_runs_its_answer() {
    let env = Arc::new(Fake::default());
    env.answer("/twilio/voice", ENQUEUE);
    env.answer("/twilio/wait", "<Response><Leave/></Response>");
    env.answer(
        "/twilio/queue-exit",
        r#"<Response><Record maxLength="30" action="/twilio/voicemail"/></Response>"#,
    );
    let script = CallerScript {
        message: Duration::from_secs(12),
        ..CallerScript::default()
    };
    let (_tx, h) = start(&env, script);
    let log = h.await.unwrap();
    let exit = env.requests_to("/twilio/queue-exit");
    assert_eq!(get(&exit[0], "QueueResult"), Some("leave"));
    let vm = env.requests_to("/twilio/voicemail");
    assert_eq!(get(&vm[0], "RecordingDuration"), Some("12"));
    assert_eq!(log.outcome(), Outcome::Voicemail);
}

#[tokio::test(start_paused = true)]
async fn a_redirect_while_bridged_reports_the_dial_then_runs_the_new_document() {
    let env = Arc::new(Fake::default());
    env.device("alice", Some(Duration::from_secs(1)));
    env.answer("/twilio/dial-result", "<Response/>");
    env.answer("/twilio/next", "<Response><Hangup/></Response>");
    let (tx, rx) = mpsc::unbounded_channel();
    let interp = Interpreter::new(env.clone(), call(), CallerScript::default(), rx, None);
    let h = tokio::spawn(interp.run(Start::Doc {
        doc: dial_doc(20),
        base: BASE.into(),
    }));
    tokio::time::sleep(Duration::from_secs(10)).await;
    tx.send(Control::Url(format!("{BASE}/twilio/next")))
        .unwrap();
    let log = h.await.unwrap();
    assert_eq!(
        env.paths(),
        vec![
            "/twilio/agent-leg?call=CA1&agent=a1",
            "/twilio/agent-leg?call=CA1&agent=a1",
            "/twilio/dial-result?agent=a1",
            "/twilio/next"
        ]
    );
    assert_eq!(log.redirects, 1);
    assert_eq!(log.outcome(), Outcome::Answered);
}

#[test]
fn offered_digits_are_read_from_the_prompt() {
    assert_eq!(offered_digit("To be called back, press 3."), Some('3'));
    assert_eq!(offered_digit("Please hold"), None);
    assert_eq!(
        resolve_url("https://h.example/twilio/voice", "/twilio/wait"),
        "https://h.example/twilio/wait"
    );
    let sid = TwilioQueues::sid_for("sales");
    assert_eq!(sid.len(), 34);
    assert!(sid.starts_with("QU"), "{sid}");
    assert_ne!(sid, TwilioQueues::sid_for("support"));
}

/// A `<Dial>` of three clients, as a ring_all offer sends it.
fn ring_all_doc(timeout: u32) -> Response {
    let client = |agent: &str, identity: &str| {
        format!(
            r#"<Client statusCallback="{BASE}/twilio/agent-leg?call=CA1&amp;agent={agent}" statusCallbackEvent="answered completed"><Identity>{identity}</Identity></Client>"#
        )
    };
    crate::twilio::twiml::parse(&format!(
        r#"<Response><Dial action="{BASE}/twilio/dial-result?agent=a1" timeout="{timeout}" answerOnBridge="true">{}{}{}</Dial></Response>"#,
        client("a1", "alice"),
        client("a2", "bob"),
        client("a3", "carol"),
    ))
    .unwrap()
}

/// The status callbacks each client's leg got, by its `To`.
fn leg_statuses(env: &Fake) -> HashMap<String, Vec<String>> {
    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for p in env.requests_to("/twilio/agent-leg") {
        by.entry(get(&p, "To").unwrap().to_string())
            .or_default()
            .push(get(&p, "CallStatus").unwrap().to_string());
    }
    by
}

#[tokio::test(start_paused = true)]
async fn a_dial_of_several_clients_rings_them_at_once_and_bridges_the_first_to_answer() {
    let env = Arc::new(Fake::default());
    env.answer("/twilio/voice", ENQUEUE);
    env.answer("/twilio/wait", WAIT);
    env.answer("/twilio/queue-exit", "<Response/>");
    env.answer("/twilio/dial-result", "<Response><Hangup/></Response>");
    env.device("alice", Some(Duration::from_secs(6)));
    env.device("bob", Some(Duration::from_secs(3)));
    env.device("carol", None);
    let script = CallerScript {
        patience: Some(Duration::from_secs(300)),
        talk: Duration::from_secs(40),
        ..CallerScript::default()
    };
    let (tx, h) = start(&env, script);
    tokio::time::sleep(Duration::from_secs(5)).await;
    tx.send(Control::Twiml(ring_all_doc(20))).unwrap();
    let log = h.await.unwrap();
    // three legs rang at once, children of the caller's call
    let legs = env.legs.lock().unwrap().clone();
    assert_eq!(legs.len(), 3);
    assert!(legs.iter().all(|(_, parent)| parent == &call().sid));
    // bob answered first (3 s, while alice's phone still rang): bridged; the others canceled
    let by = leg_statuses(&env);
    assert_eq!(by["client:bob"], ["in-progress", "completed"]);
    assert_eq!(by["client:alice"], ["canceled"]);
    assert_eq!(by["client:carol"], ["canceled"]);
    let mut over = env.legs_over.lock().unwrap().clone();
    over.sort();
    assert_eq!(
        over,
        vec![
            ("client:alice".to_string(), false),
            ("client:bob".to_string(), true),
            ("client:carol".to_string(), false),
        ]
    );
    let dial = env.requests_to("/twilio/dial-result");
    assert_eq!(dial.len(), 1);
    assert_eq!(get(&dial[0], "DialCallStatus"), Some("completed"));
    let bob = legs.iter().find(|(l, _)| l.to == "client:bob").unwrap();
    assert_eq!(get(&dial[0], "DialCallSid"), Some(bob.0.sid.as_str()));
    assert_eq!(log.outcome(), Outcome::Answered);
    assert_eq!(log.agent.as_deref(), Some("client:bob"));
    assert_eq!(log.wait(), Some(Duration::from_secs(8)));
    assert_eq!(log.rings, 1, "one <Dial>, one offer");
}

#[tokio::test(start_paused = true)]
async fn a_dial_of_several_clients_nobody_answers_ends_no_answer_for_every_leg() {
    let env = Arc::new(Fake::default());
    env.answer("/twilio/voice", ENQUEUE);
    env.answer("/twilio/wait", WAIT);
    env.answer("/twilio/queue-exit", "<Response/>");
    env.answer("/twilio/dial-result", "<Response><Hangup/></Response>");
    for who in ["alice", "bob", "carol"] {
        env.device(who, None);
    }
    let script = CallerScript {
        patience: Some(Duration::from_secs(300)),
        ..CallerScript::default()
    };
    let (tx, h) = start(&env, script);
    tokio::time::sleep(Duration::from_secs(5)).await;
    tx.send(Control::Twiml(ring_all_doc(10))).unwrap();
    let log = h.await.unwrap();
    let by = leg_statuses(&env);
    for who in ["client:alice", "client:bob", "client:carol"] {
        assert_eq!(by[who], ["no-answer"], "{who}");
    }
    let dial = env.requests_to("/twilio/dial-result");
    assert_eq!(dial.len(), 1);
    assert_eq!(get(&dial[0], "DialCallStatus"), Some("no-answer"));
    assert_eq!(log.missed, 1, "one <Dial> unanswered");
    assert!(log.answered.is_none());
}
