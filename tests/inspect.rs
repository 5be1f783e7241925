//! `callq inspect` against a real Redis: the binary reads a centre's queues, agents and
//! waiting calls and prints them as tables or JSON.

mod support;

use std::process::Command;

use callq::store::Strategy;
use support::*;

#[tokio::test]
async fn inspect_shows_queues_agents_and_waiting_calls() {
    let store = store_with(&[queue("sales", Strategy::LongestIdle)]).await;
    online_agent(&store, &agent("alice", &[("sales", 1)])).await;
    store
        .set_agent_status("alice", callq::store::RequestedStatus::Paused, "lunch")
        .await
        .expect("pause");
    store
        .enqueue(&holding("CAinspect1", "sales", "+15551112222"))
        .await
        .expect("enqueue");
    let centre = store.centre().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("callq.toml");
    std::fs::write(
        &cfg,
        format!("centre = \"{centre}\"\ndefault_queue = \"sales\"\n[queues.sales]\n"),
    )
    .expect("config");
    let run = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callq"));
        cmd.arg("inspect")
            .env("REDIS_URL", redis_url())
            .env("CALLQ_CONFIG", &cfg);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("run callq inspect");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let text = run(false);
    assert!(text.contains("alice") && text.contains("paused"), "{text}");
    assert!(
        text.contains("CAinspect1") && text.contains("+15551112222"),
        "{text}"
    );
    let doc: serde_json::Value = serde_json::from_str(&run(true)).expect("json");
    assert_eq!(doc["queues"][0]["name"], "sales");
    assert_eq!(doc["queues"][0]["waiting"], 1);
    assert_eq!(doc["agents"][0]["status"], "paused");
    assert_eq!(doc["waiting"][0]["sid"], "CAinspect1");
}

#[test]
fn inspect_names_the_field_of_a_bad_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("callq.toml");
    std::fs::write(&cfg, "default_queue = \"nope\"\n[queues.sales]\n").expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_callq"))
        .arg("inspect")
        .env("REDIS_URL", "redis://127.0.0.1:1/")
        .env("CALLQ_CONFIG", &cfg)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("default_queue"), "{err}");
}
