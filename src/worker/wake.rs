//! Waiting for work: `BLPOP callq:{C}:wake` on a dedicated connection, ended early at a known
//! due time, and Redis' clock as seen from here.
//!
//! The dedicated connection goes straight to the server holding the centre
//! ([`Store::wake_client`]; on a Redis Cluster, the master of the centre's slot), with a second
//! one beside it for `CLIENT UNBLOCK`, which only works on the node where the `BLPOP` blocks.
//! After a failover the old master answers MOVED or drops the `BLPOP`: the listener forgets
//! both connections and asks the cluster again on the next wait.
//!
//! Redis ends a `BLPOP` on its timer tick (100 ms at the default `hz 10`), too coarse for "the
//! wrap-up ends at T, offer the next call at T". So the worker blocks with the safety-net
//! timeout and keeps its own timer for the due time; when that fires first it ends the `BLPOP`
//! with `CLIENT UNBLOCK <id> TIMEOUT`, which makes the command return as if it had timed out:
//! no marker is taken from another worker. A marker that did arrive in that instant is kept
//! (the worker claims anyway) or, when the worker is stopping, pushed back for another one.
//! Where `CLIENT UNBLOCK` is not allowed (some managed Redis), the `BLPOP` timeout itself ends
//! at the due time, to Redis' tick.
//!
//! The due timer is finer than tokio's, which rounds a deadline up to its next millisecond
//! tick and, once its thread has idled, fired 1 to 2 ms late here: the last two milliseconds
//! are slept on a blocking-pool thread ([`sleep_until_precisely`]). A wrap-up's end used to
//! reach its next offer 1.3 ms after it on average, now 0.45 ms (`scripts/bench-assign.sh
//! --trigger complete --wrapup-ms 20`), about what a marker for now takes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisResult};
use tokio::time::Instant;

use crate::shutdown::Shutdown;
use crate::store::{Result, Store, StoreError};

/// What ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// A wake marker: some script made work, due at the marker's time (Redis' clock, unix ms;
    /// None when the marker names no time, or was taken while the wait was being ended).
    Marker(Option<i64>),
    /// The due time `claim` reported has come.
    Due,
    /// The safety-net timeout passed.
    Timeout,
    Shutdown,
}

/// The offset between Redis' clock (which every script uses) and ours, so that a due time in
/// Redis milliseconds can be waited for locally. Measured with `TIME` at start and by the
/// reaper on every round, to the microsecond (the midpoint of the round trip).
#[derive(Debug, Clone, Default)]
pub struct RedisClock {
    offset_us: Arc<AtomicI64>,
}

fn local_unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// How long after a due time the worker looks: a script reads Redis' clock in whole
/// milliseconds (`now_ms` in keys.lua), so at Redis time T.000 it already sees T as passed;
/// this covers the offset's own error on a nearby Redis. Looking too early costs one idle
/// claim, which reports the same due time again.
const DUE_MARGIN_US: i64 = 200;

impl RedisClock {
    /// Read Redis' `TIME` and remember how far it is from ours; returns the offset in ms.
    pub async fn measure(&self, store: &Store) -> Result<i64> {
        let before = local_unix_us();
        let (secs, micros) = store.redis_time().await?;
        let after = local_unix_us();
        let offset = secs * 1_000_000 + micros - (before + after) / 2;
        self.offset_us.store(offset, Ordering::Relaxed);
        Ok(offset / 1000)
    }

    fn redis_now_us(&self) -> i64 {
        local_unix_us() + self.offset_us.load(Ordering::Relaxed)
    }

    /// Redis' clock now, as unix ms.
    pub fn redis_now_ms(&self) -> i64 {
        self.redis_now_us().div_euclid(1000)
    }

    /// The local instant at which Redis' clock reads `redis_ms` (plus [`DUE_MARGIN_US`]), so
    /// that a script run then sees the time as passed.
    pub fn instant_at(&self, redis_ms: i64) -> Instant {
        let ahead = redis_ms * 1000 + DUE_MARGIN_US - self.redis_now_us();
        Instant::now() + Duration::from_micros(ahead.max(0) as u64)
    }
}

