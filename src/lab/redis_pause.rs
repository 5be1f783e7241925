//! Redis pauses for the bench: while calls arrive, Redis is frozen for a span at a steady
//! interval (e.g. 1.5 s every 20 s) with `CLIENT PAUSE <ms> ALL`, as a failover or a long
//! fork would freeze it. Every client waits, callq's included; the pauser uses a connection
//! of its own with a response timeout well past the span, so its own command is never cut.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long, and how often, Redis is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisPauses {
    pub span: Duration,
    pub every: Duration,
}

impl RedisPauses {
    /// None unless both the span and the interval are set, the span shorter than the interval.
    pub fn new(span: Duration, every: Duration) -> Option<Self> {
        (!span.is_zero() && span < every).then_some(Self { span, every })
    }
}

/// The pauses issued so far.
#[derive(Debug, Default)]
pub struct PauseCount {
    pub pauses: AtomicU64,
    pub paused_ms: AtomicU64,
}

impl PauseCount {
    /// (pauses, total milliseconds paused).
    pub fn get(&self) -> (u64, u64) {
        (
            self.pauses.load(Ordering::Relaxed),
            self.paused_ms.load(Ordering::Relaxed),
        )
    }
}

/// Pauses the Redis at `url` every `p.every` (the first one `p.every` from now) until
/// `until`, counting into `count`. The task ends at `until`, or at the first error.
pub fn spawn(
    url: &str,
    p: RedisPauses,
    until: Instant,
    count: Arc<PauseCount>,
) -> JoinHandle<anyhow::Result<()>> {
    let url = url.to_string();
    tokio::spawn(async move {
        let client = redis::Client::open(url.as_str()).context("the Redis URL")?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(p.span + Duration::from_secs(10)));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("connecting to pause Redis")?;
        let ms = u64::try_from(p.span.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut next = Instant::now() + p.every;
        while next < until {
            tokio::time::sleep_until(next).await;
            redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(ms)
                .arg("ALL")
                .query_async::<()>(&mut conn)
                .await
                .context("CLIENT PAUSE")?;
            count.pauses.fetch_add(1, Ordering::Relaxed);
            count.paused_ms.fetch_add(ms, Ordering::Relaxed);
            tracing::info!(ms, "redis paused");
            next += p.every;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::embedded_redis::EmbeddedRedis;

    #[test]
    fn a_pause_needs_a_span_shorter_than_its_interval() {
        let s = Duration::from_millis(1500);
        let every = Duration::from_secs(20);
        assert_eq!(
            RedisPauses::new(s, every),
            Some(RedisPauses { span: s, every })
        );
        assert_eq!(RedisPauses::new(Duration::ZERO, every), None);
        assert_eq!(RedisPauses::new(every, every), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_is_frozen_for_the_span_at_each_interval() {
        let redis = tokio::task::spawn_blocking(EmbeddedRedis::start)
            .await
            .expect("joined")
            .expect("redis-server starts");
        let url = redis.url();
        let p = RedisPauses {
            span: Duration::from_millis(400),
            every: Duration::from_millis(600),
        };
        let client = redis::Client::open(url.as_str()).expect("url");
        let config =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(5)));
        let mut c = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("connects");
        let count = Arc::new(PauseCount::default());
        let started = Instant::now();
        let task = spawn(
            &url,
            p,
            started + Duration::from_millis(1000),
            count.clone(),
        );
        // a client's command issued during the first pause waits for its end
        tokio::time::sleep_until(started + Duration::from_millis(700)).await;
        let asked = Instant::now();
        let _: i64 = redis::cmd("INCR")
            .arg("k")
            .query_async(&mut c)
            .await
            .expect("answered after the pause");
        assert!(
            asked.elapsed() >= Duration::from_millis(200),
            "waited {:?}",
            asked.elapsed()
        );
        task.await.expect("joined").expect("no error");
        assert_eq!(count.get(), (1, 400));
        drop(redis);
    }
}
