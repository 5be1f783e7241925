//! Property tests of the Twilio edge: random bytes and random (correctly signed) parameter sets
//! thrown at every webhook of running servers (Redis up, a closed queue, Redis down). Never a
//! 5xx, never a dropped connection (a panic), every 200 a TwiML document Twilio would accept,
//! and the routing invariants hold after any sequence of webhooks.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use callq::config::CentreConfig;
use callq::store::{Claim, Store};
use callq::twilio::signature::signed_form;
use callq::twilio::twiml;
use proptest::prelude::*;
use support::*;

const PATHS: &[&str] = &[
    "/twilio/voice",
    "/twilio/voice/menu",
    "/twilio/voicemail",
    "/twilio/wait",
    "/twilio/wait/gather",
    "/twilio/queue-exit",
    "/twilio/dial-result",
    "/twilio/agent-leg",
    "/twilio/callback-result",
    "/twilio/status",
    "/twilio/recording",
];

const SIDS: &[&str] = &["CAf1", "CAf2", "CAf3", "CAf4", "CAf5", "CAf6"];
const AGENTS: &[&str] = &["a1", "a2"];

struct Fixture {
    rt: tokio::runtime::Runtime,
    /// [open centre, closed centre, Redis down]
    servers: Vec<TestServer>,
    client: reqwest::Client,
}

fn centre(sales_extra: &str) -> CentreConfig {
    let toml = format!(
        r#"
centre = "fuzz"
default_queue = "sales"
[priority]
vip = ["+14155550100"]
[[priority.rules]]
from_prefix = "+1800"
boost_s = 30
[ivr]
numbers = ["+15005550000"]
prompt = "For sales, press 1. For support, press 2."
options = {{ "1" = "sales", "2" = "support" }}
[queues.support]
numbers = ["+15005550002"]
max_wait_s = 0
overflow = {{ action = "queue", queue = "sales" }}
callback_after_s = 0
hold_music = ""
[queues.sales]
numbers = ["+15005550001"]
callback_after_s = 0
max_wait_s = 5
overflow = {{ action = "voicemail" }}
{sales_extra}
"#
    );
    centre_from(&toml)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let servers = rt.block_on(async {
            let open = spawn_server(centre("")).await;
            for id in AGENTS {
                online_agent(
                    &open.state.store,
                    &agent(id, &[("sales", 1), ("support", 2)]),
                )
                .await;
            }
            let closed = spawn_server(centre(
                "after_hours = { action = \"callback\" }\n[queues.sales.hours]\ntimezone = \"UTC\"\n",
            ))
            .await;
            let down = Store::connect("redis://127.0.0.1:1/", "fuzz", 2).expect("store");
            let down = spawn_server_on(down, centre("")).await;
            vec![open, closed, down]
        });
        Fixture {
            rt,
            servers,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        }
    })
}

