//! Reads of routing state that change nothing: one call, one agent, a queue's live stats, a
//! caller's position and estimated wait, a call's history, and a consistent snapshot of the
//! whole centre (for `callq inspect` and the invariant checks in the tests).

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde::Serialize;

use super::{
    AgentRecord, AgentSpec, AgentStatus, CallRecord, CounterDrift, Recording, Result, Skills,
    Store, StoreError,
};

fn get<'a>(h: &'a HashMap<String, String>, k: &str) -> &'a str {
    h.get(k).map(String::as_str).unwrap_or("")
}

fn opt_i64(h: &HashMap<String, String>, k: &str) -> Option<i64> {
    get(h, k).parse().ok()
}

fn opt_str(h: &HashMap<String, String>, k: &str) -> Option<String> {
    Some(get(h, k).to_string()).filter(|v| !v.is_empty())
}

/// A stored list ",a,b," as its names.
fn list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn call_from_hash(h: &HashMap<String, String>) -> Option<CallRecord> {
    Some(CallRecord {
        sid: get(h, "sid").to_string(),
        queue: get(h, "queue").to_string(),
        skills: Skills::parse_field(get(h, "skills")),
        from: get(h, "from").to_string(),
        to: get(h, "to").to_string(),
        state: get(h, "state").parse().ok()?,
        kind: get(h, "kind").parse().ok()?,
        rank: opt_i64(h, "rank")?,
        priority_ms: opt_i64(h, "priority").unwrap_or(0),
        agent: Some(get(h, "agent").to_string()).filter(|a| !a.is_empty()),
        attempts: get(h, "attempts").parse().unwrap_or(0),
        rang: list(get(h, "rang")),
        group: list(get(h, "group")),
        ringing: list(get(h, "ringing")),
        entered_ms: opt_i64(h, "entered_ms").unwrap_or(0),
        offered_ms: opt_i64(h, "offered_ms"),
        answered_ms: opt_i64(h, "answered_ms"),
        ended_ms: opt_i64(h, "ended_ms"),
        callback_to: h.get("callback_to").cloned(),
        transferred_ms: opt_i64(h, "transferred_ms"),
        phase: opt_str(h, "phase"),
        leg_sid: opt_str(h, "leg_sid"),
        end_reason: opt_str(h, "end_reason"),
        callback_tries: get(h, "callback_tries").parse().unwrap_or(0),
        recording: opt_str(h, "recording_sid").map(|sid| Recording {
            sid,
            url: get(h, "recording_url").to_string(),
            duration_s: get(h, "recording_duration_s").parse().unwrap_or(0),
        }),
    })
}

pub(crate) fn agent_from_hash(
    h: &HashMap<String, String>,
    alive: Option<String>,
) -> Option<AgentRecord> {
    Some(AgentRecord {
        id: get(h, "id").to_string(),
        identity: get(h, "identity").to_string(),
        queues: AgentSpec::parse_queues_field(get(h, "queues")),
        capacity: get(h, "capacity").parse().unwrap_or(1),
        skills: Skills::parse_field(get(h, "skills")),
        order: get(h, "order").parse().unwrap_or(0),
        weight: get(h, "weight").parse().unwrap_or(1),
        status: get(h, "status").parse().ok()?,
        reason: get(h, "reason").to_string(),
        active: get(h, "active").parse().unwrap_or(0),
        handled: get(h, "handled").parse().unwrap_or(0),
        misses: get(h, "misses").parse().unwrap_or(0),
        idle_ms: opt_i64(h, "idle_ms").unwrap_or(0),
        pending: get(h, "pending").parse().ok(),
        heartbeat: alive.map(|v| v == "1"),
        wrapup_left: None,
    })
}

/// One agent as read in one round trip: its hash, its heartbeat key, its score in the wrap-up
/// set and Redis' `TIME`.
type AgentRow = (
    HashMap<String, String>,
    Option<String>,
    Option<f64>,
    (i64, i64),
);

/// Time left of a wrap-up (or no-answer rest) that ends at `ready_at_ms` (the agent's score
/// in the wrap-up set), at `now_ms` on Redis' clock; zero once due (the next claim makes the
/// agent available). None unless the agent is in wrap-up.
fn wrapup_left(rec: &AgentRecord, ready_at_ms: Option<f64>, now_ms: i64) -> Option<Duration> {
    if rec.status != AgentStatus::Wrapup {
        return None;
    }
    let left = (ready_at_ms? as i64).saturating_sub(now_ms).max(0);
    Some(Duration::from_millis(left as u64))
}

