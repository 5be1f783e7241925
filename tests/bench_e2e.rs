//! End to end: a short compressed bench in-process against the real server, worker and
//! Redis, through the Twilio simulator. Every call must end on the phone side with a final
//! state in the store that agrees (lost = 0), and no device may ever ring beyond its
//! capacity (double_bookings = 0).

mod common;

use callq::lab::bench::{run_load, BenchOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_loses_nothing_and_double_books_nobody() {
    let args = BenchOptions {
        agents: 6,
        // a little over capacity (6 agents, handle 2 + 60 + 5 s): callers wait, some give up, some take a callback
        rate: 0.1,
        talk: 60.0,
        wrapup: 5.0,
        answer_delay: 2.0,
        patience: 150.0,
        no_answer: 0.1,
        callback_after: 40.0,
        // callbacks: see the test below
        callback_share: 0.0,
        // devices drop now and then, and Twilio refuses some REST requests
        drops: 300.0,
        rest_faults: 0.05,
        duration: 12.0,
        warmup: Some(0.0),
        drain: 30.0,
        workers: 2,
        seed: 7,
        compress: 30.0,
        redis_url: Some(common::redis_url()),
        ..BenchOptions::default()
    };
    let report = bounded(run_load(&args, false)).await;
    eprintln!("{}", report.table());
    assert!(
        report.offered >= 5,
        "too few calls to mean anything: {report:?}"
    );
    assert_eq!(report.lost, 0, "lost calls: {:?}", report.lost_examples);
    assert_eq!(report.double_bookings, 0);
    assert_eq!(report.cut_at_end, 0, "calls were still live at the end");
    assert_eq!(report.callbacks_pending, 0, "callbacks never served");
    assert_eq!(
        report.offered,
        report.answered + report.abandoned + report.callbacks + report.voicemail + report.other,
        "every call has one outcome"
    );
    assert!(report.answered > 0);
    assert_eq!(report.callbacks, report.callbacks_completed);
    assert_eq!(report.webhook_errors, 0);
    assert!(report.assign_samples > 0 && report.assign_p99_ms.is_some());
}

/// The same with callers taking callbacks: the caller's own leg ends after the request while
/// the callback rings the agent and then the customer; nothing may be lost or double-booked,
/// and no caller who asked for a callback is put back on hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_under_load_lose_nothing_and_double_book_nobody() {
    let args = BenchOptions {
        agents: 6,
        rate: 0.1,
        talk: 60.0,
        wrapup: 5.0,
        answer_delay: 2.0,
        patience: 150.0,
        no_answer: 0.1,
        callback_after: 40.0,
        callback_share: 0.6,
        duration: 12.0,
        warmup: Some(0.0),
        drain: 30.0,
        workers: 2,
        seed: 7,
        compress: 30.0,
        redis_url: Some(common::redis_url()),
        ..BenchOptions::default()
    };
    let report = bounded(run_load(&args, false)).await;
    eprintln!("{}", report.table());
    assert_eq!(report.lost, 0, "lost calls: {:?}", report.lost_examples);
    assert_eq!(report.double_bookings, 0);
    assert_eq!(report.callbacks_kept_holding, 0);
    assert_eq!(report.callbacks, report.callbacks_completed);
}

/// A bench that never ends must fail the test in bounded time, not hang the suite.
async fn bounded<F, T>(run: F) -> T
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    match tokio::time::timeout(std::time::Duration::from_secs(240), run).await {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => panic!("bench failed: {e:#}"),
        Err(_) => panic!("bench did not finish within 240 s"),
    }
}