/// Send and check what every answer must be; returns the status.
fn send(server: usize, path: &str, body: Vec<u8>, signature: Option<String>) -> u16 {
    let fx = fixture();
    let srv = &fx.servers[server % fx.servers.len()];
    fx.rt.block_on(async {
        let mut req = fx
            .client
            .post(format!("{}{}", srv.base, path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("x-twilio-signature", sig);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => panic!("{path}: no answer (a panic in a handler?): {e}"),
        };
        let status = resp.status().as_u16();
        assert!(status < 500, "{path}: {status}");
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.unwrap_or_default();
        if status == 200 {
            assert!(
                content_type.starts_with("text/xml"),
                "{path}: {content_type}"
            );
            if let Err(e) = twiml::parse(&text) {
                panic!("{path}: invalid TwiML ({e}): {text}");
            }
        }
        status
    })
}

/// Occasionally let an agent take a call, so offers and connections happen too.
fn claim_once() {
    let fx = fixture();
    let store = &fx.servers[0].state.store;
    fx.rt.block_on(async {
        if let Ok(Claim::Offer(o)) = store.claim(Duration::from_secs(30), 1).await {
            let _ = (o.call_sid, o.agent_id);
        }
    });
}

fn value_for(name: &'static str) -> BoxedStrategy<String> {
    let known: &[&str] = match name {
        "From" | "To" | "Caller" => &[
            "+14155551234",
            "+14155550100",
            "+18005550199",
            "+15005550000",
            "+15005550001",
            "+15005550002",
            "+266696687",
            "client:alice",
            "Anonymous",
        ],
        "Digits" => &["1", "2", "3", "9", "#", "*", "12", ""],
        "QueueResult" => &[
            "bridged",
            "bridging-in-process",
            "error",
            "hangup",
            "leave",
            "redirected",
            "redirected-from-bridged",
            "queue-full",
            "system-error",
        ],
        "DialCallStatus" => &[
            "completed",
            "answered",
            "busy",
            "no-answer",
            "failed",
            "canceled",
        ],
        "CallStatus" => &[
            "queued",
            "ringing",
            "in-progress",
            "answered",
            "completed",
            "busy",
            "failed",
            "no-answer",
            "canceled",
        ],
        "RecordingSid" => &["RE0123456789abcdef0123456789abcdef", "RE1", "", "RE 1"],
        "RecordingStatus" => &["completed", "in-progress", "absent", "failed"],
        "RecordingUrl" => &[
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            "http://127.0.0.1:1/2010-04-01/Accounts/AC1/Recordings/RE2",
            "",
        ],
        "QueueTime" | "QueuePosition" | "RecordingDuration" => {
            &["0", "1", "59", "3600", "-5", "99999999999999999999", "1e3"]
        }
        _ => &["x"],
    };
    let known: Vec<String> = known.iter().map(|s| s.to_string()).collect();
    prop_oneof![
        4 => proptest::sample::select(known),
        1 => any::<String>(),
        1 => "[ -~]{0,80}",
    ]
    .boxed()
}

/// A parameter set; with `any_sid`, the CallSid may be anything (else one of [`SIDS`]).
fn params(any_sid: bool) -> impl Strategy<Value = Vec<(String, String)>> {
    let names: &[&'static str] = &[
        "From",
        "To",
        "Caller",
        "Digits",
        "QueueResult",
        "DialCallStatus",
        "CallStatus",
        "QueueTime",
        "QueuePosition",
        "RecordingUrl",
        "RecordingDuration",
        "RecordingSid",
        "RecordingStatus",
        "AccountSid",
        "Direction",
    ];
    let weird = if any_sid { 1 } else { 0 };
    let sid = prop_oneof![
        8 => proptest::sample::select(SIDS).prop_map(str::to_string),
        weird => any::<String>(),
        weird => Just(String::new()),
    ];
    let pairs = proptest::collection::vec(
        proptest::sample::select(names.to_vec())
            .prop_flat_map(|n| value_for(n).prop_map(move |v| (n.to_string(), v))),
        0..8,
    );
    let junk = proptest::collection::vec((any::<String>(), any::<String>()), 0..3);
    (sid, pairs, junk, proptest::bool::weighted(0.9)).prop_map(
        |(sid, mut pairs, junk, with_sid)| {
            if with_sid {
                pairs.insert(0, ("CallSid".to_string(), sid));
            }
            pairs.extend(junk);
            pairs
        },
    )
}

fn query() -> impl Strategy<Value = String> {
    let pairs = proptest::collection::vec(
        (
            proptest::sample::select(vec!["agent", "call", "attempt", "retry", "shard", "x"]),
            prop_oneof![
                proptest::sample::select(vec![
                    "a1",
                    "a2",
                    "CAf1",
                    "CAf2",
                    "0",
                    "1",
                    "3",
                    "9",
                    "4294967295",
                    "4294967296",
                    "-1",
                    "a,b",
                ])
                .prop_map(str::to_string),
                any::<String>(),
            ],
        ),
        0..4,
    );
    pairs.prop_map(|pairs| {
        if pairs.is_empty() {
            String::new()
        } else {
            format!(
                "?{}",
                serde_urlencoded::to_string(&pairs).unwrap_or_default()
            )
        }
    })
}

/// Every query parameter of ours at once, each an edge value (number limits, junk) or random.
fn edge_query() -> impl Strategy<Value = String> {
    let value = || {
        prop_oneof![
            3 => proptest::sample::select(vec![
                "0", "1", "2", "3", "4294967295", "4294967296", "18446744073709551615", "-1",
                "", "a1", "CAf1", "a,b", "%", "1e9",
            ])
            .prop_map(str::to_string),
            1 => any::<u32>().prop_map(|n| n.to_string()),
            1 => any::<String>(),
        ]
    };
    (value(), value(), value(), value(), value()).prop_map(
        |(agent, call, attempt, retry, shard)| {
            let pairs = [
                ("agent", agent),
                ("call", call),
                ("attempt", attempt),
                ("retry", retry),
                ("shard", shard),
            ];
            format!(
                "?{}",
                serde_urlencoded::to_string(pairs).unwrap_or_default()
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Correctly signed, random parameter sets (mostly Twilio's names and values): never a
    /// signature refusal, never a 5xx; 200s are valid TwiML. The routing invariants hold.
    #[test]
    fn signed_random_parameters(
        server in 0usize..3,
        path in proptest::sample::select(PATHS),
        q in query(),
        p in params(true),
        claim in proptest::bool::weighted(0.2),
    ) {
        let fx = fixture();
        let srv = &fx.servers[server];
        let path = format!("{path}{q}");
        let pairs: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (body, sig) = signed_form(AUTH_TOKEN, &format!("{}{}", srv.base, path), &pairs);
        let status = send(server, &path, body.into_bytes(), Some(sig));
        prop_assert!(matches!(status, 200 | 204 | 400), "{} {:?}: {}", path, p, status);
        if claim {
            claim_once();
        }
    }

    /// Correctly signed requests whose query carries every one of our parameters at an edge
    /// value (attempt, retry and shard counters at their limits, odd agent ids and CallSids).
    #[test]
    fn signed_edge_queries(
        server in 0usize..3,
        path in proptest::sample::select(PATHS),
        q in edge_query(),
        p in params(false),
    ) {
        let fx = fixture();
        let srv = &fx.servers[server];
        let path = format!("{path}{q}");
        let pairs: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (body, sig) = signed_form(AUTH_TOKEN, &format!("{}{}", srv.base, path), &pairs);
        let status = send(server, &path, body.into_bytes(), Some(sig));
        prop_assert!(matches!(status, 200 | 204 | 400), "{} {:?}: {}", path, p, status);
    }

    /// Random bytes, with no signature, a random one, or a correct one over whatever the bytes
    /// decode to: never a 5xx, never a panic.
    #[test]
    fn random_bytes(
        server in 0usize..3,
        path in proptest::sample::select(PATHS),
        body in proptest::collection::vec(any::<u8>(), 0..600),
        how in 0u8..3,
    ) {
        let fx = fixture();
        let srv = &fx.servers[server];
        let signature = match how {
            0 => None,
            1 => Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=".to_string()),
            _ => {
                let decoded: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(&body).unwrap_or_default();
                Some(callq::twilio::signature::compute(
                    AUTH_TOKEN,
                    &format!("{}{}", srv.base, path),
                    &decoded,
                ))
            }
        };
        let status = send(server, path, body, signature);
        prop_assert!(matches!(status, 200 | 204 | 400 | 403), "{}: {}", path, status);
    }

    /// Random form-like text (`=`, `&`, `%`, `+` and friends) on a valid signature header.
    #[test]
    fn form_like_garbage(
        path in proptest::sample::select(PATHS),
        body in "(CallSid|From|To|Digits|QueueResult|=|&|%|%2|%zz|%C3|%28|\\+|CAf1|a1|1)*",
    ) {
        let fx = fixture();
        let srv = &fx.servers[0];
        let decoded: Vec<(String, String)> =
            serde_urlencoded::from_str(&body).unwrap_or_default();
        let sig = callq::twilio::signature::compute(
            AUTH_TOKEN,
            &format!("{}{}", srv.base, path),
            &decoded,
        );
        let status = send(0, path, body.into_bytes(), Some(sig));
        prop_assert!(matches!(status, 200 | 204 | 400 | 403), "{}: {}", path, status);
    }
}

/// After all of the above (in any order the harness ran them), the routing state is sound.
#[test]
fn invariants_hold_after_random_webhooks() {
    let fx = fixture();
    // a burst of its own, so this holds even when run alone
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    });
    let strategy = (
        proptest::sample::select(PATHS),
        query(),
        params(false),
        proptest::bool::weighted(0.2),
    );
    let sids: Vec<String> = SIDS.iter().map(|s| s.to_string()).collect();
    let store = &fx.servers[0].state.store;
    // every call ever seen recorded: at the end each must still be there (a call's record is
    // never deleted, only expired a day after it ends), so a lost call fails the invariants
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let result = runner.run(&strategy, |(path, q, p, claim)| {
        let srv = &fx.servers[0];
        let path = format!("{path}{q}");
        let pairs: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (body, sig) = signed_form(AUTH_TOKEN, &format!("{}{}", srv.base, path), &pairs);
        send(0, &path, body.into_bytes(), Some(sig));
        if claim {
            claim_once();
        }
        let snap = fx.rt.block_on(store.snapshot(&sids)).expect("snapshot");
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.extend(snap.calls.iter().map(|c| c.sid.clone()));
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
    let entered: Vec<String> = seen
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .collect();
    assert!(
        !entered.is_empty(),
        "300 random webhooks recorded no call at all: the fuzz reached nothing"
    );
    fx.rt.block_on(assert_invariants(store, &entered));
}