/// Redis' `TIME` as unix milliseconds.
fn time_ms((s, us): (i64, i64)) -> i64 {
    s.saturating_mul(1000).saturating_add(us / 1000)
}

/// A waiting caller's place in line and the wait we expect.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Position {
    /// 1 = next in line, in our priority order.
    pub position: u64,
    /// Estimated seconds until an agent answers.
    pub estimated_wait_s: f64,
}

/// A queue's live numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueStats {
    pub name: String,
    pub strategy: String,
    pub waiting: u64,
    pub oldest_wait_s: f64,
    pub agents: HashMap<String, u64>,
    pub aht_s: f64,
    /// Mean seconds from an offer to the agent answering: the ring a caller waits through.
    pub ring_s: f64,
    /// Recent callers giving up, per second of waiting each (0 when none did).
    pub abandon_rate: f64,
    pub estimated_wait_s: f64,
}

impl QueueStats {
    /// Agents of the queue counted in `status`.
    pub fn count(&self, status: AgentStatus) -> u64 {
        self.agents.get(status.as_str()).copied().unwrap_or(0)
    }

    /// Agents taking calls: available (with a live device), reserved, busy or in wrap-up.
    pub fn staffed(&self) -> u64 {
        self.count(AgentStatus::Available)
            + self.count(AgentStatus::Reserved)
            + self.count(AgentStatus::Busy)
            + self.count(AgentStatus::Wrapup)
    }

    /// Agents logged in: every one not offline (paused agents included).
    pub fn logged_in(&self) -> u64 {
        self.staffed() + self.count(AgentStatus::Paused)
    }
}

/// Everything in a centre at one instant (read in one MULTI/EXEC).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub calls: Vec<CallRecord>,
    pub agents: Vec<AgentRecord>,
    /// queue -> waiting CallSids in rank order
    pub waiting: HashMap<String, Vec<String>>,
    /// (queue, tier) -> ready agent ids
    pub ready: HashMap<(String, u32), Vec<String>>,
    /// (queue, tier, skill, level) -> the ready agent ids indexed there (every skill in the
    /// centre's `skills` set, every level)
    pub ready_skills: HashMap<(String, u32, String, u8), Vec<String>>,
    pub offers: Vec<String>,
    pub wrapup: Vec<String>,
    /// Calls arriving (not yet held by Twilio).
    pub arriving: Vec<String>,
    /// Connected calls (each due a check with Twilio).
    pub connected: Vec<String>,
    /// Callbacks waiting out a retry delay.
    pub retry: Vec<String>,
    /// Queue agent counters that disagree with the agents (empty when the scripts kept them).
    pub counter_drift: Vec<CounterDrift>,
}

impl Store {
    pub async fn call(&self, sid: &str) -> Result<Option<CallRecord>> {
        let mut c = self.conn().await?;
        let h: HashMap<String, String> = c.hgetall(self.key(&format!("call:{sid}"))).await?;
        Ok(call_from_hash(&h))
    }

    pub async fn agent(&self, id: &str) -> Result<Option<AgentRecord>> {
        let mut c = self.conn().await?;
        let (h, alive, ready_at, now): AgentRow = redis::pipe()
            .hgetall(self.key(&format!("agent:{id}")))
            .get(self.key(&format!("agent:{id}:alive")))
            .zscore(self.key("wrapup"), id)
            .cmd("TIME")
            .query_async(&mut c)
            .await?;
        Ok(agent_from_hash(&h, alive).map(|mut a| {
            a.wrapup_left = wrapup_left(&a, ready_at, time_ms(now));
            a
        }))
    }

    /// The agent's current token generation (None: unknown agent, or one no token was ever
    /// issued for under this scheme).
    pub async fn token_generation(&self, id: &str) -> Result<Option<String>> {
        let mut c = self.conn().await?;
        let g: Option<String> = c
            .hget(self.key(&format!("agent:{id}")), "token_gen")
            .await?;
        Ok(g.filter(|g| !g.is_empty()))
    }

