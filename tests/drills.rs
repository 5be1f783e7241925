//! The failure drills, quick versions (`callq drill`, src/lab/drill): under a small load, a
//! `callq worker` process SIGKILLed and replaced, Redis (append-only file on) shut down or
//! SIGKILLed and started again, a `CLUSTER FAILOVER` of the centre's master, and Twilio's REST
//! API answering 500 for a span. Each must lose no call, double-book nobody, leave no agent
//! or call held, and assign calls again after the fault; the recovery times are printed, not
//! asserted (machines are noisy).

use std::path::PathBuf;

use callq::lab::drill::{run_drill, table, Drill, DrillOptions};

async fn drill(d: Drill) {
    let o = DrillOptions::quick(d, PathBuf::from(env!("CARGO_BIN_EXE_callq")));
    let r = run_drill(&o).await.expect("the drill runs");
    println!("{}\n{}", table(std::slice::from_ref(&r)), r.detail());
    assert!(r.offered > 0, "no calls offered");
    assert!(r.answered > 0, "no calls answered");
    assert_eq!(r.lost, 0, "calls lost: {:#?}", r.lost_examples);
    assert_eq!(r.double_bookings, 0, "double bookings");
    assert_eq!(
        (r.agents_held_at_end, r.open_at_end),
        (0, 0),
        "held at the end: {:#?}",
        r.lost_examples
    );
    assert!(
        r.next_assignment_s.is_some(),
        "no call reached an agent after the fault"
    );
    assert!(
        r.back_to_normal_s.is_some(),
        "the line never got back to normal"
    );
    if matches!(d, Drill::RedisRestart | Drill::RedisKill) {
        // appendfsync always, or a SHUTDOWN that writes the file out: nothing acknowledged is lost
        let w = r
            .redis_writes
            .as_ref()
            .expect("a Redis drill probes its writes");
        assert!(w.acknowledged > 0, "the probe wrote nothing: {w:?}");
        assert_eq!(w.lost, 0, "Redis lost acknowledged writes: {w:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_loses_nothing() {
    drill(Drill::KillWorker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_shutdown_and_restart_loses_nothing() {
    drill(Drill::RedisRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_sigkill_and_restart_loses_nothing() {
    drill(Drill::RedisKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_failover_of_the_centres_master_loses_nothing() {
    drill(Drill::ClusterFailover).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_rest_answering_500_loses_nothing() {
    drill(Drill::Rest500).await;
}
