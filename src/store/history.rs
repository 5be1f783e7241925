//! The wallboard's history: every queue's length, oldest wait and average wait, sampled on a
//! fixed period into a small capped stream (`callq:{C}:history`), so the board can chart the
//! last hour without replaying the event stream. Sampling costs O(queues) reads plus at most
//! [`AVERAGE_OVER`] waiting calls per queue; reading costs at most [`READ_LIMIT`] entries.
//!
//! Each sample's stream id is the start of its period on Redis' clock (`<period_ms>-0`), so
//! several `callq serve` replicas sampling at once record each period once: Redis refuses an
//! id that is not greater than the stream's last, and the replica that loses says so and moves
//! on. This stream is not routing state: nothing reads it but the wallboard.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde::Serialize;

use super::{Result, Store, StoreError};

/// How many entries the stream keeps (about): an hour at a sample every two seconds.
pub const HISTORY_MAXLEN: usize = 1800;
/// Most entries one read returns.
pub const READ_LIMIT: usize = HISTORY_MAXLEN;
/// The average wait is taken over at most this many callers at the head of each line.
pub const AVERAGE_OVER: isize = 200;
/// The shortest sampling period accepted.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);

/// One queue at one sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuePoint {
    pub queue: String,
    /// Calls waiting in line.
    pub waiting: u64,
    /// Seconds the longest-waiting caller had waited.
    pub oldest_wait_s: f64,
    /// Mean seconds waited so far by the callers in line (the first [`AVERAGE_OVER`] of them);
    /// zero when nobody waits.
    pub average_wait_s: f64,
}

/// One sample: every queue at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistorySample {
    /// The stream id (give it back as `since` to read only newer samples).
    pub id: String,
    /// When it was taken, unix milliseconds on Redis' clock (the start of its period).
    pub t_ms: i64,
    pub queues: Vec<QueuePoint>,
}

/// The stream field of a queue's point: `waiting oldest_s average_s`.
fn encode(p: &QueuePoint) -> String {
    format!(
        "{} {:.1} {:.1}",
        p.waiting, p.oldest_wait_s, p.average_wait_s
    )
}

fn decode(queue: &str, v: &str) -> Option<QueuePoint> {
    let mut it = v.split(' ');
    let waiting = it.next()?.parse().ok()?;
    let oldest_wait_s = it.next()?.parse().ok()?;
    let average_wait_s = it.next()?.parse().ok()?;
    Some(QueuePoint {
        queue: queue.to_string(),
        waiting,
        oldest_wait_s,
        average_wait_s,
    })
}