    pub async fn agent_ids(&self) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        let mut ids: Vec<String> = c.smembers(self.key("agents")).await?;
        ids.sort();
        Ok(ids)
    }

    pub async fn queue_names(&self) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        let mut q: Vec<String> = c.smembers(self.key("queues")).await?;
        q.sort();
        Ok(q)
    }

    /// All agents, sorted by id.
    pub async fn agents(&self) -> Result<Vec<AgentRecord>> {
        let ids = self.agent_ids().await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        for id in &ids {
            pipe.hgetall(self.key(&format!("agent:{id}")))
                .get(self.key(&format!("agent:{id}:alive")))
                .zscore(self.key("wrapup"), id);
        }
        let values: Vec<redis::Value> = pipe.query_async(&mut c).await?;
        let mut it = values.into_iter();
        let mut next = || it.next().unwrap_or(redis::Value::Nil);
        let now = time_ms(redis::from_redis_value(next())?);
        let mut agents = Vec::with_capacity(ids.len());
        for _ in &ids {
            let h: HashMap<String, String> = redis::from_redis_value(next())?;
            let alive: Option<String> = redis::from_redis_value(next())?;
            let ready_at: Option<f64> = redis::from_redis_value(next())?;
            if let Some(mut a) = agent_from_hash(&h, alive) {
                a.wrapup_left = wrapup_left(&a, ready_at, now);
                agents.push(a);
            }
        }
        Ok(agents)
    }

    /// The caller's place in line (our order: rank) and estimated wait. None when not waiting.
    ///
    /// The estimate treats the queue's staffed agents as servers finishing calls at the
    /// queue's mean handle time: the caller at position p waits for p departures, p·AHT/n,
    /// plus the ring time of the offer that reaches them.
    pub async fn position(&self, sid: &str, queue: &str) -> Result<Option<Position>> {
        let mut c = self.conn().await?;
        let rank: Option<u64> = c
            .zrank(self.key(&format!("queue:{queue}:waiting")), sid)
            .await?;
        let Some(rank) = rank else { return Ok(None) };
        let stats = self.queue_stats(queue).await?;
        let position = rank + 1;
        Ok(Some(Position {
            position,
            estimated_wait_s: estimate_wait(position, &stats),
        }))
    }

    /// The caller's place in line in `queue` (1 = next, in our order) without the estimate
    /// [`Store::position`] adds: one round trip, for the hold announcements, which pair it with
    /// a recent [`QueueStats`] through [`estimate_wait`]. None when not in that line.
    pub async fn place_in_line(&self, sid: &str, queue: &str) -> Result<Option<u64>> {
        let mut c = self.conn().await?;
        let rank: Option<u64> = c
            .zrank(self.key(&format!("queue:{queue}:waiting")), sid)
            .await?;
        Ok(rank.map(|r| r + 1))
    }

    /// Live numbers for one queue.
    pub async fn queue_stats(&self, queue: &str) -> Result<QueueStats> {
        let mut c = self.conn().await?;
        let waiting_key = self.key(&format!("queue:{queue}:waiting"));
        // O(1) in the number of agents: the scripts keep `queue:<q>:agents` in step, and the
        // running figures in `queue:<q>:stats`
        type Fields = HashMap<String, String>;
        let (cfg, figures, waiting, head, counted): (
            Fields,
            Fields,
            u64,
            Vec<String>,
            HashMap<String, i64>,
        ) = redis::pipe()
            .hgetall(self.key(&format!("queue:{queue}")))
            .hgetall(self.key(&format!("queue:{queue}:stats")))
            .zcard(&waiting_key)
            .zrange(&waiting_key, 0, 0)
            .hgetall(self.key(&format!("queue:{queue}:agents")))
            .query_async(&mut c)
            .await?;
        if cfg.is_empty() {
            return Err(StoreError::UnknownQueue(queue.to_string()));
        }
        let oldest_wait_s = match head.first() {
            Some(sid) => {
                let entered: Option<i64> = c
                    .hget(self.key(&format!("call:{sid}")), "entered_ms")
                    .await?;
                let (now_s, now_us) = self.redis_time().await?;
                let now = now_s * 1000 + now_us / 1000;
                entered
                    .map(|e| (now - e).max(0) as f64 / 1000.0)
                    .unwrap_or(0.0)
            }
            None => 0.0,
        };
        // every state present, zero when no agent is in it; an agent who chose available
        // without a live device is counted offline by the scripts
        let by_status: HashMap<String, u64> = AgentStatus::ALL
            .iter()
            .map(|s| {
                let n = counted.get(s.as_str()).copied().unwrap_or(0);
                (s.as_str().to_string(), n.max(0) as u64)
            })
            .collect();
        let aht_s = get(&figures, "aht_ms").parse::<f64>().unwrap_or(180_000.0) / 1000.0;
        let ring_s = get(&figures, "ring_ms")
            .parse::<f64>()
            .unwrap_or(0.0)
            .max(0.0)
            / 1000.0;
        let abandon_rate = abandon_rate(
            get(&figures, "left_n").parse().unwrap_or(0.0),
            get(&figures, "abandon_n").parse().unwrap_or(0.0),
            get(&figures, "held_s").parse().unwrap_or(0.0),
        );
        let mut stats = QueueStats {
            name: queue.to_string(),
            strategy: get(&cfg, "strategy").to_string(),
            waiting,
            oldest_wait_s,
            agents: by_status,
            aht_s,
            ring_s,
            abandon_rate,
            estimated_wait_s: 0.0,
        };
        stats.estimated_wait_s = estimate_wait(waiting + 1, &stats);
        Ok(stats)
    }

    /// A call's history (oldest first), as (stream id, fields with the kind under `type`),
    /// from the call's own list (`call:<sid>:history`): O(its own events), however long the
    /// centre's event stream. Entries that do not decode are skipped, not fatal.
    pub async fn call_events(&self, sid: &str) -> Result<Vec<(String, HashMap<String, String>)>> {
        let mut c = self.conn().await?;
        let entries: Vec<String> = c
            .lrange(self.key(&format!("call:{sid}:history")), 0, -1)
            .await?;
        Ok(entries
            .iter()
            .filter_map(|e| {
                let (id, kind, flat): (String, String, Vec<String>) =
                    serde_json::from_str(e).ok()?;
                let mut fields: HashMap<String, String> = flat
                    .chunks_exact(2)
                    .map(|kv| (kv[0].clone(), kv[1].clone()))
                    .collect();
                fields.insert("type".to_string(), kind);
                Some((id, fields))
            })
            .collect())
    }

    /// The latest `count` transitions from the event stream, newest first.
    pub async fn recent_events(
        &self,
        count: usize,
    ) -> Result<Vec<(String, HashMap<String, String>)>> {
        let mut c = self.conn().await?;
        let reply: redis::streams::StreamRangeReply = c
            .xrevrange_count(self.key("events"), "+", "-", count)
            .await?;
        Ok(reply.ids.into_iter().map(entry_fields).collect())
    }

    /// A consistent view of the given calls and every agent, line, ready set, offer, connected
    /// call, arrival, retry and wrap-up.
    pub async fn snapshot(&self, call_sids: &[String]) -> Result<Snapshot> {
        let queues = self.queue_names().await?;
        let agent_ids = self.agent_ids().await?;
        let mut tiers: Vec<(String, u32)> = Vec::new();
        let mut c = self.conn().await?;
        let mut skills: Vec<String> = c.smembers(self.key("skills")).await?;
        skills.sort();
        for q in &queues {
            let n: Option<u32> = c.hget(self.key(&format!("queue:{q}")), "tiers").await?;
            for t in 1..=n.unwrap_or(1) {
                tiers.push((q.clone(), t));
            }
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for sid in call_sids {
            pipe.hgetall(self.key(&format!("call:{sid}")));
        }
        for id in &agent_ids {
            pipe.hgetall(self.key(&format!("agent:{id}")))
                .get(self.key(&format!("agent:{id}:alive")));
        }
        for q in &queues {
            pipe.zrange(self.key(&format!("queue:{q}:waiting")), 0, -1)
                .hgetall(self.key(&format!("queue:{q}:agents")));
        }
        for (q, t) in &tiers {
            pipe.zrange(self.key(&format!("queue:{q}:ready:{t}")), 0, -1);
        }
        let mut skill_sets = Vec::new();
        for (q, t) in &tiers {
            for s in &skills {
                for l in 1..=super::MAX_SKILL_LEVEL {
                    pipe.zrange(
                        self.key(&format!("queue:{q}:ready:{t}:skill:{s}:{l}")),
                        0,
                        -1,
                    );
                    skill_sets.push((q.clone(), *t, s.clone(), l));
                }
            }
        }
        pipe.zrange(self.key("offers"), 0, -1)
            .zrange(self.key("wrapup"), 0, -1)
            .zrange(self.key("arriving"), 0, -1)
            .zrange(self.key("connected"), 0, -1)
            .zrange(self.key("retry"), 0, -1);
        let values: Vec<redis::Value> = pipe.query_async(&mut c).await?;
        let mut it = values.into_iter();
        let mut next = || it.next().unwrap_or(redis::Value::Nil);
        let mut snap = Snapshot::default();
        for _ in call_sids {
            let h: HashMap<String, String> = redis::from_redis_value(next())?;
            if let Some(rec) = call_from_hash(&h) {
                snap.calls.push(rec);
            }
        }
        // each queue's agent counters as the agents themselves say they should be
        let mut expected: HashMap<String, HashMap<String, i64>> = HashMap::new();
        for _ in &agent_ids {
            let h: HashMap<String, String> = redis::from_redis_value(next())?;
            let alive: Option<String> = redis::from_redis_value(next())?;
            if let Some(rec) = agent_from_hash(&h, alive) {
                let state = counted_state(&h, rec.status);
                for (q, _) in &rec.queues {
                    *expected
                        .entry(q.clone())
                        .or_default()
                        .entry(state.to_string())
                        .or_default() += 1;
                }
                snap.agents.push(rec);
            }
        }
        for q in &queues {
            snap.waiting
                .insert(q.clone(), redis::from_redis_value(next())?);
            let stored: HashMap<String, i64> = redis::from_redis_value(next())?;
            let want = expected.remove(q).unwrap_or_default();
            let mut states: Vec<&String> = stored.keys().chain(want.keys()).collect();
            states.sort();
            states.dedup();
            for state in states {
                let (have, need) = (
                    stored.get(state).copied().unwrap_or(0),
                    want.get(state).copied().unwrap_or(0),
                );
                if have != need {
                    snap.counter_drift.push(CounterDrift {
                        queue: q.clone(),
                        state: state.clone(),
                        stored: have,
                        counted: need,
                    });
                }
            }
        }
        for qt in &tiers {
            snap.ready
                .insert(qt.clone(), redis::from_redis_value(next())?);
        }
        for set in skill_sets {
            snap.ready_skills
                .insert(set, redis::from_redis_value(next())?);
        }
        snap.offers = redis::from_redis_value(next())?;
        snap.wrapup = redis::from_redis_value(next())?;
        snap.arriving = redis::from_redis_value(next())?;
        snap.connected = redis::from_redis_value(next())?;
        snap.retry = redis::from_redis_value(next())?;
        Ok(snap)
    }
}

