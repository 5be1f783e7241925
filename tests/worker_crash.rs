//! The real `callq worker` binary as separate processes against one Redis: a worker killed
//! with SIGKILL mid-offer loses nothing (once the lease passes another worker asks Twilio,
//! finds no ring under way, and offers the call again; nobody is double-booked); SIGTERM
//! exits 0; several processes share the work, each claim reaching Twilio exactly once.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use callq::store::*;
use support::worker::*;
use support::*;

static CENTRE: AtomicU32 = AtomicU32::new(0);

/// A centre of its own, with a config file naming it (the binary reads the centre from it).
struct Centre {
    store: Store,
    dir: tempfile::TempDir,
}

impl Centre {
    async fn new(queue_settings: QueueSettings) -> Self {
        let name = format!(
            "crash{}x{}",
            std::process::id(),
            CENTRE.fetch_add(1, Ordering::SeqCst)
        );
        let store = Store::connect(&redis_url(), &name, 16).expect("store");
        store.configure_queue(&queue_settings).await.expect("queue");
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = format!(
            "centre = \"{name}\"\ndefault_queue = \"{q}\"\n\n[queues.{q}]\n",
            q = queue_settings.name
        );
        std::fs::write(dir.path().join("centre.toml"), toml).expect("config written");
        Centre { store, dir }
    }

    /// Start `callq worker` for this centre against `twilio`.
    fn worker(&self, twilio: &Recorder, n: usize) -> Worker {
        let log = self.dir.path().join(format!("worker{n}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_callq"))
            .arg("worker")
            .env("REDIS_URL", redis_url())
            .env("CALLQ_CONFIG", self.dir.path().join("centre.toml"))
            .env("TWILIO_API_BASE", &twilio.base)
            .env("TWILIO_ACCOUNT_SID", ACCOUNT)
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .env("CALLQ_PUBLIC_URL", PUBLIC)
            .env("CALLQ_OFFER_LEASE", "2s")
            .env("CALLQ_WAKE_TIMEOUT", "1s")
            .env("CALLQ_WORKER_CONCURRENCY", "4")
            .env("CALLQ_SHUTDOWN_GRACE", "3s")
            .env("CALLQ_WORKER_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "callq=debug")
            .env_remove("TWILIO_API_KEY")
            .env_remove("TWILIO_API_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("callq worker starts");
        Worker { child, log }
    }
}

struct Worker {
    child: Child,
    log: std::path::PathBuf,
}

impl Worker {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`.
    fn crash(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// `kill -TERM`, then wait (at most `within`) for the exit; returns the exit status.
    async fn terminate(mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        let end = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!(
                    "worker did not exit within {within:?} of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_worker_killed_mid_offer_loses_nothing_and_books_nobody_twice() {
    logs();
    let centre = Centre::new(queue("sales", Strategy::LongestIdle)).await;
    let store = &centre.store;
    let twilio = recorder(|_, _| Reply::Hang).await; // the first worker never hears back
    online_agent(store, &agent("a1", &[("sales", 1)])).await;
    online_agent(store, &agent("a2", &[("sales", 2)])).await;
    enqueue(store, "CA0001", "sales").await;

    let mut first = centre.worker(&twilio, 1);
    let offered = twilio.wait_for(1, Duration::from_secs(20)).await[0].clone();
    first.crash();
    let c = call(store, "CA0001").await;
    assert_eq!(
        (c.state, c.agent.as_deref()),
        (CallState::Offered, Some("a1")),
        "the dead worker's offer stands until its lease passes"
    );

    // Twilio's view: the caller holds, no leg rings the agent (the redirect never took)
    twilio.set_call(twilio_call(
        "CA0001",
        "+15005550001",
        callq::twilio::rest::CallStatus::InProgress,
        None,
    ));
    twilio.set_script(|_, _| Reply::Ok);
    let second = centre.worker(&twilio, 2);
    let reqs = twilio.wait_for(2, Duration::from_secs(20)).await;
    let again = &reqs[1];
    assert_eq!(again.call_sid.as_deref(), Some("CA0001"));
    assert!(
        again.at - offered.at >= Duration::from_millis(1900),
        "offered again {:?} after the first offer, before its 2 s lease passed",
        again.at - offered.at
    );
    eventually(Duration::from_secs(5), "lease extended", || async {
        let (score, now) = lease_of(store, "CA0001").await;
        score.filter(|s| s - now > 10_000)
    })
    .await;
    let c = call(store, "CA0001").await;
    assert_eq!((c.state, c.attempts), (CallState::Offered, 2));
    let holder = c.agent.clone().unwrap_or_default();
    for a in store.agents().await.expect("agents") {
        let want = u32::from(a.id == holder);
        assert_eq!(a.active, want, "agent {} holds {} calls", a.id, a.active);
        assert_eq!(a.misses, 0, "the crash is not agent {}'s miss", a.id);
    }
    assert_invariants(store, &["CA0001".to_string()]).await;

    let status = second.terminate(Duration::from_secs(5)).await;
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_worker_processes_claim_every_call_exactly_once_per_offer() {
    logs();
    let mut q = queue("sales", Strategy::LongestIdle);
    q.max_no_answer = 100;
    let centre = Centre::new(q).await;
    let store = &centre.store;
    let twilio = recorder_ok().await;
    for i in 0..8 {
        online_agent(store, &agent(&format!("a{i}"), &[("sales", 1)])).await;
    }
    let calls: Vec<String> = (0..60).map(|i| format!("CA{i:04}")).collect();
    for sid in &calls {
        enqueue(store, sid, "sales").await;
    }
    let agents = AgentSim::start(store, &twilio, 0.85);
    let workers: Vec<Worker> = (0..3).map(|n| centre.worker(&twilio, n)).collect();
    until_all_completed(store, &calls, Duration::from_secs(60)).await;
    for w in workers {
        let status = w.terminate(Duration::from_secs(5)).await;
        assert!(status.success(), "SIGTERM exits 0, got {status:?}");
    }
    agents.check(store, &twilio, &calls).await;
}