/// The connections of a [`WakeListener`], both to the node holding the wake list.
#[derive(Clone)]
struct Link {
    /// The one that blocks in `BLPOP`.
    blocking: MultiplexedConnection,
    /// Its client id, when `CLIENT UNBLOCK` can end its `BLPOP` early.
    id: Option<i64>,
    /// The one that sends `CLIENT UNBLOCK`.
    control: MultiplexedConnection,
}

/// A worker's blocking connection to the wake list.
pub struct WakeListener {
    store: Store,
    key: String,
    conn: Option<Link>,
    unblock_refused: bool,
}

type Pending<'a> = Pin<&'a mut (dyn Future<Output = RedisResult<Option<(String, String)>>> + Send)>;

impl WakeListener {
    pub fn new(store: Store) -> Self {
        Self {
            key: store.key("wake"),
            store,
            conn: None,
            unblock_refused: false,
        }
    }

    async fn connection(&mut self) -> Result<Link> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let client = self.store.wake_client().await?;
        // No response timeout: BLPOP answers when it answers; `wait` bounds it itself.
        let cfg = AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(2)));
        let mut blocking = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        // named after its list: `CLIENT LIST` on the node shows which centre's worker waits
        // there (`cmd=blpop`); a refusal changes nothing else
        if let Err(e) = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&self.key)
            .query_async::<()>(&mut blocking)
            .await
        {
            tracing::debug!(error = %e, "CLIENT SETNAME refused");
        }
        let id = if self.unblock_refused {
            None
        } else {
            redis::cmd("CLIENT")
                .arg("ID")
                .query_async::<i64>(&mut blocking)
                .await
                .ok()
        };
        let cfg = AsyncConnectionConfig::new()
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        let control = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        let link = Link {
            blocking,
            id,
            control,
        };
        self.conn = Some(link.clone());
        Ok(link)
    }

    /// Block until a wake marker arrives, `due` comes, `timeout` passes or `shutdown` trips.
    pub async fn wait(
        &mut self,
        timeout: Duration,
        due: Option<Instant>,
        shutdown: &mut Shutdown,
    ) -> Result<Woke> {
        let Link {
            blocking: mut conn,
            id,
            control,
        } = self.connection().await?;
        let now = Instant::now();
        let due = due.filter(|d| *d < now + timeout);
        if let Some(d) = due {
            if d <= now {
                tokio::time::sleep(Duration::from_millis(1)).await;
                return Ok(Woke::Due);
            }
        }
        let block = match (due, id) {
            (Some(d), None) => d - now,
            _ => timeout,
        };
        let mut cmd = redis::cmd("BLPOP");
        cmd.arg(&self.key)
            .arg(format!("{:.3}", block.as_secs_f64().max(0.001)));
        let mut pending =
            Box::pin(async move { cmd.query_async::<Option<(String, String)>>(&mut conn).await });
        let guard = now + block + Duration::from_secs(5);
        let early = tokio::select! {
            r = &mut pending => {
                return match r {
                    Ok(Some((_, marker))) => Ok(Woke::Marker(marker.parse().ok())),
                    Ok(None) if due.is_some() && id.is_none() => Ok(Woke::Due),
                    Ok(None) => Ok(Woke::Timeout),
                    Err(e) => {
                        self.conn = None;
                        Err(e.into())
                    }
                };
            }
            _ = sleep_until_precisely(due.unwrap_or(guard)), if due.is_some() && id.is_some() => Woke::Due,
            _ = shutdown.wait() => Woke::Shutdown,
            _ = tokio::time::sleep_until(guard) => {
                // Redis should have answered long ago: the connection is gone.
                self.conn = None;
                return Err(StoreError::Timeout(block + Duration::from_secs(5)));
            }
        };
        let popped = self.cancel(id, control, pending.as_mut()).await;
        match (early, popped) {
            (Woke::Shutdown, true) => {
                // Not ours to handle any more: give it to another worker.
                if let Err(e) = self.store.wake().await {
                    tracing::warn!(error = %e, "could not hand back a wake marker");
                }
                Ok(Woke::Shutdown)
            }
            (_, true) => Ok(Woke::Marker(None)),
            (early, false) => Ok(early),
        }
    }

    /// End a pending `BLPOP` without taking a marker. Returns true when it had taken one
    /// before it could be stopped.
    async fn cancel(
        &mut self,
        id: Option<i64>,
        mut control: MultiplexedConnection,
        mut pending: Pending<'_>,
    ) -> bool {
        let Some(id) = id else {
            // Closing the connection ends the BLPOP on the server.
            self.conn = None;
            return false;
        };
        for _ in 0..50 {
            let unblocked = redis::cmd("CLIENT")
                .arg("UNBLOCK")
                .arg(id)
                .arg("TIMEOUT")
                .query_async::<i64>(&mut control)
                .await;
            let wait = match unblocked {
                Ok(1) => Duration::from_secs(1),
                // not blocked (yet, or any more): let it arrive or answer
                Ok(_) => Duration::from_millis(5),
                Err(e) => {
                    if e.code().is_some() {
                        tracing::warn!(error = %e, "CLIENT UNBLOCK refused; due times now wait on BLPOP's own timeout");
                        self.unblock_refused = true;
                    }
                    self.conn = None;
                    return false;
                }
            };
            match tokio::time::timeout(wait, pending.as_mut()).await {
                Ok(Ok(Some(_))) => return true,
                Ok(Ok(None)) => return false,
                Ok(Err(_)) => {
                    self.conn = None;
                    return false;
                }
                Err(_) if wait > Duration::from_millis(5) => break,
                Err(_) => continue,
            }
        }
        self.conn = None;
        false
    }

    /// Let go of the connection (the loop is over).
    pub async fn close(&mut self) {
        self.conn = None;
    }
}

