//! Reaping and checking: the worker's timed housekeeping. `reap` (one Lua script, safe to run
//! from every worker at once) takes the presence of agents whose heartbeat key expired, ends
//! due wrap-ups, and lets overdue arrivals and due callback retries into line. A check round
//! ([`super::checks`]) then asks Twilio about offers whose lease passed and connected calls
//! gone silent. Each worker does this on a timer of its own (not when it wakes: a claim
//! promotes what is due itself, and a reap first would put one more round trip between an
//! agent freeing up and their next offer). A lapsed heartbeat makes its agent unofferable at
//! once (a claim checks the heartbeat key of every agent before offering) and counted offline
//! within one interval; a call callq lost track of is settled within a lease or two, even
//! when nothing else happens.

use std::time::Duration;

use rand::Rng;

use std::sync::Arc;

use crate::shutdown::Shutdown;
use crate::store::{Reaped, Result, Store};

use super::checks::Checker;
use super::wake::RedisClock;

/// Most items of each kind one `reap` handles; a full batch is followed by another.
const BATCH: u32 = 100;
/// Most batches in one round (the next round takes the rest).
const MAX_BATCHES: u32 = 10;

/// Reap until nothing is left over (or [`MAX_BATCHES`] batches); logs and counts what it did.
pub async fn reap_all(store: &Store) -> Result<Reaped> {
    let mut total = Reaped::default();
    for _ in 0..MAX_BATCHES {
        let r = store.reap(BATCH).await?;
        total.agents_lost += r.agents_lost;
        total.wrapups_ended += r.wrapups_ended;
        total.arrivals += r.arrivals;
        total.retries += r.retries;
        if [r.agents_lost, r.wrapups_ended, r.arrivals, r.retries]
            .iter()
            .all(|n| *n < BATCH)
        {
            break;
        }
    }
    if total.arrivals > 0 {
        tracing::info!(
            count = total.arrivals,
            "arriving calls without a wait request after the grace; offerable now"
        );
        metrics::counter!("callq_reaped_total", "kind" => "arrival")
            .increment(total.arrivals.into());
    }
    if total.retries > 0 {
        metrics::counter!("callq_reaped_total", "kind" => "callback_retry")
            .increment(total.retries.into());
    }
    if total.agents_lost > 0 {
        tracing::info!(
            count = total.agents_lost,
            "agents unreachable: heartbeat lapsed (their status is kept)"
        );
        metrics::counter!("callq_reaped_total", "kind" => "agent_lost")
            .increment(total.agents_lost.into());
    }
    if total.wrapups_ended > 0 {
        metrics::counter!("callq_reaped_total", "kind" => "wrapup_ended")
            .increment(total.wrapups_ended.into());
    }
    Ok(total)
}

/// Reap and run a check round every `every` (±10 %, so replicas spread out) and refresh
/// `clock`, until `shutdown`.
pub async fn run(
    store: Store,
    checker: Arc<Checker>,
    every: Duration,
    clock: RedisClock,
    mut shutdown: Shutdown,
) {
    loop {
        let jitter = rand::rng().random_range(0.9..=1.1);
        tokio::select! {
            _ = tokio::time::sleep(every.mul_f64(jitter)) => {}
            _ = shutdown.wait() => return,
        }
        if let Err(e) = reap_all(&store).await {
            tracing::warn!(error = %e, "reap failed");
        }
        tokio::select! {
            checked = checker.run_round() => {
                if let Err(e) = checked {
                    tracing::warn!(error = %e, "taking checks failed");
                }
            }
            _ = shutdown.wait() => return,
        }
        if let Err(e) = clock.measure(&store).await {
            tracing::debug!(error = %e, "cannot read Redis' clock");
        }
    }
}
