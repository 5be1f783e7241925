//! Reaping: return what the dead left behind. `reap` (one Lua script, safe to run from every
//! worker at once) puts calls whose offer lease passed back at their rank with their agent
//! released and no miss counted, takes agents whose heartbeat key expired offline, and ends
//! due wrap-ups. Each worker reaps whenever it wakes and, here, on a timer of its own, so a
//! lapsed heartbeat takes its agent offline within one TTL (plus one interval) even when
//! nothing else happens.

use std::time::Duration;

use rand::Rng;

use crate::shutdown::Shutdown;
use crate::store::{Reaped, Result, Store};

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

/// Reap every `every` (±10 %, so replicas spread out) and refresh `clock`, until `shutdown`.
pub async fn run(store: Store, every: Duration, clock: RedisClock, mut shutdown: Shutdown) {
    loop {
        let jitter = rand::rng().random_range(0.9..=1.1);
        tokio::select! {
            _ = tokio::time::sleep(every.mul_f64(jitter)) => {}
            _ = shutdown.wait() => return,
        }
        if let Err(e) = reap_all(&store).await {
            tracing::warn!(error = %e, "reap failed");
        }
        if let Err(e) = clock.measure(&store).await {
            tracing::debug!(error = %e, "cannot read Redis' clock");
        }
    }
}