/// The state an agent counts in for its queues' counters (as `agents.lua` decides it): its
/// status, but `offline` for an agent who chose available without a live registered device
/// as the scripts last recorded it (fields `online` and `device`).
fn counted_state(h: &HashMap<String, String>, status: AgentStatus) -> &'static str {
    let present = get(h, "online") == "1" && get(h, "device") == "1";
    match status {
        AgentStatus::Available if !present => AgentStatus::Offline.as_str(),
        s => s.as_str(),
    }
}

/// An event-stream entry as (stream id, its fields as text).
fn entry_fields(e: redis::streams::StreamId) -> (String, HashMap<String, String>) {
    let fields = e
        .map
        .iter()
        .filter_map(|(k, v)| {
            redis::from_redis_value_ref::<String>(v)
                .ok()
                .map(|v| (k.clone(), v))
        })
        .collect();
    (e.id, fields)
}

/// Callers who left the line (decayed, as the scripts count them) before an abandonment rate
/// is trusted: with less history none is assumed.
const MIN_LEFT: f64 = 20.0;

/// Callers giving up per second of waiting, from the queue's decayed counts: `gave_up`
/// abandonments among `left` callers who left the line, over the `held_s` seconds they held.
fn abandon_rate(left: f64, gave_up: f64, held_s: f64) -> f64 {
    let rate = gave_up / held_s;
    if left >= MIN_LEFT && gave_up > 0.0 && held_s > 0.0 && rate.is_finite() {
        rate
    } else {
        0.0
    }
}