fn sample_from(id: String, map: HashMap<String, redis::Value>) -> HistorySample {
    let t_ms = id
        .split('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut queues: Vec<QueuePoint> = map
        .into_iter()
        .filter_map(|(k, v)| {
            let v: String = redis::from_redis_value(v).ok()?;
            decode(&k, &v)
        })
        .collect();
    queues.sort_by(|a, b| a.queue.cmp(&b.queue));
    HistorySample { id, t_ms, queues }
}

impl Store {
    /// Redis' clock, unix milliseconds.
    async fn redis_now_ms(&self) -> Result<i64> {
        let (s, us) = self.redis_time().await?;
        Ok(s.saturating_mul(1000).saturating_add(us / 1000))
    }

    /// One queue's point now: its stats, and the mean wait of the first [`AVERAGE_OVER`]
    /// callers in line (one pipelined read of their entry times).
    pub async fn queue_point(&self, queue: &str, now_ms: i64) -> Result<QueuePoint> {
        let stats = self.queue_stats(queue).await?;
        let mut average_wait_s = 0.0;
        if stats.waiting > 0 {
            let mut c = self.conn().await?;
            let sids: Vec<String> = c
                .zrange(
                    self.key(&format!("queue:{queue}:waiting")),
                    0,
                    AVERAGE_OVER - 1,
                )
                .await?;
            let mut pipe = redis::pipe();
            for sid in &sids {
                pipe.hget(self.key(&format!("call:{sid}")), "entered_ms");
            }
            let entered: Vec<Option<i64>> = pipe.query_async(&mut c).await?;
            let waits: Vec<f64> = entered
                .into_iter()
                .flatten()
                .map(|e| (now_ms - e).max(0) as f64 / 1000.0)
                .collect();
            if !waits.is_empty() {
                average_wait_s = waits.iter().sum::<f64>() / waits.len() as f64;
            }
        }
        Ok(QueuePoint {
            queue: queue.to_string(),
            waiting: stats.waiting,
            oldest_wait_s: stats.oldest_wait_s,
            average_wait_s,
        })
    }

    /// Take this period's sample of every queue, unless one was already taken (by this or
    /// another replica): true when this call recorded it.
    pub async fn record_history(&self, period: Duration) -> Result<bool> {
        let period_ms = period.max(MIN_PERIOD).as_millis().min(i64::MAX as u128) as i64;
        let now_ms = self.redis_now_ms().await?;
        let slot = now_ms - now_ms.rem_euclid(period_ms);
        let key = self.key("history");
        let mut c = self.conn().await?;
        let last: redis::streams::StreamRangeReply = c.xrevrange_count(&key, "+", "-", 1).await?;
        let taken = last.ids.first().is_some_and(|e| {
            e.id.split('-')
                .next()
                .and_then(|s| s.parse::<i64>().ok())
                .is_some_and(|t| t >= slot)
        });
        if taken {
            return Ok(false);
        }
        let mut fields = Vec::new();
        for q in self.queue_names().await? {
            match self.queue_point(&q, now_ms).await {
                Ok(p) => fields.push((q, encode(&p))),
                // a queue removed between the two reads
                Err(StoreError::UnknownQueue(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if fields.is_empty() {
            return Ok(false);
        }
        let added: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(HISTORY_MAXLEN)
            .arg(format!("{slot}-0"))
            .arg(&fields)
            .query_async(&mut c)
            .await;
        match added {
            Ok(_) => Ok(true),
            // another replica recorded this period between our read and our write
            Err(e) if e.to_string().contains("equal or smaller") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Samples of the last `window`, oldest first, or only those after stream id `since`
    /// (still within `window`); at most [`READ_LIMIT`], the newest kept when there are more.
    pub async fn history(
        &self,
        since: Option<&str>,
        window: Duration,
    ) -> Result<Vec<HistorySample>> {
        let now_ms = self.redis_now_ms().await?;
        let window_ms = window.as_millis().min(i64::MAX as u128) as i64;
        let floor = format!("{}", now_ms.saturating_sub(window_ms).max(0));
        let start = match since.filter(|s| valid_id(s)) {
            Some(s) => format!("({s}"),
            None => floor.clone(),
        };
        let mut c = self.conn().await?;
        // newest first with a count, so a long history returns its latest part
        let reply: redis::streams::StreamRangeReply = c
            .xrevrange_count(self.key("history"), "+", &start, READ_LIMIT)
            .await?;
        let floor_ms: i64 = floor.parse().unwrap_or(0);
        let mut samples: Vec<HistorySample> = reply
            .ids
            .into_iter()
            .map(|e| sample_from(e.id, e.map))
            .filter(|s| s.t_ms >= floor_ms)
            .collect();
        samples.reverse();
        Ok(samples)
    }
}

/// A stream id as Redis writes them (`<ms>-<seq>`), so a client's `since` cannot inject
/// anything into the range.
fn valid_id(s: &str) -> bool {
    let mut it = s.splitn(2, '-');
    let ms = it.next().unwrap_or("");
    let seq = it.next().unwrap_or("");
    !ms.is_empty()
        && ms.len() <= 20
        && ms.bytes().all(|b| b.is_ascii_digit())
        && !seq.is_empty()
        && seq.len() <= 20
        && seq.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_survives_the_stream_field() {
        let p = QueuePoint {
            queue: "sales".into(),
            waiting: 3,
            oldest_wait_s: 42.25,
            average_wait_s: 17.0,
        };
        let back = decode("sales", &encode(&p)).expect("decodes");
        assert_eq!(back.waiting, 3);
        assert!((back.oldest_wait_s - 42.2).abs() < 0.11);
        assert_eq!(back.average_wait_s, 17.0);
        assert_eq!(decode("sales", "x 1 2"), None);
        assert_eq!(decode("sales", "1 2"), None);
    }

    #[test]
    fn since_must_look_like_a_stream_id() {
        assert!(valid_id("1700000000000-0"));
        assert!(!valid_id("1700000000000"));
        assert!(!valid_id("-"));
        assert!(!valid_id("+"));
        assert!(!valid_id("1-2-3"));
        assert!(!valid_id("(1-0"));
    }
}