/// Sleep until `at` to within a fraction of a millisecond. tokio's timer rounds a deadline up
/// to its next millisecond tick (up to a whole one late, more once its thread has idled);
/// this sleeps on it until two milliseconds before, and the rest on a blocking-pool thread
/// with the OS's own timer (tens of microseconds late). Dropped early, the thread finishes its
/// short sleep and nothing else happens.
async fn sleep_until_precisely(at: Instant) {
    const COARSE: Duration = Duration::from_millis(2);
    if let Some(before) = at.checked_sub(COARSE) {
        tokio::time::sleep_until(before).await;
    }
    let rest = at.saturating_duration_since(Instant::now());
    if rest.is_zero() {
        return;
    }
    if tokio::task::spawn_blocking(move || std::thread::sleep(rest))
        .await
        .is_err()
    {
        // the blocking pool is gone (the runtime is shutting down): tokio's timer will do
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_time_is_waited_for_to_the_sub_millisecond_on_redis_clock() {
        let clock = RedisClock::default();
        // Redis 2.5 s ahead of us
        clock.offset_us.store(2_500_000, Ordering::Relaxed);
        let redis_now = clock.redis_now_ms();
        let local_now = local_unix_us() / 1000;
        // the two clocks are read a moment apart: allow for the thread being descheduled
        assert!(
            (redis_now - local_now - 2500).abs() <= 50,
            "{redis_now} vs {local_now}"
        );
        let at = clock.instant_at(redis_now + 40);
        let ahead = at.saturating_duration_since(Instant::now());
        // at most 40 ms and the margin ahead (less the part of the current ms already gone),
        // never a whole millisecond more; well above nothing (this thread may be descheduled
        // for a while on a busy machine)
        assert!(ahead <= Duration::from_micros(40_000 + 200), "{ahead:?}");
        assert!(ahead >= Duration::from_millis(20), "{ahead:?}");
        // a time already passed is due now
        let past = clock.instant_at(redis_now - 1000);
        assert!(past.saturating_duration_since(Instant::now()) <= Duration::from_millis(1));
    }

    #[tokio::test]
    async fn the_precise_timer_never_fires_before_its_time() {
        // deadlines passed, within the last stretch, and beyond it
        for ahead_us in [0, 300, 1_500, 2_000, 4_700] {
            let at = Instant::now() + Duration::from_micros(ahead_us);
            sleep_until_precisely(at).await;
            assert!(
                Instant::now() >= at,
                "woke before a deadline {ahead_us} µs ahead"
            );
        }
        // one dropped while its blocking thread sleeps leaves the next one as it should be
        let at = Instant::now() + Duration::from_millis(1);
        let _ = tokio::time::timeout(Duration::from_micros(10), sleep_until_precisely(at)).await;
        let next = Instant::now() + Duration::from_micros(500);
        sleep_until_precisely(next).await;
        assert!(Instant::now() >= next, "woke early after a dropped sleep");
    }
}