/// The most departures summed one by one; a longer line adds the rest at the last rate.
const MAX_STEPS: u64 = 10_000;

/// Expected wait (seconds until an agent answers) for the caller at `position`.
///
/// The first `ready` callers are offered at once and wait only for the ring. A caller further
/// back, `k` places behind them, moves up one place each time a staffed agent finishes a call
/// (`staffed ÷ AHT` per second between them) or a caller ahead gives up (the queue's recent
/// abandonment rate θ for each of the `m` still ahead): the expected wait is the ring plus
/// Σ 1 ÷ (staffed ÷ AHT + m·θ) for m = k−1 … 0, Erlang A's delay for the k-th in line. With
/// nobody abandoning that is the textbook k·AHT ÷ staffed; with a long line of impatient
/// callers it is much shorter, because most of the line will not wait to be served.
///
/// Nobody staffed: position × AHT, a long wait rather than a false short one (the hold
/// announcement says no estimate instead).
pub fn estimate_wait(position: u64, stats: &QueueStats) -> f64 {
    let staffed = stats.staffed();
    let ready = stats.count(AgentStatus::Available);
    if staffed == 0 {
        return stats.aht_s * position as f64;
    }
    if position <= ready {
        return stats.ring_s;
    }
    let behind = position - ready;
    let served = staffed as f64 / stats.aht_s.max(1.0);
    let theta = stats.abandon_rate;
    if theta <= 0.0 {
        return stats.ring_s + behind as f64 / served;
    }
    let steps = behind.min(MAX_STEPS);
    let mut wait: f64 = (0..steps).map(|m| 1.0 / (served + m as f64 * theta)).sum();
    if behind > steps {
        wait += (behind - steps) as f64 / (served + steps as f64 * theta);
    }
    stats.ring_s + wait
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(available: u64, busy: u64, abandon_rate: f64) -> QueueStats {
        let mut agents = HashMap::new();
        agents.insert("available".to_string(), available);
        agents.insert("busy".to_string(), busy);
        QueueStats {
            name: "q".into(),
            strategy: "longest_idle".into(),
            waiting: 0,
            oldest_wait_s: 0.0,
            agents,
            aht_s: 200.0,
            ring_s: 4.0,
            abandon_rate,
            estimated_wait_s: 0.0,
        }
    }

    #[test]
    fn callers_a_ready_agent_takes_wait_only_for_the_ring() {
        let stats = line(2, 8, 0.0);
        assert_eq!(estimate_wait(1, &stats), 4.0);
        assert_eq!(estimate_wait(2, &stats), 4.0);
    }

    #[test]
    fn without_abandonment_each_place_is_one_departure() {
        // 10 staffed at 200 s each: a departure every 20 s
        let stats = line(0, 10, 0.0);
        assert!((estimate_wait(1, &stats) - 24.0).abs() < 1e-9);
        assert!((estimate_wait(5, &stats) - 104.0).abs() < 1e-9);
        // two ready: the third caller is the first to wait for a departure
        let stats = line(2, 8, 0.0);
        assert!((estimate_wait(3, &stats) - 24.0).abs() < 1e-9);
    }

    #[test]
    fn callers_ahead_giving_up_shorten_the_wait_but_never_below_the_first_departure() {
        let patient = line(0, 10, 0.0);
        // one in a hundred seconds per waiting caller
        let impatient = line(0, 10, 0.01);
        assert_eq!(estimate_wait(1, &impatient), estimate_wait(1, &patient));
        let far = estimate_wait(50, &impatient);
        assert!(far < estimate_wait(50, &patient) / 2.0, "{far}");
        assert!(far > estimate_wait(1, &impatient), "{far}");
        // the estimate grows with the position
        let mut last = 0.0;
        for p in 1..200 {
            let w = estimate_wait(p, &impatient);
            assert!(w > last, "position {p}: {w} after {last}");
            last = w;
        }
        // a line longer than the steps summed one by one still gives a finite, larger wait
        let huge = estimate_wait(50_000, &impatient);
        assert!(huge.is_finite() && huge > last, "{huge}");
    }

    #[test]
    fn an_abandonment_rate_needs_enough_history() {
        assert_eq!(abandon_rate(10.0, 3.0, 100.0), 0.0, "too few callers yet");
        assert_eq!(abandon_rate(50.0, 0.0, 5_000.0), 0.0);
        assert_eq!(abandon_rate(50.0, f64::NAN, 5_000.0), 0.0);
        assert_eq!(abandon_rate(50.0, 5.0, 0.0), 0.0);
        assert!((abandon_rate(50.0, 5.0, 1_000.0) - 0.005).abs() < 1e-12);
    }

    #[test]
    fn nobody_staffed_is_a_long_wait() {
        let stats = line(0, 0, 0.0);
        assert_eq!(estimate_wait(3, &stats), 600.0);
    }
}
